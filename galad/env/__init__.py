"""Environments: the annotated games behind the Gymnasium API, their registry, download and engine.

Importing this package registers every game with Gymnasium as ``galad/<game>-v0``; the keyword arguments of
``gymnasium.make`` go to :class:`JiminyEnv`: ``gymnasium.make("galad/zork1-v0", start_percentage=20)``.
"""

from galad.env.jiminy import JiminyEnv
from galad.env.registry import DEFAULT_GAME, GameSpec, get_game, jiminy_games, register_gymnasium_envs

__all__ = ["DEFAULT_GAME", "GameSpec", "JiminyEnv", "get_game", "jiminy_games", "register_gymnasium_envs"]

register_gymnasium_envs()
