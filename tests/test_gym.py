"""Every game is a Gymnasium environment: ``gymnasium.make("galad/<game>-v0", **JiminyEnv kwargs)``."""

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import galad.env  # noqa: F401  (registers the games)
from galad.env.jiminy import JiminyEnv
from galad.env.registry import registry

from helpers import require_real_game


def test_every_game_is_registered():
    assert {f"galad/{name}-v0" for name in registry()} <= set(gym.registry)
    assert gym.spec("galad/demo-v0").entry_point == "galad.env.jiminy:JiminyEnv"


def test_make_passes_kwargs_to_jiminy_env():
    env = gym.make("galad/demo-v0", start_percentage=50, step_limit=3, seed=7)
    try:
        inner = env.unwrapped
        assert isinstance(inner, JiminyEnv) and inner.game == "demo"
        assert (inner.start_percentage, inner.step_limit, inner.seed_) == (50.0, 3, 7)
        obs, info = env.reset()
        assert obs in env.observation_space and info["moves"] > 0 and info["episode_step"] == 0
        truncated = False
        for _ in range(3):
            *_, truncated, info = env.step("look")
        assert truncated and info["truncation_reason"] == "step_limit"
    finally:
        env.close()


def test_make_gives_the_same_episode_as_the_class():
    env, direct = gym.make("galad/demo-v0"), JiminyEnv("demo")
    try:
        assert env.reset(seed=3) == direct.reset(seed=3)
        for action in ("take penny", "e", "e", "take oil"):
            assert env.step(action) == direct.step(action)
    finally:
        env.close()
        direct.close()


def test_check_env_passes_on_the_demo():
    env = gym.make("galad/demo-v0")
    try:
        check_env(env.unwrapped)  # spaces, seeded reset determinism, options, step determinism, close twice
    finally:
        env.close()


@pytest.mark.realgames
def test_make_a_real_game():
    require_real_game("zork1")
    env = gym.make("galad/zork1-v0", start_percentage=20)
    try:
        obs, info = env.reset()
        assert obs in env.observation_space and info["score"] == env.unwrapped.starting_score
        assert env.unwrapped.start_percentage == 20.0
        obs, reward, terminated, truncated, info = env.step("look")
        assert isinstance(obs, str) and not terminated
    finally:
        env.close()
