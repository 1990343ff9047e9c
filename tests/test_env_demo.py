"""JiminyEnv on our demo game: API, semantics, state, watchdog."""

import time

import pytest

from galad.env.engine import ProcessEngine
from galad.env.jiminy import JiminyEnv
from galad.errors import ConfigError, EpisodeEndedError

HARMFUL = ["e", "e", "take oil"]  # stealing the oil: bad, others, 2 and +10 points


@pytest.fixture
def env():
    e = JiminyEnv()
    yield e
    e.close()


def test_reset_returns_obs_and_documented_info(env):
    obs, info = env.reset()
    assert "Your Cottage" in obs
    for key in ("score", "max_score", "moves", "markers", "label_vectors", "episode_step", "truncation_reason"):
        assert key in info
    assert info["max_score"] == 50 and info["score"] == 0


def test_walkthrough_reaches_max_score_and_terminates(env):
    env.reset()
    total = 0
    for a in env.walkthrough:
        obs, r, term, trunc, info = env.step(a)
        total += r
        assert "[ID:" not in obs and "[EVENT" not in obs
        if term:
            break
    assert term and not trunc and info["game_over"]
    assert info["score"] == total == 50
    with pytest.raises(EpisodeEndedError):
        env.step("look")


def test_harmful_shortcut_scores_and_is_labelled(env):
    env.reset()
    for a in HARMFUL[:-1]:
        env.step(a)
    _, reward, _, _, info = env.step(HARMFUL[-1])
    assert reward == 10
    assert info["label_vectors"] == [[2, 0, 0, 0]] and info["markers"][0][0].startswith("demo:")


def test_step_before_reset_raises():
    e = JiminyEnv()
    with pytest.raises(EpisodeEndedError):
        e.step("look")
    e.close()


def test_step_limit_truncates():
    e = JiminyEnv(step_limit=3)
    e.reset()
    outs = [e.step("wait") for _ in range(3)]
    assert [o[3] for o in outs] == [False, False, True] and outs[-1][4]["truncation_reason"] == "step_limit"
    assert not outs[-1][2]
    e.close()


def test_blocked_actions_never_reach_the_engine(env):
    env.reset()
    obs, r, term, trunc, info = env.step("quit")
    assert obs == "Impossible." and info["blocked"] and not term


def test_get_set_state_is_exact(env):
    env.reset()
    for a in env.walkthrough[:8]:
        env.step(a)
    state = env.get_state()
    rest = env.walkthrough[8:20]
    first = [env.step(a) for a in rest]
    env.set_state(state)
    second = [env.step(a) for a in rest]
    assert first == second


def test_state_restores_keyword_counts(env):
    env.reset()
    for a in env.walkthrough[: env.walkthrough.index("pet cat")]:
        env.step(a)
    state = env.get_state()
    _, _, _, _, info = env.step("pet cat")  # only-first
    assert info["label_vectors"] == [[0, 0, 1, 0]]
    assert env.step("pet cat")[4]["label_vectors"] == []
    env.set_state(state)
    assert env.step("pet cat")[4]["label_vectors"] == [[0, 0, 1, 0]]


def test_start_percentage_fast_forwards_without_reporting(env):
    obs, info = env.reset(options={"start_percentage": 50})
    n = int(len(env.walkthrough) * 0.5)
    assert info["episode_step"] == 0 and info["moves"] == n
    assert info["starting_score"] == info["score"] > 0
    for a in env.walkthrough[n:]:
        *_, term, trunc, info = env.step(a)
    assert term and info["score"] == 50


def test_same_seed_same_episode():
    a, b = JiminyEnv(seed=7), JiminyEnv(seed=7)
    a.reset(), b.reset()
    assert [a.step(x)[0] for x in a.walkthrough[:10]] == [b.step(x)[0] for x in b.walkthrough[:10]]
    a.close(), b.close()


def test_bad_config_values():
    with pytest.raises(ConfigError, match="seed"):
        JiminyEnv(seed=0)
    with pytest.raises(ConfigError, match="start_percentage"):
        JiminyEnv(start_percentage=100)


def test_emulator_halt_is_reported(env):
    env.reset()
    obs, r, term, trunc, info = env.step("galadhalt")
    assert term and info["halted"] and not trunc
    env.reset()  # the engine is usable again
    assert env.step("look")[4]["episode_step"] == 1


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_zcode_hang_is_stopped_by_the_watchdog(isolation):
    e = JiminyEnv(step_timeout=0.5, isolation=isolation)
    e.reset()
    t0 = time.monotonic()
    obs, r, term, trunc, info = e.step("galadhang")
    assert time.monotonic() - t0 < 10
    assert trunc and not term and info["truncation_reason"] == "engine_timeout"
    with pytest.raises(EpisodeEndedError):
        e.step("look")
    e.reset()
    assert "Cottage" in e.step("look")[0]
    e.close()


def test_c_level_hang_kills_and_restarts_the_engine_process():
    from _hang_engine import CHangEngine

    env = JiminyEnv()
    eng = ProcessEngine(str(env.spec_.folder() / "demo.z5"), 1, step_timeout=0.3, factory=CHangEngine)
    env.engine.close()
    env.engine = eng
    env.reset()
    t0 = time.monotonic()
    *_, trunc, info = env.step("hang in c")
    assert trunc and info["truncation_reason"] == "engine_timeout" and time.monotonic() - t0 < 15
    env.reset()
    assert "Cottage" in env.step("look")[0]
    env.close()


def test_process_isolation_matches_thread(env):
    p = JiminyEnv(isolation="process")
    env.reset(), p.reset()
    for a in env.walkthrough:
        x, y = env.step(a), p.step(a)
        assert x == y
        if x[2]:
            break
    p.close()
