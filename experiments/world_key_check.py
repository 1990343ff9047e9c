"""Does detection with its caches find what it finds in each state afresh?

Trains a short run (``galad train``), records the state of every valid-action detection it asks for, and
detects each state twice, in the run's order: with a source whose caches work as in training (detections by
world key, which leaves out the parser's scratch globals and reads what detection reads of the texts; candidate
outcomes by the world without the texts), and afresh with a source without them. It counts the states whose
detections differ (actions, groups, objects; signatures apart, as the reply's status line can carry a move
counter), the distinct keys of each kind, and how many states the keys before this change (no texts, only the
globals ``look``/``inventory`` change left out) gave another state's different detection.

    python experiments/world_key_check.py --game demo --agent drrn --steps 100 \\
        --json experiments/results/throughput/world_keys_demo.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def record(game: str, agent: str, steps: int, seed: int) -> list:
    """The engine states of every detection a ``galad train`` run asked for, in order."""
    from galad.candidates.valid import source
    from galad.cli import main

    states = []
    detect = source.ValidActionSource.detect

    def recording(self, state):
        states.append(state)
        return detect(self, state)

    source.ValidActionSource.detect = recording
    try:
        with tempfile.TemporaryDirectory() as runs:
            main(["train", "--game", game, "--agent", agent, "--steps", str(steps), "--seed", str(seed),
                  "--run-dir", runs, "--no-progress"])
    finally:
        source.ValidActionSource.detect = detect
    return states


def check(game: str, states: list) -> dict:
    from galad.candidates.valid import ValidActionSource, ValidConfig
    from galad.candidates.valid.source import _story

    with ValidActionSource(ValidConfig(workers=0, threads=1)) as src, \
            ValidActionSource(ValidConfig(workers=0, threads=1, world_key=False)) as fresh, \
            ValidActionSource(ValidConfig(workers=0, threads=1)) as before:
        prober = before._engines.prober(*_story(game))
        t0 = time.perf_counter()
        keys = [src.world_key(s) for s in states]
        learn_s = time.perf_counter() - t0
        worlds = [src._world_only(s) for s in states]
        older = [before._cache.world_key(s, prober, frozenset) for s in states]  # look/inventory only, no texts
        steps = {"cached": 0, "fresh": 0}
        differ, sig_differ, secs = [], 0, {"cached": 0.0, "fresh": 0.0}
        first_of_older: dict[str, tuple] = {}  # what the caches before this change returned: the first
        older_differ = 0  # detection of a key that read no texts and left out only look/inventory's globals
        for i, s in enumerate(states):
            with src.recording() as batches:
                t = time.perf_counter()
                a = src.detect(s)
                secs["cached"] += time.perf_counter() - t
            steps["cached"] += sum(len(batch.actions) for batch in batches)
            with fresh.recording() as batches:
                t = time.perf_counter()
                b = fresh._detect(s)
                secs["fresh"] += time.perf_counter() - t
            steps["fresh"] += sum(len(batch.actions) for batch in batches)
            if (a.actions, a.groups, a.objects) != (b.actions, b.groups, b.objects):
                differ.append({"detection": i, "only_cached": sorted(set(a.actions) - set(b.actions))[:10],
                               "only_fresh": sorted(set(b.actions) - set(a.actions))[:10]})
            elif a.signatures != b.signatures:
                sig_differ += 1
            was = first_of_older.setdefault(older[i], (b.actions, b.groups, b.objects))
            older_differ += was != (b.actions, b.groups, b.objects)
        return {"game": game, "detections_asked": len(states),
                "distinct_keys_before": len(set(older)), "distinct_world_keys": len(set(keys)),
                "distinct_worlds_without_texts": len(set(worlds)),
                "volatile_globals": sorted(src._cache.volatile[game]),
                "look_inventory_globals": sorted(before._cache.volatile[game]),
                "seconds_learning_and_keying": round(learn_s, 2),
                "candidate_steps": steps, "detection_seconds": {k: round(v, 1) for k, v in secs.items()},
                "detections_differing": len(differ), "differing": differ[:20],
                "detections_with_other_signatures_only": sig_differ,
                "detections_differing_with_the_older_keys": older_differ}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", default="demo")
    ap.add_argument("--agent", default="drrn")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out = check(a.game, record(a.game, a.agent, a.steps, a.seed))
    out.update(agent=a.agent, steps=a.steps, seed=a.seed)
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0 if out["detections_differing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
