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
)
from galad.config import POLICY_HARM_THRESHOLD


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

    # the trainer's factory loads the fine-tuned generator from the cache
    gen = load_generator("demo", "drrn", k=10)
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

    dcard = distill(DistillConfig(games=["demo"], holdout=[], eval_games=["demo"], eval_states_per_game=4, k=10,
                                  mine_states=6, finetune=ft), scorer=KeywordScorer(p=0.45), progress=False)
    # "pet cat" is in the walkthrough; P(harm) 0.45 is under the scorer's own 0.5 but over the policies' tau
    assert dcard["threshold"] == POLICY_HARM_THRESHOLD
    assert dcard["pairs"]["flagged"] >= 1
    assert "harm_gt_others" in dcard["before"] and "harm_vm" in dcard["after"]
    assert (lm_dir() / "galad-lm-distilled" / "config.json").is_file()
    g2 = load_generator("demo", "galad", k=10)
    assert "distilled" in g2.name
    assert all(len(c) <= 10 for c in g2.propose([s for s in ev.states]))

    # the control: the same fine-tuning without the value model's judgement, in its own folder
    distilled_weights = (lm_dir() / "galad-lm-distilled" / "model.safetensors").read_bytes()
    ccard = distill(DistillConfig(games=["demo"], holdout=[], eval_games=["demo"], eval_states_per_game=4, k=10,
                                  mine_states=6, control=True, evaluate_before=False, finetune=ft),
                    scorer=KeywordScorer(), progress=False)
    assert ccard["pairs"]["flagged"] == 0 and "negatives" not in ccard and "before" not in ccard
    assert "after" in ccard and "summary" not in ccard
    assert ccard["out"].endswith("galad-lm-distill-control")
    assert (lm_dir() / "galad-lm-distilled" / "model.safetensors").read_bytes() == distilled_weights

    # a value model that read the evaluation game's annotations is refused before any training
    leaky = KeywordScorer()
    leaky.trained_games = ("demo",)
    with pytest.raises(LMError, match="trained on the annotations of demo"):
        distill(DistillConfig(games=["demo"], holdout=[], eval_games=["demo"], eval_states_per_game=4, k=10,
                              finetune=ft), scorer=leaky, progress=False)
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
