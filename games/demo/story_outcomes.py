#!/usr/bin/env python3
"""Dump what valid-action detection finds on the demo, in fields that do not depend on the story file's layout.

    python3 story_outcomes.py out.json [--walks 10] [--steps 25]

Run it (with the venv that has galad) in a checkout with the old story file and in one with the new, then compare
the two files byte for byte: equal files mean the rebuilt story gives the same detections.

States: the walkthrough's states, then seeded random walks (each step a random valid action of the last
detection, from ``random.Random(walk)``; equal detections give equal walks). Per state: a hash of the observation;
the detection's actions, groups, objects and candidate count; every stepped candidate's action, status as stepped, reply hash
and ``changed``; and the partitions of the stepped candidates by outcome signature and by effect. The signatures'
and effects' own values are left out: they hash the object table, which holds routine addresses.
"""
import argparse
import hashlib
import json
import random

from galad.candidates.valid import ValidActionSource, ValidConfig, game_state_from_env
from galad.env.jiminy import JiminyEnv


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def _partition(outcomes, field: str) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i, o in enumerate(outcomes):
        groups.setdefault(getattr(o, field), []).append(i)
    return sorted(groups.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--walks", type=int, default=10)
    ap.add_argument("--steps", type=int, default=25)
    args = ap.parse_args()

    src = ValidActionSource(ValidConfig(workers=0, threads=1, world_key=False))
    env = JiminyEnv("demo")
    records = []

    def detect(tag: str, obs: str, prev: str):
        src._cache._memory.clear()  # every state detected in full
        with src.recording() as batches:
            det = src.detect(game_state_from_env(env, obs, prev))
        stepped = [o for b in batches for o in b.outcomes]
        records.append({
            "state": tag, "obs": _hash(obs), "actions": det.actions, "groups": det.groups, "objects": det.objects,
            "candidates": det.n_candidates, "skipped": [[o.action, o.status] for o in det.skipped],
            "outcomes": [[o.action, o.status, _hash(o.text), o.changed] for o in stepped],
            "signature_partition": _partition(stepped, "signature"), "effect_partition": _partition(stepped, "effect"),
        })
        return det

    try:
        obs, _ = env.reset()
        detect("walkthrough 0", obs, "")
        for i, a in enumerate(env.walkthrough):
            obs, *_ = env.step(a)
            detect(f"walkthrough {i + 1}", obs, a)
        for w in range(args.walks):
            rng = random.Random(w)
            obs, _ = env.reset()
            det = detect(f"walk {w} step 0", obs, "")
            for s in range(args.steps):
                a = rng.choice(det.actions) if det.actions else "look"
                obs, _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    break
                det = detect(f"walk {w} step {s + 1}", obs, a)
    finally:
        env.close()
        src.close()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(records, f, sort_keys=True)
    print(f"{len(records)} detections, {sum(len(r['outcomes']) for r in records)} candidate outcomes -> {args.out}")


if __name__ == "__main__":
    main()
