"""Persistent P(harm) cache: an in-memory dict in front of a SQLite database shared by processes
(:mod:`galad.store`: WAL mode, a corrupt file rebuilt instead of a crash)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from galad import paths
from galad.store import SqliteStore


def default_cache_path() -> Path:
    """``<GALAD_HOME>/value_cache.sqlite``."""
    return paths.galad_home() / "value_cache.sqlite"


def cache_key(text: str, context: str | None = None) -> str:
    """Key of one scored input: the text itself, or a hash of context and text in contextual mode."""
    if context is None:
        return text
    return hashlib.blake2b(f"{context}\0{text}".encode("utf-8", "replace"), digest_size=16).hexdigest()


def input_key(text: str, context_ids: Sequence[int]) -> str:
    """Key of one contextual input by what the model reads of it: the text and the context's token ids after
    the cut to the model's length (scenes that differ only past the cut are one input)."""
    return hashlib.blake2b(f"{','.join(map(str, context_ids))}\1{text}".encode("utf-8", "replace"),
                           digest_size=16).hexdigest()


class ScoreCache:
    """Scores keyed by (model, context mode, key), in memory and on disk (:class:`galad.store.SqliteStore`).

    Args:
        path: SQLite file (created with its folder); None keeps the cache in memory only.
        timeout: seconds a writer waits for another process's lock before giving up on that write.
    """

    def __init__(self, path: str | Path | None = None, timeout: float = 30.0):
        self.path = Path(path) if path is not None else None
        self._mem: dict[tuple[str, str, str], float] = {}
        self._db = (SqliteStore(self.path, "scores", ("model", "mode"), "p REAL", "value cache", timeout)
                    if self.path is not None else None)

    def get_many(self, model: str, mode: str, keys: Sequence[str]) -> list[float | None]:
        """Cached scores for ``keys`` (None where absent), memory first, then the database."""
        mem = self._mem
        out: list[float | None] = [mem.get((model, mode, k)) for k in keys]
        missing = [k for k, v in zip(keys, out) if v is None]
        if missing and self._db is not None:
            found = self._db.get_many((model, mode), list(dict.fromkeys(missing)))
            if found:
                for k, p in found.items():
                    mem[(model, mode, k)] = p
                out = [v if v is not None else found.get(k) for k, v in zip(keys, out)]
        return out

    def put_many(self, model: str, mode: str, items: Iterable[tuple[str, float]]) -> None:
        """Store scores in memory and (one transaction) in the database."""
        rows = [(k, float(p)) for k, p in items]
        for k, p in rows:
            self._mem[(model, mode, k)] = p
        if self._db is not None:
            self._db.put_many((model, mode), rows)

    def __len__(self) -> int:
        return len(self._mem)

    def clear_memory(self) -> None:
        """Forget the in-memory copy (the database stays)."""
        self._mem.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
