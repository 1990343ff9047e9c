"""Game-grounded value models cross-fitted over the games: one model per fold, each never read its fold's games.

A recipe with ``folds = K`` (``commonsense_models/minilm_games.toml``) is a family of ``K`` models. Its games
(``"all"``: the 25 Jiminy Cricket games and the demo) are dealt into ``K`` folds by :func:`galad.folds.assign_folds`;
model ``j`` (``<name>-fold<j>``) is trained on the annotations of every game outside fold ``j``. The spec
``galad:games`` names the family of ``minilm-games``: a run on a game gets the fold model that never read it, and
``galad:minilm-games-fold2`` names one fold model directly. Each fold model's card lists the games it read
(``recipe.data.games``) and the games it held out (``recipe.heldout_games``); the trainer and ``galad lm distill``
refuse a model whose card says it read the game they run on.
"""

from __future__ import annotations

import dataclasses
import re

from galad.errors import ConfigError
from galad.folds import assign_folds, fold_name
from galad.values.recipe import Recipe, load_recipe

GAMES_ALIAS = {"games": "minilm-games"}
"""Short names of recipe families: ``galad:games`` is ``galad:minilm-games``."""
_FOLD = re.compile(r"(.+)-fold(\d+)")


def recipe_games(recipe: Recipe) -> list[str]:
    """The games a recipe's mix names, ``"all"`` expanded to every game of the registry (the demo included)."""
    games = recipe.data.games
    if games == "all":
        from galad.env.registry import registry

        return list(registry())
    if isinstance(games, str):
        raise ConfigError(f"recipe {recipe.name}: data.games must be a list of games or \"all\", got {games!r}")
    return list(games)


def fold_parts(recipe: Recipe) -> list[list[str]]:
    """The games of each fold of a fold recipe."""
    return assign_folds(recipe_games(recipe), recipe.folds, recipe.seed)


def fold_recipe(recipe: Recipe, fold: int) -> Recipe:
    """Fold ``fold`` of a fold recipe: named ``<name>-fold<j>``, reading every game outside the fold."""
    parts = fold_parts(recipe)
    if not 0 <= fold < len(parts):
        raise ConfigError(f"{recipe.name} has folds 0..{len(parts) - 1}, not {fold}")
    held = parts[fold]
    read = [g for g in recipe_games(recipe) if g not in held]
    return dataclasses.replace(recipe, name=fold_name(recipe.name, fold), folds=0, heldout_games=held,
                               data=dataclasses.replace(recipe.data, games=read))


def fold_of_game(recipe: Recipe, game: str) -> int:
    """The fold holding ``game`` out (fold 0 for a game the family never read)."""
    for j, part in enumerate(fold_parts(recipe)):
        if game in part:
            return j
    return 0


def recipe_for(spec: str | None, game: str | None = None) -> Recipe:
    """Our recipe a model spec names (None, ``galad:<recipe>``, ``galad:<recipe>-fold<j>``, ``galad:games``, a
    recipe ``.toml``); for a fold family, the fold that never read ``game``.

    Raises:
        ConfigError: a fold family with no game to pick its fold by, or a fold it does not have.
    """
    name = None if spec is None else spec.removeprefix("galad:")
    if name is None or name.endswith(".toml"):
        recipe = load_recipe(name)
    else:
        name = GAMES_ALIAS.get(name, name)
        m = _FOLD.fullmatch(name)
        if m:
            family = load_recipe(m.group(1))
            if family.folds < 2:
                raise ConfigError(f"recipe {family.name} has no folds (galad:{name})")
            return fold_recipe(family, int(m.group(2)))
        recipe = load_recipe(name)
    if recipe.folds >= 2:
        if game is None:
            raise ConfigError(f"galad:{recipe.name} is {recipe.folds} fold models, picked by the game they run on; "
                              f"here there is none: name one fold ({spec} -> galad:{fold_name(recipe.name, 0)})")
        return fold_recipe(recipe, fold_of_game(recipe, game))
    return recipe
