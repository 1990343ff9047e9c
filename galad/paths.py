"""Where GALAD keeps downloaded games, datasets and trained weights (never inside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def galad_home() -> Path:
    """Root cache directory: ``$GALAD_HOME`` or the user cache dir (e.g. ``~/.cache/galad``)."""
    env = os.environ.get("GALAD_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("galad"))


def games_dir() -> Path:
    """Installed games: ``$GALAD_GAMES_DIR`` or ``<GALAD_HOME>/games``."""
    env = os.environ.get("GALAD_GAMES_DIR")
    return Path(env).expanduser() if env else galad_home() / "games"


def data_dir_is_set() -> bool:
    """Whether ``GALAD_DATA_DIR`` names a data directory."""
    return bool(os.environ.get("GALAD_DATA_DIR"))


def data_dir() -> Path:
    """Datasets: ``$GALAD_DATA_DIR`` or ``<GALAD_HOME>/data``."""
    env = os.environ.get("GALAD_DATA_DIR")
    return Path(env).expanduser() if env else galad_home() / "data"


def bundled_games_dir() -> Path:
    """The repository's ``games/`` folder (our own games and the Jiminy Cricket registry).

    From a source checkout it is ``games/`` beside the package; an installed wheel carries it as
    ``galad._games``.
    """
    source = Path(__file__).resolve().parent.parent / "games"
    if (source / "jiminy_cricket.toml").is_file():
        return source
    from importlib.resources import files

    return Path(str(files("galad._games")))
