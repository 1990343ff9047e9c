"""Audit a value model against the games' own harm annotations (ground truth by lookahead).

The probes of :mod:`galad.values.grounding` (states sampled along the walkthrough and off it, every candidate
action labelled by lookahead: harmful when it fires more harm than a turn of ``look`` there,
:meth:`~galad.values.grounding.Probe.harmful`) are scored by the model, action-only and in context, and per game we
report AUROC, precision and recall at the threshold, and the worst misses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from galad.values.base import ContextMode
from galad.values.grounding import AuditConfig, Probe, cached_probes
from galad.values.metrics import binary_stats

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


def evaluate(probes: Sequence[Probe], scorer, cfg: AuditConfig, threshold: float | None = None,
             pooled: list | None = None) -> dict:
    """Score every (state, action) of the probes and compare with the ground truth at ``threshold`` (default: the
    scorer's).

    ``pooled``, when given, gets ``(labels, scores, actions)`` appended (for the curves over games).
    """
    actions = [a for p in probes for a in p.actions]
    contexts = [p.context for p in probes for _ in p.actions]
    vectors = np.concatenate([p.vectors for p in probes]) if probes else np.zeros((0, 4), dtype=int)
    y = np.concatenate([p.harmful(cfg.target) for p in probes]) if probes else np.zeros(0, dtype=bool)
    probs = scorer.score(actions, contexts) if actions else np.zeros(0)
    if pooled is not None:
        pooled.append((y, probs, actions))
    threshold = scorer.threshold if threshold is None else threshold
    stats = binary_stats(y, probs, threshold)
    err = np.where(y, 1.0 - probs, probs)
    wrong = (probs > threshold) != y
    order = [i for i in np.argsort(-err) if wrong[i]][: cfg.worst]
    stats["worst"] = [{"action": actions[i], "p_harm": round(float(probs[i]), 4), "harmful": bool(y[i]),
                       "label_vector": vectors[i].tolist(), "context": contexts[i][:160]} for i in order]
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in stats.items()}


def audit(games: Sequence[str] | None = None, model: str | None = None,
          modes: Sequence[ContextMode] = ("action", "context"), cfg: AuditConfig | None = None,
          threshold: float | None = None, progress: bool = True, all_games: bool = False) -> dict:
    """``galad value audit``: per game and context mode, how well the model agrees with the ground truth.

    Args:
        games: game names (default: the demo game).
        model: model spec for :func:`galad.values.loading.load_scorer` (default: our trained model; a fold family
            such as ``galad:games`` scores each game with the fold model that never read it).
        modes: context modes to measure.
        cfg: sampling settings.
        threshold: the threshold precision and recall are measured at (default: the policies' tau,
            :data:`galad.config.POLICY_HARM_THRESHOLD`, where cmps penalises and galad removes an action).
        progress: show a progress bar.
        all_games: every game of the registry that is installed (``games`` ignored); the others are named in
            ``missing`` and a warning.

    Returns:
        ``{"model", "threshold", "target", "games": {game: {"model", "states", "pairs", "positives", mode: stats}},
        "mean_auroc": {mode: float}, "thresholds": {mode: [...]}, "verbs": {mode: [...]}, "trained_on",
        "missing"}``; ``thresholds`` and ``verbs`` pool every game's pairs (:func:`threshold_curve`,
        :func:`verb_recall`); ``trained_on`` lists the games whose scoring model read their annotations.

    Raises:
        GameNotInstalledError: a game named in ``games`` is not installed.
    """
    from tqdm.auto import tqdm

    from galad.config import policy_tau
    from galad.env.registry import get_game, registry

    cfg = cfg or AuditConfig()
    missing: list[str] = []
    if all_games:
        games = [name for name, spec in registry().items() if spec.is_installed()]
        missing = [name for name, spec in registry().items() if not spec.is_installed()]
        if missing:
            log.warning("not installed, left out of the audit: %s (galad games download %s)", ", ".join(missing),
                        " ".join(missing))
        if not games:
            from galad.errors import GameNotInstalledError

            raise GameNotInstalledError("no game is installed: galad games download --all")
    games = list(games) if games else ["demo"]
    for g in games:
        get_game(g).require_installed()  # fail before any training or scoring
    tau = policy_tau(threshold)
    scorers = _Scorers(model, modes)
    out: dict = {"model": model or "default", "threshold": tau, "target": cfg.target, "states_per_game": cfg.states,
                 "games": {}, "trained_on": [], "missing": missing}
    pooled: dict[str, list] = {m: [] for m in modes}
    for game in tqdm(games, desc="audit", unit="game", disable=not progress):
        by_mode = scorers.for_game(game)
        first = next(iter(by_mode.values()))
        if game in getattr(first, "trained_games", ()):
            out["trained_on"].append(game)
            log.warning("%s was trained on the annotations of %s: its audit row measures fit, not transfer",
                        first.name, game)
        probes = cached_probes(game, cfg)
        pairs = sum(len(p.actions) for p in probes)
        pos = int(sum(p.harmful(cfg.target).sum() for p in probes))
        row = {"model": first.name, "states": len(probes), "pairs": pairs, "positives": pos}
        for m, sc in by_mode.items():
            row[m] = evaluate(probes, sc, cfg, tau, pooled[m])
        out["games"][game] = row
        log.info("audit %s: %d states, %d pairs, %d harmful", game, len(probes), pairs, pos)
    out["mean_auroc"] = {}
    for m in modes:
        vals = [r[m]["auroc"] for r in out["games"].values() if r[m]["auroc"] is not None]
        out["mean_auroc"][m] = round(float(np.mean(vals)), 4) if vals else None
    out["thresholds"] = {m: threshold_curve(np.concatenate([y for y, _, _ in pooled[m]]),
                                            np.concatenate([p for _, p, _ in pooled[m]])) for m in modes}
    out["verbs"] = {m: verb_recall([a for _, _, acts in pooled[m] for a in acts],
                                   np.concatenate([y for y, _, _ in pooled[m]]),
                                   np.concatenate([p for _, p, _ in pooled[m]]), tau) for m in modes}
    models = sorted({r["model"] for r in out["games"].values()})
    if len(models) == 1:
        out["model"] = models[0]
    return out


class _Scorers:
    """The scorers of an audit, one per model and mode: a fold family's fold models are each loaded once."""

    def __init__(self, model: str | None, modes: Sequence[ContextMode]):
        self.model, self.modes = model, tuple(modes)
        self._loaded: dict[tuple[str, str], object] = {}

    def for_game(self, game: str) -> dict:
        from galad.values.loading import load_scorer, resolved_name

        key = resolved_name(self.model, game)
        out = {}
        for m in self.modes:
            if (key, m) not in self._loaded:
                self._loaded[(key, m)] = load_scorer(self.model, m, game=game)
            out[m] = self._loaded[(key, m)]
        return out


VERBS_REPORTED = 10
"""The verbs :func:`verb_recall` reports: those with the most harmful pairs (and :data:`VERBS_ALWAYS`)."""
VERBS_ALWAYS = ("curse", "take", "steal")
"""Verbs reported whatever their count: the games' most frequent harm (``curse``) and theft."""


def action_verb(action: str) -> str:
    """The verb of a candidate action: its first word (``talk to``, ``knock on``, ``listen to``, ``look at``: the
    first two)."""
    words = action.lower().split()
    if not words:
        return ""
    if len(words) > 1 and f"{words[0]} {words[1]}" in ("talk to", "knock on", "listen to", "look at", "pick up"):
        return f"{words[0]} {words[1]}"
    return words[0]


def verb_recall(actions: Sequence[str], labels, scores, threshold: float, top: int = VERBS_REPORTED) -> list[dict]:
    """Harm recall at ``threshold`` for each of the ``top`` verbs with the most harmful pairs (then any of
    :data:`VERBS_ALWAYS` outside them): how many harmful pairs of the verb the filter ``P(harm) > threshold``
    catches, and what share of the verb's harmless pairs it removes with them."""
    y = np.asarray(labels).astype(bool)
    flag = np.asarray(scores, dtype=float) > threshold
    verbs = np.array([action_verb(a) for a in actions])
    counts: dict[str, int] = {}
    for v in verbs[y]:
        counts[str(v)] = counts.get(str(v), 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    chosen = ranked[:top] + [(v, n) for v, n in ranked[top:] if v in VERBS_ALWAYS]
    rows = []
    for v, n in chosen:
        mine = verbs == v
        harmless = mine & ~y
        rows.append({"verb": v, "harmful": n, "recall": round(float((flag & mine & y).sum()) / n, 4),
                     "harmless": int(harmless.sum()),
                     "harmless_flagged": round(float((flag & harmless).sum()) / harmless.sum(), 4)
                     if harmless.any() else None})
    return rows


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


def format_verbs(result: dict):
    """A rich table of harm recall by verb (pooled over games) at the audit's threshold."""
    from rich.table import Table

    modes = list(result.get("verbs", {}))
    t = Table(title=f"Harm recall by verb at P(harm) > {result['threshold']} (the {VERBS_REPORTED} verbs with the "
                    f"most harmful pairs, all games pooled)")
    t.add_column("verb")
    t.add_column("harmful", justify="right")
    for m in modes:
        t.add_column(f"{m} recall", justify="right")
        t.add_column(f"{m} harmless flagged", justify="right")
    if modes:
        for i, r in enumerate(result["verbs"][modes[0]]):
            t.add_row(r["verb"], str(r["harmful"]), *[_cell(result["verbs"][m][i][k]) for m in modes
                                                       for k in ("recall", "harmless_flagged")])
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
