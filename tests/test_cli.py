"""The galad command in a subprocess: output formats and bad input."""

import json
import re
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


def test_replay_steps_prints_one_json_line_per_step_then_the_summary(tmp_path):
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


def _parsed(argv):
    from galad.cli import _new_spelling, build_parser

    return vars(build_parser().parse_args(_new_spelling(list(argv))))


SHOW = "use 'galad candidates show [GAME]'"


@pytest.mark.parametrize(
    "old, new, hint",
    [
        (["candidates", "demo", "--at", "3"], ["candidates", "show", "demo", "--at", "3"], SHOW),
        (["candidates"], ["candidates", "show"], SHOW),
        (["candidates", "--budget", "150", "--workers", "0"], ["candidates", "show", "--budget", "150", "--workers", "0"],
         SHOW),
        (["-v", "candidates", "demo"], ["-v", "candidates", "show", "demo"], SHOW),
        (["candidates", "--states", "4", "bench", "demo"], ["candidates", "bench", "--states", "4", "demo"],
         "use 'galad candidates bench ...'"),
        (["distill", "--control", "--holdout", "demo"], ["lm", "distill", "--control", "--holdout", "demo"],
         "use 'galad lm distill'"),
    ],
)
def test_old_spellings_parse_as_the_new_ones_with_one_warning_line(capsys, old, new, hint):
    assert _parsed(old) == _parsed(new)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("galad: warning:") and "is deprecated" in err[0] and hint in err[0]


@pytest.mark.parametrize("argv", [["candidates", "show", "demo"], ["candidates", "bench", "demo"], ["lm", "distill"],
                                  ["candidates", "bench"], ["candidates", "--help"]])
def test_new_spellings_are_left_alone(argv):
    from galad.cli import _new_spelling

    assert _new_spelling(list(argv)) == argv


def test_candidates_subcommands_keep_their_flags():
    show = _parsed(["candidates", "show"])
    assert (show["game"], show["at"], show["source"], show["workers"], show["budget"]) == (None, 0, "valid", None, 0)
    bench = _parsed(["candidates", "bench", "a", "b", "--budget", "0", "150", "--no-jericho", "--json", "x.json"])
    assert bench["games"] == ["a", "b"] and bench["budget"] == [0, 150] and not bench.get("jericho")
    assert (bench["states"], bench["marker_states"], bench["no_jericho"], bench["json"]) == (8, 4, True, "x.json")
    assert _parsed(["candidates", "bench"])["budget"] == [0]


def test_distill_help_warns_and_shows_lm_distill(capsys):
    from galad.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["distill", "--help"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0 and out.startswith("usage: galad lm distill") and "--control" in out
    assert err == "galad: warning: 'galad distill' is deprecated; use 'galad lm distill'\n"


def test_candidates_show_prints_the_same_as_the_old_spelling():
    def normalised(r):
        assert r.returncode == 0, r.stderr
        return re.sub(r"in [0-9.]+ s", "in _ s", r.stdout)

    new = galad("candidates", "show", "demo", "--at", "3", "--workers", "0")
    old = galad("candidates", "demo", "--at", "3", "--workers", "0")
    assert new.stderr == "" and "demo at step 3:" in new.stdout
    assert normalised(old) == normalised(new)
    assert old.stderr == ("galad: warning: 'galad candidates [GAME]' is deprecated; "
                          "use 'galad candidates show [GAME]'\n")


def test_candidates_bench_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = galad("candidates", "bench", "demo", "--states", "1", "--marker-states", "0", "--no-jericho",
              "--workers", "0", "--budget", "0", "150", "--json", str(out))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    rows = json.loads(out.read_text())
    assert rows[0]["game"] == "demo" and set(rows[0]["ours"]) == {"0", "150"}


def test_candidates_show_takes_one_budget():
    r = galad("candidates", "show", "demo", "--budget", "0", "150")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unrecognized arguments: 150" in r.stderr
