"""Valid-action detection on the demo game: text-only actions, collapse, halts, hangs, caching."""

from __future__ import annotations

import time

import pytest

from galad.candidates.base import CandidateSource
from galad.candidates.grammar import load_grammar
from galad.candidates.valid import ValidActionSource, ValidConfig, game_state_from_env
from galad.env.jiminy import JiminyEnv


@pytest.fixture(scope="module")
def env():
    e = JiminyEnv("demo")
    e.reset()
    yield e
    e.close()


@pytest.fixture(scope="module")
def src():
    s = ValidActionSource(ValidConfig(workers=0, step_timeout=0.5, remember_hazards=False))
    yield s
    s.close()


def test_is_candidate_source(src):
    assert isinstance(src, CandidateSource)


def test_grammar_read_from_story_file():
    from galad.candidates.valid import _story

    spec, story = _story("demo")
    g = load_grammar(story, "demo")
    texts = {t.text for t in g.templates}
    assert g.source == "inform"
    assert "pour OBJ in OBJ" in texts and "north" in texts
    assert "porridge" in g.nouns


def test_text_only_action_is_valid(env, src):
    state = env.get_state()
    outs = {o.action: o for o in src.evaluate("demo", state, ["sing", "xyzzyq", "take unicornhorn"])}
    assert outs["sing"].status == "valid" and not outs["sing"].changed  # only prints text
    assert outs["xyzzyq"].status == "invalid"
    assert outs["take unicornhorn"].status == "invalid"


def test_equivalent_actions_collapse(env, src):
    outs = src.evaluate("demo", env.get_state(), ["n", "north", "go north", "e", "east"])
    sig = {o.action: o.signature for o in outs}
    assert sig["n"] == sig["north"] == sig["go north"]
    assert sig["e"] == sig["east"] != sig["n"]


def test_halt_is_skipped_and_rest_evaluated(env, src):
    outs = src.evaluate("demo", env.get_state(), ["sing", "galadhalt", "north", "xyzzyq"])
    status = {o.action: o.status for o in outs}
    assert status == {"sing": "valid", "galadhalt": "halted", "north": "valid", "xyzzyq": "invalid"}


def test_hang_is_bounded_and_rest_evaluated(env, src):
    t0 = time.perf_counter()
    outs = src.evaluate("demo", env.get_state(), ["galadhang", "north", "sing"])
    assert time.perf_counter() - t0 < 5
    status = {o.action: o.status for o in outs}
    assert status == {"galadhang": "timeout", "north": "valid", "sing": "valid"}


def test_propose_collapses_and_caches(env):
    with ValidActionSource(ValidConfig(workers=0, step_timeout=0.5)) as src:
        obs, _ = env.reset()
        state = game_state_from_env(env, obs)
        det = src.detect(state)
        acts = det.actions
        assert any("east" in g for g in det.groups.values())  # the cottage's exit (maybe under a synonym)
        assert any(len(g) > 1 for g in det.groups.values())  # equivalent candidates collapsed
        assert len(set(det.signatures.values())) == len(acts)
        assert "galadhalt" not in acts and "galadhang" not in acts  # skipped, remembered as hazards
        assert {o.action for o in det.skipped} == {"galadhalt", "galadhang"}
        t0 = time.perf_counter()
        again = src.propose([state])[0]
        assert again == acts and time.perf_counter() - t0 < 0.05  # from the cache
        # the walkthrough's first action is among the candidates, judged by its outcome
        target = src.evaluate("demo", env.get_state(), [env.walkthrough[0]])[0].signature
        assert target in det.signatures.values()


@pytest.mark.realgames
@pytest.mark.parametrize("game", ["zork1", "deadline"])
def test_real_game_candidates(game):
    from tests.conftest import require_real_game

    require_real_game(game)
    env = JiminyEnv(game)
    obs, _ = env.reset()
    with ValidActionSource(ValidConfig(workers=0)) as src:
        acts = src.propose([game_state_from_env(env, obs)])[0]
    assert len(acts) > 5
    env.close()
