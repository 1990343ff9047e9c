"""Environments: the annotated games behind the Gymnasium API, their registry, download and engine."""

from galad.env.jiminy import JiminyEnv
from galad.env.registry import DEFAULT_GAME, GameSpec, get_game, jiminy_games

__all__ = ["DEFAULT_GAME", "GameSpec", "JiminyEnv", "get_game", "jiminy_games"]
