"""The one interface every candidate source implements, and the words both families treat alike."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

DIRECTIONS = {"n": "north", "s": "south", "e": "east", "w": "west", "ne": "northeast", "nw": "northwest",
              "se": "southeast", "sw": "southwest", "u": "up", "d": "down"}
"""Standard direction abbreviations and the word each stands for (equal when comparing actions)."""
DIRECTION_WORDS = frozenset(DIRECTIONS) | frozenset(DIRECTIONS.values())
"""The compass directions, abbreviated and in full (``n``, ``north``, ... ``u``, ``up``, ``d``, ``down``)."""


@dataclass(frozen=True)
class GameState:
    """What a candidate source may see of one env's current state."""

    game: str
    """Registry name of the game."""
    obs: str
    """The current observation (cleaned: no markers, no status line)."""
    look: str = ""
    """What ``look`` prints here (read without spending a step)."""
    inventory: str = ""
    """What ``inventory`` prints here."""
    prev_action: str = ""
    """The action that led here (empty at the start of an episode)."""
    prev_obs: str = ""
    """The observation before ``prev_action``."""
    ram_hash: str = ""
    """Hash of the Z-machine RAM (Jericho's world hash is one constant on the annotated games)."""
    engine_state: Any = field(default=None, compare=False, repr=False)
    """``JiminyEnv.get_state()`` snapshot, for sources that try actions by lookahead."""

    def key(self) -> str:
        """Cache key: RAM hash plus the text a source sees."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.game, self.ram_hash, self.prev_action, self.prev_obs, self.obs, self.look, self.inventory):
            h.update(part.encode("utf-8", "replace"))
            h.update(b"\0")
        return h.hexdigest()


@runtime_checkable
class CandidateSource(Protocol):
    """Proposes candidate actions for a batch of states (one list per state, batched across envs)."""

    def propose(self, states: Sequence[GameState]) -> list[list[str]]: ...
