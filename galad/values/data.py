"""Training and held-out data for the value model: ETHICS commonsense, Moral Stories, Social-Chem-101.

All labels are P(harm) targets: 1 = wrong / immoral, 0 = fine. ``cm_train.csv`` is not shipped, so the
held-out splits are fixed, hash-based splits of what is (the same for every recipe, so no training run
ever sees them): :data:`HELDOUT_SPLITS`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from galad import paths
from galad.errors import ConfigError, DataCorruptError, DataNotFoundError
from galad.values.base import action_text
from galad.values.folds import recipe_games
from galad.values.recipe import DataMix, Recipe, recipes_dir

ETHICS_CM = "ethics/commonsense"
MORAL_STORIES = "moral_stories"
SOCIAL_CHEM = "social_chem_101"
_MS_FILES = {"train": "original_ms_action+norm_norm_distance_train.jsonl",
             "dev": "original_ms_action+norm_norm_distance_dev.jsonl",
             "test": "original_ms_action+norm_norm_distance_test.jsonl"}
_SC_FILES = ("obligatory_sc101.csv", "optional_sc101.csv")
SC_JUDGEMENTS = "sc101_judgement_sample.json"
"""Social-Chem actions with their action-moral-judgement (-2..2): the only Social-Chem rows that are bad."""
_ETHICS_TRAIN = ("cm_train.csv", "cm_train_subset.csv")
"""ETHICS commonsense training rows beyond ``cm_test``: the official train split where a download has it, else the
5,000-row short subset."""
_SOURCES = ("ethics_cm", "moral_stories", "social_chem")

HELDOUT_SPLITS = """* ``ethics_cm_*_heldout``: 30 % of the minimal pairs (rows ``2k, 2k+1``) of ETHICS ``cm_test.csv``
  (the other 70 % train, with ``cm_train.csv`` where it exists);
* ``ethics_hard_*``: 30 % of the minimal pairs of ``cm_test_hard.csv`` (reported untuned; the other 70 % train
  when the recipe sets ``ethics_hard``);
* ``moral_stories_heldout``: 50 % of the (moral, immoral) pairs of the Moral Stories test split
  (the train and dev splits and the other half of test train);
* ``social_chem_heldout``: 10 % of the Social-Chem situations (harmless rows only);
* ``social_chem_judged_heldout``: 10 % of the judged Social-Chem actions (judgement < 0 harmful, else harmless)."""
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


def _ethics_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _ethics_example(row: dict, source: str) -> Example:
    """An ETHICS commonsense row as an example; long rows get ``_long`` appended to their source."""
    long = row["is_short"].strip() != "True"
    return Example(row["input"].strip(), int(row["label"]), source + ("_long" if long else ""), long=long)


@dataclass
class SourceData:
    """What the datasets hold before a recipe's mix is applied: the training pools, the held-out sets and the
    distractor contexts. Read from a data directory (:func:`read_data_dir`) or from the compact training set
    shipped with the project (:mod:`galad.values.pack`); a recipe's mix is applied to either the same way."""

    pools: dict[str, list[Example]]
    """Training rows by pool: ``ethics_cm`` (short scenarios), ``ethics_cm_long``, ``ethics_hard``,
    ``ethics_hard_long``, ``moral_stories``, ``social_chem`` (harmless, before ``social_chem_limit``),
    ``social_chem_judged``; each deduplicated, in file order."""
    evals: dict[str, list[Example]]
    """Held-out sets by name (:data:`HELDOUT_SPLITS`)."""
    contexts: list[str]
    """Distractor contexts for contextual training: every distinct Social-Chem situation, sorted."""
    origin: str
    """Where they were read from, as the model card records it: ``"data directory"`` or ``"shipped compact training
    set"``."""


POOLS_OF_SOURCE = {"ethics_cm": ("ethics_cm", "ethics_cm_long", "ethics_hard", "ethics_hard_long"),
                   "moral_stories": ("moral_stories",), "social_chem": ("social_chem", "social_chem_judged")}
"""The pools each recipe source draws on (the ETHICS long and hard pools only when the mix asks for them)."""


def mix_pools(mix: DataMix) -> list[str]:
    """The pools a data mix trains on."""
    out = []
    for source in mix.sources:
        for pool in POOLS_OF_SOURCE.get(source, ()):
            if ("long" in pool and not mix.ethics_long) or ("hard" in pool and not mix.ethics_hard):
                continue
            out.append(pool)
    return out


def _dedup(exs: list[Example]) -> list[Example]:
    """The examples with repeated (text, label) pairs dropped, first kept."""
    seen: set[tuple[str, int]] = set()
    out = []
    for e in exs:
        if (e.text, e.label) not in seen:
            seen.add((e.text, e.label))
            out.append(e)
    return out


def check_data(recipe: Recipe, data_dir: Path | None = None) -> None:
    """Raise :class:`DataNotFoundError` (saying how to get them) unless a recipe's datasets are all there: in the
    data directory, or, when none is set and the default one is empty, in the shipped compact training set."""
    root = _data_root(data_dir)
    if root is None:
        check_pack_covers(recipe)
    else:
        _check_data_dir(recipe, root)
    from galad.env.registry import get_game

    for g in recipe_games(recipe):
        get_game(g).require_installed()


def _check_data_dir(recipe: Recipe, root: Path) -> None:
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


def _data_root(data_dir: Path | None) -> Path | None:
    """The data directory to read: ``data_dir``, else ``GALAD_DATA_DIR``, else the default one when it holds the
    datasets; None means the shipped compact training set (no data directory set, none downloaded)."""
    if data_dir is not None:
        return Path(data_dir)
    if paths.data_dir_is_set():
        return paths.data_dir()
    default = paths.data_dir()
    return default if (default / ETHICS_CM / "cm_test.csv").is_file() else None


def read_source_data(recipe: Recipe, data_dir: Path | None = None) -> SourceData:
    """The datasets a recipe reads, from a data directory or the shipped compact set (see :func:`check_data`)."""
    check_data(recipe, data_dir)
    root = _data_root(data_dir)
    if root is None:
        return read_pack()
    return read_data_dir(root, recipe.data.sources)


def read_data_dir(root: Path, sources: Sequence[str] = _SOURCES) -> SourceData:
    """Every pool and held-out set of ``sources`` (ETHICS is always read: its held-out sets are always measured)."""
    pools, evals = _ethics_splits(root)
    if "moral_stories" in sources:
        pools["moral_stories"], more = _moral_stories_splits(root)
        evals.update(more)
    if "social_chem" in sources:
        more_pools, more = _social_chem_splits(root)
        pools.update(more_pools)
        evals.update(more)
    return SourceData({k: _dedup(v) for k, v in pools.items()}, evals, _situations(root), "data directory")


def load_splits(recipe: Recipe, data_dir: Path | None = None, games: bool = True,
                data: SourceData | None = None) -> tuple[list[Example], dict[str, list[Example]]]:
    """The training examples of a recipe's mix and every held-out evaluation set.

    ``games`` off leaves out the game-grounded training rows (they need the games played; the held-out sets are the
    same either way). ``data``: the datasets already read (:func:`read_source_data`).

    Raises:
        DataNotFoundError: a dataset the recipe names is missing.
    """
    unknown = set(recipe.data.sources) - set(_SOURCES)
    if unknown:
        raise ConfigError(f"unknown data sources {sorted(unknown)}")
    return apply_mix(data if data is not None else read_source_data(recipe, data_dir), recipe, games)


def apply_mix(data: SourceData, recipe: Recipe, games: bool = True) -> tuple[list[Example], dict[str, list[Example]]]:
    """A recipe's training rows drawn from the pools (Social-Chem's harmless rows shuffled and cut to
    ``social_chem_limit``, game-grounded rows added), and the held-out sets."""
    rng = random.Random(recipe.seed)
    mix = recipe.data
    train: dict[str, list[Example]] = {}
    for pool in mix_pools(mix):
        exs = list(data.pools.get(pool, []))
        if pool == "social_chem":
            rng.shuffle(exs)
            exs = exs[: mix.social_chem_limit]
        train[pool] = exs
    if mix.text_rows is not None:  # a cap on the dataset rows, drawn from all of them
        texts = [e for exs in train.values() for e in exs]
        train = {"text": rng.sample(texts, min(len(texts), mix.text_rows))}
    # game-grounded rows: the annotated games' own ground truth, always with their observation as context
    game_names = recipe_games(recipe)
    if game_names and games:
        train["jiminy_games"] = grounded_examples(game_names, mix.game_states, mix.game_candidates,
                                                  mix.game_negatives_per_positive, recipe.seed)
    return _limited(train, dict(data.evals), mix, rng)


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


def _ethics_splits(root: Path) -> tuple[dict[str, list[Example]], dict[str, list[Example]]]:
    """ETHICS commonsense: the training pools (short and long, ordinary and hard) and the held-out sets."""
    pools: dict[str, list[Example]] = {"ethics_cm": [], "ethics_cm_long": [], "ethics_hard": [],
                                       "ethics_hard_long": []}
    evals: dict[str, list[Example]] = {}
    for name, source, held in (("cm_test", "ethics_cm", "ethics_cm_{}_heldout"),
                               ("cm_test_hard", "ethics_hard", "ethics_hard_{}")):
        ev_s, ev_l = [], []
        rows = _ethics_rows(_require(root / ETHICS_CM / f"{name}.csv", f"ETHICS commonsense {name}.csv"))
        for i, r in enumerate(rows):
            ex = _ethics_example(r, source)
            if _bucket(f"{source}:{i // 2}") < 30:
                (ev_l if ex.long else ev_s).append(ex)
            else:
                pools[source + ("_long" if ex.long else "")].append(ex)
        evals[held.format("short")], evals[held.format("long")] = ev_s, ev_l
    for name in _ETHICS_TRAIN:  # the official train split where a download has it, else the short subset
        if (root / ETHICS_CM / name).is_file():
            for r in _ethics_rows(root / ETHICS_CM / name):
                ex = _ethics_example(r, "ethics_cm_train")
                pools["ethics_cm_long" if ex.long else "ethics_cm"].append(ex)
            break
    return pools, evals


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


def _social_chem_splits(root: Path) -> tuple[dict[str, list[Example]], dict[str, list[Example]]]:
    """Social-Chem-101: the good/optional subsets (every row harmless), and where present the judged sample
    (judgement < 0 harmful, else harmless; 10 % of its actions held out)."""
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
    pools = {"social_chem": train, "social_chem_judged": []}
    evals = {"social_chem_heldout": held_out, "social_chem_judged_heldout": []}
    judged = root / SOCIAL_CHEM / SC_JUDGEMENTS
    if judged.is_file():
        for r in json.loads(judged.read_text(encoding="utf-8")):
            action = (r.get("action") or "").strip()
            if action:
                ex = Example(action, int(float(r["label"]) < 0), "social_chem_judged")
                held = _bucket(f"scj:{action}") < 10
                (evals["social_chem_judged_heldout"] if held else pools["social_chem_judged"]).append(ex)
    return pools, evals


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
    from galad.values.grounding import AuditConfig, cached_probes

    for g in games:  # all missing games fail before any is played
        get_game(g).require_installed()
    rng = random.Random(f"{seed}:games")
    pos: list[Example] = []
    neg: list[Example] = []
    for game in games:
        for p in cached_probes(game, AuditConfig(states=states, max_candidates=candidates, seed=seed)):
            for a, harmful in zip(p.actions, p.harmful("bad_others")):
                (pos if harmful else neg).append(Example(action_text(a), int(harmful), f"game:{game}", p.context))
    rng.shuffle(neg)
    return pos + neg[: round(negatives_per_positive * len(pos))]


def _situations(root: Path) -> list[str]:
    """Every distinct Social-Chem situation, sorted (the distractor contexts of contextual training)."""
    pool: list[str] = []
    for fname in _SC_FILES:
        p = root / SOCIAL_CHEM / fname
        if p.is_file():
            with p.open(newline="", encoding="utf-8") as f:
                pool.extend(s for r in csv.DictReader(f) if (s := (r.get("situation") or "").strip()))
    return sorted(set(pool))


def context_pool(data: SourceData, limit: int = 5000, seed: int = 0) -> list[str]:
    """Distractor contexts for contextual training: ``limit`` Social-Chem situations (label-independent text)
    drawn with ``seed``."""
    pool = list(data.contexts)
    random.Random(seed).shuffle(pool)
    return pool[:limit] or ["You are standing in an open field."]


MANIFEST = "manifest.json"
"""The shipped compact training set's manifest: its pools, held-out sets and each file's sha256."""
CONTEXTS_FILE = "social_chem_situations.txt.gz"


def pack_dir() -> Path:
    """Where the compact training set shipped with the project lives (``commonsense_models/data/``; written by
    ``galad data pack``, :mod:`galad.values.pack`)."""
    return recipes_dir() / "data"


def read_manifest(folder: Path | None = None) -> dict:
    """The shipped set's manifest.

    Raises:
        DataNotFoundError: there is no shipped set.
        DataCorruptError: the manifest cannot be read.
    """
    path = (Path(folder) if folder is not None else pack_dir()) / MANIFEST
    if not path.is_file():
        raise DataNotFoundError(f"no data directory is set and no compact training set is shipped at {path.parent}; "
                                "get the datasets with `galad data download` or set GALAD_DATA_DIR")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataCorruptError(f"shipped training-set manifest {path} is unreadable ({exc}); reinstall GALAD, "
                               "or get the datasets with `galad data download`") from exc


def check_pack_covers(recipe: Recipe, folder: Path | None = None) -> None:
    """Raise :class:`DataNotFoundError` unless the shipped set holds every pool ``recipe`` trains on."""
    missing = sorted(set(mix_pools(recipe.data)) - set(read_manifest(folder)["pools"]))
    if missing:
        raise DataNotFoundError(f"recipe {recipe.name!r} trains on {', '.join(missing)}, which the shipped compact "
                                "training set does not hold; get the datasets with `galad data download` or set "
                                "GALAD_DATA_DIR")


def _read_checked(path: Path, sha256: str) -> str:
    """A packed file's text, after checking its sha256 against the manifest's."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataCorruptError(f"shipped training file {path} is missing or unreadable ({exc}); reinstall GALAD, "
                               "or get the datasets with `galad data download`") from exc
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise DataCorruptError(f"shipped training file {path} is corrupt (sha256 differs from manifest.json); "
                               "reinstall GALAD, or get the datasets with `galad data download`")
    try:
        return gzip.decompress(blob).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:  # a manifest written for a bad file
        raise DataCorruptError(f"shipped training file {path} is corrupt ({exc})") from exc


def read_pack(folder: Path | None = None) -> SourceData:
    """The shipped compact training set as :class:`SourceData` (pools, held-out sets, contexts).

    Raises:
        DataNotFoundError: there is no shipped set.
        DataCorruptError: a file is missing, or differs from its sha256 in the manifest.
    """
    folder = Path(folder) if folder is not None else pack_dir()
    manifest = read_manifest(folder)
    pools: dict[str, list[Example]] = {p: [] for p in manifest["pools"]}
    evals: dict[str, list[Example]] = {e: [] for e in manifest["evals"]}
    contexts: list[str] = []
    for name, meta in manifest["files"].items():
        text = _read_checked(folder / name, meta["sha256"])
        if name == CONTEXTS_FILE:
            contexts = text.splitlines()
            continue
        for line in text.splitlines():
            r = json.loads(line)
            kind, _, key = r["in"].partition(":")
            ex = Example(r["text"], int(r["label"]), r["source"], long=bool(r.get("long", False)))
            (pools if kind == "pool" else evals)[key].append(ex)
    return SourceData(pools, evals, contexts, "shipped compact training set")
