"""A key-value table in a SQLite database (WAL mode), shared by processes: the on-disk half of GALAD's caches.

Several processes (env workers, sweep runs) may read and write one database at once: SQLite's WAL journal
lets readers and one writer proceed together, and writers wait on each other (``timeout``); a write still
blocked after that is dropped with a warning (a cache may forget, never block a run). A database SQLite
cannot read is moved aside and rebuilt empty: a broken cache costs recomputation, never a crash.

Why not a key-value library (``diskcache``, ``sqlitedict``): the caches need batched lookups of hundreds of keys
in one query, a first-writer-wins insert (a resumed run must read the detections and scores the interrupted run
stored, whatever another process wrote since), scope columns that name the model or detector version, and one
file per cache that lives in the run folder. ``diskcache`` keys one entry at a time and keeps a folder per cache;
``sqlitedict`` pickles values and serialises writers through one thread. Those would change what a resumed run
sees; the standard library's ``sqlite3`` does all four in about a hundred lines.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_CHUNK = 500  # keys per SELECT ... IN (...): below SQLite's host-parameter limit


class SqliteStore:
    """Rows ``(*scope, key) -> value`` of one table; ``scope`` columns name what computed the value.

    Args:
        path: the database file (created with its folder).
        table: table name.
        scope: names of the TEXT columns before ``key`` in the primary key (e.g. model, mode).
        value: name and SQL type of the value column.
        what: how warnings name this cache ("value cache").
        timeout: seconds a writer waits for another process's lock before giving up on that write.
    """

    def __init__(self, path: str | Path, table: str, scope: Sequence[str], value: str = "value BLOB",
                 what: str = "cache", timeout: float = 30.0):
        self.path = Path(path)
        self.table, self.scope, self.what, self.timeout = table, tuple(scope), what, timeout
        cols = ", ".join(f"{c} TEXT NOT NULL" for c in (*self.scope, "key"))
        self._value = value.split()[0]
        self._schema = (f"CREATE TABLE IF NOT EXISTS {table} ({cols}, {value} NOT NULL, "
                        f"PRIMARY KEY ({', '.join((*self.scope, 'key'))})) WITHOUT ROWID")
        self._where = " AND ".join(f"{c}=?" for c in self.scope)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
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
            conn.execute(self._schema)
            conn.execute(f"SELECT 1 FROM {self.table} LIMIT 1").fetchall()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _rebuild(self, exc: Exception) -> None:
        """Move an unreadable database aside (per process, so racing rebuilds never collide) and start anew."""
        log.warning("%s %s is unreadable (%s); rebuilding it empty", self.what, self.path, exc)
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
            except OSError:
                pass
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}.corrupt-{os.getpid()}").unlink(missing_ok=True)
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc2:  # still unusable (e.g. another process wrote junk again)
            log.warning("%s %s still unusable (%s); caching in memory only", self.what, self.path, exc2)
            self._conn = None

    def get_many(self, scope: Sequence[str], keys: Sequence[str]) -> dict[str, Any]:
        """The stored values of ``keys`` under ``scope`` (absent keys are left out)."""
        found: dict[str, Any] = {}
        if self._conn is None or not keys:
            return found
        with self._lock:
            try:
                for i in range(0, len(keys), _CHUNK):
                    chunk = list(keys[i:i + _CHUNK])
                    q = (f"SELECT key, {self._value} FROM {self.table} WHERE {self._where} "
                         f"AND key IN ({','.join('?' * len(chunk))})")
                    found.update(self._conn.execute(q, (*scope, *chunk)).fetchall())
            except sqlite3.OperationalError as exc:  # locked too long: a miss, not an error
                log.debug("%s read skipped: %s", self.what, exc)
            except sqlite3.DatabaseError as exc:
                self._rebuild(exc)
        return found

    def put_many(self, scope: Sequence[str], items: Iterable[tuple[str, Any]], replace: bool = True) -> None:
        """Store ``(key, value)`` pairs under ``scope`` in one transaction; with ``replace`` off a stored
        value is kept (the first writer wins)."""
        rows = [(*scope, k, v) for k, v in items]
        if not rows or self._conn is None:
            return
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(f"{verb} INTO {self.table} VALUES ({','.join('?' * len(rows[0]))})", rows)
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # busy past the timeout: not stored
                log.warning("%s write skipped: %s", self.what, exc)
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

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
