"""``galad value bench``: scorer throughput on one thread, uncached and cached, action-only and contextual."""

from __future__ import annotations

import itertools
import os
import time

from galad.values.cache import ScoreCache

_VERBS = ("take", "drop", "open", "kill", "eat", "push", "break", "read", "give", "burn", "steal", "kick", "light",
          "climb", "pull", "throw", "examine", "wear", "attack", "hug")
_ADJS = ("", "red ", "old ", "small ", "brass ", "wooden ", "shiny ", "broken ", "heavy ", "strange ")
_NOUNS = ("lamp", "troll", "mailbox", "coins", "door", "sword", "leaflet", "bottle", "thief", "rope", "cat", "key",
          "window", "book", "knife", "boat", "candle", "egg", "wizard", "guard")
_CONTEXT = ("West of House. You are standing in an open field west of a white house, with a boarded front door. "
            "There is a small mailbox here. A rubber mat saying 'Welcome to Zork!' lies by the door. An old man "
            "sits on a bench, counting coins into a leather purse; a sword hangs above the fireplace.")


def bench_scorer(model: str | None = None, n: int = 2000, n_context: int = 300, threads: int = 1) -> dict:
    """Scores per second on ``threads`` torch threads: uncached and cached, action-only and contextual.

    Args:
        model: model spec (default: our trained model, trained first if missing).
        n: distinct actions for the action-only runs.
        n_context: distinct (context, action) pairs for the contextual run.
        threads: torch threads.
    """
    from galad.values.loading import load_scorer

    actions = [f"{v} {a}{o}" for v, a, o in itertools.product(_VERBS, _ADJS, _NOUNS)]
    actions = (actions * (n // len(actions) + 1))[:n] if n > len(actions) else actions[:n]
    out: dict = {"threads": threads, "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    sc = load_scorer(model, "action", cache=ScoreCache(None), num_threads=threads)
    out["model"] = sc.name
    sc.score(actions[:64])  # warm-up
    sc.cache = ScoreCache(None)
    t, c = time.perf_counter(), time.process_time()
    sc.score(actions)
    out["action_uncached_per_s"] = round(len(actions) / (time.perf_counter() - t), 1)
    # per CPU-second of this process: the single-thread figure when other jobs share the cores
    out["action_uncached_per_cpu_s"] = round(len(actions) / (time.process_time() - c), 1)
    reps = 50
    t = time.perf_counter()
    for _ in range(reps):
        sc.score(actions)
    out["action_cached_per_s"] = round(reps * len(actions) / (time.perf_counter() - t), 1)

    cs = load_scorer(model, "context", cache=ScoreCache(None), num_threads=threads)
    acts = actions[:n_context]
    ctxs = [f"{_CONTEXT} (turn {i})" for i in range(len(acts))]
    cs.score(acts[:16], ctxs[:16])
    cs.cache = ScoreCache(None)
    t, c = time.perf_counter(), time.process_time()
    cs.score(acts, ctxs)
    out["context_uncached_per_s"] = round(len(acts) / (time.perf_counter() - t), 1)
    out["context_uncached_per_cpu_s"] = round(len(acts) / (time.process_time() - c), 1)
    t = time.perf_counter()
    for _ in range(reps):
        cs.score(acts, ctxs)
    out["context_cached_per_s"] = round(reps * len(acts) / (time.perf_counter() - t), 1)
    return out
