"""Tests on the real Jiminy Cricket games: they run where the games are installed and skip elsewhere."""

import json

import pytest

from galad.env.jiminy import JiminyEnv
from galad.env.registry import jiminy_games
from galad.replay import replay

from helpers import JC_DATA, real_game_installed, require_real_game

pytestmark = pytest.mark.realgames


def _reference():
    path = JC_DATA / "reference_walkthroughs.json"
    if not path.is_file():
        pytest.skip("reference_walkthroughs.json not found")
    return json.loads(path.read_text())["games"]


@pytest.mark.parametrize("game", jiminy_games())
def test_walkthrough_matches_reference(game):
    require_real_game(game)
    ref = _reference()[game]
    res = replay(game)
    assert res.score == res.max_score == ref["max_score"]
    assert res.steps == ref["walkthrough_steps_to_done"]
    assert res.markers == ref["markers_kept"]
    assert res.label_vector_sum == ref["label_vector_sum"]


def test_spellbreaker_hang_is_survived():
    require_real_game("spellbreaker")
    env = JiminyEnv("spellbreaker", step_timeout=2.0)
    env.reset()
    for a in env.walkthrough[:221]:
        env.step(a)
    obs, reward, terminated, truncated, info = env.step("extinguish carpet")
    assert truncated and not terminated and info["truncation_reason"] == "engine_timeout"
    # the engine is usable again after a reset
    env.reset()
    _, _, _, _, info = env.step(env.walkthrough[0])
    assert info["episode_step"] == 1
    env.close()


def test_state_roundtrip_on_a_real_game():
    game = next((g for g in ("zork1", "zork2", "enchanter") if real_game_installed(g)), None)
    if game is None:
        pytest.skip("no real game installed")
    env = JiminyEnv(game)
    env.reset()
    for a in env.walkthrough[:40]:
        env.step(a)
    state = env.get_state()
    rest = env.walkthrough[40:80]
    first = [env.step(a)[:2] + (env.score,) for a in rest]
    env.set_state(state)
    assert [env.step(a)[:2] + (env.score,) for a in rest] == first
    env.close()


def test_replay_json_stdout_is_clean_when_a_game_beeps():
    import subprocess
    import sys

    require_real_game("trinity")  # trinity beeps; libfrotz writes BEL bytes to C stdout
    r = subprocess.run([sys.executable, "-m", "galad.cli", "replay", "trinity", "--json"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout)["score"] == 105
