"""Bad input through the CLI (one line on stderr, exit code 2) and the data download against a loopback server."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from galad.errors import DownloadError


def galad(*args, **env):
    e = dict(os.environ, HF_HUB_OFFLINE="1", **env)
    return subprocess.run([sys.executable, "-m", "galad.cli", *args], capture_output=True, text=True, env=e, check=False,
                          timeout=120)


def one_line_error(r) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_missing_data_dir_says_how_to_get_it(tmp_path):
    r = galad("value", "train", "--recipe", "minilm-tiny", GALAD_DATA_DIR=str(tmp_path / "nowhere"),
              GALAD_HOME=str(tmp_path / "home"))
    assert "galad data download" in one_line_error(r)
    assert not (tmp_path / "home" / "models").exists()


def test_unknown_model_offline_fails_fast(tmp_path):
    t = time.monotonic()
    r = galad("value", "score", "take the coins", "--model", "no-such-org/no-such-model",
              GALAD_HOME=str(tmp_path))
    assert "no-such-org/no-such-model" in one_line_error(r)
    assert time.monotonic() - t < 60


def test_missing_model_folder_and_unknown_recipe(tmp_path):
    assert "does not exist" in one_line_error(galad("value", "score", "x", "--model", str(tmp_path / "nope") + "/",
                                                    GALAD_HOME=str(tmp_path)))
    assert "recipe" in one_line_error(galad("value", "train", "--recipe", "no-such-recipe"))


def test_audit_unknown_game(tmp_path):
    assert "no_such_game" in one_line_error(galad("value", "audit", "no_such_game", GALAD_HOME=str(tmp_path)))


# --- galad data download --------------------------------------------------------------------------------
@pytest.fixture
def mirror(tmp_path):
    """A loopback HTTP server over a folder laid out like the data dir."""
    from galad.values.download import FILES

    root = tmp_path / "mirror"
    for f in FILES:
        if f.relpath.endswith("cm_train.csv"):
            continue  # optional: the download goes on without it
        p = root / f.relpath
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("label,input,is_short,edited\n1,I kicked a dog.,True,False\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_from_loopback_mirror(mirror, tmp_path):
    from galad.values.download import download_data

    root, url = mirror
    dest = tmp_path / "data"
    written = download_data(source=url, dest=dest)
    assert len(written) == 8  # every file but the optional cm_train.csv, which the mirror lacks
    assert (dest / "ethics/commonsense/cm_test.csv").read_text().startswith("label,input")
    assert download_data(source=url, dest=dest) == []  # already there
    (root / "social_chem_101" / "optional_sc101.csv").unlink()
    with pytest.raises(DownloadError, match="optional_sc101"):
        download_data(["social_chem"], source=url, dest=dest, force=True)
    assert not list(dest.rglob(".*tmp*"))


def test_download_canonical_tarball(mirror, tmp_path, monkeypatch):
    """The ETHICS release is a tarball: members are extracted to the data-dir layout."""
    import tarfile

    from galad.values import download as dl

    root, url = mirror
    with tarfile.open(root / "ethics.tar", "w") as tar:
        tar.add(root / "ethics", arcname="ethics")
    files = tuple(f.__class__(f.relpath, f.dataset, url + "ethics.tar", f.member) for f in dl.FILES
                  if f.dataset == "ethics")
    monkeypatch.setattr(dl, "FILES", files)
    written = dl.download_data(["ethics"], dest=tmp_path / "d")
    assert sorted(p.name for p in written) == ["cm_test.csv", "cm_test_hard.csv"]


def test_download_cli_bad_source(tmp_path):
    r = galad("data", "download", "--only", "ethics", "--source", "http://127.0.0.1:9/",
              GALAD_DATA_DIR=str(tmp_path / "d"))
    assert "download" in one_line_error(r)
    assert not Path(tmp_path / "d" / "ethics" / "commonsense" / "cm_test.csv").exists()


def test_first_run_without_data_is_one_line(tmp_path):
    """No model cached and no data: the automatic first training says how to get the data, in one line."""
    r = galad("value", "score", "take the coins", GALAD_DATA_DIR=str(tmp_path / "nowhere"),
              GALAD_HOME=str(tmp_path / "home"))
    assert "galad data download" in one_line_error(r)
