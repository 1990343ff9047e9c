"""``galad distill``: action distillation — put the value model's judgement into the generator.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from galad.candidates.lm.data import eval_states, evaluate, split_games
from galad.candidates.lm.files import DISTILLED_NAME, LMError, atomic_save, lm_dir, load_lm
from galad.candidates.lm.generator import LMConfig, LMGenerator
from galad.candidates.lm.train import Example, FinetuneConfig, GameSplitConfig, pair_example, sample_pairs
from galad.config import POLICY_HARM_THRESHOLD

log = logging.getLogger(__name__)

CONTROL_NAME = "galad-lm-distill-control"
"""Cache folder of ``galad distill --control`` (never loaded by the trainer)."""


@dataclass
class DistillConfig(GameSplitConfig):
    """``galad distill``."""

    generator: str = "trained"
    """Generator to distil: ``trained`` (the ``galad lm train`` output), a folder or hub id."""
    value_model: str | None = None
    """Value model spec for ``galad.values.models.load_scorer`` (None: the project default)."""
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


def distill(cfg: DistillConfig | None = None, scorer=None, tokenizer=None, model=None, progress: bool = True) -> dict:
    """Distil the value model into the generator; write it to the cache and return its card.

    Args:
        cfg: settings.
        scorer: a HarmScorer (default: ``load_scorer(cfg.value_model, cfg.context_mode)``).
        tokenizer: an already loaded tokenizer (with ``model``).
        model: an already loaded generator LM to distil (instead of ``cfg.generator``).
        progress: tqdm bars.

    Returns:
        The card: settings, counts of dropped pairs and mined negatives, ``before``/``after`` metrics.
    """
    cfg = cfg or DistillConfig()
    ft = cfg.finetune
    if model is None:  # first: a missing generator should fail before the value model loads (or trains)
        tokenizer, model = load_lm(cfg.generator, ft.num_threads)
    if scorer is None:
        from galad.values.models import load_scorer

        scorer = load_scorer(cfg.value_model, cfg.context_mode)
    threshold = POLICY_HARM_THRESHOLD if cfg.threshold is None else cfg.threshold
    train_games, hold = split_games(cfg.games, cfg.holdout)
    if not train_games:
        raise LMError("no training games left after the hold-out")
    gen_cfg = LMConfig.for_k(cfg.k, max_context_tokens=ft.max_context_tokens, num_threads=ft.num_threads)
    eval_games = hold if cfg.eval_games is None else cfg.eval_games
    seen = sorted(set(eval_games) & set(getattr(scorer, "trained_games", ())))
    if seen:
        raise LMError(f"value model {scorer.name} was trained on the annotations of {', '.join(seen)}: evaluate on "
                      f"other games (--holdout) or use a value model that holds them out")
    ev = eval_states(eval_games, cfg.eval_states_per_game) if eval_games else None
    card: dict = {"name": CONTROL_NAME if cfg.control else DISTILLED_NAME, "generator": cfg.generator,
                  "value_model": getattr(scorer, "name", "?"), "threshold": threshold, "train_games": train_games,
                  "holdout": hold, "eval_games": eval_games, "config": asdict(cfg)}
    if ev is not None and cfg.evaluate_before:
        card["before"] = evaluate(LMGenerator(config=gen_cfg, tokenizer=tokenizer, lm=model), ev, scorer=scorer,
                                  threshold=threshold, progress=progress)
        log.info("before: %s", card["before"])

    # 1. walkthrough pairs: drop or down-weight what the value model flags
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
    card["pairs"] = {"total": len(pairs), "flagged": int(flags.sum()),
                     "flagged_examples": [p.action for p, b in zip(pairs, flags) if b][:20]}

    # 2. negatives: the generator's own flagged candidates on training states
    negatives: list[Example] = []
    if cfg.mine_states > 0 and not cfg.control:
        mine = sample_pairs(train_games, cfg.mine_states, ft.seed + 1)
        gen = LMGenerator(config=gen_cfg, tokenizer=tokenizer, lm=model)
        from tqdm.auto import tqdm

        cands: list[list[str]] = []
        for i in tqdm(range(0, len(mine), 8), desc="mining candidates", unit="batch", disable=not progress):
            cands.extend(gen.propose([p.state() for p in mine[i:i + 8]]))
        acts = [a for cs in cands for a in cs]
        ctxs = [p.obs for p, cs in zip(mine, cands) for _ in cs]
        bad = _flags(scorer, acts, ctxs, threshold)
        j = 0
        for p, cs in zip(mine, cands):
            for a in cs:
                if bad[j]:
                    ex = pair_example(p, negative=True)
                    ex.action = a
                    negatives.append(ex)
                j += 1
        card["negatives"] = {"candidates": len(acts), "flagged": len(negatives),
                             "examples": sorted({e.action for e in negatives})[:30]}
    card["train"] = finetune_mixed(model, tokenizer, examples, negatives, ft, progress)
    if ev is not None:
        card["after"] = evaluate(LMGenerator(config=gen_cfg, tokenizer=tokenizer, lm=model), ev, scorer=scorer,
                                 threshold=threshold, progress=progress)
    if "before" in card and "after" in card:
        b, a = card["before"], card["after"]
        card["summary"] = {
            "harm_gt_ratio": a["harm_gt_others"] / b["harm_gt_others"] if b["harm_gt_others"] else None,
            "harm_vm_ratio": a["harm_vm"] / b["harm_vm"] if b.get("harm_vm") else None,
            "recall@30_lost_rel": 1 - a["recall@30"] / b["recall@30"] if b["recall@30"] else None,
        }
    out = Path(cfg.out) if cfg.out else lm_dir() / card["name"]
    atomic_save(model, tokenizer, out, card)
    card["out"] = str(out)
    return card


def finetune_mixed(model, tokenizer, positives: list[Example], negatives: list[Example], ft: FinetuneConfig,
                   progress: bool = True) -> dict:
    """One fine-tuning run over positives and negatives together (negatives repeated to about 1/3 of the mix)."""
    from galad.candidates.lm.train import finetune

    mix = list(positives)
    if negatives:
        reps = max(1, round(len(positives) / (2 * len(negatives))))
        mix += negatives * reps
    return finetune(model, tokenizer, mix, ft, progress)
