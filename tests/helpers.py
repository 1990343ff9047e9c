"""Helpers the tests import (``from helpers import ...``): where the shipped data lives, and the real games."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    env = os.environ.get("GALAD_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


JC_DATA = _data_dir() / "jiminy_cricket"


def real_game_installed(name: str) -> bool:
    from galad.env.registry import get_game

    return get_game(name).is_installed()


def require_real_game(name: str) -> None:
    if not real_game_installed(name):
        pytest.skip(f"{name} is not installed (galad games download {name})")
