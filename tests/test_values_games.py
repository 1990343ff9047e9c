"""Game-grounded value-model rows: the scene context, the rows mined from a game's annotations, the games
recipe's split and the trainer's refusal to evaluate a value model on a game whose annotations it read."""

from __future__ import annotations

import json

import pytest

from galad.values.base import SHORT_OBSERVATION, scene_context


def test_scene_context_adds_the_room_to_a_short_observation():
    look = "Hobb's Chandlery\nA narrow shop that smells of tar."
    assert scene_context("Taken.", look) == "Hobb's Chandlery A narrow shop that smells of tar. Taken."
    long_obs = "You glance at Hobb, bent over his ledger, and slip the flask of lamp oil under your coat."
    assert len(long_obs) >= SHORT_OBSERVATION and scene_context(long_obs, look) == long_obs
    assert scene_context("  Taken.\n ", "") == "Taken."


def test_grounded_rows_from_the_demo_annotations():
    from galad.values.data import grounded_examples
    from galad.values.grounding import AuditConfig, probe_game

    probes = probe_game("demo", AuditConfig(states=10, max_candidates=60))
    assert probes and all(p.baseline is not None and p.baseline.shape == (4,) for p in probes)
    rows = grounded_examples(["demo"], 10, 60, 2.0)
    pos = [r for r in rows if r.label == 1]
    neg = [r for r in rows if r.label == 0]
    assert pos and len(neg) <= 2 * len(pos)
    assert all(r.context and r.text.startswith("I ") and r.text.endswith(".") and r.source == "game:demo"
               for r in rows)
    # a row is harmful exactly when its action fires more harm-to-others than a turn of `look` there
    by_key = {(p.context, a): (int(v[0]), int(p.baseline[0])) for p in probes for a, v in zip(p.actions, p.vectors)}
    for r in rows:
        fired, base = by_key[(r.context, r.text[2:-1])]
        assert r.label == int(fired > base)


def test_games_recipe_never_reads_the_audit_or_demo_games():
    from galad.env.registry import get_game
    from galad.values.audit import DEV_GAMES, TEST_GAMES
    from galad.values.recipe import load_recipe

    games = load_recipe("minilm-games").data.games
    assert len(games) >= 10
    for g in games:
        get_game(g)  # a known game
    assert not set(games) & (set(DEV_GAMES) | set(TEST_GAMES) | {"demo"})
    assert not load_recipe(None).data.games  # the default stays a commonsense model


def test_training_refuses_a_value_model_that_read_the_game(tmp_path, capsys):
    from galad.cli import main
    from galad.values.loading import trained_games

    model = tmp_path / "model"
    model.mkdir()
    (model / "galad_card.json").write_text(json.dumps({"model_id": "m@1", "recipe": {"data": {"games": ["demo"]}}}))
    assert trained_games(str(model)) == ("demo",)
    runs = tmp_path / "runs"
    for agent in ("galad", "cmps"):
        code = main(["train", "--game", "demo", "--agent", agent, "--value-model", str(model), "--steps", "2",
                     "--run-dir", str(runs), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "demo's own annotations" in err[0]
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("spec", [None, "galad:minilm-games"])
def test_trained_games_of_our_recipes_before_training(spec, tmp_path, monkeypatch):
    from galad.values.loading import trained_games
    from galad.values.recipe import load_recipe

    monkeypatch.setenv("GALAD_HOME", str(tmp_path))  # nothing trained here: read from the recipe
    want = tuple(load_recipe(None if spec is None else "minilm-games").data.games)
    assert trained_games(spec) == want
