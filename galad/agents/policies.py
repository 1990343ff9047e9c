"""Policies: the small component between candidate actions and the Q-network.

* ``drrn``: unconstrained (CALM's DRRN).
* ``cmps``: commonsense-morality policy shaping as in the Jiminy Cricket code: ``Q − w · 1[P(harm) > τ]`` when
  acting, in TD targets and on the regressed Q(s, a) (so a replayed flagged action learns the penalty away).
* ``cmps-persistent``: the same penalty when acting and in TD targets only; the regressed Q is the raw one, so
  the penalty persists (a stronger baseline than the paper's).
* ``galad``: GALAD's restriction: candidates with ``P(harm) > τ`` are dropped before the Q-network; when
  every candidate is flagged the least harmful is kept.
* ``oracle``: the same restriction by ground truth: each candidate is tried by lookahead and dropped when
  it triggers a harm-to-others annotation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from galad.values.base import HarmScorer


@dataclass
class Restriction:
    """What a policy made of one state's candidates."""

    kept: list[str]
    """Candidates the Q-network sees."""
    penalties: list[float]
    """Subtracted from each kept candidate's Q (CMPS), zeros otherwise."""
    harm: list[float | None]
    """P(harm) (or ground-truth harm) of each kept candidate; None where not scored."""
    removed: list[str] = field(default_factory=list)
    """Candidates dropped by the policy."""
    removed_harm: list[float] = field(default_factory=list)


Lookahead = Callable[[list[list[str]]], list[list[float]]]
"""Per state, the ground-truth harm of each candidate (1.0 when it triggers a harm-to-others marker)."""


class Policy:
    """Base: unconstrained."""

    name = "drrn"
    scorer: HarmScorer | None = None
    penalise_prediction = False
    """Whether the TD update regresses ``Q(s, a) − penalty`` of the taken action (CMPS as upstream)."""

    @property
    def value_model(self) -> str | None:
        """Identity of the value model behind the scores (its cache name, e.g. ``minilm-commonsense@<hash>``);
        None when no value model is used. A resumed run must score with the same one."""
        return None if self.scorer is None else self.scorer.name

    def restrict(self, contexts: Sequence[str], candidates: Sequence[list[str]]) -> list[Restriction]:
        return [Restriction(list(c), [0.0] * len(c), [None] * len(c)) for c in candidates]


class CMPSPolicy(Policy):
    name = "cmps"

    def __init__(self, scorer: HarmScorer, threshold: float, weight: float, penalise_prediction: bool = True):
        """``threshold``: tau, the run's (the scorer's own card threshold is not used). ``penalise_prediction``:
        also subtract the taken action's penalty from the Q-value the TD update regresses (upstream's form,
        ``cmps``); off, ``cmps-persistent``."""
        self.scorer, self.threshold, self.weight = scorer, threshold, weight
        self.penalise_prediction = penalise_prediction
        self.name = "cmps" if penalise_prediction else "cmps-persistent"

    def restrict(self, contexts, candidates):
        probs = _score_batched(self.scorer, contexts, candidates)
        return [Restriction(list(c), [self.weight * float(x > self.threshold) for x in p], [float(x) for x in p])
                for c, p in zip(candidates, probs)]


class FilterPolicy(Policy):
    """Drop candidates whose harm exceeds the threshold; keep the least harmful when all are flagged."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def _filter(self, cands: list[str], harm: Sequence[float]) -> Restriction:
        keep = [i for i, h in enumerate(harm) if h <= self.threshold]
        if not keep and cands:
            keep = [int(np.argmin(harm))]
        drop = [i for i in range(len(cands)) if i not in set(keep)]
        return Restriction([cands[i] for i in keep], [0.0] * len(keep), [float(harm[i]) for i in keep],
                           [cands[i] for i in drop], [float(harm[i]) for i in drop])


class GaladPolicy(FilterPolicy):
    name = "galad"

    def __init__(self, scorer: HarmScorer, threshold: float):
        """``threshold``: tau, the run's (the scorer's own card threshold is not used)."""
        super().__init__(threshold)
        self.scorer = scorer

    def restrict(self, contexts, candidates):
        probs = _score_batched(self.scorer, contexts, candidates)
        return [self._filter(list(c), p) for c, p in zip(candidates, probs)]


class OraclePolicy(FilterPolicy):
    name = "oracle"

    def __init__(self, lookahead: Lookahead):
        super().__init__(threshold=0.0)  # any harm to others is too much
        self.lookahead = lookahead

    def restrict(self, contexts, candidates):
        harms = self.lookahead([list(c) for c in candidates])
        return [self._filter(list(c), h) for c, h in zip(candidates, harms)]


def _score_batched(scorer: HarmScorer, contexts: Sequence[str], candidates: Sequence[list[str]]) -> list[np.ndarray]:
    """Score every state's candidates in one batched call."""
    flat = [a for c in candidates for a in c]
    ctx = [contexts[i] for i, c in enumerate(candidates) for _ in c]
    probs = np.asarray(scorer.score(flat, ctx), dtype=float) if flat else np.zeros(0)
    out, k = [], 0
    for c in candidates:
        out.append(probs[k:k + len(c)])
        k += len(c)
    return out
