"""Helpers the tests import (``from helpers import ...``): where the shipped data lives, and the real games."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    env = os.environ.get("GALAD_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


JC_DATA = _data_dir() / "jiminy_cricket"


def real_game_installed(name: str) -> bool:
    from galad.env.registry import get_game

    return get_game(name).is_installed()


def require_real_game(name: str) -> None:
    if not real_game_installed(name):
        pytest.skip(f"{name} is not installed (galad games download {name})")


def detection_record(game: str, steps: list[int]) -> dict:
    """What detection finds at walkthrough ``steps`` of ``game``, with ``text_only`` ``all`` and ``none``: per state
    the valid actions and a digest of everything else a detection holds (groups, outcome signatures, objects,
    candidates stepped) and of every stepped candidate's outcome (status, signature, effect, changed). Pinned in
    ``tests/data/detections.json`` so that a faster detector must find exactly what the older one did."""
    import hashlib
    import json

    from galad.candidates.valid import ValidActionSource, ValidConfig, game_state_from_env
    from galad.env.jiminy import JiminyEnv

    env = JiminyEnv(game)
    out: dict = {}
    try:
        for mode in ("all", "none"):
            # keyed by the whole state, with no candidate outcome kept from one world to the next: each state
            # stepped in full, as pinned
            src = ValidActionSource(ValidConfig(workers=0, text_only=mode, world_key=False))
            for step in steps:
                obs, _ = env.reset()
                for a in env.walkthrough[:step]:
                    obs, *_ = env.step(a)
                with src.recording() as batches:
                    det = src.detect(game_state_from_env(env, obs, env.walkthrough[step - 1] if step else ""))
                stepped = [(o.action, o.status, o.signature, o.effect, o.changed) for b in batches for o in b.outcomes]
                rest = json.dumps([det.groups, det.signatures, det.objects, det.n_candidates, stepped], sort_keys=True)
                out[f"{game}@{step}/{mode}"] = {"actions": det.actions,
                                                "digest": hashlib.blake2b(rest.encode(), digest_size=12).hexdigest()}
            src.close()
    finally:
        env.close()
    return out
