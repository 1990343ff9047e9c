"""``galad bench --against COMMIT``: this tree's training runs against an older commit's, side by side."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from galad.benchcompare import bench_against, source_root
from galad.errors import ConfigError


def _has_git_checkout() -> bool:
    try:
        source_root()
        return True
    except ConfigError:
        return False


pytestmark = pytest.mark.skipif(shutil.which("git") is None or not _has_git_checkout(),
                                reason="needs git and a git checkout of galad")


def test_a_name_that_is_no_commit_is_one_clear_error():
    with pytest.raises(ConfigError, match="not a commit"):
        bench_against("no-such-commit-anywhere", game="demo", agents=("drrn",))


def test_against_head_runs_both_trees_and_they_act_alike(tmp_path):
    logged = []
    out = bench_against("HEAD", game="demo", agents=("drrn",), envs=2, steps=3, rounds=1,
                        json_out=str(tmp_path / "cmp.json"), keep=str(tmp_path / "work"), log=logged.append)
    row = out["per_agent"]["drrn"]
    assert len(row["older_sps"]) == len(row["this_sps"]) == 1 and min(row["older_sps"] + row["this_sps"]) > 0
    assert row["speedup"] > 0 and row["identical_actions_per_env"] == [True, True]
    assert (tmp_path / "cmp.json").is_file() and any("drrn: this" in line for line in logged)
    # the older tree is a temporary worktree, removed afterwards
    trees = subprocess.run(["git", "-C", str(source_root()), "worktree", "list"], capture_output=True, text=True)
    assert "older-tree" not in trees.stdout
