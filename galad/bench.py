"""``galad bench``: throughput benchmarks, one table and one JSON file.

Sections (``--sections``): ``env`` (below), ``candidates`` (:mod:`galad.candidates.valid.bench`: our valid-action
detector against Jericho's on the same walkthrough states), ``value`` (:mod:`galad.values.bench`), ``lm``
(:mod:`galad.candidates.lm.bench`, when a trained generator exists), ``drrn`` (TD updates per second) and
``agents`` (end-to-end training steps per second of each agent: 8 envs, valid-action candidates).

Env replay: for each game, the walkthrough (initial actions first) is replayed by

* raw Jericho ``FrotzEnv.step`` (no annotations, no score, no cleaning: the ceiling),
* our :class:`JiminyEnv`,
* the reference ``AnnotatedEnv`` when ``--reference`` names an upstream jiminy-cricket checkout
  (imported from there at run time, with the ``np.int`` alias it needs on numpy >= 1.24),

in the same process, best of ``repeats`` runs, and the medians over games of ours/reference and
ours/raw are printed.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import sys
import time
import warnings
from pathlib import Path

from galad.atomic import write_json_atomic
from galad.env.jiminy import JiminyEnv
from galad.env.registry import get_game, registry
from galad.errors import ConfigError


def _time_raw(env: JiminyEnv) -> float:
    from jericho import FrotzEnv

    spec = env.spec_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = FrotzEnv(str(spec.folder() / spec.story.name), seed=1)
    raw.reset()
    actions = [a for a in env.initial_actions + env.walkthrough if not spec.is_blocked(a)]
    t0 = time.perf_counter()
    for a in actions:
        raw.step(a)
    dt = time.perf_counter() - t0
    raw.close()
    return len(actions) / dt


def _time_ours(env: JiminyEnv) -> tuple[float, int]:
    env.reset()
    n = 0
    t0 = time.perf_counter()
    for a in env.walkthrough:
        n += 1
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            break
    return n / (time.perf_counter() - t0), n


def _load_reference(path: str):
    import numpy as np

    root = Path(path).expanduser()
    if not (root / "annotated_env.py").is_file():
        raise ConfigError(f"--reference {path}: no annotated_env.py there (point it at a jiminy-cricket checkout)")
    if not hasattr(np, "int"):
        np.int = int  # the reference uses np.int, removed in numpy 1.24
    sys.path.insert(0, str(root))
    from annotated_env import AnnotatedEnv  # type: ignore[import-not-found]

    return AnnotatedEnv


def _time_reference(cls, spec) -> float:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cls(str(spec.folder()), seed=1)
    wt = (spec.folder() / spec.walkthrough_name).read_text(encoding="utf-8").split("\n")
    n = 0
    t0 = time.perf_counter()
    for a in wt:
        n += 1
        if ref.step(a)[2]:
            break
    return n / (time.perf_counter() - t0)


def bench_env(games: list[str], reference: str | None = None, repeats: int = 3, json_out: str | None = None,
              isolation: str = "thread") -> dict:
    """Walkthrough replay throughput per game; prints a table and returns ``{"env_replay": rows, "summary": ...}``."""
    from rich.console import Console
    from rich.table import Table

    names = games or [n for n, s in registry().items() if s.is_installed()]
    specs = [get_game(n) for n in names]
    for s in specs:
        s.require_installed()
    ref_cls = _load_reference(reference) if reference else None
    rows = []
    for spec in specs:
        env = JiminyEnv(spec.name, seed=1, isolation=isolation)
        try:
            runs = [_time_ours(env) for _ in range(repeats)]
            ours, steps = max(r[0] for r in runs), runs[0][1]
            raw = max(_time_raw(env) for _ in range(repeats))
        finally:
            env.close()
        ref = max(_time_reference(ref_cls, spec) for _ in range(repeats)) if ref_cls and not spec.bundled else None
        rows.append({"game": spec.name, "steps": steps, "ours_steps_per_s": round(ours, 1),
                     "raw_frotz_steps_per_s": round(raw, 1),
                     "reference_steps_per_s": round(ref, 1) if ref else None,
                     "ours_over_raw": round(ours / raw, 3),
                     "ours_over_reference": round(ours / ref, 2) if ref else None})
    table = Table(title=f"Walkthrough replay throughput (steps/s, best of {repeats}, isolation={isolation})")
    for col in ("game", "steps", "ours", "raw Frotz", "reference", "ours/raw", "ours/reference"):
        table.add_column(col, justify="right" if col != "game" else "left")
    for r in rows:
        table.add_row(r["game"], str(r["steps"]), f"{r['ours_steps_per_s']:.0f}", f"{r['raw_frotz_steps_per_s']:.0f}",
                      f"{r['reference_steps_per_s']:.0f}" if r["reference_steps_per_s"] else "-",
                      f"{r['ours_over_raw']:.2f}", f"{r['ours_over_reference']:.1f}" if r["ours_over_reference"] else "-")
    Console().print(table)
    summary = {"median_ours_over_raw": round(statistics.median(r["ours_over_raw"] for r in rows), 3)}
    with_ref = [r["ours_over_reference"] for r in rows if r["ours_over_reference"]]
    if with_ref:
        summary["median_ours_over_reference"] = round(statistics.median(with_ref), 2)
    print(f"median ours/raw Frotz: {summary['median_ours_over_raw']:.2f}"
          + (f"   median ours/reference: {summary['median_ours_over_reference']:.1f}x" if with_ref else ""))
    result = {"env_replay": rows, "summary": summary}
    if json_out:
        write_json_atomic(json_out, result)
    return result




def bench_drrn(batch_size: int = 64, updates: int = 20, game: str = "demo", seed: int = 1) -> dict:
    """TD updates per second of the default DRRN on real game text (one thread)."""
    import random

    import torch

    from galad.agents.drrn import DRRNAgent, EncodedState, Transition
    from galad.agents.tokenizer import load_or_train
    from galad.config import TrainConfig

    torch.set_num_threads(1)
    cfg = TrainConfig()
    tok = load_or_train(game)
    env = JiminyEnv(game)
    texts = []
    try:
        env.reset()
        for a in env.walkthrough:
            texts.append((env.step(a)[0], env.peek("look"), env.peek("inventory"), a))
            if env.done:
                break
    finally:
        env.close()
    m = cfg.max_tokens
    states = [EncodedState(*(tok.encode(t)[-m:] for t in x[:3])) for x in texts]
    acts = [tok.encode(x[3]) for x in texts]
    agent = DRRNAgent(tok.vocab_size, cfg.embedding_dim, cfg.hidden_dim, cfg.lr, cfg.gamma, batch_size,
                      cfg.memory_size, cfg.priority_fraction, cfg.clip, seed)
    rng = random.Random(seed)
    for _ in range(max(batch_size * 2, 256)):
        i = rng.randrange(len(states) - 1)
        agent.memory.push(Transition(states[i], acts[i], 0.0, states[i + 1], rng.sample(acts, 30), [0.0] * 30, False))
    agent.update()
    t0 = time.perf_counter()
    for _ in range(updates):
        agent.update()
    dt = time.perf_counter() - t0
    return {"batch_size": batch_size, "next_candidates": 30, "max_tokens": m, "updates_per_s": round(updates / dt, 2)}


def bench_agents(game: str = "demo", steps: int = 10, envs: int = 8, agents=("drrn", "cmps", "galad", "oracle")) -> dict:
    """End-to-end training throughput per agent: env steps per second of the training loop (setup excluded) and
    the share of each phase of a step, valid-action candidates, in a throw-away run folder. Detections are not read from or written to the
    on-disk cache, so every agent starts cold."""
    import tempfile

    from galad.config import TrainConfig
    from galad.runs import RunFolder
    from galad.train import make_trainer, prepare_value_model

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for agent in agents:
            cfg = TrainConfig(game=game, agent=agent, envs=envs, steps=steps, run_dir=tmp).validate()
            t0 = time.perf_counter()
            prepare_value_model(cfg)
            run = RunFolder.new(cfg, agent)
            trainer = make_trainer(cfg, run, disk_cache=False)
            setup = time.perf_counter() - t0
            try:
                t0 = time.perf_counter()
                for _ in range(steps):
                    trainer.train_step()
                dt = time.perf_counter() - t0
            finally:
                trainer.close()
            phases = {k: round(v / dt, 3) for k, v in sorted(trainer.seconds.items(), key=lambda kv: -kv[1])}
            out[agent] = {"sps": round(steps * envs / dt, 2), "seconds_per_step": round(dt / steps, 2),
                          "setup_s": round(setup, 1), "time_share": phases}
            share = ", ".join(f"{k} {v:.0%}" for k, v in phases.items())
            print(f"agent {agent:7s} {out[agent]['sps']:6.2f} env-steps/s ({dt / steps:.2f} s per step of {envs} envs; "
                  f"{share})", flush=True)
    return {"game": game, "envs": envs, "steps": steps, "candidates": "valid", "per_agent": out}


SECTIONS = ("env", "candidates", "value", "lm", "drrn", "agents")
FAST_BUDGET = 150  # the valid-action budget the candidates section times beside the full detection


def bench_all(games: list[str], sections=SECTIONS, reference: str | None = None, repeats: int = 3,
              json_out: str | None = None, isolation: str = "thread", candidate_states: int = 4,
              agent_game: str = "demo", agent_steps: int = 10) -> dict:
    """Run the chosen sections, print a summary table, write everything as JSON (``json_out``)."""
    import os

    from rich.console import Console
    from rich.table import Table

    from galad.errors import GaladError

    result: dict = {"load_average_at_start": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    summary: list[tuple[str, str, str]] = []
    if "env" in sections:
        env = result["env"] = bench_env(games, reference, repeats, isolation=isolation)
        summary.append(("env", "median ours / raw Frotz", f"{env['summary']['median_ours_over_raw']:.2f}"))
        if "median_ours_over_reference" in env["summary"]:
            summary.append(("env", "median ours / reference env", f"{env['summary']['median_ours_over_reference']:.1f}x"))
    if "candidates" in sections:
        from galad.candidates.valid import bench as cb

        rows = cb.bench_candidates(games, states=candidate_states, marker_states=2, budgets=(0, FAST_BUDGET))
        c = cb.summarize(rows)
        result["candidates"] = {**c, "per_game": rows}
        for b, cb_ in c["budgets"].items():
            what = "valid actions" + (f", budget {b}" if b != "0" else ", every candidate")
            summary.append(("candidates", f"{what}: s per state (median)", f"{cb_['median_ours_s_per_state']:.3f}"))
            if cb_["median_speedup_over_jericho"]:
                summary.append(("candidates", f"{what}: speed-up over Jericho (median)",
                                f"{cb_['median_speedup_over_jericho']:.1f}x"))
            summary.append(("candidates", f"{what}: walkthrough recall ours / Jericho",
                            f"{cb_['walkthrough_recall_ours_where_jericho_runs']} / {c['walkthrough_recall_jericho']}"))
    if "value" in sections:
        from galad.values.bench import bench_scorer

        v = result["value"] = bench_scorer(n=1000, n_context=200)
        summary += [("value", "action-only scores/s uncached, cached",
                     f"{v['action_uncached_per_s']:.0f}, {v['action_cached_per_s']:.0f}"),
                    ("value", "contextual scores/s uncached, cached",
                     f"{v['context_uncached_per_s']:.0f}, {v['context_cached_per_s']:.0f}")]
    if "lm" in sections:
        from galad.candidates.lm.bench import bench_generator

        try:
            g = result["lm"] = bench_generator("trained", batches=1, plain=False)
            summary.append(("lm", "generator states/s uncached, cached (k=30)",
                            f"{g['uncached_states_per_s']:.2f}, {g['cached_states_per_s']:.0f}"))
        except GaladError as exc:  # no trained generator here: say so, run the rest
            result["lm"] = {"skipped": str(exc)}
            summary.append(("lm", "skipped", str(exc)[:60]))
    if "drrn" in sections:
        d = result["drrn"] = bench_drrn()
        summary.append(("drrn", f"TD updates/s (batch {d['batch_size']})", f"{d['updates_per_s']:.2f}"))
    if "agents" in sections:
        a = result["agents"] = bench_agents(agent_game, agent_steps)
        for agent, r in a["per_agent"].items():
            summary.append(("agents", f"{agent} on {agent_game}: env-steps/s", f"{r['sps']:.2f}"))
    table = Table(title="galad bench")
    for col in ("section", "measure", "value"):
        table.add_column(col)
    for row in summary:
        table.add_row(*row)
    Console().print(table)
    if json_out:
        write_json_atomic(json_out, result)
    return result
