"""Valid-action detection: the actions a game understands in a state, found by stepping filled templates.

Modules: :mod:`~galad.candidates.valid.source` (:class:`ValidActionSource`, the detection pipeline) and its
parts: :mod:`~galad.candidates.valid.fill` (objects, filled templates, ranking),
:mod:`~galad.candidates.valid.pool` (the engines stepping a batch), :mod:`~galad.candidates.valid.replies`
(judging replies, one action per outcome) and :mod:`~galad.candidates.valid.cache` (world keys, the in-memory
and SQLite caches); :mod:`~galad.candidates.valid.grammar` (templates and vocabulary read from the story file,
through :mod:`~galad.candidates.valid.zmachine`), :mod:`~galad.candidates.valid.probe` (the restore/step
loop) and :mod:`~galad.candidates.valid.bench` (``galad candidates``: show a state's actions, benchmark against
Jericho).
"""

from galad.candidates.valid.probe import PARSER_FAILURES, Outcome, Status
from galad.candidates.valid.source import (
    CandidateError,
    Detection,
    ValidActionSource,
    ValidConfig,
    default_workers,
    game_state_from_env,
)

__all__ = [
    "PARSER_FAILURES",
    "CandidateError",
    "Detection",
    "Outcome",
    "Status",
    "ValidActionSource",
    "ValidConfig",
    "default_workers",
    "game_state_from_env",
]
