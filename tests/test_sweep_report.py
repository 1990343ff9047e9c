"""Sweep grids (dry run, skip finished, resume) and the report on synthetic run folders."""

import csv
import json
import subprocess
import sys

import pytest

from galad.config import AGENTS
from galad.report import collect, cumulative_immorality, report, table
from galad.sweep import Sweep, command
from galad.errors import ConfigError, GaladError

SWEEP = """
name = "t"
games = ["demo"]
agents = ["drrn", "galad"]
seeds = [1, 2]
start_percentages = [0, 50]
[train]
envs = 2
steps = 10
"""


def write_run(root, game, agent, seed, start, episodes, finished=True):
    run = root / f"{game}__{agent}__s{seed}__p{start:g}"
    (run / "transcripts").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"game": game, "agent": agent, "seed": seed,
                                                 "start_percentage": start, "envs": 2}))
    with (run / "episodes.jsonl").open("w") as f:
        for k, (ret, imm) in enumerate(episodes):
            f.write(json.dumps({"env": k % 2, "episode": k // 2, "env_steps": 100 * (k + 1), "steps": 100,
                                "score": ret, "starting_score": 0, "max_score": 50, "return": ret,
                                "immorality": imm, "bad_others": imm, "bad_self": 0, "good_others": 0,
                                "good_self": 0, "percent_completion": 2 * ret}) + "\n")
    if finished:
        (run / "summary.json").write_text("{}")
    return run


def test_grid_expands_to_train_commands_and_a_checkpointed_run_resumes(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    runs = Sweep.load(f).runs(tmp_path / "out")
    assert len(runs) == 8 and runs[0].name == "demo__drrn__s1__p0"
    cmd = command(runs[0])
    assert cmd[3:5] == ["train", "--no-progress"] and "--run-name" in cmd and "--context-mode" not in cmd
    write_run(tmp_path / "out", "demo", "drrn", 1, 0, [(10, 1)], finished=False)
    (runs[0].path / "checkpoints").mkdir()
    (runs[0].path / "checkpoints" / "latest.pt").write_bytes(b"x")
    assert command(runs[0])[-2:] == ["--resume", str(runs[0].path)]


def test_sweep_skips_finished_runs(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    out = tmp_path / "out"
    for agent in ("drrn", "galad"):
        for seed in (1, 2):
            for start in (0, 50):
                write_run(out, "demo", agent, seed, start, [(10, 1)])
    r = subprocess.run([sys.executable, "-m", "galad.cli", "sweep", str(f), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "8 finished, 0 to run" in r.stdout


def test_bad_sweep_files(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(SWEEP.replace("envs = 2", "bogus = 2"))
    with pytest.raises(ConfigError, match="bogus"):
        Sweep.load(f)
    f.write_text(SWEEP.replace('["demo"]', '["zork"]'))
    with pytest.raises(GaladError, match="unknown game"):
        Sweep.load(f).runs(tmp_path)


def test_report_table_verdict_and_plots(tmp_path):
    root = tmp_path / "sweep"
    for seed in (1, 2):
        write_run(root, "demo", "cmps", seed, 0, [(20, 4), (20, 4)])
        write_run(root, "demo", "galad", seed, 0, [(25, 1), (25, 1)])
        write_run(root, "demo", "drrn", seed, 0, [(20, 6), (20, 6)])
    # a run's profile (env steps/s, peak memory) joins its row; runs without one get empty cells
    (root / "demo__galad__s2__p0" / "profile.json").write_text(json.dumps({"sps": 7.5, "peak_memory_mb": 900}))
    assert report(str(root)) == 0
    with (root / "report" / "runs.csv").open() as f:
        csv_rows = {r["run"]: r for r in csv.DictReader(f)}
    assert csv_rows["demo__galad__s2__p0"]["peak_memory_mb"] == "900" and csv_rows["demo__cmps__s1__p0"]["sps"] == ""
    text = (root / "report" / "results.md").read_text()
    assert "GALAD beats CMPS" in text and "**average**" in text
    # completion 2 x 25 = 50 vs 40; immorality 1 vs 6
    assert "GALAD against DRRN: immorality 1.00 vs 6.00 (0.17x), % completion 50.00 vs 40.00 (1.25x)" in text
    for name in ("table.csv", "runs.csv", "curves.csv", "harm_by_action.csv", "removed_per_state.csv",
                 "completion_vs_immorality.png", "safe_exploration.png", "training_curve.png",
                 "cumulative_immorality.png", "per_game.png"):
        assert (root / "report" / name).stat().st_size > 0
    curves = cumulative_immorality(root)
    assert curves["galad"][-1][1] == 2.0 and curves["drrn"][-1][1] == 12.0
    # a game where an agent made no progress: its relative immorality is inf, the average's stays the ratio
    write_run(root, "other", "galad", 1, 0, [(0, 3), (0, 3)])
    _, body, avg = table(collect(root))
    assert [r for r in body if r[0] == "other"][0][-1] == "inf"
    assert avg["galad"]["relative_immorality"] == pytest.approx((1 + 3) / 2 / ((50 + 0) / 2))


def test_report_on_empty_folder(tmp_path):
    with pytest.raises(ConfigError, match="no galad runs"):
        report(str(tmp_path))


def test_shipped_sweep_files_are_valid(tmp_path):
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.toml"))
    assert {f.name for f in files} >= {"paper.toml", "quick.toml", "demo.toml"}
    for f in files:
        runs = Sweep.load(f).runs(tmp_path)
        assert runs and all(r.config.agent in AGENTS for r in runs)


def test_ray_backend_runs_a_tiny_sweep(tmp_path, isolated_home):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'galad[ray]')")
    f = tmp_path / "tiny.toml"
    f.write_text('name = "tiny"\ngames = ["demo"]\nagents = ["drrn", "oracle"]\nseeds = [1]\n[train]\n'
                 'envs = 1\nsteps = 3\nepisode_steps = 5\nembedding_dim = 8\nhidden_dim = 8\nbatch_size = 2\n'
                 'memory_size = 8\nmax_tokens = 8\n')
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "galad.cli", "sweep", str(f), "--out", str(out), "--backend", "ray",
           "--workers", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "2 of 2 runs finished" in r.stdout
    for agent in ("drrn", "oracle"):
        run = out / f"demo__{agent}__s1__p0"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["agent"] == agent and summary["episodes_total"] == 0  # 3 steps: no 5-step episode ended
        assert len((run / "transcripts" / "env0.jsonl").read_text().splitlines()) == 3
        assert (out / "logs" / f"{run.name}.log").is_file()  # written by the Ray task
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0 and "2 finished, 0 to run" in again.stdout
