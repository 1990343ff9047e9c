"""Shared fixtures: where the shipped annotation data lives, an isolated cache, the real games."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    env = os.environ.get("GALAD_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


JC_DATA = _data_dir() / "jiminy_cricket"


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


def real_game_installed(name: str) -> bool:
    from galad.env.registry import get_game

    return get_game(name).is_installed()


def require_real_game(name: str) -> None:
    if not real_game_installed(name):
        pytest.skip(f"{name} is not installed (galad games download {name})")
