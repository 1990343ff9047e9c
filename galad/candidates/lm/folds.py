"""Cross-fitting: which games' walkthroughs a generator read, the folds, and the generator a run may use.

A generator fine-tuned on a game's walkthrough has read that game's solution path, so it must not propose the
actions of a run on that game. ``galad lm train --folds K`` deals the available games into ``K`` folds and
trains one generator per fold on every game outside it (``<GALAD_HOME>/lm/galad-lm-fold<j>``); every
generator's card lists the games it read (``read_games``: its own training games and those of the generator it
started from) and the games it held out. :func:`resolve_generator` gives a run on a game a generator whose card
says it never read that game; :func:`require_unread` refuses one that did.

A generator with no record: the offline base and a hub id (``gpt2``) count as having read none of the games
(neither was fine-tuned here, and what a hub model read elsewhere cannot be seen from here); a local folder whose
card lists no games (made before cards recorded them, or by someone else) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from galad.candidates.lm.files import BASE_NAME, DISTILLED_NAME, TRAINED_NAME, LMError, lm_dir, read_card, resolve_model
from galad.errors import ConfigError
from galad.folds import DEFAULT_FOLDS, assign_folds, fold_name

__all__ = ["DEFAULT_FOLDS", "assign_folds", "fold_name", "games_read", "generator_folders", "require_unread",
           "resolve_generator"]

def games_read(spec: str | None) -> tuple[str, ...] | None:
    """The games whose walkthroughs the generator ``spec`` (see :func:`resolve_model`) was fine-tuned on, from its
    card; None when it has no record of them.

    The offline base and a hub id read none here. A card written before ``read_games`` existed counts only when it
    is a ``galad lm train`` card started from the offline base, whose ``train_games`` is then the whole record.
    """
    if spec in (None, "", "base", BASE_NAME):
        return ()
    name, _ = resolve_model(spec)
    folder = Path(name)
    if not folder.is_dir():
        return ()  # a hub id
    card = read_card(folder) or {}
    if "read_games" in card:
        return None if card["read_games"] is None else tuple(card["read_games"])
    if card.get("name") == BASE_NAME:
        return ()
    if card.get("name") == TRAINED_NAME and card.get("base") == BASE_NAME and "train_games" in card:
        return tuple(card["train_games"])
    return None


def require_unread(spec: str | None, games: Sequence[str], use: str) -> None:
    """Refuse the generator ``spec`` when its card says it read any of ``games`` or records none.

    Args:
        spec: a generator spec.
        games: the games it is about to be run or evaluated on.
        use: what to do instead, ending the message.

    Raises:
        ConfigError: one line naming the generator and the games.
    """
    read = games_read(spec)
    if read is None:
        raise ConfigError(f"generator {spec!r} has no record of the games it was trained on (its card lists no "
                          f"read_games): retrain it with galad lm train, which records them")
    seen = sorted(set(games) & set(read))
    if seen:
        raise ConfigError(f"generator {spec!r} was trained on the walkthrough of {', '.join(seen)}: {use}")


def generator_folders(name: str) -> list[Path]:
    """The trained generators of family ``name`` in the cache: its folds by index, then the single one."""
    root = lm_dir()
    pattern = re.compile(re.escape(name) + r"-fold(\d+)")
    folds = sorted((int(m.group(1)), p) for p in root.glob(f"{name}-fold*")
                   if (m := pattern.fullmatch(p.name)) and (p / "config.json").is_file())
    single = [root / name] if (root / name / "config.json").is_file() else []
    return [p for _, p in folds] + single


def resolve_generator(game: str, agent: str) -> Path:
    """The generator a run of ``agent`` on ``game`` uses: the first in the cache whose card says it never read
    ``game``.

    The GALAD agent tries the distilled generators first (folds, then the single one), then every agent the
    fine-tuned ones (folds, then the single one).

    Raises:
        LMError: no fine-tuned generator at all (the message names ``galad lm train``).
        ConfigError: every generator there read ``game`` or records no games (one line, naming each).
    """
    families = ([DISTILLED_NAME] if agent == "galad" else []) + [TRAINED_NAME]
    refused = []
    for family in families:
        for folder in generator_folders(family):
            read = games_read(str(folder))
            if read is not None and game not in read:
                return folder
            refused.append(f"{folder.name} {'records no games' if read is None else 'read it'}")
    if not refused:
        raise LMError(f"no action generator in {lm_dir()}: run `galad lm train --folds {DEFAULT_FOLDS}` first")
    raise ConfigError(f"no action generator that never read {game}'s walkthrough ({', '.join(refused)}): train "
                      f"cross-fitted ones with `galad lm train --folds {DEFAULT_FOLDS}`")
