"""``galad data download``: the value-model datasets from their canonical public sources (or a mirror).

Files land in ``GALAD_DATA_DIR`` in the layout the loaders read (``ethics/commonsense/``, ``moral_stories/``,
``social_chem_101/``). Each file is written to a temp name and renamed, so an interrupted or failed download
never leaves a half-written file. ``--source`` takes a mirror (URL or folder) laid out like the data dir.
"""

from __future__ import annotations

import io
import logging
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from galad import paths
from galad.atomic import write_bytes_atomic
from galad.errors import ConfigError, DownloadError

log = logging.getLogger(__name__)

ETHICS_TAR = "https://people.eecs.berkeley.edu/~hendrycks/ethics.tar"
# the HF dataset repo of Moral Stories (demelin/moral_stories) and the Social-Chem subsets as released there
MORAL_STORIES_BASE = "https://huggingface.co/datasets/demelin/moral_stories/resolve/main/data/"
SOCIAL_CHEM_BASE = "https://huggingface.co/datasets/demelin/moral_stories/resolve/main/data/"
# 500 Social-Chem actions, 100 at each action-moral-judgement -2..2 (the TrustLLM benchmark's sample, pinned)
SC_JUDGEMENTS_URL = ("https://raw.githubusercontent.com/HowieHwong/TrustLLM/b1054befd72bfde918bedc18f992f97905252135/"
                     "dataset/ethics/implicit_SocialChemistry101.json")


@dataclass(frozen=True)
class DataFile:
    """One file of the data dir and where it comes from."""

    relpath: str
    """Path inside the data dir (and inside a ``--source`` mirror)."""
    dataset: str
    """Dataset name for ``--only``."""
    url: str
    """Canonical URL: the file itself, or the tarball holding it (``member``)."""
    member: str | None = None
    """Path inside the canonical tarball."""


FILES = (
    DataFile("ethics/commonsense/cm_test.csv", "ethics", ETHICS_TAR, "ethics/commonsense/cm_test.csv"),
    DataFile("ethics/commonsense/cm_test_hard.csv", "ethics", ETHICS_TAR, "ethics/commonsense/cm_test_hard.csv"),
    DataFile("ethics/commonsense/cm_train.csv", "ethics", ETHICS_TAR, "ethics/commonsense/cm_train.csv"),
    DataFile("moral_stories/original_ms_action+norm_norm_distance_train.jsonl", "moral_stories",
             MORAL_STORIES_BASE + "original_ms_action+norm_norm_distance_train.jsonl"),
    DataFile("moral_stories/original_ms_action+norm_norm_distance_dev.jsonl", "moral_stories",
             MORAL_STORIES_BASE + "original_ms_action+norm_norm_distance_dev.jsonl"),
    DataFile("moral_stories/original_ms_action+norm_norm_distance_test.jsonl", "moral_stories",
             MORAL_STORIES_BASE + "original_ms_action+norm_norm_distance_test.jsonl"),
    DataFile("social_chem_101/obligatory_sc101.csv", "social_chem", SOCIAL_CHEM_BASE + "obligatory_sc101.csv"),
    DataFile("social_chem_101/optional_sc101.csv", "social_chem", SOCIAL_CHEM_BASE + "optional_sc101.csv"),
    DataFile("social_chem_101/sc101_judgement_sample.json", "social_chem", SC_JUDGEMENTS_URL),
)
# absent from some mirrors (cm_train.csv from the CI data, which has a 5,000-row subset instead)
OPTIONAL = {"ethics/commonsense/cm_train.csv", "social_chem_101/sc101_judgement_sample.json"}


def _fetch(url: str, timeout: float) -> bytes:
    if "://" not in url:
        try:
            return Path(url).read_bytes()
        except OSError as exc:
            raise DownloadError(f"cannot read {url}: {exc.strerror or exc}") from exc
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from exc


def _extract(archive: bytes, member: str, url: str) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            f = tar.extractfile(member)
            if f is None:
                raise KeyError(member)
            return f.read()
    except (KeyError, tarfile.TarError) as exc:
        raise DownloadError(f"{member} is not in {url}") from exc


def _write(dest: Path, payload: bytes) -> None:
    if not payload.strip():
        raise DownloadError(f"{dest.name}: empty download")
    write_bytes_atomic(dest, payload)


def download_data(only: list[str] | None = None, source: str | None = None, dest: Path | None = None,
                  timeout: float = 60.0, force: bool = False) -> list[Path]:
    """Fetch the value-model datasets into the data dir.

    Args:
        only: dataset names (``ethics``, ``moral_stories``, ``social_chem``); None: all.
        source: a mirror laid out like the data dir (``http(s)://...`` base URL or a folder); None: canonical.
        dest: data dir (default ``GALAD_DATA_DIR``).
        timeout: seconds per request.
        force: download files that are already there.

    Returns:
        The files written.

    Raises:
        DownloadError: a required file could not be fetched.
    """
    dest = Path(dest) if dest is not None else paths.data_dir()
    names = {f.dataset for f in FILES}
    if only:
        bad = sorted(set(only) - names)
        if bad:
            raise ConfigError(f"unknown dataset(s) {bad}; choose from {sorted(names)}")
    todo = [f for f in FILES if (not only or f.dataset in only) and (force or not (dest / f.relpath).is_file())]
    written: list[Path] = []
    tars: dict[str, bytes] = {}
    for f in todo:
        target = dest / f.relpath
        try:
            if source is not None:
                base = source if source.endswith("/") or "://" not in source else source + "/"
                url = base + f.relpath if "://" in source else str(Path(source) / f.relpath)
                payload = _fetch(url, timeout)
            elif f.member is not None:
                if f.url not in tars:
                    tars[f.url] = _fetch(f.url, timeout)
                payload = _extract(tars[f.url], f.member, f.url)
            else:
                payload = _fetch(f.url, timeout)
        except DownloadError:
            if f.relpath in OPTIONAL:
                log.info("optional file %s not available", f.relpath)
                continue
            raise
        _write(target, payload)
        written.append(target)
        log.info("downloaded %s", target)
    return written
