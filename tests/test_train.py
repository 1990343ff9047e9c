"""The trainer on the demo game with test-double candidates and scorer: files, tags, determinism, resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SMALL = ["--envs", "2", "--embedding-dim", "16", "--hidden-dim", "16", "--batch-size", "8", "--memory-size", "64",
         "--max-tokens", "24", "--episode-steps", "20", "--log-every", "5", "--no-progress"]


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, str(HERE / "_train_stub.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=HERE.parent)


def only_run(root: Path) -> Path:
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def lines(run: Path, env: int = 0) -> list[str]:
    return (run / "transcripts" / f"env{env}.jsonl").read_text().splitlines()


def start_run(args, root: Path, min_lines: int, checkpointed: bool = False, **popen):
    """Start ``galad train`` in the background; return it and its run folder once env 0 has ``min_lines`` lines
    (and a checkpoint, with ``checkpointed``)."""
    proc = subprocess.Popen([sys.executable, str(HERE / "_train_stub.py"), *args], cwd=HERE.parent,
                            stdout=subprocess.DEVNULL, **popen)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        runs = [p for p in root.iterdir()] if root.exists() else []
        if runs and (runs[0] / "transcripts" / "env0.jsonl").exists() and len(lines(runs[0])) >= min_lines \
                and (not checkpointed or (runs[0] / "checkpoints" / "latest.pt").exists()):
            return proc, runs[0]
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the run did not get going")


@pytest.fixture(scope="module")
def galad_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    r = run_cli("train", "--agent", "galad", "--steps", "60", "--run-dir", str(root), "--seed", "3", *SMALL)
    assert r.returncode == 0, r.stderr[-2000:]
    return only_run(root), r


def test_run_folder_layout_and_summary(galad_run):
    run, r = galad_run
    assert run.name.startswith("demo__galad__s3__")
    for name in ("config.json", "summary.json", "episodes.jsonl", "checkpoints/latest.pt", "profile.json",
                 "value_cache.sqlite"):  # the run's own P(harm) scores
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["episodes_total"] == 6  # 2 envs x 60 steps / 20-step episodes
    profile = json.loads((run / "profile.json").read_text())
    assert profile["steps"] == 60 and profile["sps"] > 0 and summary["sps"] == profile["sps"]
    assert set(profile["phase_share"]) == {"candidates", "policy", "wait", "q_values", "update", "env", "bookkeeping"}
    if sys.platform == "linux":  # learner + 2 env workers, each well over 10 MB resident
        assert profile["peak_memory_mb"] > 30 and summary["peak_memory_mb"] == profile["peak_memory_mb"]
    assert "tensorboard --logdir" in r.stdout and "galad watch" in r.stdout


def test_transcript_lines_record_everything(galad_run):
    run, _ = galad_run
    steps = [json.loads(x) for x in lines(run)]
    assert len(steps) == 60
    s = steps[0]
    for key in ("obs", "candidates", "harm", "removed", "removed_harm", "action", "q_values", "reward", "score",
                "markers", "label_vectors"):
        assert key in s
    assert all(a not in st["candidates"] for st in steps for a in st["removed"])
    assert any(st["removed"] for st in steps)  # the filter removed the flagged actions
    assert all(h <= 0.39 for st in steps for h in st["harm"] if h is not None)


def test_tensorboard_has_every_design_tag(galad_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = galad_run
    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {"charts/episodic_score", "charts/percent_completion", "charts/SPS", "morality/immorality",
                "morality/bad_others", "morality/bad_self", "morality/good_others", "morality/good_self",
                "morality/cumulative_immorality", "filter/removed_fraction", "losses/td_loss", "losses/q_values"}
    assert expected <= tags, expected - tags


def test_same_seed_same_first_200_transcript_lines(tmp_path):
    for name in ("a", "b"):
        r = run_cli("train", "--agent", "cmps", "--steps", "100", "--run-dir", str(tmp_path / name), "--seed", "5",
                    *SMALL)
        assert r.returncode == 0, r.stderr[-2000:]
    a, b = only_run(tmp_path / "a"), only_run(tmp_path / "b")
    la = lines(a, 0) + lines(a, 1)
    lb = lines(b, 0) + lines(b, 1)
    assert len(la) == 200 and la == lb


def test_sigkill_then_resume_loses_no_line(tmp_path):
    root = tmp_path / "runs"
    args = ["train", "--agent", "drrn", "--steps", "120", "--run-dir", str(root), "--seed", "2",
            "--checkpoint-every", "20", *SMALL]
    proc, run = start_run(args, root, 50, checkpointed=True, stderr=subprocess.DEVNULL)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    r = run_cli("train", "--resume", str(run), "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    for env in (0, 1):
        steps = [json.loads(x)["step"] for x in lines(run, env)]
        assert steps == list(range(120))  # every step once: nothing lost, nothing repeated
    # and the resumed run is the run that would have happened without the kill
    ref = tmp_path / "ref"
    r = run_cli("train", "--agent", "drrn", "--steps", "120", "--run-dir", str(ref), "--seed", "2",
                "--checkpoint-every", "20", *SMALL)
    assert lines(only_run(ref), 0) == lines(run, 0)


def test_resume_with_more_steps_continues_as_a_longer_run(tmp_path):
    """``--resume RUN --steps N`` (the one setting a resumed run may change) trains on to N steps, exactly as a
    run of N steps from the start would have."""
    base = ["--agent", "drrn", "--seed", "2", "--checkpoint-every", "10", *SMALL]
    r = run_cli("train", "--steps", "30", "--run-dir", str(tmp_path / "short"), *base)
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "short")
    (run / "summary.json").unlink()  # as if stopped after its last checkpoint
    r = run_cli("train", "--resume", str(run), "--steps", "50", "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("train", "--steps", "50", "--run-dir", str(tmp_path / "long"), *base)
    assert r.returncode == 0, r.stderr[-2000:]
    for env in (0, 1):
        assert len(lines(run, env)) == 50 and lines(run, env) == lines(only_run(tmp_path / "long"), env)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_the_process_group_checkpoints_then_resumes(tmp_path, sig):
    """Ctrl-C in a terminal (SIGINT) or a scheduler's preemption (SIGTERM) reach the env workers too."""
    root = tmp_path / "runs"
    args = ["train", "--agent", "drrn", "--steps", "80", "--run-dir", str(root), "--seed", "2",
            "--checkpoint-every", "1000", *SMALL]
    proc, run = start_run(args, root, 30, stderr=subprocess.PIPE, text=True, start_new_session=True)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "checkpoint saved" in err and "Traceback" not in err, err[-2000:]
    done = len(lines(run))
    assert 30 <= done < 80 and not (run / "summary.json").exists()
    r = run_cli("train", "--resume", str(run), "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    for env in (0, 1):
        assert [json.loads(x)["step"] for x in lines(run, env)] == list(range(80))
    ref = tmp_path / "ref"
    r = run_cli(*[a if a != str(root) else str(ref) for a in args])
    assert lines(only_run(ref), 0) == lines(run, 0)  # the interrupted run is the run without the interrupt


def test_bad_input_one_line_exit_2_folder_untouched(tmp_path, galad_run):
    run, _ = galad_run
    before = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*"))
    new_run = ["--run-dir", str(tmp_path / "x")]
    cases = [
        (["train", "--agent", "nope", *new_run], "invalid choice"),
        (["train", "--game", "zork", *new_run], "unknown game"),
        (["train", "--resume", str(tmp_path)], "not a galad run folder"),
        (["train", "--resume", str(run)], "is finished"),
        (["train", "--steps", "0", *new_run], "steps must be"),
        (["evaluate", str(tmp_path)], "not a galad run folder"),
        (["watch", str(tmp_path)], "not a galad run folder"),
    ]
    for args, msg in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and msg in r.stderr, (args, r.stderr)
    assert not (tmp_path / "x").exists()
    assert sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) == before


def test_checkpoint_from_another_config_is_refused(tmp_path, galad_run):
    src, _ = galad_run
    root = tmp_path / "runs"
    proc = run_cli("train", "--agent", "oracle", "--steps", "40", "--run-dir", str(root), *SMALL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    other = only_run(root)
    (other / "summary.json").unlink()
    shutil.copy(src / "checkpoints" / "latest.pt", other / "checkpoints" / "latest.pt")
    before = (other / "transcripts" / "env0.jsonl").read_bytes()
    r = run_cli("train", "--resume", str(other))
    assert r.returncode == 2 and "another game or configuration" in r.stderr and r.stderr.count("\n") == 1
    assert (other / "transcripts" / "env0.jsonl").read_bytes() == before


def test_resume_with_another_value_model_is_refused(tmp_path, galad_run):
    src, _ = galad_run
    run = tmp_path / src.name
    shutil.copytree(src, run)
    (run / "summary.json").unlink()  # unfinished, so resumable
    assert json.loads((run / "profile.json").read_text())["value_model"] == "keyword@1"
    before = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*"))
    r = subprocess.run([sys.executable, str(HERE / "_train_stub.py"), "train", "--resume", str(run)],
                       capture_output=True, text=True, timeout=300, cwd=HERE.parent,
                       env=dict(os.environ, GALAD_STUB_VALUE_MODEL="keyword@2"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "value model keyword@1" in r.stderr and "keyword@2" in r.stderr
    assert sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) == before


def test_evaluate_and_watch(galad_run, tmp_path):
    run, _ = galad_run
    r = run_cli("evaluate", str(run), "--json")
    out = json.loads(r.stdout)[0]
    assert out["agent"] == "galad" and out["episodes"] == 6
    r = run_cli("watch", str(run), "--episode", "0")
    assert r.returncode == 0 and "episode harm so far" in r.stdout
    html = tmp_path / "t.html"
    r = run_cli("watch", str(run), "--html", str(html))
    assert r.returncode == 0 and "<html>" in html.read_text() and "removed" in html.read_text()


@pytest.mark.parametrize("agent", ["drrn", "cmps"])
def test_overlapped_next_step_is_the_same_run(tmp_path, monkeypatch, agent):
    """The next step's candidates and policy, worked out beside the TD update, give the run one after the other
    gives: the same transcripts, line for line (episodes end and reset in between)."""
    monkeypatch.syspath_prepend(str(HERE))
    import _train_stub

    from galad import train as tr

    # the stub's doubles, undone after this test (other tests build the real pieces in this process)
    monkeypatch.setattr(tr, "make_candidate_source", lambda cfg, disk_cache=False: _train_stub.FixedCandidates())
    monkeypatch.setattr(tr, "prepare_value_model", lambda cfg: None)
    monkeypatch.setattr(tr, "load_value_model", lambda cfg, score_cache=True: _train_stub.KeywordScorer())
    from galad.config import TrainConfig
    from galad.runs import RunFolder

    out = {}
    for overlap in (False, True):
        cfg = TrainConfig(agent=agent, steps=45, envs=2, seed=4, embedding_dim=16, hidden_dim=16, batch_size=8,
                          memory_size=64, max_tokens=24, episode_steps=20, log_every=5,
                          run_dir=str(tmp_path / str(overlap))).validate()
        run = RunFolder.new(cfg)
        pieces = tr.build_pieces(cfg, run, disk_cache=False)
        trainer = tr.Trainer(cfg, run, pieces.pool, pieces.source, pieces.policy, overlap=overlap)
        try:
            trainer.run_loop(progress=False)
        finally:
            trainer.close()
        out[overlap] = [lines(run.path, e) for e in range(2)]
        assert {"wait", "update", "candidates"} <= set(trainer.seconds) if overlap else True
    assert len(out[True][0]) == 45 and out[True] == out[False]
    ends = [json.loads(x) for x in out[True][0]]
    assert any(x["truncated"] or x["terminated"] for x in ends)  # resets happened inside the compared stretch
