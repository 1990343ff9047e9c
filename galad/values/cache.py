"""Persistent P(harm) cache: an in-memory dict in front of a SQLite database (WAL mode).

Several env worker processes may read and write the same database at once: SQLite's WAL journal lets
readers and one writer proceed together, and writers wait on each other (``timeout``). A database that
SQLite cannot read is moved aside and rebuilt empty: a broken cache costs recomputation, never a crash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from galad import paths

log = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS scores (model TEXT NOT NULL, mode TEXT NOT NULL, key TEXT NOT NULL, " \
          "p REAL NOT NULL, PRIMARY KEY (model, mode, key)) WITHOUT ROWID"
_CHUNK = 500  # keys per SELECT ... IN (...): below SQLite's host-parameter limit


def default_cache_path() -> Path:
    """``<GALAD_HOME>/value_cache.sqlite``."""
    return paths.galad_home() / "value_cache.sqlite"


def cache_key(text: str, context: str | None = None) -> str:
    """Key of one scored input: the text itself, or a hash of context and text in contextual mode."""
    if context is None:
        return text
    return hashlib.blake2b(f"{context}\0{text}".encode("utf-8", "replace"), digest_size=16).hexdigest()


class ScoreCache:
    """Scores keyed by (model, context mode, key), in memory and on disk.

    Args:
        path: SQLite file (created with its folder); None keeps the cache in memory only.
        timeout: seconds a writer waits for another process's lock before giving up on that write.
    """

    def __init__(self, path: str | Path | None = None, timeout: float = 30.0):
        self.path = Path(path) if path is not None else None
        self.timeout = timeout
        self._mem: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if self.path is not None:
            self._open()

    # --- database ----------------------------------------------------------------------------------
    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:
            self._rebuild(exc)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            conn.execute("SELECT 1 FROM scores LIMIT 1").fetchall()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _rebuild(self, exc: Exception) -> None:
        """Move an unreadable database aside (per process, so racing rebuilds never collide) and start anew."""
        assert self.path is not None
        log.warning("value cache %s is unreadable (%s); rebuilding it empty", self.path, exc)
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            try:
                os.replace(p, Path(f"{p}.corrupt-{os.getpid()}"))
            except FileNotFoundError:
                pass
            except OSError:
                pass
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}.corrupt-{os.getpid()}").unlink(missing_ok=True)
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc2:  # still unusable (e.g. another process wrote junk again)
            log.warning("value cache %s still unusable (%s); caching in memory only", self.path, exc2)
            self._conn = None

    # --- API ---------------------------------------------------------------------------------------
    def get_many(self, model: str, mode: str, keys: Sequence[str]) -> list[float | None]:
        """Cached scores for ``keys`` (None where absent), memory first, then the database."""
        mem = self._mem
        out: list[float | None] = [mem.get((model, mode, k)) for k in keys]
        missing = [k for k, v in zip(keys, out) if v is None]
        if missing and self._conn is not None:
            found = self._select(model, mode, list(dict.fromkeys(missing)))
            if found:
                for k, p in found.items():
                    mem[(model, mode, k)] = p
                out = [v if v is not None else found.get(k) for k, v in zip(keys, out)]
        return out

    def _select(self, model: str, mode: str, keys: list[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        with self._lock:
            try:
                for i in range(0, len(keys), _CHUNK):
                    chunk = keys[i:i + _CHUNK]
                    q = f"SELECT key, p FROM scores WHERE model=? AND mode=? AND key IN ({','.join('?' * len(chunk))})"
                    found.update(self._conn.execute(q, (model, mode, *chunk)).fetchall())  # type: ignore[union-attr]
            except sqlite3.OperationalError as exc:  # locked too long: a miss, not an error
                log.debug("value cache read skipped: %s", exc)
            except sqlite3.DatabaseError as exc:
                self._rebuild(exc)
        return found

    def put_many(self, model: str, mode: str, items: Iterable[tuple[str, float]]) -> None:
        """Store scores in memory and (one transaction) in the database."""
        rows = [(model, mode, k, float(p)) for k, p in items]
        for m, md, k, p in rows:
            self._mem[(m, md, k)] = p
        if not rows or self._conn is None:
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # busy past the timeout: keep it in memory only
                log.warning("value cache write skipped: %s", exc)
                self._rollback()
            except sqlite3.DatabaseError as exc:
                self._rollback()
                self._rebuild(exc)

    def _rollback(self) -> None:
        try:
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def __len__(self) -> int:
        return len(self._mem)

    def clear_memory(self) -> None:
        """Forget the in-memory copy (the database stays)."""
        self._mem.clear()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
