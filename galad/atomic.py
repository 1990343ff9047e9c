"""Atomic writes: write beside the target under a temporary name, then rename it into place.

A reader (or a crash) never sees a half-written file or folder: the old one stays whole until the rename, and a
failed write leaves no temporary behind. Temporary names start with ``.`` and carry the process id, so two
processes writing the same target never share one. :func:`read_json` reads such a file back, None where it is
missing or unreadable. This is the one place the project does it; the standard
library's ``os.replace`` is all it needs (the ``atomicwrites`` package that used to do this is archived).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()
"""The process's umask, read once at import: the temporaries below are made private (``tempfile``: 0600 files,
0700 folders) and get the mode a plain ``open``/``mkdir`` would have given them before they are renamed into
place, so runs, models and caches stay readable where the user's other files are."""


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error it replaces ``path``.

    The caller writes the temporary file (by any means: ``torch.save``, ``Path.write_bytes``, a library's own
    writer); on an exception it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp-{os.getpid()}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``, or None when the file is missing or is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 1) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=indent))


def write_jsonl_atomic(path: str | Path, rows: Iterable[Any]) -> None:
    """Write one JSON line per row to ``path`` atomically."""
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def new_temp_dir(dest: str | Path) -> Path:
    """An empty temporary folder beside ``dest``, to fill and then hand to :func:`replace_dir`."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=f".tmp-{os.getpid()}", dir=dest.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    return tmp


def replace_dir(tmp: str | Path, dest: str | Path) -> Path:
    """Move the finished folder ``tmp`` to ``dest``, replacing any folder there; returns ``dest``.

    The old folder is renamed aside first and removed only after the new one is in place, so ``dest`` is never
    missing for longer than between two renames and never half-written.
    """
    tmp, dest = Path(tmp), Path(dest)
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest


@contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; when the block ends without an error it replaces ``dest``
    (:func:`replace_dir`); on an exception it is removed and ``dest`` is left as it was."""
    tmp = new_temp_dir(dest)
    try:
        yield tmp
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
