"""``galad lm bench``: generator throughput — states/s for k candidates, uncached and cached, batched across
envs, and the shared-prefill decoder against plain ``model.generate`` beam search."""

from __future__ import annotations

import os
import time

from galad.candidates.lm.generator import LMConfig, LMGenerator
from galad.candidates.lm.data import walkthrough_pairs


def bench_generator(model: str | None = "trained", game: str = "zork1", envs: int = 8, batches: int = 2,
                    k: int = 30, threads: int = 1, plain: bool = True) -> dict:
    """Time the generator on walkthrough states of ``game``.

    Args:
        model: generator spec (``base``, ``trained``, ``distilled``, folder or hub id).
        game: game whose walkthrough states are used.
        envs: states per ``propose`` call (one per env).
        batches: ``propose`` calls on distinct states (uncached), then the same again (cached).
        k: candidates per state.
        threads: torch threads.
        plain: also time one state through ``model.generate`` and through the shared-prefill decoder.
    """
    gen = LMGenerator(model, LMConfig.for_k(k, batch_states=envs, num_threads=threads))
    pairs = walkthrough_pairs(game)
    step = max(1, len(pairs) // (envs * batches))
    states = [p.state() for p in pairs[::step]][: envs * batches]
    out: dict = {"model": gen.name, "game": game, "envs": envs, "k": k, "threads": threads,
                 "loadavg": [round(x, 2) for x in os.getloadavg()]}
    t = time.perf_counter()
    cands = [gen.propose(states[i:i + envs]) for i in range(0, len(states), envs)]
    dt = time.perf_counter() - t
    out["uncached_states_per_s"] = round(len(states) / dt, 3)
    out["mean_candidates"] = round(sum(len(c) for b in cands for c in b) / len(states), 1)
    reps = 50
    t = time.perf_counter()
    for _ in range(reps):
        for i in range(0, len(states), envs):
            gen.propose(states[i:i + envs])
    out["cached_states_per_s"] = round(reps * len(states) / (time.perf_counter() - t), 1)
    if plain:
        from galad.candidates.lm.generator import format_context

        ctx = format_context(states[0])
        gen.config.batch_states = 1
        t = time.perf_counter()
        gen.generate([ctx])
        out["one_state_shared_prefill_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        gen.generate_plain(ctx)
        out["one_state_plain_generate_s"] = round(time.perf_counter() - t, 2)
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return out
