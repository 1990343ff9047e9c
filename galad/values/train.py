"""Fine-tune the offline value model (a MiniLM with a classification head) on a recipe's data mix.

``train(recipe)`` writes ``<GALAD_HOME>/models/<name>/`` atomically (a temp folder renamed into place): the
Hugging Face weights and tokenizer, and ``galad_card.json`` with the data splits and the measured held-out
accuracy. A markdown card goes beside the recipe file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import platform
import random
import time
from pathlib import Path

from galad import paths
from galad.atomic import atomic_dir, read_json, write_text_atomic
from galad.errors import ConfigError
from galad.values import data as vdata
from galad.values.folds import recipe_games
from galad.values.metrics import binary_stats
from galad.values.recipe import Recipe, load_recipe

log = logging.getLogger(__name__)

CARD_NAME = "galad_card.json"


def models_dir() -> Path:
    """``<GALAD_HOME>/models``: trained value models."""
    return paths.galad_home() / "models"


LONG_TEXT_TOKENS = 96
"""Token limit of the held-out evaluation of long ETHICS scenarios (fixed, so the number stays comparable across
recipes whatever their ``max_length``)."""


def model_dir(name: str) -> Path:
    return models_dir() / name


def read_card(folder: Path) -> dict | None:
    """The model card of a trained model folder, or None when there is none (or it is unreadable)."""
    return read_json(Path(folder) / CARD_NAME)


def train(recipe: Recipe | str | Path | None = None, data_dir: Path | None = None, out_dir: Path | None = None,
          card_md: Path | None | bool = True, num_threads: int | None = None, progress: bool = True) -> dict:
    """Train a recipe's model, measure it on the held-out splits, and save it with its card.

    Args:
        recipe: a :class:`Recipe`, a recipe path or name (None: the default recipe).
        data_dir: datasets folder (default ``GALAD_DATA_DIR``).
        out_dir: where the model folder goes (default ``<GALAD_HOME>/models/<name>``).
        card_md: markdown card path; True puts it beside the recipe file, False/None writes none.
        num_threads: torch threads (default: every core).
        progress: show tqdm progress bars.

    Returns:
        The model card (also saved as ``galad_card.json`` in the model folder).

    Raises:
        DataNotFoundError: the datasets are missing.
    """
    import torch

    from galad.values.hf import load_model

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    if recipe.folds >= 2:
        raise ConfigError(f"recipe {recipe.name} is {recipe.folds} fold models: train them with train_folds")
    torch.set_num_threads(num_threads or os.cpu_count() or 1)
    base, base_card = _base_model(recipe)
    data = vdata.read_source_data(recipe, data_dir)
    train_set, evals = vdata.load_splits(recipe, data=data)
    pool = vdata.context_pool(data, seed=recipe.seed)
    rng = random.Random(recipe.seed)
    torch.manual_seed(recipe.seed)
    t0 = time.monotonic()
    tok, net = load_model(base, num_labels=2)

    # contextual training: a share of rows get a distractor context, so the pair input is familiar
    # (not long rows: their own text would fill the pair's token budget)
    # (game-grounded rows keep their own observation)
    rows = [(ex.text, ex.context if ex.context is not None
             else rng.choice(pool) if not ex.long and rng.random() < recipe.context_fraction else None, ex.label)
            for ex in train_set]
    total = _fit(tok, net, rows, recipe, rng, progress)
    train_seconds = time.monotonic() - t0
    results = heldout_metrics(tok, net, evals, recipe, progress)
    eval_seconds = time.monotonic() - t0 - train_seconds
    card = _card(recipe, train_set, total, train_seconds, eval_seconds, results, data.origin)
    if base_card is not None:
        card["base_model_id"] = base_card["model_id"]
    card["read_games"] = sorted({*recipe_games(recipe), *(card_games(base_card) if base_card else ())})

    dest = Path(out_dir) if out_dir is not None else model_dir(recipe.name)
    with atomic_dir(dest) as tmp:
        net.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / CARD_NAME).write_text(json.dumps(card, indent=2), encoding="utf-8")
    log.info("trained %s in %.0f s -> %s", recipe.name, train_seconds, dest)

    if card_md is True:
        card_md = Path(recipe.path).with_suffix(".md") if recipe.path else None
    if card_md:
        try:
            write_card_md(card, Path(card_md))
        except OSError as exc:  # e.g. recipes inside a read-only install: the JSON card is what counts
            log.warning("could not write the markdown card %s: %s", card_md, exc)
    return card


def train_folds(recipe: Recipe | str | Path, folds: list[int] | None = None, data_dir: Path | None = None,
                num_threads: int | None = None, progress: bool = True) -> list[dict]:
    """Train the fold models of a fold recipe (``folds``: which; default all), each into its own folder, and the
    family's markdown card beside the recipe (one row per fold: the games it held out, its held-out accuracy).

    Returns:
        The fold models' cards.
    """
    from galad.values.folds import fold_parts, fold_recipe

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    if recipe.folds < 2:
        raise ConfigError(f"recipe {recipe.name} has no folds: train it with train")
    which = list(range(recipe.folds)) if folds is None else folds
    parts = fold_parts(recipe)
    cards = []
    for j in which:
        if not 0 <= j < len(parts):
            raise ConfigError(f"{recipe.name} has folds 0..{len(parts) - 1}, not {j}")
    for j in which:
        log.info("fold %d of %s: holding out %s", j, recipe.name, ", ".join(parts[j]))
        cards.append(train(fold_recipe(recipe, j), data_dir, card_md=False, num_threads=num_threads,
                           progress=progress))
    if recipe.path:
        done = [read_card(model_dir(fold_recipe(recipe, j).name)) for j in range(len(parts))]
        try:
            write_family_md(recipe, [c for c in done if c is not None], Path(recipe.path).with_suffix(".md"))
        except OSError as exc:
            log.warning("could not write the markdown card of %s: %s", recipe.name, exc)
    return cards


def write_family_md(recipe: Recipe, cards: list[dict], path: Path) -> None:
    """The markdown card of a fold family: per fold, the games it held out, what it trained on and how it measured
    on the held-out text sets. Sections from ``## Audit`` on are kept from the existing card."""
    sets = ("ethics_cm_short_heldout", "moral_stories_heldout", "social_chem_judged_heldout")
    lines = [f"# Model card: {recipe.name} ({recipe.folds} fold models)", "",
             (f"Recipe `{Path(recipe.path or '').name}`: each fold model starts from `{recipe.base_model}` and is "
              f"fine-tuned on the annotations of the games outside its fold (game-grounded contextual rows) beside "
              f"{recipe.data.text_rows or 'all'} rows of the datasets. `--value-model galad:games` gives a game the "
              f"fold model that never read it. Decision threshold {recipe.threshold}; "
              f"{'int8' if recipe.quantize else 'fp32'} as deployed."), "",
             "| fold | held-out games | games read | game rows | text rows | trained | " +
             " | ".join(f"{s} acc / AUROC" for s in sets) + " |",
             "|---" * (6 + len(sets)) + "|"]
    for c in sorted(cards, key=lambda c: c["name"]):
        game_rows = sum(v for k, v in c["train_examples"].items() if k.startswith("game:"))
        text_rows = sum(v for k, v in c["train_examples"].items() if not k.startswith("game:"))
        cells = [f"{c['heldout'][s]['accuracy']:.3f} / {c['heldout'][s]['auroc']:.3f}"
                 if s in c["heldout"] and c["heldout"][s].get("auroc") is not None else "–" for s in sets]
        lines.append(f"| {c['name']} | {', '.join(c['recipe']['heldout_games'])} | {len(c['read_games'])} | "
                     f"{game_rows} | {text_rows} | {c['trained_at']}, {c['train_seconds']} s | " + " | ".join(cells) + " |")
    lines += ["", "Each fold model's `galad_card.json` lists the games it read (`read_games`: its own and its base "
              "model's) and held out (`recipe.heldout_games`); the trainer and `galad lm distill` refuse a model "
              "that read the game they run on.", ""]
    if path.is_file():
        old = path.read_text(encoding="utf-8")
        if "\n## Audit" in old:
            lines += ["## Audit" + old.split("\n## Audit", 1)[1].rstrip(), ""]
    write_text_atomic(path, "\n".join(lines))


def _base_model(recipe: Recipe) -> tuple[str, dict | None]:
    """The model a recipe starts from: a hub id or folder as it is, or one of our trained models (``galad:...``,
    trained first if need be) as its folder, with its card."""
    if not recipe.base_model.startswith("galad:"):
        return recipe.base_model, None
    from galad.values.folds import recipe_for

    base = recipe_for(recipe.base_model)
    folder = model_dir(base.name)
    if read_card(folder) is None:
        log.warning("%s starts from %s, which is not trained yet: training it first", recipe.name, base.name)
        train(base, card_md=False)
    return str(folder), read_card(folder)


def card_games(card: dict) -> tuple[str, ...]:
    """The games whose annotations a trained model read: its own and its base model's (``read_games``; cards from
    before it was recorded: the recipe's games)."""
    if "read_games" in card:
        return tuple(card["read_games"])
    return tuple(card.get("recipe", {}).get("data", {}).get("games", ()))


Row = tuple[str, str | None, int]
"""A training row: (text, context or None, label)."""


def _length_bucketed_batches(rows: list[Row], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches (row indices): shuffle, sort within chunks of 50 batches (plain rows first, then by
    length), shuffle the batches."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: (rows[i][1] is not None, len(rows[i][0])))
        batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _fit(tok, net, rows: list[Row], recipe: Recipe, rng: random.Random, progress: bool) -> int:
    """Fine-tune ``net`` on ``rows`` for the recipe's epochs (AdamW, linear warmup and decay, frozen word
    embeddings); plain and paired rows of a batch go through the model separately. Returns the steps taken."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from galad.values.hf import encode_pairs

    steps_per_epoch = math.ceil(len(rows) / recipe.batch_size)
    total = max(1, round(steps_per_epoch * recipe.epochs))
    # the word embeddings stay frozen: a few thousand sentences cannot improve them, and it halves optimizer work
    net.get_input_embeddings().weight.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    net.train()
    step = 0
    bar = tqdm(total=total, desc=f"training {recipe.name}", unit="batch", disable=not progress)
    while step < total:
        for batch in _length_bucketed_batches(rows, recipe.batch_size, rng):
            if step >= total:
                break
            plain = [i for i in batch if rows[i][1] is None]
            paired = [i for i in batch if rows[i][1] is not None]
            loss_sum = 0.0
            opt.zero_grad()
            for group, ctx in ((plain, False), (paired, True)):
                if not group:
                    continue
                if ctx:
                    enc = encode_pairs(tok, [rows[i][0] for i in group], [rows[i][1] for i in group],
                                       recipe.context_max_length)
                else:
                    enc = tok([rows[i][0] for i in group], padding=True, truncation=True,
                              max_length=recipe.max_length, return_tensors="pt")
                labels = torch.tensor([rows[i][2] for i in group])
                loss = torch.nn.functional.cross_entropy(net(**enc).logits, labels) * len(group) / len(batch)
                loss.backward()
                loss_sum += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}")
    bar.close()
    net.eval()
    return total


def heldout_metrics(tok, net, evals: dict[str, list[vdata.Example]], recipe: Recipe, progress: bool) -> dict:
    """Action-only metrics of the trained model (quantised when the recipe deploys it so) on each held-out set;
    long ETHICS scenarios are read up to :data:`LONG_TEXT_TOKENS` tokens."""
    from tqdm.auto import tqdm

    from galad.values.hf import predict_proba, quantize_dynamic

    scorer_net = quantize_dynamic(net) if recipe.quantize else net
    results = {}
    for name, exs in tqdm(evals.items(), desc="held-out evaluation", disable=not progress):
        if not exs:
            continue
        long = "long" in name
        probs = predict_proba(tok, scorer_net, [e.text for e in exs], None, 64,
                              LONG_TEXT_TOKENS if long else recipe.max_length)
        stats = binary_stats([e.label for e in exs], probs, recipe.threshold)
        results[name] = {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 4) if isinstance(v, float) else v)
                         for k, v in stats.items()}
    return results


def _card(recipe: Recipe, train_set: list[vdata.Example], steps: int, train_seconds: float, eval_seconds: float,
          heldout: dict, data_origin: str) -> dict:
    """The model card (``galad_card.json``): what was trained on what, how it measured, on which machine."""
    import torch
    import transformers

    counts: dict[str, int] = {}
    for ex in train_set:
        counts[ex.source] = counts.get(ex.source, 0) + 1
    trained_at = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    fingerprint = hashlib.blake2b(f"{recipe.to_dict()}{trained_at}{os.getpid()}".encode(), digest_size=6).hexdigest()
    return {
        "name": recipe.name,
        "model_id": f"{recipe.name}@{fingerprint}",
        "base_model": recipe.base_model,
        "threshold": recipe.threshold,
        "quantize": recipe.quantize,
        "max_length": recipe.max_length,
        "context_max_length": recipe.context_max_length,
        "recipe": recipe.to_dict(),
        "trained_at": trained_at,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "train_examples": counts,
        "data": data_origin,
        "train_steps": steps,
        "splits": vdata.HELDOUT_SPLITS,
        "heldout": heldout,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__,
                    "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
    }


def write_card_md(card: dict, path: Path, extra: str = "") -> None:
    """Write the human model card (markdown) atomically.

    Sections from ``## Audit`` on (measured by hand with ``galad value audit``/``bench``) are kept from the
    existing card unless ``extra`` replaces them.
    """
    lines = [f"# Model card: {card['name']}", "",
             (f"Base model `{card['base_model']}` with a two-class head, fine-tuned by `galad value train` "
             f"(recipe `{Path(card['recipe'].get('path') or '').name}`). Trained {card['trained_at']} in "
             f"{card['train_seconds']} s on {card['machine']['cpus']} CPU cores "
             f"(torch {card['machine']['torch']}, load average {card['machine']['load_average'] or 0:.1f})."), "",
             (f"Decision threshold: P(harm) > {card['threshold']}; scoring uses "
             f"{'int8 dynamic quantisation' if card['quantize'] else 'fp32'}."), "",
             "## Training data", "",
             "| source | rows |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(card["train_examples"].items())]
    lines += ["", "## Held-out splits (no training run sees them)", "", card["splits"], "",
              "## Held-out results (action text alone, the deployed scorer)", "",
              "| set | n | accuracy | AUROC | precision | recall |", "|---|---|---|---|---|---|"]
    for k, r in card["heldout"].items():
        cells = [f"{r[c]:.3f}" if r.get(c) is not None else "–" for c in ("accuracy", "auroc", "precision", "recall")]
        lines.append(f"| {k} | {r['n']} | " + " | ".join(cells) + " |")
    lines += ["", ("`ethics_hard_*` are adversarially filtered and reported untuned; `social_chem_heldout` has only "
              "harmless rows (accuracy = specificity, AUROC undefined)."), ""]
    if not extra and path.is_file():  # keep hand-measured sections (audit, speed) of an earlier card
        old = path.read_text(encoding="utf-8")
        if "\n## Audit" in old:
            extra = "## Audit" + old.split("\n## Audit", 1)[1].rstrip()
    if extra:
        lines += [extra, ""]
    write_text_atomic(path, "\n".join(lines))
