"""``galad bench --against COMMIT``: end-to-end training throughput of this tree against an older commit.

Speed on a shared machine is only meaningful as a ratio measured side by side: the older commit is checked out
into a temporary git worktree, and the same short ``galad train`` runs (same game, agents, envs, steps, seed and
value model) run alternately from the older tree and from this one, ``rounds`` times each, in fresh processes.
Each run's env steps per second is its own ``profile.json``'s (the training loop only: setup, value-model loading
and the final evaluation are left out); the ratio of the medians is the speed-up. Runs with the same settings
at both commits are also compared action by action (their transcripts), which says whether the speed-up changed
what the agent did.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from galad.atomic import write_json_atomic
from galad.config import SCORING_AGENTS
from galad.errors import ConfigError

#: How a run starts in either tree, as a sweep starts its runs. The settings a run gets (game, agent, envs,
#: steps, seed, run_dir, valid_text_only, valid_budget, value_model) are flags both trees know.
_LAUNCH = ["-m", "galad.cli", "train", "--no-progress"]


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise ConfigError(f"git {' '.join(args)}: {out.stderr.strip() or 'failed'}")
    return out.stdout.strip()


def source_root() -> Path:
    """The git checkout this package runs from (the comparison needs one)."""
    here = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None:
        raise ConfigError("bench --against needs git")
    try:
        return Path(_git(here, "rev-parse", "--show-toplevel"))
    except ConfigError:
        raise ConfigError(f"bench --against needs a git checkout of galad; {here} is not one") from None


def _run_once(root: Path, settings: dict, name: str, log) -> dict:
    """One ``galad train`` run from the tree at ``root``; returns its profile and actions."""
    run_dir = Path(settings["run_dir"])
    flags = [x for k, v in settings.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, *_LAUNCH, "--run-name", name, *flags], cwd=root, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ConfigError(f"run {name} failed at {root}:\n{tail}")
    run = run_dir / name
    profile = json.loads((run / "profile.json").read_text(encoding="utf-8"))
    actions = []
    for f in sorted((run / "transcripts").glob("*.jsonl")):
        actions.append([json.loads(line)["action"] for line in f.read_text(encoding="utf-8").splitlines() if line])
    log(f"  {name}: {profile['sps']:.2f} env steps/s")
    return {"sps": profile["sps"], "phase_share": profile.get("phase_share", {}),
            "peak_memory_mb": profile.get("peak_memory_mb"), "actions": actions}


def _model_id(folder: str | None) -> str | None:
    """What the results say of the value model: its card's id (a folder path says nothing on another machine)."""
    if folder is None:
        return None
    from galad.values.train import read_card

    card = read_card(Path(folder))
    return card["model_id"] if card else Path(folder).name


def bench_against(commit: str, game: str = "zork1", agents=("drrn", "galad"), envs: int = 8, steps: int = 30,
                  rounds: int = 2, seed: int = 1, value_model: str | None = None, text_only: str = "all",
                  budget: int = 0, json_out: str | None = None, keep: str | None = None, log=print) -> dict:
    """Throughput of this tree over ``commit``'s, per agent, measured side by side (see the module doc).

    ``value_model``: the scoring agents' model, the same folder for both commits (default: this tree's default
    model, trained first if needed). ``budget``: the runs' ``valid_budget`` (0: every candidate). ``keep``: a folder
    to keep the runs in (default: a temporary one).
    """
    from galad.values.loading import ensure_trained

    if rounds < 1 or steps < 1 or envs < 1 or budget < 0:
        raise ConfigError("--rounds, --agent-steps and --envs must be >= 1, --budget >= 0")
    root = source_root()
    found = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
                           capture_output=True, text=True)
    sha = found.stdout.strip() if commit and found.returncode == 0 else ""
    if not sha:
        raise ConfigError(f"--against {commit!r}: not a commit of {root.name}")
    head = _git(root, "rev-parse", "HEAD")
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    model_dir = None
    if any(a in SCORING_AGENTS for a in agents):
        folder = ensure_trained(value_model, game)
        if folder is None:
            raise ConfigError(f"--value-model {value_model}: both commits need it as a folder of a trained model")
        model_dir = str(folder)
    work = Path(keep).resolve() if keep else Path(tempfile.mkdtemp(prefix="galad-bench-"))  # the runs start elsewhere
    older = work / "older-tree"
    result: dict = {"against": sha, "this": head, "this_has_uncommitted_changes": dirty, "game": game,
                    "envs": envs, "steps": steps, "rounds": rounds, "seed": seed, "valid_text_only": text_only,
                    "valid_budget": budget,
                    "value_model": _model_id(model_dir), "load_average_at_start": round(os.getloadavg()[0], 2),
                    "per_agent": {}}
    try:
        if older.exists():
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(older)], capture_output=True)
        _git(root, "worktree", "add", "--detach", str(older), sha)
        trees = {"older": older, "this": root}
        for agent in agents:
            runs: dict[str, list[dict]] = {"older": [], "this": []}
            for r in range(rounds):
                for side, tree in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                    settings = {"game": game, "agent": agent, "envs": envs, "steps": steps, "seed": seed,
                                "run_dir": str(work / "runs"), "valid_text_only": text_only}
                    if budget:
                        settings["valid_budget"] = budget
                    if agent in SCORING_AGENTS:
                        settings["value_model"] = model_dir
                    runs[side].append(_run_once(tree, settings, f"{agent}-{side}-{r}", log))
            med = {s: statistics.median(x["sps"] for x in v) for s, v in runs.items()}
            same = [a == b for a, b in zip(runs["older"][0]["actions"], runs["this"][0]["actions"])]
            row = {"older_sps": [x["sps"] for x in runs["older"]], "this_sps": [x["sps"] for x in runs["this"]],
                   "speedup": round(med["this"] / max(1e-9, med["older"]), 2),
                   "identical_actions_per_env": same,
                   "this_phase_share": runs["this"][0]["phase_share"],
                   "older_phase_share": runs["older"][0]["phase_share"],
                   "peak_memory_mb": {s: v[0]["peak_memory_mb"] for s, v in runs.items()}}
            result["per_agent"][agent] = row
            log(f"{agent}: this {med['this']:.2f} env steps/s, {sha[:7]} {med['older']:.2f}: "
                f"{row['speedup']:.2f}x; actions identical in {sum(same)}/{len(same)} envs")
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(older)], capture_output=True)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    if json_out:
        write_json_atomic(json_out, result)
    return result
