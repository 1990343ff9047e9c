"""Cross-fitting over games: deal the games into folds, and name each fold's model.

A model that learnt from a game's own data (a generator its walkthrough, a value model its annotations) must not
be used on that game. Both the action generators (:mod:`galad.candidates.lm.folds`) and the game-grounded value
models (:mod:`galad.values.folds`) are trained once per fold on every game outside it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from galad.errors import ConfigError

DEFAULT_FOLDS = 5
"""Folds of ``galad lm train --folds`` and of the game-grounded value model (with all 25 games and the demo: 6, 5,
5, 5 and 5 games held out)."""


def fold_name(name: str, fold: int) -> str:
    """Cache folder name of fold ``fold`` of the model family ``name`` (``galad-lm-fold0``, ``minilm-games-fold2``)."""
    return f"{name}-fold{fold}"


def assign_folds(games: Sequence[str], folds: int, seed: int = 0) -> list[list[str]]:
    """``games`` dealt into ``folds`` folds: sorted, shuffled by ``seed``, dealt round-robin; each fold sorted.

    Raises:
        ConfigError: fewer than two folds, or more folds than games.
    """
    names = sorted(set(games))
    if folds < 2:
        raise ConfigError(f"folds must be >= 2, got {folds}")
    if folds > len(names):
        raise ConfigError(f"{folds} folds need at least {folds} games, {len(names)} available")
    random.Random(seed).shuffle(names)
    return [sorted(names[j::folds]) for j in range(folds)]
