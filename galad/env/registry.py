"""The game registry: facts and per-game rules of the 25 Jiminy Cricket games and of our own games.

Facts live in ``games/jiminy_cricket.toml`` and ``games/<name>/game.toml``; this module reads them into
:class:`GameSpec` objects and finds a game's installed files.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

from galad import paths
from galad.errors import GameNotInstalledError, UnknownGameError

#: Default game of every command: our own annotated demo game.
DEFAULT_GAME = "demo"

#: Upstream repository and the commit every download is pinned to.
UPSTREAM_REPO = "hendrycks/jiminy-cricket"
UPSTREAM_COMMIT = "1ff8bd09f7a0ad49e9a893c596832ac1f2ac6993"

ScoreSource = Literal["global", "custom_rewards"]
StatusLine = Literal["score_moves", "time", "prompt", "none"]


@dataclass(frozen=True)
class GameFile:
    """One file of a game: its name in the game folder, path upstream and sha256."""

    name: str
    upstream_path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class GameSpec:
    """Everything GALAD knows about one game."""

    name: str
    """Registry name, e.g. ``zork1``."""
    title: str
    """Human-readable title."""
    max_score: int
    """Maximum score (the benchmark's, used for % completion)."""
    story: GameFile
    """The story file (``.z3``/``.z4``/``.z5``)."""
    files: tuple[GameFile, ...]
    """Annotations, walkthrough and extras (``initial_actions.txt``, ``replacement_dict.csv``)."""
    score_source: ScoreSource
    """Where the score comes from: a Z-machine global (``score_global``) or ``[RWD_ID: …, VAL: n]`` rewards."""
    score_global: int | None = None
    """Index of the Z-machine global that holds the score after each step."""
    final_score_regex: str | None = None
    """At game over the score is parsed from the final text with this regex (first group), if it matches."""
    final_score_last_match: bool = False
    """Use the last match of ``final_score_regex`` instead of the first (stationfall)."""
    status_line: StatusLine = "none"
    """Which status line the engine prints into observations, removed from the text."""
    compressed: bool = False
    """Text is compressed with ``[RIDX: n]`` markers expanded from ``replacement_dict.csv``."""
    blocked_actions: tuple[str, ...] = ()
    """Regexes of actions answered ``Impossible.`` without reaching the engine (they hang or break games)."""
    bundled: bool = False
    """Shipped with GALAD (our own games); always installed."""
    notes: str = ""
    """Free text shown by ``galad games list --verbose``."""

    @property
    def annotations_name(self) -> str:
        return f"{self.name}_annotations.csv"

    @property
    def walkthrough_name(self) -> str:
        return f"{self.name}_walkthrough.txt"

    def all_files(self) -> tuple[GameFile, ...]:
        return (self.story, *self.files)

    def folder(self) -> Path:
        """Folder holding this game's files (the bundled folder for our own games)."""
        if self.bundled:
            return paths.bundled_games_dir() / self.name
        return paths.games_dir() / self.name

    def is_installed(self) -> bool:
        folder = self.folder()
        return all((folder / f.name).is_file() for f in self.all_files())

    def require_installed(self) -> Path:
        """Return the game folder, or raise a one-line error naming the download command."""
        if not self.is_installed():
            raise GameNotInstalledError(
                f"game '{self.name}' is not installed in {paths.games_dir()}; "
                f"run: galad games download {self.name} [--source DIR_OR_URL]"
            )
        return self.folder()

    def path(self, name: str) -> Path:
        return self.folder() / name

    def has_file(self, name: str) -> bool:
        return any(f.name == name for f in self.files)

    @cached_property
    def blocked_pattern(self) -> re.Pattern[str] | None:
        """All ``blocked_actions`` as one compiled pattern (None when there are none); match lowercased actions."""
        if not self.blocked_actions:
            return None
        return re.compile("|".join(f"(?:{p})" for p in self.blocked_actions))

    def is_blocked(self, action: str) -> bool:
        pattern = self.blocked_pattern
        return pattern is not None and pattern.search(action.lower()) is not None


# Actions the reference blocks in every game (meta-commands that would leave the episode or break it).
COMMON_BLOCKED_ACTIONS = (
    "^q$", "^quit$", "^save$", "^brief.*", "^super.*", "^restar.*", "^restor.*",
    "^script.*", "^unscript.*", "otr0", "oflg0", "oflg1",
)  # fmt: skip


def _game_file(d: dict) -> GameFile:
    return GameFile(d["name"], d.get("upstream_path", ""), d.get("sha256", ""), int(d.get("bytes", 0)))


def _spec(name: str, d: dict, bundled: bool) -> GameSpec:
    return GameSpec(
        name=name,
        title=d.get("title", name),
        max_score=int(d["max_score"]),
        story=_game_file(d["story"]),
        files=tuple(_game_file(f) for f in d.get("files", [])),
        score_source=d["score_source"],
        score_global=d.get("score_global"),
        final_score_regex=d.get("final_score_regex"),
        final_score_last_match=bool(d.get("final_score_last_match", False)),
        status_line=d.get("status_line", "none"),
        compressed=bool(d.get("compressed", False)),
        blocked_actions=COMMON_BLOCKED_ACTIONS + tuple(d.get("blocked_actions", [])),
        bundled=bundled,
        notes=d.get("notes", ""),
    )


@cache
def registry() -> dict[str, GameSpec]:
    """All known games, our own first, then the 25 Jiminy Cricket games in alphabetical order."""
    root = paths.bundled_games_dir()
    games: dict[str, GameSpec] = {}
    for toml_path in sorted(root.glob("*/game.toml")):
        d = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        games[toml_path.parent.name] = _spec(toml_path.parent.name, d, bundled=True)
    jc = tomllib.loads((root / "jiminy_cricket.toml").read_text(encoding="utf-8"))
    for name in sorted(jc["games"]):
        games[name] = _spec(name, jc["games"][name], bundled=False)
    return games


def jiminy_games() -> list[str]:
    """Names of the 25 Jiminy Cricket games."""
    return [n for n, s in registry().items() if not s.bundled]


def get_game(name: str | None) -> GameSpec:
    """Look a game up by name (default: the demo game).

    Raises:
        UnknownGameError: with the closest registered names.
    """
    name = (name or DEFAULT_GAME).strip().lower()
    games = registry()
    if name in games:
        return games[name]
    prefixed = sorted(g for g in games if g.startswith(name))
    close = (prefixed + [g for g in difflib.get_close_matches(name, list(games), n=3, cutoff=0.5)
                         if g not in prefixed])[:3]
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known games: {', '.join(games)}"
    raise UnknownGameError(f"unknown game '{name}'{hint}")


@dataclass
class GameListing:
    """A row of ``galad games list``."""

    name: str
    title: str
    max_score: int
    installed: bool
    bundled: bool
    score_source: str
    extras: list[str] = field(default_factory=list)


def list_games() -> list[GameListing]:
    out = []
    for spec in registry().values():
        extras = [f.name for f in spec.files if f.name in ("initial_actions.txt", "replacement_dict.csv")]
        out.append(
            GameListing(spec.name, spec.title, spec.max_score, spec.is_installed(), spec.bundled,
                        spec.score_source, extras)
        )
    return out


def gymnasium_id(name: str) -> str:
    """The Gymnasium id of a game: ``galad/<name>-v0``."""
    return f"galad/{name}-v0"


def register_gymnasium_envs() -> None:
    """Register every game with Gymnasium (``import galad.env`` does it), so that
    ``gymnasium.make("galad/zork1-v0", start_percentage=20)`` builds ``JiminyEnv("zork1", start_percentage=20)``."""
    from gymnasium.envs.registration import register
    from gymnasium.envs.registration import registry as gym_registry

    for name in registry():
        if gymnasium_id(name) not in gym_registry:
            register(gymnasium_id(name), entry_point="galad.env.jiminy:JiminyEnv", kwargs={"game": name})
