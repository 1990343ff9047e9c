"""``galad lm distill``: action distillation — put the value model's judgement into the generator.

Starting from the fine-tuned generator:

1. score every training pair's walkthrough action with the value model and drop (or down-weight) the pairs
   it flags (P(harm) > threshold);
2. mine the generator's own candidates on training states, score them, and keep the flagged ones as negative
   examples, pushed below a log-probability floor (an unlikelihood-style hinge), so beam search stops ranking
   them among the top k;
3. fine-tune on approved positives + negatives, and report, on held-out games, the harmful-candidate rate (by
   the value model and by ground-truth lookahead) and walkthrough recall, before and after.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from galad.candidates.lm.data import RECALL_KS, eval_states, evaluate
from galad.candidates.lm.files import DISTILLED_NAME, TRAINED_NAME, LMError, atomic_save, lm_dir, load_lm, read_card
from galad.candidates.lm.folds import fold_name, games_read, generator_folders
from galad.candidates.lm.generator import LMConfig, LMGenerator
from galad.candidates.lm.train import (Example, FinetuneConfig, GameSplitConfig, checked_split, pair_example,
                                       sample_pairs)
from galad.config import policy_tau

log = logging.getLogger(__name__)

CONTROL_NAME = "galad-lm-distill-control"
"""Cache folder of ``galad lm distill --control`` (never loaded by the trainer)."""


@dataclass
class DistillConfig(GameSplitConfig):
    """``galad lm distill``."""

    generator: str = "trained"
    """Generator to distil: ``trained`` (the ``galad lm train`` output), a folder or hub id."""
    value_model: str | None = None
    """Value model spec for ``galad.values.loading.load_scorer`` (None: the project default)."""
    context_mode: Literal["action", "context"] = "action"
    """Score actions alone (``"I {action}."``) or with the observation."""
    threshold: float | None = None
    """Flag P(harm) above this (default: the policies' tau, ``POLICY_HARM_THRESHOLD``: the generator learns what
    the GALAD filter would remove)."""
    mode: Literal["drop", "downweight"] = "drop"
    """What happens to flagged walkthrough pairs."""
    down_weight: float = 0.1
    """Loss weight of flagged pairs in ``downweight`` mode."""
    mine_states: int = 60
    """Training states whose generated candidates are scored for negatives (0: none)."""
    control: bool = False
    """The control experiment: the same fine-tuning with the value model's judgement left out (no pair
    dropped, no negatives mined), so a before/after difference can be told apart from the extra training."""
    out: str | None = None
    """Output folder (default ``<GALAD_HOME>/lm/galad-lm-distilled``; a control goes to
    ``<GALAD_HOME>/lm/galad-lm-distill-control``)."""
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(max_examples=300))
    """Optimisation settings (positives sampled as in ``galad lm train``)."""


def _flags(scorer, actions: Sequence[str], contexts: Sequence[str], threshold: float) -> np.ndarray:
    if not actions:
        return np.zeros(0, dtype=bool)
    return np.asarray(scorer.score(list(actions), list(contexts))) > threshold


def distill(cfg: DistillConfig | None = None, scorer=None, tokenizer=None, model=None, progress: bool = True,
            extra: dict | None = None) -> dict:
    """Distil the value model into the generator; write it to the cache and return its card.

    Args:
        cfg: settings.
        scorer: a HarmScorer (default: ``load_scorer(cfg.value_model, cfg.context_mode)``).
        tokenizer: an already loaded tokenizer (with ``model``).
        model: an already loaded generator LM to distil (instead of ``cfg.generator``, which still names it on the
            card and says which games it read).
        progress: tqdm bars.
        extra: more card entries (a fold generator's ``fold``).

    Returns:
        The card: settings, games (``read_games``: the distillation's training games and every game the starting
        generator read), counts of dropped pairs and mined negatives, ``before``/``after`` metrics.

    Raises:
        ConfigError: the starting generator read a game evaluated on, or records no games while there are some
            to evaluate on.
    """
    cfg = cfg or DistillConfig()
    ft = cfg.finetune
    # first: a missing or leaky generator should fail before the value model loads (or trains)
    generator_read = games_read(cfg.generator)
    train_games, hold, eval_games = checked_split(cfg, cfg.generator)
    if model is None:
        tokenizer, model = load_lm(cfg.generator, ft.num_threads)
    if scorer is None:
        from galad.values.loading import load_scorer

        scorer = load_scorer(cfg.value_model, cfg.context_mode)
    threshold = policy_tau(cfg.threshold)
    gen_cfg = LMConfig.for_k(cfg.k, max_context_tokens=ft.max_context_tokens, num_threads=ft.num_threads)
    seen = sorted(set(eval_games) & set(getattr(scorer, "trained_games", ())))
    if seen:
        raise LMError(f"value model {scorer.name} was trained on the annotations of {', '.join(seen)}: evaluate on "
                      f"other games (--holdout) or use a value model that holds them out")
    ev = eval_states(eval_games, cfg.eval_states_per_game) if eval_games else None
    out = Path(cfg.out) if cfg.out else lm_dir() / (CONTROL_NAME if cfg.control else DISTILLED_NAME)
    card: dict = {"name": out.name, "generator": cfg.generator, "value_model": getattr(scorer, "name", "?"),
                  "threshold": threshold, "train_games": train_games,
                  "read_games": None if generator_read is None else sorted({*generator_read, *train_games}),
                  "holdout": hold, "eval_games": eval_games, **(extra or {}), "config": asdict(cfg)}

    def measure() -> dict:
        return evaluate(LMGenerator(config=gen_cfg, tokenizer=tokenizer, lm=model), ev, ks=_recall_ks(cfg.k),
                        scorer=scorer, threshold=threshold, progress=progress)

    if ev is not None and cfg.evaluate_before:
        card["before"] = measure()
        log.info("before: %s", card["before"])
    # 1. walkthrough pairs: drop or down-weight what the value model flags
    examples, card["pairs"] = _filter_pairs(cfg, train_games, scorer, threshold)
    # 2. negatives: the generator's own flagged candidates on training states
    negatives: list[Example] = []
    if cfg.mine_states > 0 and not cfg.control:
        gen = LMGenerator(config=gen_cfg, tokenizer=tokenizer, lm=model)
        negatives, card["negatives"] = _mine_negatives(cfg, train_games, gen, scorer, threshold, progress)
    # 3. fine-tune on both, and measure again
    card["train"] = finetune_mixed(model, tokenizer, examples, negatives, ft, progress)
    if ev is not None:
        card["after"] = measure()
    if "before" in card and "after" in card:
        card["summary"] = _summary(card["before"], card["after"], cfg.k)
    atomic_save(model, tokenizer, out, card)
    card["out"] = str(out)
    return card


def distill_folds(cfg: DistillConfig | None = None, scorer=None, progress: bool = True) -> list[dict]:
    """Distil every cross-fitted generator (``galad lm train --folds``): fold ``j`` on the games its generator
    trained on, evaluated on those it held out, into ``<GALAD_HOME>/lm/galad-lm-distilled-fold<j>`` (a control
    into ``galad-lm-distill-control-fold<j>``), so the GALAD agent gets a distilled generator on every game.

    Args:
        cfg: settings; ``generator``, ``games``, ``holdout`` and ``out`` are each fold's own.
        scorer: a HarmScorer (default: loaded once from ``cfg.value_model``).
        progress: tqdm bars.

    Returns:
        Each fold's card.
    """
    cfg = cfg or DistillConfig()
    folds = [p for p in generator_folders(TRAINED_NAME) if p.name != TRAINED_NAME]
    if not folds:
        raise LMError(f"no cross-fitted generator in {lm_dir()}: run `galad lm train --folds` first")
    if scorer is None:
        from galad.values.loading import load_scorer

        scorer = load_scorer(cfg.value_model, cfg.context_mode)
    cards = []
    for folder in folds:
        card = read_card(folder) or {}
        if card.get("read_games") is None or "fold" not in card:
            raise LMError(f"{folder} has no fold record on its card: train the folds again (galad lm train --folds)")
        j = card["fold"]["index"]
        name = CONTROL_NAME if cfg.control else DISTILLED_NAME
        log.warning("distilling %s (holding out %s)", folder.name, " ".join(card["holdout"]))
        fold_cfg = replace(cfg, generator=str(folder), games=card["train_games"], holdout=card["holdout"],
                           out=str(lm_dir() / fold_name(name, j)))
        cards.append(distill(fold_cfg, scorer, progress=progress, extra={"fold": card["fold"]}))
    return cards


def _recall_ks(k: int) -> tuple[int, ...]:
    """The recall cut-offs reported: the usual ones and the configured ``k``."""
    return tuple(sorted({*RECALL_KS, k}))


def _filter_pairs(cfg: DistillConfig, train_games: list[str], scorer, threshold: float) -> tuple[list[Example], dict]:
    """Training examples from walkthrough pairs, those the value model flags dropped or down-weighted (none
    flagged in the control); and the card's ``pairs`` entry."""
    ft = cfg.finetune
    pairs = sample_pairs(train_games, ft.max_examples, ft.seed)
    if cfg.control:
        flags = np.zeros(len(pairs), dtype=bool)
    else:
        flags = _flags(scorer, [p.action for p in pairs], [p.obs for p in pairs], threshold)
    examples: list[Example] = []
    for p, bad in zip(pairs, flags):
        if not bad:
            examples.append(pair_example(p))
        elif cfg.mode == "downweight":
            examples.append(pair_example(p, weight=cfg.down_weight))
    info = {"total": len(pairs), "flagged": int(flags.sum()),
            "flagged_examples": [p.action for p, b in zip(pairs, flags) if b][:20]}
    return examples, info


def _mine_negatives(cfg: DistillConfig, train_games: list[str], gen: LMGenerator, scorer, threshold: float,
                    progress: bool) -> tuple[list[Example], dict]:
    """Negative examples: the generator's candidates on ``cfg.mine_states`` training states that the value
    model flags; and the card's ``negatives`` entry."""
    from tqdm.auto import tqdm

    mine = sample_pairs(train_games, cfg.mine_states, cfg.finetune.seed + 1)
    cands: list[list[str]] = []
    for i in tqdm(range(0, len(mine), 8), desc="mining candidates", unit="batch", disable=not progress):
        cands.extend(gen.propose([p.state() for p in mine[i:i + 8]]))
    acts = [a for cs in cands for a in cs]
    ctxs = [p.obs for p, cs in zip(mine, cands) for _ in cs]
    bad = _flags(scorer, acts, ctxs, threshold)
    negatives: list[Example] = []
    j = 0
    for p, cs in zip(mine, cands):
        for a in cs:
            if bad[j]:
                ex = pair_example(p, negative=True)
                ex.action = a
                negatives.append(ex)
            j += 1
    info = {"candidates": len(acts), "flagged": len(negatives), "examples": sorted({e.action for e in negatives})[:30]}
    return negatives, info


def _summary(before: dict, after: dict, k: int) -> dict:
    """After over before: the harmful-candidate rates (ground truth, value model) and the recall@k lost."""
    b, a, recall = before, after, f"recall@{k}"
    return {
        "harm_gt_ratio": a["harm_gt_others"] / b["harm_gt_others"] if b["harm_gt_others"] else None,
        "harm_vm_ratio": a["harm_vm"] / b["harm_vm"] if b.get("harm_vm") else None,
        f"{recall}_lost_rel": 1 - a[recall] / b[recall] if b[recall] else None,
    }


def finetune_mixed(model, tokenizer, positives: list[Example], negatives: list[Example], ft: FinetuneConfig,
                   progress: bool = True) -> dict:
    """One fine-tuning run over positives and negatives together (negatives repeated to about 1/3 of the mix)."""
    from galad.candidates.lm.train import finetune

    mix = list(positives)
    if negatives:
        reps = max(1, round(len(positives) / (2 * len(negatives))))
        mix += negatives * reps
    return finetune(model, tokenizer, mix, ft, progress)
