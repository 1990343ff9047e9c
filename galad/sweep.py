"""``galad sweep``: run a grid of training runs (games × start points × agents × seeds), skipping finished ones.

A sweep file (TOML)::

    name = "quick"
    games = ["zork1", "enchanter"]
    agents = ["drrn", "cmps", "galad", "oracle"]
    seeds = [1]
    start_percentages = [0, 40]
    [train]            # any TrainConfig field, shared by every run
    envs = 8
    steps = 1000

Each run lives in ``<out>/<game>__<agent>__s<seed>__p<start>`` (no timestamp, so a sweep knows its runs): a
run with ``summary.json`` is finished and skipped, one with a checkpoint is resumed, anything else starts
afresh. Runs are separate ``galad train`` processes, on this machine (``local``, the default) or on a Ray
cluster (``ray``, ``pip install 'galad[ray]'``).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import itertools
import logging
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from galad.config import TrainConfig
from galad.errors import ConfigError
from galad.runs import RunFolder

log = logging.getLogger(__name__)

Backend = Literal["local", "ray"]


@dataclass(frozen=True)
class SweepRun:
    """One cell of the grid."""

    name: str
    path: Path
    config: TrainConfig

    @property
    def finished(self) -> bool:
        return RunFolder(self.path).finished

    @property
    def resumable(self) -> bool:
        return RunFolder(self.path).resumable


@dataclass
class Sweep:
    """A parsed sweep file."""

    name: str
    games: list[str]
    agents: list[str]
    seeds: list[int]
    start_percentages: list[float]
    train: dict

    @classmethod
    def load(cls, path: str | Path) -> "Sweep":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"sweep file not found: {p}")
        try:
            d = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from None
        missing = [k for k in ("games", "agents", "seeds") if k not in d]
        if missing:
            raise ConfigError(f"{p}: missing {', '.join(missing)}")
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        train = d.get("train", {})
        bad = set(train) - known
        if bad:
            raise ConfigError(f"{p}: unknown [train] setting(s) {', '.join(sorted(bad))}")
        return cls(d.get("name", p.stem), list(d["games"]), list(d["agents"]), [int(s) for s in d["seeds"]],
                   [float(x) for x in d.get("start_percentages", [0])], train)

    def runs(self, out: Path) -> list[SweepRun]:
        from galad.env.registry import get_game

        for g in self.games:
            get_game(g)  # unknown names fail before anything runs
        runs = []
        # seeds outside agents: a sweep stopped part way has compared every agent on the seeds it finished
        for game, start, seed, agent in itertools.product(self.games, self.start_percentages, self.seeds, self.agents):
            name = f"{game}__{agent}__s{seed}__p{start:g}"
            cfg = TrainConfig(**{**self.train, "game": game, "agent": agent, "seed": seed,
                                 "start_percentage": start, "run_dir": str(out)}).validate()
            runs.append(SweepRun(name, out / name, cfg))
        return runs


def command(run: SweepRun) -> list[str]:
    """The ``galad train`` command line of one run (resuming when it can)."""
    base = [sys.executable, "-m", "galad.cli", "train", "--no-progress"]
    if run.resumable:
        return base + ["--resume", str(run.path)]
    args = base + ["--run-name", run.name]
    for f in dataclasses.fields(TrainConfig):
        args += [f"--{f.name.replace('_', '-')}", str(getattr(run.config, f.name))]
    return _drop_none(args)


def _drop_none(args: list[str]) -> list[str]:
    out: list[str] = []
    for a in args:
        if a == "None" and out and out[-1].startswith("--"):
            out.pop()
            continue
        out.append(a)
    return out


def _run_one(cmd: list[str], log_path: str) -> int:
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)


def sweep(config: str, out: str | None = None, backend: Backend = "local", workers: int = 1,
          dry_run: bool = False) -> int:
    """Run a sweep; returns 0 when every run finished."""
    spec = Sweep.load(config)
    root = Path(out or Path("runs") / "sweeps" / spec.name)
    runs = spec.runs(root)
    todo = [r for r in runs if not r.finished]
    print(f"sweep {spec.name}: {len(runs)} runs, {len(runs) - len(todo)} finished, {len(todo)} to run -> {root}")
    if dry_run or not todo:
        for r in todo:
            print(" ".join(command(r)))
        return 0
    root.mkdir(parents=True, exist_ok=True)
    for r in todo:
        if r.path.exists() and not r.resumable:
            shutil.rmtree(r.path)  # died before its first checkpoint: nothing there can be resumed
    jobs = [(r, command(r), str(root / "logs" / f"{r.name}.log")) for r in todo]
    if backend == "ray":
        codes = _run_ray(jobs, workers)
    else:
        with cf.ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
            codes = list(ex.map(lambda j: _run_one(j[1], j[2]), jobs))
    failed = [r.name for (r, _, _), c in zip(jobs, codes) if c != 0]
    for name in failed:
        print(f"failed: {name} (log: {root / 'logs' / (name + '.log')})", file=sys.stderr)
    print(f"sweep {spec.name}: {len(jobs) - len(failed)} of {len(jobs)} runs finished; report with: "
          f"galad report {root}")
    return 1 if failed else 0


def _run_ray(jobs, workers: int) -> list[int]:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray: pip install 'galad[ray]'") from None
    if not ray.is_initialized():
        ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(_run_one)
    return ray.get([remote.remote(cmd, log_path) for _, cmd, log_path in jobs])
