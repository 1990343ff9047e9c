"""``galad games download``: fetch a game's files from the pinned upstream commit, verify, install atomically.

A source is either an HTTP(S) base URL under which the upstream paths resolve (default: the raw files of
hendrycks/jiminy-cricket at the pinned commit) or a local folder laid out like that repository
(``annotated_games/<game>/...``). Every file's sha256 is checked against the registry before anything is
written into the games directory; a failed download leaves nothing behind and an installed copy intact.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from pathlib import Path

from galad import paths
from galad.atomic import atomic_dir
from galad.env.registry import UPSTREAM_COMMIT, UPSTREAM_REPO, GameSpec, get_game, jiminy_games
from galad.errors import ConfigError, DownloadError

log = logging.getLogger(__name__)

DEFAULT_SOURCE = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/"
TIMEOUT_S = 60.0


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(source: str, rel: str) -> bytes:
    if source.startswith(("http://", "https://")):
        url = source.rstrip("/") + "/" + rel
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"cannot reach {url}: {reason}") from None
    path = Path(source).expanduser() / rel
    if not path.is_file():
        raise DownloadError(f"{path} not found (expected a folder laid out like the upstream repository)")
    return path.read_bytes()


def download_game(spec: GameSpec, source: str | None = None, dest_root: Path | None = None) -> Path:
    """Install one game's files into ``dest_root/<game>`` (default: the games directory).

    All files are fetched and verified into a temporary folder beside the destination, then moved into
    place with one rename, so an interrupted or failed download never leaves a half-written game.

    Raises:
        DownloadError: a file is missing, unreachable, or its sha256 does not match the registry.
    """
    if spec.bundled:
        return spec.folder()
    source = source or DEFAULT_SOURCE
    if not source.startswith(("http://", "https://")) and not Path(source).expanduser().is_dir():
        raise ConfigError(f"--source {source!r} is neither a URL nor a folder")
    root = dest_root or paths.games_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / spec.name
    with atomic_dir(final) as tmp:
        for f in spec.all_files():
            data = _fetch(source, f.upstream_path)
            digest = sha256_of(data)
            if digest != f.sha256:
                raise DownloadError(
                    f"sha256 mismatch for {f.upstream_path}: got {digest[:12]}…, expected {f.sha256[:12]}…; "
                    "refusing to install it"
                )
            (tmp / f.name).write_bytes(data)
    log.info("installed %s into %s", spec.name, final)
    return final


def download(games: list[str], all_games: bool = False, source: str | None = None) -> list[Path]:
    """Install several games (``all_games``: the 25 Jiminy Cricket games)."""
    names = jiminy_games() if all_games else games
    if not names:
        raise ConfigError("name at least one game, or use --all")
    specs = [get_game(n) for n in names]  # validate every name before downloading anything
    return [download_game(s, source) for s in specs]
