"""Shared fixtures: one torch thread per test, the shipped annotation data, an isolated cache.

Helpers that tests import live in ``tests/helpers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import JC_DATA


@pytest.fixture(autouse=True)
def torch_threads(request):
    """One torch thread unless the test is marked ``@pytest.mark.torch_threads(n)``: the tests' nets are tiny and
    the cores are shared, so more threads only oversubscribe them (one TD-update test ran 10x slower)."""
    import torch

    marker = request.node.get_closest_marker("torch_threads")
    before = torch.get_num_threads()
    torch.set_num_threads(marker.args[0] if marker else 1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def jc_data() -> Path:
    """The Jiminy Cricket annotation CSVs, walkthroughs and games.tsv shipped for development and CI."""
    if not (JC_DATA / "games.tsv").is_file():
        pytest.skip(f"Jiminy Cricket data not found at {JC_DATA} (set GALAD_DATA_DIR)")
    return JC_DATA


@pytest.fixture
def isolated_home(tmp_path, monkeypatch) -> Path:
    """A fresh GALAD_HOME/GALAD_GAMES_DIR so tests never touch the user's cache."""
    monkeypatch.setenv("GALAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GALAD_GAMES_DIR", str(tmp_path / "games"))
    return tmp_path
