import functools
import hashlib
import http.server
import threading

import pytest

from galad.env.download import download_game
from galad.env.registry import GameFile, GameSpec
from galad.errors import DownloadError


def _spec(files: dict[str, bytes], bad: str | None = None) -> GameSpec:
    def gf(name):
        digest = hashlib.sha256(files[name]).hexdigest() if name != bad else "0" * 64
        return GameFile(name, f"annotated_games/toy/{name}", digest, len(files[name]))

    names = list(files)
    return GameSpec("toy", "Toy", 10, gf(names[0]), tuple(gf(n) for n in names[1:]), "custom_rewards")


FILES = {"toy.z5": b"\x05story", "toy_annotations.csv": b"File,Line\n", "toy_walkthrough.txt": b"north"}


@pytest.fixture
def upstream(tmp_path):
    root = tmp_path / "upstream"
    (root / "annotated_games" / "toy").mkdir(parents=True)
    for name, data in FILES.items():
        (root / "annotated_games" / "toy" / name).write_bytes(data)
    return root


@pytest.fixture
def server(upstream):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(upstream))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_download_from_local_folder(upstream, tmp_path):
    dest = tmp_path / "games"
    out = download_game(_spec(FILES), str(upstream), dest)
    assert out == dest / "toy"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == FILES


def test_download_over_http_loopback(server, tmp_path):
    out = download_game(_spec(FILES), server, tmp_path / "games")
    assert (out / "toy.z5").read_bytes() == FILES["toy.z5"]
    assert sorted(p.name for p in (tmp_path / "games").iterdir()) == ["toy"]  # no temp folders left


def test_sha_mismatch_refuses_and_keeps_existing_install(server, tmp_path):
    dest = tmp_path / "games"
    download_game(_spec(FILES), server, dest)
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download_game(_spec(FILES, bad="toy_walkthrough.txt"), server, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["toy"]
    assert (dest / "toy" / "toy_walkthrough.txt").read_bytes() == FILES["toy_walkthrough.txt"]


def test_http_404_is_one_clear_error(server, tmp_path):
    spec = _spec({**FILES, "initial_actions.txt": b"x"})
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_game(spec, server, tmp_path / "games")
    assert not any((tmp_path / "games").iterdir())


def test_unreachable_server(tmp_path):
    with pytest.raises(DownloadError, match="cannot reach"):
        download_game(_spec(FILES), "http://127.0.0.1:9/", tmp_path / "games")
