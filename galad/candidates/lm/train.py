"""``galad lm train``: fine-tune the action generator on walkthrough context -> action pairs.

A plain torch loop (AdamW, loss on the action tokens only), training the top ``train_layers`` transformer
blocks so a CPU can afford it. The same loop serves distillation (:mod:`galad.candidates.lm.distill`): pairs carry
a weight, and "negative" pairs (actions the value model flags) are pushed below a log-probability floor.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from galad.candidates.lm.data import Pair, available_games, eval_states, evaluate, split_games, walkthrough_pairs
from galad.candidates.lm.files import BASE_NAME, TRAINED_NAME, LMError, atomic_save, lm_dir, load_lm
from galad.candidates.lm.folds import DEFAULT_FOLDS, assign_folds, fold_name, games_read, require_unread
from galad.candidates.lm.generator import LMConfig, LMGenerator, action_target, format_context
from galad.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_HOLDOUT = ("zork1", "hitchhiker", "wishbringer", "suspect", "ballyhoo")
"""Held-out evaluation games (kept out of training by default)."""


@dataclass
class FinetuneConfig:
    """Optimisation settings of one fine-tuning run."""

    max_examples: int = 400
    """Training pairs sampled (evenly over games, seeded); 0 = all."""
    epochs: float = 1.0
    """Passes over the sampled pairs."""
    batch_size: int = 8
    """Pairs per optimiser step."""
    lr: float = 1e-4
    """AdamW learning rate (linear decay)."""
    train_layers: int = 6
    """Top transformer blocks trained (0 = all parameters); the rest stay frozen."""
    max_context_tokens: int = 192
    """Context length in tokens, cut from the left."""
    neg_floor: float = -15.0
    """Negatives are pushed until their action's summed log-prob is below this."""
    neg_weight: float = 0.5
    """Weight of the negative (unlikelihood-style hinge) loss."""
    seed: int = 0
    """Sampling and shuffling seed."""
    num_threads: int | None = 2
    """torch threads."""


@dataclass
class GameSplitConfig:
    """Which games train and which evaluate (shared by ``galad lm train`` and ``galad lm distill``)."""

    games: list[str] | None = None
    """Training games (default: every available game but the held-out ones)."""
    holdout: list[str] = field(default_factory=lambda: list(DEFAULT_HOLDOUT))
    """Games kept out of training, evaluated on."""
    eval_games: list[str] | None = None
    """Games evaluated on (default: the held-out ones)."""
    eval_states_per_game: int = 12
    """Held-out states per game."""
    k: int = 30
    """Candidates per state when evaluating."""
    evaluate_before: bool = True
    """Also measure the starting generator (for the before/after table)."""


def checked_split(cfg: GameSplitConfig, generator: str | None) -> tuple[list[str], list[str], list[str]]:
    """``(training games, held-out games, evaluation games)`` of ``cfg``, after checking that training games are
    left and that ``generator`` (the starting generator) never read a game it is to be evaluated on.

    Raises:
        LMError: no training game left after the hold-out.
        ConfigError: the generator read an evaluation game, or records no games while there are some.
    """
    train_games, hold = split_games(cfg.games, cfg.holdout)
    if not train_games:
        raise LMError("no training games left after the hold-out")
    eval_games = hold if cfg.eval_games is None else cfg.eval_games
    if eval_games:
        require_unread(generator, eval_games, "evaluate on games it never read (--holdout)")
    return train_games, hold, eval_games


@dataclass
class LMTrainConfig(GameSplitConfig):
    """``galad lm train``."""

    base: str | None = None
    """Generator to start from: None = the offline SmolLM2-135M base; a hub id (``gpt2``) or folder."""
    out: str | None = None
    """Output folder (default ``<GALAD_HOME>/lm/galad-lm``)."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """Optimisation settings."""


@dataclass
class Example:
    """One tokenisable training example."""

    context: str
    """Generator context (:func:`format_context`)."""
    action: str
    """Target action."""
    weight: float = 1.0
    """Loss weight; negative examples use it as their hinge weight."""
    negative: bool = False
    """True: push this action's probability down instead of up."""


def pair_example(p: Pair, weight: float = 1.0, negative: bool = False) -> Example:
    return Example(format_context(p.state()), p.action, weight, negative)


def sample_pairs(games: Sequence[str], max_examples: int, seed: int) -> list[Pair]:
    """Pairs of ``games``, at most ``max_examples`` (0: all), spread evenly over games."""
    per_game = {g: walkthrough_pairs(g) for g in games}
    rng = random.Random(seed)
    for ps in per_game.values():
        rng.shuffle(ps)
    out: list[Pair] = []
    if not max_examples:
        return [p for ps in per_game.values() for p in ps]
    i = 0
    while len(out) < max_examples and any(i < len(ps) for ps in per_game.values()):
        for ps in per_game.values():
            if i < len(ps) and len(out) < max_examples:
                out.append(ps[i])
        i += 1
    return out


def _blocks(model):
    base = model.base_model
    for name in ("layers", "h", "blocks"):
        if hasattr(base, name):
            return getattr(base, name)
    raise LMError(f"cannot find the transformer blocks of {type(model).__name__}")


def _freeze(model, train_layers: int) -> None:
    if train_layers <= 0:
        for p in model.parameters():
            p.requires_grad_(True)
        return
    for p in model.parameters():
        p.requires_grad_(False)
    for block in list(_blocks(model))[-train_layers:]:
        for p in block.parameters():
            p.requires_grad_(True)
    for name in ("norm", "ln_f"):
        if hasattr(model.base_model, name):
            for p in getattr(model.base_model, name).parameters():
                p.requires_grad_(True)


def _batch(tok, examples: Sequence[Example], max_context_tokens: int):
    """Right-padded ids, attention mask, and per-example (start, end) of the action tokens."""
    import torch

    rows, spans = [], []
    for ex in examples:
        ctx = tok(ex.context, add_special_tokens=False)["input_ids"][-max_context_tokens:]
        act = tok(action_target(ex.action), add_special_tokens=False)["input_ids"]
        rows.append(ctx + act)
        spans.append((len(ctx), len(ctx) + len(act)))
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask, spans


def action_logprobs(model, ids, mask, spans):
    """Summed log-prob and token count of each example's action tokens (logits only where needed)."""
    import torch

    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    head = model.get_output_embeddings()
    sums, counts = [], []
    for i, (a, b) in enumerate(spans):
        logits = head(hidden[i, a - 1: b - 1]).float()
        lp = torch.log_softmax(logits, -1).gather(-1, ids[i, a:b].unsqueeze(-1)).squeeze(-1)
        sums.append(lp.sum())
        counts.append(b - a)
    return torch.stack(sums), torch.tensor(counts, dtype=torch.float32)


def finetune(model, tok, examples: Sequence[Example], cfg: FinetuneConfig, progress: bool = True) -> dict:
    """Fine-tune ``model`` in place on ``examples``; returns loss statistics."""
    import torch
    from tqdm.auto import tqdm

    if not examples:
        raise LMError("no training examples")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    _freeze(model, cfg.train_layers)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    order = list(range(len(examples)))
    rng = random.Random(cfg.seed)
    steps = max(1, round(len(examples) * cfg.epochs / cfg.batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / steps))
    model.train()
    batches: list[list[int]] = []
    while len(batches) < steps:
        rng.shuffle(order)
        batches += [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    losses = []
    t0 = time.perf_counter()
    bar = tqdm(batches[:steps], desc="fine-tuning", unit="batch", disable=not progress)
    for idx in bar:
        exs = [examples[i] for i in idx]
        ids, mask, spans = _batch(tok, exs, cfg.max_context_tokens)
        sums, counts = action_logprobs(model, ids, mask, spans)
        w = torch.tensor([e.weight for e in exs])
        neg = torch.tensor([e.negative for e in exs])
        pos_loss = (w * -sums / counts)[~neg].sum() / max(1, int((~neg).sum()))
        neg_loss = (w * torch.relu(sums - cfg.neg_floor))[neg].sum() / max(1, int(neg.sum()))
        loss = pos_loss + cfg.neg_weight * neg_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return {"steps": steps, "examples": len(examples), "first_loss": losses[0],
            "last_loss": sum(losses[-5:]) / len(losses[-5:]), "seconds": round(time.perf_counter() - t0, 1)}


def train_lm(cfg: LMTrainConfig | None = None, tokenizer=None, model=None, progress: bool = True,
             extra: dict | None = None) -> dict:
    """Fine-tune the generator on walkthrough pairs; measure recall@k on held-out games before and after.

    Args:
        cfg: settings.
        tokenizer: an already loaded tokenizer (with ``model``; tests pass a tiny one).
        model: an already loaded causal LM, used instead of ``cfg.base`` (which still names it on the card).
        progress: tqdm bars.
        extra: more card entries (a fold generator's ``fold``).

    Returns:
        The card written beside the model: settings, games (``read_games``: every game whose walkthrough the
        generator has read, its base's included; ``holdout``), training statistics, ``before``/``after`` metrics.

    Raises:
        ConfigError: the base read a game evaluated on, or records no games while there are some to evaluate on.
    """
    cfg = cfg or LMTrainConfig()
    train_games, hold, eval_games = checked_split(cfg, cfg.base)
    base_read = games_read(cfg.base)
    if model is None:
        tokenizer, model = load_lm(cfg.base, cfg.finetune.num_threads)
    gen_cfg = LMConfig.for_k(cfg.k, max_context_tokens=cfg.finetune.max_context_tokens,
                             num_threads=cfg.finetune.num_threads)
    ev = eval_states(eval_games, cfg.eval_states_per_game) if eval_games else None
    out = Path(cfg.out) if cfg.out else lm_dir() / TRAINED_NAME
    card: dict = {"name": out.name, "base": cfg.base or BASE_NAME, "train_games": train_games,
                  "read_games": None if base_read is None else sorted({*base_read, *train_games}),
                  "holdout": hold, "eval_games": eval_games, **(extra or {}), "config": asdict(cfg)}
    if ev is not None and cfg.evaluate_before:
        card["before"] = evaluate(LMGenerator(config=gen_cfg, tokenizer=tokenizer, lm=model), ev, lookahead=False,
                                  progress=progress)
        log.info("before: %s", card["before"])
    pairs = sample_pairs(train_games, cfg.finetune.max_examples, cfg.finetune.seed)
    card["train"] = finetune(model, tokenizer, [pair_example(p) for p in pairs], cfg.finetune, progress)
    if ev is not None:
        card["after"] = evaluate(LMGenerator(config=gen_cfg, tokenizer=tokenizer, lm=model), ev, lookahead=False,
                                 progress=progress)
    atomic_save(model, tokenizer, out, card)
    card["out"] = str(out)
    return card


def train_folds(cfg: LMTrainConfig | None = None, folds: int = DEFAULT_FOLDS, tokenizer=None, model=None,
                progress: bool = True) -> list[dict]:
    """Cross-fitted generators: the games (``cfg.games`` or every available one) dealt into ``folds`` folds
    (:func:`~galad.candidates.lm.folds.assign_folds`, seeded by ``cfg.finetune.seed``), and fold ``j`` trained
    by :func:`train_lm` on every game outside it, held out and evaluated on its own games, into
    ``<GALAD_HOME>/lm/galad-lm-fold<j>``.

    Args:
        cfg: settings; ``holdout`` and ``out`` are the folds' own (``cfg.holdout`` must be empty and ``cfg.out``
            unset).
        folds: how many.
        tokenizer: an already loaded tokenizer (with ``model``).
        model: an already loaded causal LM, copied for every fold.
        progress: tqdm bars.

    Returns:
        Each fold's card.
    """
    cfg = cfg or LMTrainConfig(holdout=[])
    if cfg.holdout or cfg.out:
        raise ConfigError("--folds holds out each fold's own games in its own folder: drop --holdout and --out")
    games = list(cfg.games) if cfg.games else available_games()
    parts = assign_folds(games, folds, cfg.finetune.seed)
    cards = []
    for j, held in enumerate(parts):
        log.warning("fold %d of %d: holding out %s", j + 1, folds, " ".join(held))
        fold_cfg = replace(cfg, games=[g for g in games if g not in held], holdout=held,
                           out=str(lm_dir() / fold_name(TRAINED_NAME, j)))
        fold_model = None if model is None else copy.deepcopy(model)
        cards.append(train_lm(fold_cfg, tokenizer, fold_model, progress,
                              extra={"fold": {"index": j, "folds": folds, "seed": cfg.finetune.seed}}))
    ours = {fold_name(TRAINED_NAME, j) for j in range(folds)}
    stale = sorted(p.name for p in lm_dir().glob(f"{TRAINED_NAME}-fold*") if p.name not in ours)
    if stale:
        log.warning("left in place from an earlier run (cards still tell what each read): %s", ", ".join(stale))
    return cards
