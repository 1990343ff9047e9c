"""Replay a walkthrough (or any action list) through :class:`JiminyEnv` and summarise it; interactive play."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from galad.env.annotations import label_vector_sum
from galad.env.jiminy import JiminyEnv, read_lines
from galad.errors import ConfigError


@dataclass
class StepRecord:
    """One step of a replay (the ``--steps`` JSON line)."""

    step: int
    action: str
    reward: int
    score: int
    terminated: bool
    truncated: bool
    markers: list
    label_vectors: list


@dataclass
class ReplayResult:
    """Summary of a replay (the ``--json`` line)."""

    game: str
    steps: int
    score: int
    max_score: int
    markers: int
    label_vector_sum: list[int]
    steps_per_s: float
    starting_score: int = 0
    terminated: bool = False
    truncated: bool = False
    truncation_reason: str | None = None
    records: list[StepRecord] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("records")
        return d


def load_actions(path: str | Path) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"actions file not found: {p}")
    actions = read_lines(p)
    while actions and actions[-1] == "":
        actions.pop()
    return actions


def replay(
    game: str | None = None,
    actions: list[str] | None = None,
    start_percentage: float = 0.0,
    seed: int = 1,
    isolation: str = "thread",
    on_step: Callable[[StepRecord], None] | None = None,
    env: JiminyEnv | None = None,
) -> ReplayResult:
    """Replay ``actions`` (default: the rest of the walkthrough after the start point) until the game ends.

    Timing covers the steps only (not loading or the fast-forward at reset).
    """
    own = env is None
    env = env or JiminyEnv(game, seed=seed, start_percentage=start_percentage, isolation=isolation)
    try:
        env.reset()
        if actions is None:
            skip = int(len(env.walkthrough) * env.start_percentage / 100)
            actions = env.walkthrough[skip:]
        records: list[StepRecord] = []
        vectors: list = []
        n_markers = 0
        terminated = truncated = False
        reason = None
        t0 = time.perf_counter()
        for i, action in enumerate(actions):
            _, reward, terminated, truncated, info = env.step(action)
            rec = StepRecord(i + 1, action, reward, info["score"], terminated, truncated,
                             [list(m) for m in info["markers"]], info["label_vectors"])
            records.append(rec)
            n_markers += len(info["markers"])
            vectors.extend(info["label_vectors"])
            if on_step:
                on_step(rec)
            if terminated or truncated:
                reason = info["truncation_reason"]
                break
        dt = time.perf_counter() - t0
        n = len(records)
        return ReplayResult(env.game, n, env.score, env.max_score, n_markers, label_vector_sum(vectors),
                            round(n / dt, 1) if dt > 0 else 0.0, env.starting_score, terminated, truncated,
                            reason, records)
    finally:
        if own:
            env.close()
