"""The persistent score cache: several processes at once, and a corrupt file rebuilt instead of a crash."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

from galad.values.cache import ScoreCache, cache_key


def _writer(path: str, worker: int, n: int) -> None:
    cache = ScoreCache(path)
    for start in range(0, n, 10):
        keys = [f"shared {i}" for i in range(start, start + 10)] + [f"w{worker} {i}" for i in range(start, start + 10)]
        cache.put_many("m", "action", [(k, (hash(k) % 1000) / 1000) for k in keys])
        got = cache.get_many("m", "action", keys)
        assert all(v is not None for v in got)
    cache.close()


def test_three_processes_read_and_write_at_once(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 200)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 200 + 3 * 200
    fresh = ScoreCache(path)
    assert fresh.get_many("m", "action", ["w2 199", "shared 0", "absent"])[2] is None
    assert fresh.get_many("m", "context", ["w2 199"]) == [None]  # modes are kept apart


def test_corrupt_cache_is_rebuilt(tmp_path, caplog):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 200)
    cache = ScoreCache(path)
    cache.put_many("m", "action", [("I wait.", 0.25)])
    assert ScoreCache(path).get_many("m", "action", ["I wait."]) == [0.25]
    assert "rebuilding" in caplog.text
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_corrupted_while_open_never_crashes(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = ScoreCache(path)
    cache.put_many("m", "action", [("a", 0.5)])
    cache.close()
    path.write_bytes(b"\0garbage" * 4096)
    for p in tmp_path.glob("cache.sqlite-*"):
        p.unlink()
    cache = ScoreCache(path)
    assert cache.get_many("m", "action", ["a", "b"]) == [None, None]
    cache.put_many("m", "action", [("b", 0.75)])
    assert cache.get_many("m", "action", ["b"]) == [0.75]


def test_memory_only_and_context_keys():
    cache = ScoreCache(None)
    cache.put_many("m", "context", [(cache_key("I go.", "A room."), 0.1)])
    assert cache.get_many("m", "context", [cache_key("I go.", "A room."), cache_key("I go.", "Another.")]) == [0.1, None]
