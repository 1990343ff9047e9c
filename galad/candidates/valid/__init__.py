"""Valid-action detection: the actions a game understands in a state, found by stepping filled templates.

Modules: :mod:`~galad.candidates.valid.source` (:class:`ValidActionSource`, the detection pipeline),
:mod:`~galad.candidates.valid.grammar` (templates and vocabulary read from the story file),
:mod:`~galad.candidates.valid.probe` (the restore/step loop) and :mod:`~galad.candidates.valid.bench`
(``galad candidates``: show a state's actions, benchmark against Jericho).
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
