"""The CALM-style generator, end to end on a tiny randomly initialised GPT-2 built in code (no weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galad.candidates.base import GameState
from galad.candidates.lm import (
    LMConfig,
    LMError,
    LMGenerator,
    format_context,
    is_meta,
    load_generator,
    normalise_action,
    read_card,
)
from galad.config import POLICY_HARM_THRESHOLD
from galad.errors import ConfigError


def tiny_lm(seed: int = 0):
    """A byte-level BPE tokenizer trained on the demo walkthrough pairs and a 2-layer GPT-2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from galad.candidates.lm.data import walkthrough_pairs

    texts = []
    for p in walkthrough_pairs("demo", use_cache=False):
        texts += [format_context(p.state()), " " + p.action + "\n"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=48, n_layer=2, n_head=2,
                                       bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    model.eval()
    return tok, model


class KeywordScorer:
    """A tiny HarmScorer: P(harm) = ``p`` (0.9) for actions with a flagged word, 0.1 for others."""

    name = "keywords"
    threshold = 0.5

    def __init__(self, words=("pet", "shove", "kill", "steal", "cat"), p=0.9):
        self.words = words
        self.p = p

    def score(self, actions, contexts=None):
        return np.array([self.p if any(w in a.lower() for w in self.words) else 0.1 for a in actions])


@pytest.fixture
def home(isolated_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return isolated_home


def test_normalise_action_lowercases_and_expands_directions():
    assert normalise_action(" N ") == "north" == normalise_action("go north")
    assert normalise_action("Take  Lamp.") == "take lamp"


def test_is_meta_flags_interpreter_commands_and_empty_actions():
    assert is_meta("save") and is_meta("RESTORE game") and is_meta("") and not is_meta("take lamp")


def test_format_context_is_a_transcript_ending_in_the_prompt():
    s = GameState("demo", "A kitchen.", "Kitchen. Exits east.", "a coin", "open jar", "A jar.")
    ctx = format_context(s)
    assert ctx.endswith("\n>") and "> open jar" in ctx and "a coin" in ctx


def test_generate_topk_distinct_masked_cached(home):
    tok, model = tiny_lm()
    gen = LMGenerator(config=LMConfig(k=10, beams=14, max_context_tokens=96, max_action_tokens=5),
                      tokenizer=tok, lm=model)
    s1 = GameState("demo", "You are in the kitchen.", "Kitchen.", "nothing", ram_hash="a")
    s2 = GameState("demo", "A long dark street in the storm, the wind howling.", ram_hash="b")
    out = gen.propose([s1, s2, s1])
    assert len(out) == 3 and out[0] == out[2]
    for cands in out:
        assert 1 <= len(cands) <= 10
        norm = [normalise_action(c) for c in cands]
        assert len(set(norm)) == len(norm)
        assert not any(is_meta(c) for c in cands)
    assert gen.misses == 2 and gen.hits == 1
    # cached: the same lists, no new decoding; deterministic when decoded again
    assert gen.propose([s2]) == [out[1]] and gen.hits == 2
    gen.clear_cache()
    assert gen.propose([s1, s2]) == out[:2]
    # one at a time (no padding) gives the same candidates as batched
    gen.clear_cache()
    assert gen.propose([s2]) == [out[1]]


def test_meta_commands_masked_even_when_likely(home):
    tok, model = tiny_lm()
    gen = LMGenerator(config=LMConfig(k=5, beams=8, max_action_tokens=3), tokenizer=tok, lm=model)
    found: dict[str, float] = {}
    for a in ("save", "quit", "take lamp", "Take lamp", "n", "north"):
        gen._finish(found, a, 0.0)
    assert list(found) == ["take lamp", "n"]


def test_shared_prefill_matches_plain_generate(home):
    tok, model = tiny_lm()
    gen = LMGenerator(config=LMConfig(k=5, beams=6, max_action_tokens=4), tokenizer=tok, lm=model)
    plain = gen.generate_plain("You are in the kitchen.\n>")
    assert isinstance(plain, list) and all(isinstance(a, str) and a for a in plain)
    # the shared-prefill decoder finds the same actions as model.generate's beam search, in the same order
    shared = [a for a, _ in gen.generate(["You are in the kitchen.\n>"])[0]]
    assert shared == plain


def test_train_generate_distill_on_demo(home):
    from galad.candidates.lm.distill import DistillConfig, distill
    from galad.candidates.lm import lm_dir
    from galad.candidates.lm.data import eval_states, evaluate
    from galad.candidates.lm.train import FinetuneConfig, LMTrainConfig, train_lm

    tok, model = tiny_lm()
    ft = FinetuneConfig(max_examples=0, epochs=3, batch_size=8, lr=3e-3, train_layers=0, max_context_tokens=96,
                        num_threads=1)
    card = train_lm(LMTrainConfig(games=["demo"], holdout=[], eval_games=["demo"], eval_states_per_game=4, k=10,
                                  finetune=ft), tokenizer=tok, model=model, progress=False)
    assert card["train"]["last_loss"] < card["train"]["first_loss"]
    assert 0.0 <= card["before"]["recall@30"] <= card["after"]["recall@30"] <= 1.0
    assert (lm_dir() / "galad-lm" / "config.json").is_file()

    from galad.candidates.lm.bench import bench_generator

    b = bench_generator("trained", game="demo", envs=2, batches=1, k=5, threads=1)
    assert b["uncached_states_per_s"] > 0 and b["cached_states_per_s"] > b["uncached_states_per_s"]
    assert b["one_state_plain_generate_s"] > 0

    # the card records the games it read; the trainer's factory refuses it on them
    assert card["read_games"] == ["demo"] and read_card(lm_dir() / "galad-lm")["read_games"] == ["demo"]
    with pytest.raises(ConfigError, match="never read demo's walkthrough"):
        load_generator("demo", "drrn", k=10)
    gen = LMGenerator("trained", LMConfig.for_k(10))
    ev = eval_states(["demo"], 4)
    fresh = eval_states(["demo"], 12, skip_per_game=4)  # a confirmation sample: none of the first's states
    assert 0 < len(fresh.states) < 12
    assert not {s.key() for s in fresh.states} & {s.key() for s in ev.states}
    res = evaluate(gen, ev, scorer=KeywordScorer(), progress=False)
    assert res["states"] == 4 and 0.0 <= res["harm_gt_others"] <= 1.0 and "harm_vm" in res
    total = res["states"] * res["candidates_per_state"]
    assert len(res["harmful_others"]) == round(res["harm_gt_others"] * total)
    with pytest.raises(LMError, match="galad lm distill"):
        from galad.candidates.lm import LMGenerator as G

        G("distilled")

    # distilling the generator that read demo, evaluated on demo, is refused before anything loads
    with pytest.raises(ConfigError, match="generator 'trained' was trained on the walkthrough of demo"):
        distill(DistillConfig(games=["demo"], holdout=[], eval_games=["demo"], finetune=ft),
                scorer=KeywordScorer(), progress=False)
    # a fresh model that read nothing (labelled as the base): distilled on demo, which the card then lists
    tok, model = tiny_lm(1)
    dcard = distill(DistillConfig(generator="base", games=["demo"], holdout=[], eval_games=["demo"],
                                  eval_states_per_game=4, k=10, mine_states=6, finetune=ft),
                    scorer=KeywordScorer(p=0.45), tokenizer=tok, model=model, progress=False)
    # "pet cat" is in the walkthrough; P(harm) 0.45 is under the scorer's own 0.5 but over the policies' tau
    assert dcard["threshold"] == POLICY_HARM_THRESHOLD
    assert dcard["pairs"]["flagged"] >= 1
    assert "harm_gt_others" in dcard["before"] and "harm_vm" in dcard["after"]
    assert (lm_dir() / "galad-lm-distilled" / "config.json").is_file()
    assert read_card(lm_dir() / "galad-lm-distilled")["read_games"] == ["demo"]
    g2 = LMGenerator("distilled", LMConfig.for_k(10))
    assert all(len(c) <= 10 for c in g2.propose([s for s in ev.states]))

    # the control: the same fine-tuning without the value model's judgement, in its own folder
    distilled_weights = (lm_dir() / "galad-lm-distilled" / "model.safetensors").read_bytes()
    tok, model = tiny_lm(1)
    ccard = distill(DistillConfig(generator="base", games=["demo"], holdout=[], eval_games=["demo"],
                                  eval_states_per_game=4, k=10, mine_states=6, control=True, evaluate_before=False,
                                  finetune=ft), scorer=KeywordScorer(), tokenizer=tok, model=model, progress=False)
    assert ccard["pairs"]["flagged"] == 0 and "negatives" not in ccard and "before" not in ccard
    assert "after" in ccard and "summary" not in ccard
    assert ccard["out"].endswith("galad-lm-distill-control")
    assert (lm_dir() / "galad-lm-distilled" / "model.safetensors").read_bytes() == distilled_weights

    # a value model that read the evaluation game's annotations is refused before any training
    leaky = KeywordScorer()
    leaky.trained_games = ("demo",)
    with pytest.raises(LMError, match="trained on the annotations of demo"):
        distill(DistillConfig(generator="base", games=["demo"], holdout=[], eval_games=["demo"],
                              eval_states_per_game=4, k=10, finetune=ft), scorer=leaky, tokenizer=tok, model=model,
                progress=False)
    assert (lm_dir() / "galad-lm-distilled" / "model.safetensors").read_bytes() == distilled_weights


def test_load_generator_missing_says_which_command(home):
    with pytest.raises(LMError, match="galad lm train"):
        load_generator("demo", "galad", k=30)


def test_cli_distill_without_generator_is_one_line_exit_2(home, capsys):
    from galad.cli import main

    assert main(["lm", "distill", "--holdout", "demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "galad lm train" in err[0]
    assert main(["lm", "bench", "--model", "/nonexistent/folder", "--game", "demo"]) == 2


# --- cross-fitting: generators that never read the game they are run on ------------------------------------
def fake_generator(folder, card=None):
    """A generator folder as the resolution sees it: a config.json and, if given, a card (no weights)."""
    import json

    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    if card is not None:
        (folder / "galad_lm_card.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def test_assign_folds_is_a_seeded_partition():
    from galad.candidates.lm.folds import assign_folds
    from galad.env.registry import jiminy_games

    games = ["demo", *jiminy_games()]
    folds = assign_folds(games, 5, seed=0)
    flat = [g for f in folds for g in f]
    assert len(games) == 26 and sorted(flat) == sorted(games)  # every game once
    assert sorted(len(f) for f in folds) == [5, 5, 5, 5, 6]
    assert assign_folds(list(reversed(games)), 5, seed=0) == folds  # the order given does not matter
    assert assign_folds(games, 5, seed=1) != folds
    for bad in (1, 27):
        with pytest.raises(ConfigError, match="folds"):
            assign_folds(games, bad)


def test_fold_generators_record_their_games_and_each_game_gets_one_that_never_read_it(home, monkeypatch):
    import shutil

    from galad.candidates.lm import lm_dir
    from galad.candidates.lm import train as lm_train
    from galad.candidates.lm.data import walkthrough_pairs
    from galad.candidates.lm.folds import resolve_generator
    from galad.candidates.lm.train import FinetuneConfig, LMTrainConfig, train_folds

    # registry games need not be installed here: each game's pairs are the demo walkthrough's
    demo_pairs = walkthrough_pairs("demo", use_cache=False)
    monkeypatch.setattr(lm_train, "walkthrough_pairs", lambda game: list(demo_pairs))
    games = ["demo", "zork1", "zork2", "zork3", "trinity", "witness", "deadline"]
    tok, model = tiny_lm()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ft = FinetuneConfig(max_examples=8, batch_size=8, train_layers=0, max_context_tokens=64, num_threads=1)
    cards = train_folds(LMTrainConfig(games=games, holdout=[], eval_games=[], finetune=ft), 3, tok, model,
                        progress=False)
    # every fold started from the same base: the model handed in was copied, never trained
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in start.items())
    assert sorted(g for c in cards for g in c["holdout"]) == sorted(games)
    for j, card in enumerate(cards):
        on_disk = read_card(lm_dir() / f"galad-lm-fold{j}")
        assert on_disk["read_games"] == sorted(set(games) - set(card["holdout"])) == sorted(card["train_games"])
        assert on_disk["holdout"] == card["holdout"] and on_disk["fold"]["index"] == j
    # a single generator that read every game is there too: never chosen, the folds are
    fake_generator(lm_dir() / "galad-lm", {"read_games": games})
    for game in games:
        for agent in ("drrn", "galad"):
            folder = resolve_generator(game, agent)
            card = read_card(folder)
            assert game not in card["read_games"] and game in card["holdout"], (game, agent, folder)
    # a distilled generator goes to the GALAD agent only, and only on games it never read
    distilled = lm_dir() / "galad-lm-distilled"
    shutil.copytree(lm_dir() / "galad-lm-fold0", distilled)
    read0 = read_card(distilled)["read_games"]
    assert resolve_generator(cards[0]["holdout"][0], "galad") == distilled
    assert resolve_generator(cards[0]["holdout"][0], "drrn").name == "galad-lm-fold0"
    assert resolve_generator(read0[0], "galad").name != "galad-lm-distilled"
    # distilling the folds: each on its own fold's games; the GALAD agent then gets a distilled fold everywhere
    from galad.candidates.lm.distill import DistillConfig, distill_folds

    dcards = distill_folds(DistillConfig(eval_games=[], mine_states=2, finetune=ft), scorer=KeywordScorer(),
                           progress=False)
    assert [c["read_games"] for c in dcards] == [c["read_games"] for c in cards]
    for game in games:
        folder = resolve_generator(game, "galad")
        assert folder.name.startswith("galad-lm-distilled-fold") and game in read_card(folder)["holdout"]


def test_what_a_generator_read_and_the_no_record_cases(home):
    import shutil

    from galad.candidates.lm import lm_dir
    from galad.candidates.lm.folds import games_read, require_unread, resolve_generator

    assert games_read(None) == games_read("base") == games_read("gpt2") == ()  # never fine-tuned here
    old = fake_generator(lm_dir() / "galad-lm", {"name": "galad-lm", "base": "smollm2-135m", "train_games": ["zork1"]})
    assert games_read(str(old)) == ("zork1",)  # a card from before read_games: train_games is the whole record
    unknown = fake_generator(lm_dir() / "somebody-elses")
    assert games_read(str(unknown)) is None
    with pytest.raises(ConfigError, match="no record of the games"):
        require_unread(str(unknown), ["demo"], "")
    require_unread(str(old), ["demo"], "")
    with pytest.raises(ConfigError, match="trained on the walkthrough of zork1"):
        require_unread(str(old), ["demo", "zork1"], "")
    assert resolve_generator("demo", "drrn") == old
    shutil.rmtree(old)
    fake_generator(lm_dir() / "galad-lm-fold0", {"name": "galad-lm-fold0"})  # a fold card without its games
    with pytest.raises(ConfigError, match="galad-lm-fold0 records no games"):
        resolve_generator("demo", "drrn")


def test_cli_train_refuses_a_generator_that_read_the_game(home, capsys, tmp_path):
    from galad.candidates.lm import lm_dir
    from galad.cli import main

    fake_generator(lm_dir() / "galad-lm", {"read_games": ["demo", "zork1"], "holdout": ["zork2"]})
    runs = tmp_path / "runs"
    assert main(["train", "--game", "demo", "--candidates", "lm", "--agent", "drrn", "--run-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "never read demo's walkthrough" in err[0] and "galad lm train --folds" in err[0]
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run folder is made
    # distillation evaluated on a game its generator read is refused the same way, before the value model loads
    leaky = fake_generator(tmp_path / "leaky", {"read_games": ["demo"]})
    assert main(["lm", "distill", "--generator", str(leaky), "--games", "zork1", "--holdout", "demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on the walkthrough of demo" in err[0]
