"""The engines that step candidates: probers of this process, threads over several of them, worker processes.

A batch runs on one engine when it is short; on ``threads`` engines of this process, in interleaved chunks, when
one engine would take ``min_thread_seconds`` or more at the story's measured cost per candidate (libfrotz steps
without the GIL); in a pool of worker processes from ``min_batch_for_pool`` candidates. A pool call that overruns
``call_timeout`` kills and restarts the pool; its unfinished candidates come back as ``timeout`` outcomes with the
text :data:`POOL_TIMEOUT`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from galad.candidates.valid.probe import Outcome, Prober

log = logging.getLogger(__name__)

POOL_TIMEOUT = "(worker pool overran the call bound)"
"""The text of the outcomes a killed worker pool left unfinished (not a hazard of the action)."""

# worker processes: one Prober per story, created on first use
_PROBERS: dict[tuple, Prober] = {}


def _work(story_file: str, seed: int, step_timeout: float, score_global: int | None, engine_state: tuple,
          actions: list[str], noise: tuple[int, ...] = ()) -> list[Outcome]:
    key = (story_file, seed, step_timeout, score_global)
    prober = _PROBERS.get(key)
    if prober is None:
        prober = _PROBERS[key] = Prober(story_file, seed, step_timeout, score_global)
    return prober.run(engine_state, actions, noise)


@dataclass
class Batch:
    """One batch of candidates the engines stepped (kept while :meth:`ValidActionSource.recording` is on): the
    outcomes as stepped, copies that detection's later judging (a reply read as a parser failure) does not touch."""

    engine_state: tuple
    actions: list[str]
    noise: tuple[int, ...]
    outcomes: list[Outcome]


def _score_global(spec) -> int | None:
    return spec.score_global if spec.score_source == "global" else None


class Engines:
    """Steps batches of candidates for a :class:`~galad.candidates.valid.source.ValidActionSource`.

    Args:
        config: the source's :class:`~galad.candidates.valid.source.ValidConfig` (``workers``, ``threads``,
            ``min_batch_for_pool``, ``min_thread_seconds``, ``call_timeout``, ``seed``, ``step_timeout``).
    """

    def __init__(self, config):
        self.config = config
        self._local: dict[tuple[str, int], Prober] = {}
        self._cost: dict[str, float] = {}
        """Story -> seconds per candidate on one engine, as last measured (a running mean): an Infocom game
        steps in about 0.1 ms, the demo's Inform library parser in about 0.5 ms."""
        self._threads: ThreadPoolExecutor | None = None
        self._pool = None
        self.recorded: list[Batch] | None = None
        """While a list, every batch :meth:`run` steps is appended to it (profiles and checks; off in training)."""

    def prober(self, spec, story: str, k: int = 0) -> Prober:
        """This process's ``k``-th engine for a story (each its own copy of libfrotz)."""
        p = self._local.get((story, k))
        if p is None:
            p = self._local[(story, k)] = Prober(story, self.config.seed, self.config.step_timeout,
                                                 _score_global(spec))
        return p

    def run(self, spec, story: str, engine_state, actions: list[str], noise: Sequence[int]) -> list[Outcome]:
        """Step each action from ``engine_state``, on as many engines as the batch's size calls for."""
        out = self._run(spec, story, engine_state, actions, noise)
        if self.recorded is not None:
            self.recorded.append(Batch(engine_state, list(actions), tuple(noise), [o.copy() for o in out]))
        return out

    def _run(self, spec, story: str, engine_state, actions: list[str], noise: Sequence[int]) -> list[Outcome]:
        cfg = self.config
        if cfg.workers > 0 and len(actions) >= cfg.min_batch_for_pool:
            return self._pooled(story, _score_global(spec), engine_state, actions, noise)
        cost = self._cost.get(story)
        if cfg.threads > 1 and len(actions) >= 2 * cfg.threads and cost is not None \
                and len(actions) * cost >= cfg.min_thread_seconds:
            return self._threaded(spec, story, engine_state, actions, noise)
        t0 = time.perf_counter()
        out = self.prober(spec, story).run(engine_state, actions, noise)
        if actions:
            per = (time.perf_counter() - t0) / len(actions)
            self._cost[story] = per if cost is None else 0.8 * cost + 0.2 * per
        return out

    def _pooled(self, story: str, sg, engine_state, actions: list[str], noise: Sequence[int]) -> list[Outcome]:
        cfg = self.config
        if self._pool is None:
            # spawn: workers import only this package and the engine (no torch, no inherited threads)
            self._pool = mp.get_context("spawn").Pool(cfg.workers)
        n = cfg.workers * 2
        chunks = [actions[i::n] for i in range(n)]
        jobs = [self._pool.apply_async(_work, (story, cfg.seed, cfg.step_timeout, sg, engine_state, c, tuple(noise)))
                for c in chunks if c]
        deadline = time.monotonic() + cfg.call_timeout
        out: list[Outcome] = []
        for job, chunk in zip(jobs, [c for c in chunks if c]):
            try:
                out.extend(job.get(max(0.0, deadline - time.monotonic())))
            except mp.TimeoutError:
                log.warning("candidate batch overran %.0f s; worker pool restarted", cfg.call_timeout)
                out.extend(Outcome(a, "timeout", text=POOL_TIMEOUT) for a in chunk)
                self._pool.terminate()
                self._pool = None
                break
        order = {a: i for i, a in enumerate(actions)}
        return sorted(out, key=lambda o: order.get(o.action, len(order)))

    def _threaded(self, spec, story: str, engine_state, actions: list[str], noise: Sequence[int]) -> list[Outcome]:
        """Interleaved chunks on ``threads`` engines of this process: libfrotz's step runs without the GIL,
        so the engines step in parallel with no state transfer between processes."""
        n = self.config.threads
        if self._threads is None:
            self._threads = ThreadPoolExecutor(n, thread_name_prefix="galad-probe")
        chunks = [actions[i::n] for i in range(n)]
        probers = [self.prober(spec, story, k) for k in range(n)]
        futures = [self._threads.submit(p.run, engine_state, c, noise) for p, c in zip(probers, chunks)]
        parts = [f.result() for f in futures]
        out: list[Outcome] = [None] * len(actions)  # type: ignore[list-item]
        for i, part in enumerate(parts):
            out[i::n] = part
        return out

    def close(self) -> None:
        """Stop the worker pool, the threads and this process's engines."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        if self._threads is not None:
            self._threads.shutdown()
            self._threads = None
        for p in self._local.values():
            p.close()
        self._local.clear()
