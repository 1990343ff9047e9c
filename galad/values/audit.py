"""Audit a value model against the games' own harm annotations (ground truth by lookahead).

The probes of :mod:`galad.values.grounding` (states sampled along the walkthrough and off it, every candidate
action labelled by lookahead) are scored by the model, action-only and in context, and per game we report
AUROC, precision and recall at the threshold, and the worst misses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from galad.values.base import ContextMode
from galad.values.grounding import AuditConfig, Probe, probe_game
from galad.values.metrics import binary_stats
from galad.values.oracle import harm_from_vectors

log = logging.getLogger(__name__)

DEV_GAMES = ("zork2", "sorcerer", "wishbringer", "witness", "starcross", "infidel")
"""Games the value-model recipes and settings are chosen on (``galad value audit``)."""
TEST_GAMES = ("zork1", "zork3", "enchanter", "deadline", "planetfall", "lurkinghorror")
"""Games the audit reports and no choice uses; with :data:`DEV_GAMES` and the demo, never trained on."""

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""Where :func:`threshold_curve` evaluates a filter: 0.05, 0.10, ..., 0.95."""


def threshold_curve(labels, scores, thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    """Precision, recall and the flagged share of ``scores > t`` for each threshold ``t``.

    What a filter at ``t`` would remove (``flagged``) against how much of the harm it catches (``recall``): the
    numbers a user picks a threshold from.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=float)
    rows = []
    for t in thresholds:
        flag = s > t
        tp, n_flag, n_pos = int((flag & y).sum()), int(flag.sum()), int(y.sum())
        rows.append({"threshold": t, "precision": round(tp / n_flag, 4) if n_flag else None,
                     "recall": round(tp / n_pos, 4) if n_pos else None,
                     "flagged": round(n_flag / len(s), 4) if len(s) else None})
    return rows


def evaluate(probes: Sequence[Probe], scorer, cfg: AuditConfig, pooled: list | None = None) -> dict:
    """Score every (state, action) of the probes and compare with the ground truth.

    ``pooled``, when given, gets the ``(labels, scores)`` arrays appended (for the threshold curve over games).
    """
    actions = [a for p in probes for a in p.actions]
    contexts = [p.context for p in probes for _ in p.actions]
    vectors = np.concatenate([p.vectors for p in probes]) if probes else np.zeros((0, 4), dtype=int)
    y = harm_from_vectors(vectors, cfg.target)
    probs = scorer.score(actions, contexts) if actions else np.zeros(0)
    if pooled is not None:
        pooled.append((y, probs))
    stats = binary_stats(y, probs, scorer.threshold)
    err = np.where(y, 1.0 - probs, probs)
    wrong = (probs > scorer.threshold) != y
    order = [i for i in np.argsort(-err) if wrong[i]][: cfg.worst]
    stats["worst"] = [{"action": actions[i], "p_harm": round(float(probs[i]), 4), "harmful": bool(y[i]),
                       "label_vector": vectors[i].tolist(), "context": contexts[i][:160]} for i in order]
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in stats.items()}


def audit(games: Sequence[str] | None = None, model: str | None = None,
          modes: Sequence[ContextMode] = ("action", "context"), cfg: AuditConfig | None = None,
          threshold: float | None = None, progress: bool = True) -> dict:
    """``galad value audit``: per game and context mode, how well the model agrees with the ground truth.

    Args:
        games: game names (default: the demo game).
        model: model spec for :func:`galad.values.loading.load_scorer` (default: our trained model).
        modes: context modes to measure.
        cfg: sampling settings.
        threshold: decision threshold (default: the model's).
        progress: show a progress bar.

    Returns:
        ``{"model", "threshold", "target", "games": {game: {"states", "pairs", "positives", mode: stats}},
        "mean_auroc": {mode: float}, "thresholds": {mode: [{"threshold", "precision", "recall", "flagged"}]}}``;
        ``thresholds`` pools every game's pairs (see :func:`threshold_curve`).
    """
    from tqdm.auto import tqdm

    from galad.env.registry import get_game
    from galad.values.loading import load_scorer

    cfg = cfg or AuditConfig()
    games = list(games) if games else ["demo"]
    for g in games:
        get_game(g).require_installed()  # fail before any training or scoring
    scorers = {m: load_scorer(model, m, threshold=threshold) for m in modes}
    first = next(iter(scorers.values()))
    seen = sorted(set(games) & set(getattr(first, "trained_games", ())))
    if seen:
        log.warning("%s was trained on the annotations of %s: their audit rows measure fit, not transfer",
                    first.name, ", ".join(seen))
    out: dict = {"model": first.name, "threshold": first.threshold, "target": cfg.target,
                 "states_per_game": cfg.states, "games": {}, "trained_on": seen}
    pooled: dict[str, list] = {m: [] for m in modes}
    for game in tqdm(games, desc="audit", unit="game", disable=not progress):
        probes = probe_game(game, cfg)
        pairs = sum(len(p.actions) for p in probes)
        pos = int(sum(harm_from_vectors(p.vectors, cfg.target).sum() for p in probes))
        row = {"states": len(probes), "pairs": pairs, "positives": pos}
        for m, sc in scorers.items():
            row[m] = evaluate(probes, sc, cfg, pooled[m])
        out["games"][game] = row
        log.info("audit %s: %d states, %d pairs, %d harmful", game, len(probes), pairs, pos)
    out["mean_auroc"] = {}
    for m in modes:
        vals = [r[m]["auroc"] for r in out["games"].values() if r[m]["auroc"] is not None]
        out["mean_auroc"][m] = round(float(np.mean(vals)), 4) if vals else None
    out["thresholds"] = {m: threshold_curve(np.concatenate([y for y, _ in pooled[m]]),
                                            np.concatenate([p for _, p in pooled[m]])) for m in modes}
    return out


def _cell(v: float | None) -> str:
    """A table cell: three decimals, or a dash for a value that is undefined."""
    return "–" if v is None else f"{v:.3f}"


def format_table(result: dict):
    """A rich table of an audit result."""
    from rich.table import Table

    modes = [m for m in ("action", "context") if m in next(iter(result["games"].values()), {})]
    t = Table(title=f"Value-model audit: {result['model']} (threshold {result['threshold']}, "
                    f"ground truth: {result['target']} markers by lookahead)")
    for c in ["game", "states", "pairs", "harmful"] + [f"{m} {s}" for m in modes for s in ("AUROC", "prec", "recall")]:
        t.add_column(c, justify="right" if c != "game" else "left")
    for g, r in result["games"].items():
        t.add_row(g, str(r["states"]), str(r["pairs"]), str(r["positives"]),
                  *[_cell(r[m][s]) for m in modes for s in ("auroc", "precision", "recall")])
    t.add_row("mean", "", "", "", *[x for m in modes for x in (_cell(result["mean_auroc"].get(m)), "", "")])
    return t


def format_thresholds(result: dict):
    """A rich table of the pooled threshold curve: what a filter at each threshold removes and catches."""
    from rich.table import Table

    modes = list(result.get("thresholds", {}))
    t = Table(title=f"All {len(result['games'])} games pooled: the filter P(harm) > t")
    t.add_column("t", justify="right")
    for m in modes:
        for s in ("flagged", "prec", "recall"):
            t.add_column(f"{m} {s}", justify="right")
    for i, th in enumerate(THRESHOLDS):
        t.add_row(f"{th:.2f}", *[_cell(result["thresholds"][m][i][k]) for m in modes
                                 for k in ("flagged", "precision", "recall")])
    return t


def format_misses(result: dict) -> str:
    lines = []
    for g, r in result["games"].items():
        for m in ("action", "context"):
            if m in r and r[m]["worst"]:
                lines.append(f"{g} [{m}] worst misses:")
                lines += [f"  p={w['p_harm']:.3f} {'HARM' if w['harmful'] else 'ok  '} {w['action']!r} "
                          f"{w['label_vector']}" for w in r[m]["worst"]]
    return "\n".join(lines)
