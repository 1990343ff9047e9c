"""Where detections are kept: by world key, in memory (LRU) and, optionally, in a SQLite file.

A state's world key (:meth:`DetectionCache.world_key`) hashes its object table and property region, the score
and the globals a turn doing nothing leaves alone, less the parser's scratch globals, and what detection reads
from the state's texts, so that revisited worlds hit during RL although move counters, timers and the last
command's parse differ. In the SQLite file (shared by processes and runs, or one per run) a detection is
stored under its scope (game, story file digest, the settings that change what detection finds,
``_DETECTOR_VERSION``) and world key; the first one stored for a key is the one every reader gets.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from pathlib import Path

from galad import paths
from galad.candidates.base import GameState
from galad.candidates.valid.probe import Prober, object_region
from galad.candidates.valid.replies import Detection

_OUTCOME_WORLDS = 256  # worlds whose candidates' outcomes are kept in memory (DetectionCache.outcomes)
_DETECTOR_VERSION = 7  # bump when detection or its world keys change: stored detections of older ones are not used


class DetectionCache:
    """Detections by world key for a :class:`~galad.candidates.valid.source.ValidActionSource`.

    Args:
        config: the source's :class:`~galad.candidates.valid.source.ValidConfig` (``cache_size``,
            ``disk_cache`` and the settings a stored detection depends on).
        story_file: the story file of a game (its digest is part of a stored detection's scope).
    """

    def __init__(self, config, story_file: Callable[[str], str]):
        self.config = config
        self._story_file = story_file
        self._memory: OrderedDict[str, Detection] = OrderedDict()
        self._outcomes: OrderedDict[tuple, dict] = OrderedDict()
        self.volatile: dict[str, frozenset[int]] = {}
        """Game -> the globals left out of world keys: those a do-nothing turn changes and the parser's
        scratch, learned once from the first state keyed."""
        self.db = None
        """The SQLite store (``disk_cache``), or None."""
        if config.disk_cache:
            from galad.store import SqliteStore

            where = config.disk_cache
            where = paths.galad_home() / "valid_cache.sqlite" if where is True else Path(where)
            self.db = SqliteStore(where, "detections", ("scope",), what="valid-action cache")

    # --- in memory ----------------------------------------------------------------------------------------
    def recent(self, key: str) -> Detection | None:
        """The detection kept in memory for ``key`` (now the most recently used), or None."""
        det = self._memory.get(key)
        if det is not None:
            self._memory.move_to_end(key)
        return det

    def keep(self, key: str, det: Detection) -> None:
        """Keep ``det`` in memory under ``key``; the least recently used go beyond ``cache_size``."""
        self._memory[key] = det
        while len(self._memory) > self.config.cache_size:
            self._memory.popitem(last=False)

    def outcomes(self, world: str, noise) -> dict:
        """Action -> the :class:`~galad.candidates.valid.probe.Outcome` of stepping it in ``world`` (a world key
        without texts) with ``noise``, as first stepped: the caller adds to it. The ``_OUTCOME_WORLDS`` worlds
        used last are kept."""
        key = (world, tuple(noise))
        got = self._outcomes.get(key)
        if got is None:
            got = self._outcomes[key] = {}
            while len(self._outcomes) > _OUTCOME_WORLDS:
                self._outcomes.popitem(last=False)
        else:
            self._outcomes.move_to_end(key)
        return got

    # --- on disk ------------------------------------------------------------------------------------------
    def scope(self, game: str) -> str:
        """What a stored detection depends on besides the world: the game, its story file and the settings."""
        c = self.config
        settings = (_DETECTOR_VERSION, c.max_objects, c.max_pair_held, c.max_pair_other, c.text_only,
                    c.prefer_jericho, c.world_key) + ((c.budget,) if c.budget else ())
        digest = hashlib.blake2b(repr(settings).encode(), digest_size=8).hexdigest()
        return f"{game}:{_file_digest(self._story_file(game))}:{digest}"

    def stored(self, game: str, key: str) -> Detection | None:
        """The detection stored for ``key``, or None (also without a store)."""
        if self.db is None:
            return None
        found = self.db.get_many((self.scope(game),), [key])
        return _from_json(found[key]) if key in found else None

    def store(self, game: str, key: str, det: Detection) -> Detection:
        """Store ``det`` unless a detection is stored for ``key`` already; return the stored one (the first
        writer wins: what every process will see)."""
        self.db.put_many((self.scope(game),), [(key, _to_json(det))], replace=False)
        return self.stored(game, key) or det

    # --- world keys ---------------------------------------------------------------------------------------
    def world_key(self, state: GameState, prober: Prober, scratch: Callable[[], frozenset[int]]) -> str:
        """The key of a state's world, without its texts (what a candidate's outcome depends on; a state with an
        engine snapshot). The first time for a game, its volatile globals are learned from this state: those
        ``look`` and ``inventory`` change (``prober``) and the parser's scratch globals (``scratch()``)."""
        engine_state, episode = split_state(state.engine_state)
        vol = self._volatile_globals(state.game, prober, engine_state, scratch)
        ram = engine_state[0]
        ram = ram.tobytes() if hasattr(ram, "tobytes") else bytes(ram)
        a, b = object_region(self._story_file(state.game))
        g = (ram[0x0C] << 8) | ram[0x0D]
        h = hashlib.blake2b(digest_size=16)
        h.update(state.game.encode())
        h.update(ram[a:b])
        h.update(bytes(x for i in range(240) if i not in vol for x in ram[g + 2 * i : g + 2 * i + 2]))
        # where the engine waits for input (the prompt, or a question such as "What do you want to take?")
        h.update(repr(tuple(int(x) for x in engine_state[2:5])).encode())
        h.update(b"done" if episode is not None and getattr(episode, "done", False) else b"")
        return h.hexdigest()

    @staticmethod
    def with_texts(world: str, text: bytes) -> str:
        """The detection key of a state: its world key (:meth:`world_key`) and ``text``, what detection reads
        from the state's texts (:func:`~galad.candidates.valid.fill.text_inputs`)."""
        return hashlib.blake2b(world.encode() + b"\0" + text, digest_size=16).hexdigest()

    def _volatile_globals(self, game: str, prober: Prober, engine_state: tuple,
                          scratch: Callable[[], frozenset[int]]) -> frozenset[int]:
        vol = self.volatile.get(game)
        if vol is None:
            vol = prober.volatile_globals(engine_state, ["look", "inventory"]) | scratch()
            if self.db is not None:  # one set per game for every run, or stored keys would never match
                scope = self.scope(game)
                self.db.put_many((scope,), [("volatile", json.dumps(sorted(vol)))], replace=False)
                stored = self.db.get_many((scope,), ["volatile"]).get("volatile")
                vol = frozenset(json.loads(stored)) if stored is not None else vol
            self.volatile[game] = vol
        return vol

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def split_state(state) -> tuple[tuple, object | None]:
    """``JiminyEnv.get_state()`` -> (engine snapshot, episode state); a bare engine snapshot passes."""
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], tuple):
        return state[0], state[1]
    return state, None


def state_digest(state) -> str:
    """A short digest of a whole engine snapshot."""
    eng, _ = split_state(state)
    h = hashlib.blake2b(digest_size=8)
    for part in eng:
        h.update(bytes(part) if hasattr(part, "tobytes") else repr(part).encode())
    return h.hexdigest()


def _to_json(det: Detection) -> str:
    return json.dumps({"actions": det.actions, "groups": det.groups, "signatures": det.signatures,
                       "objects": det.objects, "n_candidates": det.n_candidates, "seconds": det.seconds})


def _from_json(text: str) -> Detection:
    return Detection(**json.loads(text))


@cache
def _file_digest(path: str) -> str:
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=8).hexdigest()
