"""The galad command in a subprocess: output formats and bad input."""

import json
import subprocess
import sys

import pytest


def galad(*args, env=None):
    return subprocess.run([sys.executable, "-m", "galad.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_replay_json_default_game():
    r = galad("replay", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out) >= {"game", "steps", "score", "max_score", "markers", "label_vector_sum", "steps_per_s"}
    assert out["game"] == "demo" and out["score"] == out["max_score"] == 50


def test_replay_steps_lines(tmp_path):
    actions = tmp_path / "a.txt"
    actions.write_text("take penny\ne\ne\ntake oil\n")
    r = galad("replay", "--actions", str(actions), "--json", "--steps")
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert len(lines) == 5
    assert set(lines[0]) == {"step", "action", "reward", "score", "terminated", "truncated", "markers", "label_vectors"}
    assert lines[3]["label_vectors"] == [[2, 0, 0, 0]] and lines[-1]["label_vector_sum"] == [2, 0, 0, 0]


def test_replay_human_output():
    r = galad("replay")
    assert r.returncode == 0 and "label_vector_sum: [0, 0, 4, 1]" in r.stdout


def test_games_list_shows_the_demo_and_the_25(isolated_home):
    import os

    r = galad("games", "list", "--json", env={**os.environ})
    rows = json.loads(r.stdout)
    assert len(rows) == 26 and rows[0]["name"] == "demo" and rows[0]["installed"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["replay", "zork"], "did you mean zork1"),
        (["replay", "zork1"], "galad games download zork1"),
        (["replay", "--actions", "/nonexistent/file"], "actions file not found"),
        (["replay", "--seed", "0"], "seed must be"),
        (["games", "download"], "name at least one game"),
        (["games", "download", "zork1", "--source", "/nonexistent/dir"], "neither a URL nor a folder"),
        (["bench", "demo", "--sections", "env,speed"], "--sections: unknown speed"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(isolated_home, args, message):
    import os

    r = galad(*args, env={**os.environ})
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr and r.stderr.startswith("galad: error:")


def test_bench_writes_json_and_a_summary_table(tmp_path, isolated_home):
    import os

    out = tmp_path / "bench.json"
    r = galad("bench", "demo", "--sections", "env", "--repeats", "1", "--json", str(out), env={**os.environ})
    assert r.returncode == 0, r.stderr[-1500:]
    data = json.loads(out.read_text())
    assert data["env"]["env_replay"][0]["game"] == "demo" and data["env"]["env_replay"][0]["steps"] == 31
    assert "median ours / raw Frotz" in r.stdout and "galad bench" in r.stdout
