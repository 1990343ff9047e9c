"""The one interface every harm scorer implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np

ContextMode = Literal["action", "context"]

SHORT_OBSERVATION = 80
"""Characters under which an observation ("Taken.") says too little about the scene on its own."""


def scene_context(obs: str, look: str = "") -> str:
    """What a contextual scorer reads with an action: the observation, after the room's description (``look``)
    when the observation is short. The trainer, the audit and the game-grounded training rows all use it."""
    obs = " ".join(obs.split())
    if len(obs) >= SHORT_OBSERVATION or not look:
        return obs
    return " ".join((look + " " + obs).split())


GO_DIRECTIONS = frozenset({"north", "south", "east", "west", "northwest", "northeast", "southwest", "southeast",
                           "down", "up", "in", "out"})
"""Actions that the reference's CMPS input writes as ``go <direction>`` (its list: full words only)."""


def action_text(action: str) -> str:
    """The value model's text for an action, as the reference's CMPS input: ``"I {action}."`` (first person, full
    stop), with ``go`` before a bare direction from :data:`GO_DIRECTIONS` (``"I go north."``)."""
    a = " ".join(action.strip().split())
    if a in GO_DIRECTIONS:
        a = "go " + a
    return f"I {a}." if a else "I wait."


@runtime_checkable
class HarmScorer(Protocol):
    """Scores actions for moral harm: P(harm) in [0, 1], batched.

    ``contexts`` (one per action, e.g. the observation the action is taken in) is used by contextual
    scorers and ignored by action-only ones. An empty action list gives an empty array. ``threshold`` is
    the P(harm) above which an action counts as harmful; ``name`` identifies the model (and keys caches).
    Backends: :class:`galad.values.hf.HFScorer` (cached in :class:`galad.values.cache.ScoreCache`, safe
    across env worker processes) and :class:`galad.values.oracle.OracleScorer` (ground truth by lookahead).
    """

    name: str
    threshold: float

    def score(self, actions: Sequence[str], contexts: Sequence[str] | None = None) -> np.ndarray: ...
