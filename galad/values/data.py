"""Training and held-out data for the value model: ETHICS commonsense, Moral Stories, Social-Chem-101.

All labels are P(harm) targets: 1 = wrong / immoral, 0 = fine. ``cm_train.csv`` is not shipped, so the
held-out splits are fixed, hash-based splits of what is (the same for every recipe, so no training run
ever sees them): :data:`HELDOUT_SPLITS`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from galad import paths
from galad.errors import ConfigError, DataNotFoundError
from galad.values.base import action_text
from galad.values.recipe import DataMix, Recipe

ETHICS_CM = "ethics/commonsense"
MORAL_STORIES = "moral_stories"
SOCIAL_CHEM = "social_chem_101"
_MS_FILES = {"dev": "original_ms_action+norm_norm_distance_dev.jsonl",
             "test": "original_ms_action+norm_norm_distance_test.jsonl"}
_SC_FILES = ("obligatory_sc101.csv", "optional_sc101.csv")
_SOURCES = ("ethics_cm", "moral_stories", "social_chem")

HELDOUT_SPLITS = """* ``ethics_cm_*_heldout``: 30 % of the minimal pairs (rows ``2k, 2k+1``) of ETHICS ``cm_test.csv``
  (the other 70 % train, with ``cm_train.csv`` where it exists);
* ``ethics_hard_*``: 30 % of the minimal pairs of ``cm_test_hard.csv`` (reported untuned; the other 70 % train
  when the recipe sets ``ethics_hard``);
* ``moral_stories_heldout``: 50 % of the (moral, immoral) pairs of the Moral Stories test split
  (the dev split and the other half of test train);
* ``social_chem_heldout``: 10 % of the Social-Chem situations."""
"""The held-out splits, in the words the model card (``splits``) records them."""


@dataclass(frozen=True)
class Example:
    """One labelled text."""

    text: str
    """The action or scenario as the model reads it."""
    label: int
    """1 = harmful / wrong, 0 = fine."""
    source: str
    """Dataset and split it came from."""
    context: str | None = None
    """Optional context paired with it (contextual training)."""
    long: bool = False
    """A long (Reddit-post) ETHICS scenario: trained action-only (truncated), never paired with a context."""


def _bucket(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % 100


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataNotFoundError(
            f"{what} not found at {path}; get the datasets with `galad data download` "
            f"or point GALAD_DATA_DIR at a folder that has them")
    return path


def _ethics_rows(root: Path, name: str) -> list[dict]:
    with _require(root / ETHICS_CM / f"{name}.csv", f"ETHICS commonsense {name}.csv").open(newline="",
                                                                                          encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _ethics_example(row: dict, source: str) -> Example:
    """An ETHICS commonsense row as an example; long rows get ``_long`` appended to their source."""
    long = row["is_short"].strip() != "True"
    return Example(row["input"].strip(), int(row["label"]), source + ("_long" if long else ""), long=long)


def check_data(recipe: Recipe, data_dir: Path | None = None) -> None:
    """Raise :class:`DataNotFoundError` (saying how to get them) unless a recipe's datasets are all there."""
    root = Path(data_dir) if data_dir is not None else paths.data_dir()
    if not root.is_dir():
        raise DataNotFoundError(f"data directory {root} does not exist; get the datasets with "
                                "`galad data download` or set GALAD_DATA_DIR")
    need = [(ETHICS_CM + "/cm_test.csv", "ETHICS commonsense cm_test.csv"),
            (ETHICS_CM + "/cm_test_hard.csv", "ETHICS commonsense cm_test_hard.csv")]
    if "moral_stories" in recipe.data.sources:
        need += [(f"{MORAL_STORIES}/{f}", f"Moral Stories {s} split") for s, f in _MS_FILES.items()]
    if "social_chem" in recipe.data.sources:
        need += [(f"{SOCIAL_CHEM}/{f}", f"Social-Chem-101 {f}") for f in _SC_FILES]
    for rel, what in need:
        _require(root / rel, what)
    if recipe.data.games:
        from galad.env.registry import get_game

        for g in recipe.data.games:
            get_game(g).require_installed()


def load_splits(recipe: Recipe, data_dir: Path | None = None,
                games: bool = True) -> tuple[list[Example], dict[str, list[Example]]]:
    """The training examples of a recipe's mix and every held-out evaluation set.

    ``games`` off leaves out the game-grounded training rows (they need the games played; the held-out sets are the
    same either way).

    Raises:
        DataNotFoundError: a dataset the recipe names is missing.
    """
    check_data(recipe, data_dir)
    root = Path(data_dir) if data_dir is not None else paths.data_dir()
    rng = random.Random(recipe.seed)
    mix = recipe.data
    unknown = set(mix.sources) - set(_SOURCES)
    if unknown:
        raise ConfigError(f"unknown data sources {sorted(unknown)}")
    train: dict[str, list[Example]] = {}
    ethics_train, evals = _ethics_splits(root, mix)  # always evaluated; trained on when listed
    if "ethics_cm" in mix.sources:
        train["ethics_cm"] = ethics_train
    if "moral_stories" in mix.sources:
        train["moral_stories"], more = _moral_stories_splits(root)
        evals.update(more)
    if "social_chem" in mix.sources:
        train["social_chem"], more = _social_chem_splits(root, mix, rng)
        evals.update(more)
    # game-grounded rows: the annotated games' own ground truth, always with their observation as context
    if mix.games and games:
        train["jiminy_games"] = grounded_examples(mix.games, mix.game_states, mix.game_candidates,
                                                  mix.game_negatives_per_positive, recipe.seed)
    return _limited(train, evals, mix, rng)


def _limited(train: dict[str, list[Example]], evals: dict[str, list[Example]], mix: DataMix,
             rng: random.Random) -> tuple[list[Example], dict[str, list[Example]]]:
    """The training rows of every source (each sampled down to ``limit_per_source``), shuffled together, and the
    held-out sets (each sampled down to ``eval_limit``)."""
    out: list[Example] = []
    for exs in train.values():
        if mix.limit_per_source is not None:
            exs = rng.sample(exs, min(len(exs), mix.limit_per_source))
        out.extend(exs)
    if mix.eval_limit is not None:
        evals = {k: random.Random(k).sample(v, min(len(v), mix.eval_limit)) for k, v in evals.items()}
    rng.shuffle(out)
    return out, evals


def _ethics_splits(root: Path, mix: DataMix) -> tuple[list[Example], dict[str, list[Example]]]:
    """ETHICS commonsense: the training rows of a mix (whether or not it trains on them) and the held-out sets."""
    train: list[Example] = []
    evals: dict[str, list[Example]] = {}
    for name, source, held in (("cm_test", "ethics_cm", "ethics_cm_{}_heldout"),
                               ("cm_test_hard", "ethics_hard", "ethics_hard_{}")):
        ev_s, ev_l = [], []
        for i, r in enumerate(_ethics_rows(root, name)):
            short = r["is_short"].strip() == "True"
            ex = _ethics_example(r, source)
            if _bucket(f"{source}:{i // 2}") < 30:
                (ev_s if short else ev_l).append(ex)
            elif (source == "ethics_cm" or mix.ethics_hard) and (short or mix.ethics_long):
                train.append(ex)
        evals[held.format("short")], evals[held.format("long")] = ev_s, ev_l
    if (root / ETHICS_CM / "cm_train.csv").is_file():  # the official train split, where a download has it
        train += [_ethics_example(r, "ethics_cm_train") for r in _ethics_rows(root, "cm_train")
                  if mix.ethics_long or r["is_short"].strip() == "True"]
    return train, evals


def _moral_stories_splits(root: Path) -> tuple[list[Example], dict[str, list[Example]]]:
    """Moral Stories: label 1 = moral in the file, so harm = 1 - label."""
    train: list[Example] = []
    held_out: list[Example] = []
    for split, fname in _MS_FILES.items():
        path = _require(root / MORAL_STORIES / fname, f"Moral Stories {split} split")
        with path.open(encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                d = json.loads(line)
                text = (d.get("moral_action") or d.get("immoral_action") or "").strip()
                if not text:
                    continue
                ex = Example(text, 1 - int(d["label"]), f"moral_stories_{split}")
                held = split == "test" and _bucket(f"ms:{d['ID'][:-1]}") < 50
                (held_out if held else train).append(ex)
    return train, {"moral_stories_heldout": held_out}


def _social_chem_splits(root: Path, mix: DataMix,
                        rng: random.Random) -> tuple[list[Example], dict[str, list[Example]]]:
    """Social-Chem-101: only the good/optional subsets are shipped, so every row is harmless. The training rows
    are shuffled with ``rng`` and cut to the mix's ``social_chem_limit``."""
    train: list[Example] = []
    held_out: list[Example] = []
    for fname in _SC_FILES:
        path = _require(root / SOCIAL_CHEM / fname, f"Social-Chem-101 {fname}")
        with path.open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                action = (r.get("action") or "").strip()
                if not action:
                    continue
                ex = Example(action, 0, "social_chem")
                (held_out if _bucket(f"sc:{r.get('situation-short-id', '')}") < 10 else train).append(ex)
    rng.shuffle(train)
    return train[: mix.social_chem_limit], {"social_chem_heldout": held_out}


def grounded_examples(games: list[str], states: int, candidates: int, negatives_per_positive: float,
                      seed: int = 0) -> list[Example]:
    """Game-grounded training rows: (observation, action) pairs of the annotated games, labelled harmful when the
    action fires more harm-to-others markers than a turn of ``look`` in the same state (a marker that fires
    whatever the player types is the game's clock, not the action). Harmless rows are subsampled to
    ``negatives_per_positive`` per harmful one.

    Raises:
        GameNotInstalledError: a game is not installed.
    """
    from galad.env.registry import get_game
    from galad.values.grounding import AuditConfig, probe_game

    for g in games:  # all missing games fail before any is played
        get_game(g).require_installed()
    rng = random.Random(f"{seed}:games")
    pos: list[Example] = []
    neg: list[Example] = []
    for game in games:
        for p in probe_game(game, AuditConfig(states=states, max_candidates=candidates, seed=seed)):
            base = int(p.baseline[0]) if p.baseline is not None else 0
            for a, v in zip(p.actions, p.vectors):
                harmful = int(v[0]) > base
                (pos if harmful else neg).append(Example(action_text(a), int(harmful), f"game:{game}", p.context))
    rng.shuffle(neg)
    return pos + neg[: round(negatives_per_positive * len(pos))]


def context_pool(data_dir: Path | None = None, limit: int = 5000, seed: int = 0) -> list[str]:
    """Distractor contexts for contextual training: Social-Chem situations (label-independent text)."""
    root = Path(data_dir) if data_dir is not None else paths.data_dir()
    pool: list[str] = []
    for fname in _SC_FILES:
        p = root / SOCIAL_CHEM / fname
        if p.is_file():
            with p.open(newline="", encoding="utf-8") as f:
                pool.extend(s for r in csv.DictReader(f) if (s := (r.get("situation") or "").strip()))
    pool = sorted(set(pool))
    random.Random(seed).shuffle(pool)
    return pool[:limit] or ["You are standing in an open field."]
