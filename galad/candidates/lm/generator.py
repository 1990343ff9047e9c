"""CALM-style action generator: a causal LM proposes the top-k distinct actions for a game state.

The generator reads a transcript-shaped context (previous observation, previous action, current observation,
inventory and look, then a ``>`` prompt) and decodes actions by beam search. The context is encoded once per
state (one prefill, its key/value cache expanded to the beams), so 30 candidates cost one prefill and a few
short decode steps instead of 30 prefills. Meta-commands (save, restore, quit, ...) are never proposed.

Models: any Hugging Face causal LM by hub id (``gpt2`` as in the paper, with a network) or local folder; the
offline base is SmolLM2-135M-Instruct (:mod:`galad.candidates.lm.files`). ``galad lm train`` fine-tunes it on
walkthrough pairs and ``galad lm distill`` puts the value model's judgement into it; :func:`load_generator` returns
one that never read the game's walkthrough (:mod:`galad.candidates.lm.folds`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from galad.candidates.base import DIRECTIONS, GameState
from galad.candidates.lm.files import LMError, load_lm, prepare_tokenizer
from galad.candidates.lm.folds import resolve_generator

log = logging.getLogger(__name__)

META_COMMANDS = frozenset({
    "save", "restore", "load", "quit", "q", "restart", "score", "verbose", "brief", "superbrief", "script",
    "unscript", "transcript", "version", "undo", "oops", "again", "g", "notify", "help", "hint", "hints", "about",
    "credits", "info", "diagnose", "full", "fullscore", "$ve", "#random", "#record", "#unrecord", "nouns",
    "pronouns",
})
"""First words of commands that talk to the interpreter rather than act in the world (never proposed). Not the
grammar's :data:`~galad.candidates.valid.grammar.META_VERBS`, which also holds debugging verbs and matches
truncated dictionary words, and has no ``load``."""


@dataclass
class LMConfig:
    """How the generator decodes."""

    k: int = 30
    """Distinct candidates returned per state."""
    beams: int = 40
    """Beam width (a little above ``k``: meta-commands and duplicates are dropped after decoding)."""
    max_context_tokens: int = 192
    """Context length in tokens; longer contexts are cut from the left (the oldest text goes first)."""
    max_action_tokens: int = 8
    """Longest action in tokens."""
    batch_states: int = 2
    """States decoded together (their beams share one forward pass per step); each state's beams hold a copy of its
    context's key/value cache, so this bounds memory (8 states x 40 beams peaked at 4.7 GiB with 8 envs)."""
    num_threads: int | None = None
    """torch threads (None: leave torch's setting)."""
    device: str = "cpu"
    """Where the LM runs: ``cpu``, ``cuda`` or ``auto`` (:func:`galad.device.resolve_device`)."""
    cache_size: int = 50_000
    """Entries of the in-memory state-key -> candidates cache (least recently used go first)."""

    @classmethod
    def for_k(cls, k: int, **kw) -> LMConfig:
        """Decoding for ``k`` candidates: a beam of ``max(40, k + 10)`` (room for the dropped duplicates)."""
        return cls(k=k, beams=max(40, k + 10), **kw)


# --- text ------------------------------------------------------------------------------------------------
_WS = re.compile(r"\s+")


def normalise_action(action: str) -> str:
    """Lowercase, strip, collapse spaces and expand direction abbreviations (``n`` -> ``north``)."""
    a = _WS.sub(" ", action.strip().lower()).strip(" .!")
    a = a.removeprefix("go ") if a.removeprefix("go ") in DIRECTIONS.values() else a
    return DIRECTIONS.get(a, a)


def is_meta(action: str) -> bool:
    """True for interpreter meta-commands (save, restore, quit, ...)."""
    words = action.strip().lower().split()
    return not words or words[0] in META_COMMANDS


def _clip(text: str, n: int) -> str:
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= n else "..." + text[-n:]


def format_context(state: GameState) -> str:
    """The text the generator conditions on: a transcript ending in the ``>`` prompt.

    Previous observation, ``> previous action``, current observation, then what ``inventory`` and ``look``
    print, so the next line is the action.
    """
    parts = []
    if state.prev_action:
        parts += [_clip(state.prev_obs, 400), f"> {state.prev_action.strip()}"]
    parts.append(_clip(state.obs, 600))
    if state.inventory:
        parts += ["> inventory", _clip(state.inventory, 300)]
    if state.look:
        parts += ["> look", _clip(state.look, 500)]
    return "\n".join(parts) + "\n>"


def action_target(action: str) -> str:
    """The text an action is trained as after the context's ``>``: a space, the action, a newline."""
    return " " + action.strip() + "\n"


# --- generation ------------------------------------------------------------------------------------------
class LMGenerator:
    """Proposes the top-k distinct actions of a causal LM for each state, cached by state key.

    Args:
        model: a spec for :func:`load_lm` (hub id, folder, ``base``, ``trained``, ``distilled``), or None
            when ``tokenizer`` and ``lm`` are given.
        config: decoding settings.
        tokenizer: an already loaded tokenizer (with ``lm``).
        lm: an already loaded causal LM.
    """

    def __init__(self, model: str | None = None, config: LMConfig | None = None, tokenizer=None, lm=None):
        self.config = config or LMConfig()
        if self.config.k < 1 or self.config.beams < 1:
            raise LMError("k and beams must be >= 1")
        if lm is None:
            tokenizer, lm = load_lm(model, self.config.num_threads)
        elif self.config.num_threads:
            import torch

            torch.set_num_threads(self.config.num_threads)
        from galad.device import resolve_device

        self.device = resolve_device(self.config.device)
        if self.device != "cpu":
            lm = lm.to(self.device)
        prepare_tokenizer(tokenizer)
        self.tokenizer, self.model = tokenizer, lm
        self.name = str(model) if model else type(lm).__name__
        self._cache: OrderedDict[str, list[str]] = OrderedDict()
        self.hits = self.misses = 0
        self._terminal = self._terminal_tokens()

    def _terminal_tokens(self):
        """Boolean mask over the vocabulary: tokens that end an action (contain a newline, or eos)."""
        import torch

        n = self.model.get_output_embeddings().weight.shape[0]
        mask = torch.zeros(n, dtype=torch.bool)
        for tid in range(min(n, len(self.tokenizer))):
            if "\n" in self.tokenizer.decode([tid]):
                mask[tid] = True
        for tid in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id):
            if tid is not None and tid < n:
                mask[tid] = True
        return mask

    def propose(self, states: Sequence[GameState]) -> list[list[str]]:
        """Top-k distinct actions for each state (cached by :meth:`GameState.key` and the previous observation)."""
        # GameState.key() covers prev_obs already; the digest of prev_obs appended to it is redundant (kept: it
        # also keeps apart texts that key() can confuse, differing only in where a NUL byte falls)
        keys = [s.key() + ":" + hashlib.blake2b(s.prev_obs.encode("utf-8", "replace"), digest_size=8).hexdigest()
                for s in states]
        todo: dict[str, GameState] = {}
        for key, state in zip(keys, states):
            if key in self._cache:
                self._cache.move_to_end(key)
            elif key not in todo:
                todo[key] = state
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            contexts = [format_context(s) for s in todo.values()]
            for key, scored in zip(todo, self.generate(contexts)):
                self._cache[key] = [a for a, _ in scored]
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        return [list(self._cache[key]) for key in keys]

    def clear_cache(self) -> None:
        self._cache.clear()
        self.hits = self.misses = 0

    def _encode(self, contexts: Sequence[str]):
        cfg = self.config
        tok = self.tokenizer
        tok.padding_side = "left"
        enc = tok(list(contexts), return_tensors="pt", padding=True, truncation=True,
                  max_length=cfg.max_context_tokens, add_special_tokens=False)
        return enc if self.device == "cpu" else enc.to(self.device)

    def generate(self, contexts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """``[(action, log-prob)]`` best first, at most ``k`` distinct non-meta actions per context."""
        out: list[list[tuple[str, float]]] = []
        n = max(1, self.config.batch_states)
        for i in range(0, len(contexts), n):
            out.extend(self._beam_search(contexts[i:i + n]))
        return out

    def _beam_search(self, contexts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Beam search with one shared prefill per context: the prefix cache is repeated to the beams."""
        import torch

        cfg = self.config
        n, b, k = len(contexts), cfg.beams, cfg.k
        enc = self._encode(contexts)
        finished: list[dict[str, float]] = [{} for _ in range(n)]
        with torch.inference_mode():
            cache, logp, mask, last_pos = self._prefill(enc)
            seqs: list[list[int]] = [[] for _ in range(n * b)]
            scores = torch.full((n, b), float("-inf"), device=self.device)
            scores[:, 0] = 0.0  # only beam 0 is live before the first token
            for step in range(cfg.max_action_tokens):
                beam_idx, next_tok, scores, seqs = self._select(logp, scores, seqs, finished)
                # raw log-prob sums only fall, so a state is done once no live beam can beat its k-th action
                if step == cfg.max_action_tokens - 1 or all(
                        float(scores[s].max()) <= self._kth(finished[s], k) for s in range(n)):
                    break
                cache, logp, mask, last_pos = self._advance(cache, mask, last_pos, beam_idx, next_tok)
            self._top_up(finished, scores, seqs)
        return [sorted(f.items(), key=lambda kv: -kv[1])[:k] for f in finished]

    def _prefill(self, enc):
        """One forward pass over the encoded contexts: ``(cache, next-token log-probs, attention mask, last
        position)``, each repeated to the beams of its context."""
        import torch

        b = self.config.beams
        mask = enc["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        res = self.model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=pos, use_cache=True)
        cache = _cache_of(res)
        logp = torch.log_softmax(res.logits[:, -1].float(), dim=-1)  # [n, V]
        cache.batch_repeat_interleave(b)
        return (cache, logp.repeat_interleave(b, dim=0), mask.repeat_interleave(b, dim=0),
                pos[:, -1].repeat_interleave(b))

    def _select(self, logp, scores, seqs: list[list[int]], finished: list[dict[str, float]]):
        """One step's choice, per state: of its beams' best continuations, those that end an action finish it
        (into ``finished``), and up to ``beams`` others that can still beat its k-th action live on.

        Returns ``(source row of each new beam, its next token, new scores [n, b], new token sequences)``.
        """
        import torch

        n, b, k = len(finished), self.config.beams, self.config.k
        total = (scores.view(-1, 1) + logp).view(n, -1)  # [n, b*V]
        top_s, top_i = total.topk(min(2 * b, total.shape[1]), dim=-1)
        vocab = logp.shape[-1]
        beam_idx = torch.zeros(n * b, dtype=torch.long)
        next_tok = torch.zeros(n * b, dtype=torch.long)
        new_scores = torch.full((n, b), float("-inf"))
        new_seqs: list[list[int]] = [[] for _ in range(n * b)]
        top_s_l, top_i_l = top_s.tolist(), top_i.tolist()
        for s in range(n):
            j = 0
            kth = self._kth(finished[s], k)
            for sc, flat in zip(top_s_l[s], top_i_l[s]):
                if sc == float("-inf"):
                    break
                src, t = divmod(flat, vocab)
                row = s * b + src
                if self._terminal[t]:
                    text = self.tokenizer.decode(seqs[row] + [t], skip_special_tokens=True).split("\n")[0]
                    self._finish(finished[s], text, sc)
                elif j < b and sc > kth:
                    beam_idx[s * b + j] = row
                    next_tok[s * b + j] = t
                    new_scores[s, j] = sc
                    new_seqs[s * b + j] = seqs[row] + [t]
                    j += 1
        if self.device != "cpu":  # built on the CPU element by element, moved once
            beam_idx, next_tok, new_scores = (x.to(self.device) for x in (beam_idx, next_tok, new_scores))
        return beam_idx, next_tok, new_scores, new_seqs

    def _advance(self, cache, mask, last_pos, beam_idx, next_tok):
        """Feed each live beam its next token: the cache reordered to the beams' source rows, one forward step.
        Returns ``(cache, next-token log-probs, attention mask, last position)``."""
        import torch

        cache.reorder_cache(beam_idx)
        mask = torch.cat([mask.index_select(0, beam_idx),
                          torch.ones(len(next_tok), 1, dtype=mask.dtype, device=mask.device)], dim=1)
        last_pos = last_pos.index_select(0, beam_idx) + 1
        res = self.model(input_ids=next_tok.view(-1, 1), attention_mask=mask, position_ids=last_pos.view(-1, 1),
                         use_cache=True, **{_cache_kw(): cache})
        return _cache_of(res), torch.log_softmax(res.logits[:, -1].float(), dim=-1), mask, last_pos

    def _top_up(self, finished: list[dict[str, float]], scores, seqs: list[list[int]]) -> None:
        """Too few finished actions (an untrained model rarely ends a line): top up with the best live beams,
        cut at ``max_action_tokens``, so a state never goes without candidates."""
        b, k = self.config.beams, self.config.k
        for s in range(len(finished)):
            if len(finished[s]) < k:
                for j in scores[s].argsort(descending=True).tolist():
                    if scores[s, j] > float("-inf"):
                        text = self.tokenizer.decode(seqs[s * b + j], skip_special_tokens=True).split("\n")[0]
                        self._finish(finished[s], text, float(scores[s, j]) - 1e3)

    @staticmethod
    def _kth(found: dict[str, float], k: int) -> float:
        if len(found) < k:
            return float("-inf")
        return sorted(found.values(), reverse=True)[k - 1]

    @staticmethod
    def _finish(found: dict[str, float], text: str, score: float) -> None:
        action = _WS.sub(" ", text).strip()
        if not action or is_meta(action) or len(action) > 80:
            return
        key = normalise_action(action)
        # distinct after normalisation; the first (best) spelling wins
        for existing in found:
            if normalise_action(existing) == key:
                return
        found[action] = score

    def generate_plain(self, context: str) -> list[str]:
        """The same beam search through ``model.generate`` (the prefill repeated per beam): the baseline
        the shared-prefill decoder is measured against."""
        import torch

        cfg, tok = self.config, self.tokenizer
        enc = self._encode([context])
        with torch.inference_mode():
            out = self.model.generate(**enc, num_beams=cfg.beams, num_return_sequences=cfg.beams,
                                      max_new_tokens=cfg.max_action_tokens, do_sample=False, early_stopping=True,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        found: dict[str, float] = {}
        for i, t in enumerate(texts):
            self._finish(found, t.split("\n")[0], -float(i))
        return list(found)[: cfg.k]


@functools.lru_cache(maxsize=1)
def _cache_kw() -> str:
    from transformers.modeling_outputs import CausalLMOutputWithPast

    # transformers >= 5.2x renamed past_key_values to cache (the old name warns)
    return "cache" if "cache" in getattr(CausalLMOutputWithPast, "__dataclass_fields__", {}) else "past_key_values"


def _cache_of(res):
    cache = getattr(res, "cache", None)
    return cache if cache is not None else res.past_key_values



# --- the trainer's factory -------------------------------------------------------------------------------
def load_generator(game: str, agent: str, k: int = 30, config: LMConfig | None = None,
                   device: str | None = None) -> LMGenerator:
    """The generator ``galad train --candidates lm`` uses: one that never read ``game``'s walkthrough.

    :func:`~galad.candidates.lm.folds.resolve_generator` picks it: for ``agent == "galad"`` a distilled generator
    when one never read the game, else a fine-tuned one (the cross-fitted fold that held the game out, or the
    single ``galad lm train`` generator when the game was among its held-out games).

    Args:
        game: the game being played.
        agent: ``drrn``, ``cmps``, ``galad`` or ``oracle``.
        k: candidates per state.
        config: decoding settings (``k`` overrides its ``k``, ``device`` its ``device``).
        device: ``auto``, ``cpu`` or ``cuda``.

    Raises:
        LMError: no fine-tuned generator in the cache (the message names ``galad lm train``).
        ConfigError: every generator in the cache read ``game``'s walkthrough.
    """
    cfg = config or LMConfig()
    cfg.k = k
    cfg.beams = max(cfg.beams, k + 10)
    if device is not None:
        cfg.device = device
    folder = resolve_generator(game, agent)
    log.info("game %s, agent %s: using the generator %s", game, agent, folder.name)
    return LMGenerator(str(folder), cfg)


def timed(fn, *args: Any) -> tuple[Any, float]:
    """``(fn(*args), seconds)``."""
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t
