"""The run folder: its paths, its typed records, and the one way they are written and read.

A run folder ``runs/{game}__{agent}__s{seed}__{YYYYmmdd-HHMMSS}/`` holds:

=============================  =========================================================================
``config.json``                the resolved :class:`~galad.config.TrainConfig` (written first)
TensorBoard events             ``charts/``, ``morality/``, ``filter/``, ``losses/`` tags
``transcripts/env{i}.jsonl``   one :class:`TranscriptLine` per env step
``episodes.jsonl``             one :class:`EpisodeLine` per finished episode
``checkpoints/latest.pt``      the trainer's state (:class:`galad.train.TrainerState`)
``valid_cache.sqlite``         the run's valid-action detections
``value_cache.sqlite``         the run's P(harm) scores
``profile.json``               env steps/s, where the time went, peak memory, value model
``summary.json``               the run's metrics, written last: the "finished" marker
=============================  =========================================================================

The trainer writes through :class:`RunFolder`; ``evaluate``, ``watch``, ``report``, ``sweep`` and ``bench`` read
through it, so the file names and record fields are spelled here alone.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from galad.atomic import read_json, write_json_atomic
from galad.errors import ConfigError

if TYPE_CHECKING:
    from galad.config import TrainConfig

CONFIG = "config.json"
TRANSCRIPTS = "transcripts"
EPISODES = "episodes.jsonl"
CHECKPOINT = "checkpoints/latest.pt"
SUMMARY = "summary.json"
PROFILE = "profile.json"
VALID_CACHE = "valid_cache.sqlite"
VALUE_CACHE = "value_cache.sqlite"


@dataclass
class TranscriptLine:
    """One env step as the transcript keeps it (``transcripts/env{i}.jsonl``)."""

    step: int
    """Training step (every env steps once per training step)."""
    env: int
    episode: int
    """Episode index within this env."""
    episode_step: int
    """Steps taken in the episode before this one."""
    obs: str
    """The observation the action was chosen in."""
    candidates: list[str]
    """Candidates the Q-network saw (after the policy's restriction)."""
    harm: list[float | None]
    """P(harm) of each kept candidate (None where not scored)."""
    q_values: list[float]
    """Q of each kept candidate, before any penalty."""
    penalties: list[float]
    """Subtracted from each kept candidate's Q when acting (CMPS), zeros otherwise."""
    removed: list[str]
    """Candidates the policy removed."""
    removed_harm: list[float]
    action: str
    next_obs: str
    reward: float
    score: int
    """Game score after the action."""
    markers: list[list[Any]]
    """Annotation markers the action fired."""
    label_vectors: list[list[int]]
    """``[bad_others, bad_self, good_others, good_self]`` of each marker."""
    terminated: bool
    truncated: bool


@dataclass
class EpisodeLine:
    """One finished episode (``episodes.jsonl``)."""

    env: int
    episode: int
    env_steps: int
    """Env steps of the whole run when the episode ended (x-axis of the curves)."""
    steps: int
    score: int
    starting_score: int
    max_score: int
    return_: float
    """Score gained in the episode (``return`` in the file)."""
    immorality: float
    """Tier-weighted harm to others."""
    bad_others: float
    bad_self: float
    good_others: float
    good_self: float
    percent_completion: float
    end: str | None = None
    """``game_over``, or why the episode was truncated (absent from runs written before it was recorded)."""


_JSON_NAMES = {"return_": "return"}
_R = TypeVar("_R", TranscriptLine, EpisodeLine)


def record_to_dict(record: TranscriptLine | EpisodeLine) -> dict[str, Any]:
    """The record as its JSON line holds it (field order kept)."""
    return {_JSON_NAMES.get(f.name, f.name): getattr(record, f.name) for f in dataclasses.fields(record)}


def record_from_dict(cls: type[_R], data: dict[str, Any]) -> _R:
    """A record from its JSON line; unknown keys are ignored."""
    kwargs = {f.name: data[_JSON_NAMES.get(f.name, f.name)] for f in dataclasses.fields(cls)
              if _JSON_NAMES.get(f.name, f.name) in data}
    return cls(**kwargs)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every whole JSON line of ``path`` (a line cut by a crash is skipped); [] when there is no file."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


@dataclass
class RunFolder:
    """Paths, writers and readers of one run folder."""

    path: Path
    _config: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def transcripts(self) -> Path:
        return self.path / TRANSCRIPTS

    def transcript(self, env: int) -> Path:
        return self.transcripts / f"env{env}.jsonl"

    @property
    def episodes_path(self) -> Path:
        return self.path / EPISODES

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    @property
    def profile_path(self) -> Path:
        return self.path / PROFILE

    @property
    def valid_cache(self) -> Path:
        return self.path / VALID_CACHE

    @property
    def value_cache(self) -> Path:
        return self.path / VALUE_CACHE

    @property
    def finished(self) -> bool:
        """``summary.json`` exists: the run ended and was evaluated."""
        return self.summary_path.is_file()

    @property
    def resumable(self) -> bool:
        return self.checkpoint.is_file()

    # --- making and finding run folders ----------------------------------------------------------------
    @staticmethod
    def new(cfg: TrainConfig, name: str | None = None) -> RunFolder:
        """A new run folder under ``cfg.run_dir`` with its ``config.json``; ``name`` fixes the folder name
        (default: game, agent, seed and a timestamp)."""
        parent = Path(cfg.run_dir)
        if name:
            path = parent / name
            if path.exists():
                raise ConfigError(f"{path} exists; resume it with --resume or choose another --run-name")
        else:
            stem = f"{cfg.game}__{cfg.agent}__s{cfg.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
            path, n = parent / stem, 1
            while path.exists():
                n += 1
                path = parent / f"{stem}-{n}"
        (path / TRANSCRIPTS).mkdir(parents=True)
        (path / "checkpoints").mkdir()
        write_json_atomic(path / CONFIG, cfg.to_dict())
        return RunFolder(path)

    @staticmethod
    def existing(path: str | Path) -> RunFolder:
        """An existing run folder; a clear error when ``path`` is not one."""
        p = Path(path)
        if not (p / CONFIG).is_file():
            raise ConfigError(f"{p} is not a galad run folder (no {CONFIG})")
        return RunFolder(p)

    @staticmethod
    def under(parent: str | Path) -> list[RunFolder]:
        """The run folders directly under ``parent`` (a sweep's folder), sorted by name."""
        parent = Path(parent)
        if not parent.is_dir():
            return []
        return [RunFolder(p) for p in sorted(parent.iterdir()) if (p / CONFIG).is_file()]

    # --- reading --------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The run's ``config.json`` as saved."""
        if self._config is None:
            self._config = json.loads(self.config_path.read_text(encoding="utf-8"))
        return self._config

    def episodes(self) -> list[EpisodeLine]:
        """Every finished episode, in the order written."""
        return [record_from_dict(EpisodeLine, d) for d in read_jsonl(self.episodes_path)]

    def transcript_lines(self, env: int, episode: int | None = None, follow: bool = False,
                         poll: float = 0.5) -> Iterator[TranscriptLine]:
        """Env ``env``'s transcript (optionally one episode); with ``follow``, keep reading as the run writes."""
        path = self.transcript(env)
        if not path.is_file():
            raise ConfigError(f"{self.path} has no transcript for env {env}")
        with path.open(encoding="utf-8") as f:
            while True:
                line = f.readline()
                if not line or not line.endswith("\n"):
                    if not follow:
                        return  # the end, or a line still being written
                    f.seek(f.tell() - len(line))
                    time.sleep(poll)
                    continue
                rec = record_from_dict(TranscriptLine, json.loads(line))
                if episode is None or rec.episode == episode:
                    yield rec

    def profile(self) -> dict[str, Any]:
        """``profile.json`` ({} for a run that has none yet)."""
        return read_json(self.profile_path) or {}

    # --- writing --------------------------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.summary_path, summary)

    def write_profile(self, profile: dict[str, Any]) -> None:
        write_json_atomic(self.profile_path, profile)


def jsonl_line(record: TranscriptLine | EpisodeLine) -> str:
    """The record as one line of its JSONL file."""
    return json.dumps(record_to_dict(record)) + "\n"
