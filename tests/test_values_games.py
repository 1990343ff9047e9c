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


def test_games_family_folds_partition_every_game_and_each_fold_never_reads_its_own():
    from galad.env.registry import list_games
    from galad.values.folds import fold_parts, recipe_for
    from galad.values.recipe import load_recipe

    family = load_recipe("minilm-games")
    everyone = sorted(g.name for g in list_games())
    parts = fold_parts(family)
    assert len(parts) == 5 and sorted(g for p in parts for g in p) == everyone  # a partition: 25 games + demo
    for game in everyone:
        r = recipe_for("galad:games", game)  # the alias of the family
        assert r.name.startswith("minilm-games-fold") and game in r.heldout_games and game not in r.data.games
        assert sorted([*r.data.games, *r.heldout_games]) == everyone and r.folds == 0
        assert r.base_model == "galad:minilm-commonsense"
    assert not load_recipe(None).data.games  # the default stays a commonsense model


@pytest.mark.parametrize("spec, what", [("galad:games", "name one fold"), ("galad:minilm-games-fold7", "0..4"),
                                        ("galad:minilm-commonsense-fold1", "has no folds")])
def test_fold_specs_that_cannot_be_resolved(spec, what):
    from galad.errors import ConfigError
    from galad.values.folds import recipe_for

    with pytest.raises(ConfigError, match=what):
        recipe_for(spec)


def test_a_fold_model_that_read_the_game_is_refused(tmp_path, capsys):
    """A fold named directly is held to its own held-out games: on a game it read, the run stops (one line,
    exit 2) before anything is trained or written."""
    from galad.cli import main
    from galad.values.folds import recipe_for

    fold = next(j for j in range(5) if "demo" in recipe_for(f"galad:minilm-games-fold{j}").data.games)
    runs = tmp_path / "runs"
    code = main(["train", "--game", "demo", "--agent", "galad", "--value-model", f"galad:minilm-games-fold{fold}",
                 "--steps", "2", "--run-dir", str(runs), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "demo's own annotations" in err[0], err
    assert not runs.exists() or not any(runs.iterdir())


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


@pytest.mark.parametrize("spec, game", [(None, None), ("galad:minilm-games-fold3", None), ("galad:games", "zork1")])
def test_trained_games_of_our_recipes_before_training(spec, game, tmp_path, monkeypatch):
    from galad.values.folds import recipe_for
    from galad.values.loading import trained_games

    monkeypatch.setenv("GALAD_HOME", str(tmp_path))  # nothing trained here: read from the recipe
    want = tuple(recipe_for(spec, game).data.games)
    assert trained_games(spec, game) == want
    assert game is None or game not in want
