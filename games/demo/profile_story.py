#!/usr/bin/env python3
"""Where the demo's interpreter spends its time while valid-action detection steps candidates, per Z-code routine.

    python3 profile_story.py [--top 30]      # with the venv that has galad; needs inform6 (build.sh)

Records the candidate batches detection steps on the walkthrough's states, then steps them again while a second
thread samples the Z-machine's program counter and call stack (``pcp``, ``fp`` and ``stack`` of Jericho's
``libfrotz``). Routine addresses come from the story rebuilt with ``inform6 -k`` (its debug file; ``-k`` does not
change the story file, which is checked to be byte-identical to ``demo.z5``). Prints each routine's share of the
samples: ``self`` (the program counter is in it) and, for the veneer routines, the routine that called them.
``KeyboardPrimitive`` is where the program counter rests while the interpreter and Jericho work outside Z-code.
"""
import argparse
import bisect
import collections
import ctypes
import filecmp
import os
import re
import subprocess
import sys
import tempfile
import threading

from galad.candidates.valid import ValidActionSource, ValidConfig, game_state_from_env
from galad.env.jiminy import JiminyEnv

HERE = os.path.dirname(os.path.abspath(__file__))
VENEER = ("CA__Pr", "RA__Pr", "RL__Pr", "RV__Pr", "WV__Pr", "Z__Region", "Unsigned__Compare", "OP__Pr", "OC__Cl")


def routines_of_build(tmp: str) -> list[tuple[int, int, str]]:
    """(address, length, name) of every routine, from the story rebuilt with ``-k`` in ``tmp``."""
    inform6 = os.environ.get("INFORM6", "inform6")
    lib = os.environ.get("INFORM6_LIB", "/usr/share/inform6/library")
    out = os.path.join(tmp, "demo.z5")
    subprocess.run([inform6, "-v5", "-~S", "-k", f"+include_path={lib}", os.path.join(HERE, "demo.inf"), out],
                   cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    if not filecmp.cmp(out, os.path.join(HERE, "demo.z5"), shallow=False):
        sys.exit("profile_story: the rebuilt story differs from demo.z5 (rebuild it with build.sh first)")
    text = open(os.path.join(tmp, "gameinfo.dbg"), encoding="utf-8").read()
    found = []
    for m in re.finditer(r"<routine>(.*?)</routine>", text, re.S):
        body = m.group(1)
        found.append((int(re.search(r"<address>\s*(\d+)</address>", body).group(1)),
                      int(re.search(r"<byte-count>\s*(\d+)</byte-count>", body).group(1)),
                      re.search(r"<identifier[^>]*>(.*?)</identifier>", body).group(1)))
    return sorted(found)


def record_batches() -> list[tuple]:
    """The batches detection steps on each walkthrough state: (engine state, candidates)."""
    env = JiminyEnv("demo")
    src = ValidActionSource(ValidConfig(workers=0, threads=1, world_key=False))
    try:
        with src.recording() as batches:
            obs, _ = env.reset()
            src.detect(game_state_from_env(env, obs, ""))
            for a in env.walkthrough:
                obs, *_ = env.step(a)
                src.detect(game_state_from_env(env, obs, a))
    finally:
        env.close()
        src.close()
    return [(b.engine_state, b.actions) for b in batches]


def sample(batches: list[tuple]) -> tuple[collections.Counter, int]:
    """Step every batch again from its state while a thread samples (program counter, return address)."""
    from galad.candidates.valid.source import _story

    spec, story = _story("demo")
    src = ValidActionSource(ValidConfig(workers=0, threads=1, world_key=False))
    prober = src._engines.prober(spec, story)
    lib = prober._lib
    pcp, zmp = ctypes.c_void_p.in_dll(lib, "pcp"), ctypes.c_void_p.in_dll(lib, "zmp")
    fp = ctypes.c_void_p.in_dll(lib, "fp")
    stack = ctypes.addressof(ctypes.c_uint16.in_dll(lib, "stack"))
    samples: collections.Counter = collections.Counter()
    stepping = threading.Event()
    done = threading.Event()

    def sampler():
        while not done.is_set():
            if not stepping.is_set():
                continue
            pc, frame = pcp.value - zmp.value, fp.value
            if frame is None or not 0 <= frame - stack < 2 * 65536:
                continue
            words = (ctypes.c_uint16 * 4).from_address(frame)  # Frotz's frame: ..., return pc low 9 bits, high bits
            samples[(pc, (words[3] << 9) | words[2])] += 1

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    sys.setswitchinterval(1e-5)
    n = 0
    try:
        for engine_state, actions in batches:
            snap = prober.snapshot(engine_state)
            for a in actions:
                prober._restore_core(snap)
                stepping.set()
                lib.step(a.encode("utf-8")[:198] + b"\n")
                stepping.clear()
                n += 1
            prober.restore(snap)
    finally:
        done.set()
        thread.join()
        src.close()
    return samples, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        routines = routines_of_build(tmp)
    starts = [r[0] for r in routines]

    def name(pc: int) -> str:
        i = bisect.bisect_right(starts, pc) - 1
        return routines[i][2] if i >= 0 and pc < routines[i][0] + routines[i][1] else "(outside routines)"

    batches = record_batches()
    samples, n = sample(batches)
    total = sum(samples.values()) or 1
    own: collections.Counter = collections.Counter()
    callers: collections.Counter = collections.Counter()
    for (pc, ret), c in samples.items():
        here = name(pc)
        own[here] += c
        if here in VENEER:
            callers[(here, name(ret))] += c
    print(f"{n} candidate steps on {len(batches)} batches, {total} samples")
    print(f"veneer, all routines: {100 * sum(own[v] for v in VENEER) / total:.1f} %")
    print("self:")
    for r, c in own.most_common(args.top):
        print(f"  {100 * c / total:5.1f} %  {r}")
    print("veneer routine <- its caller:")
    for (r, caller), c in callers.most_common(args.top):
        print(f"  {100 * c / total:5.1f} %  {r} <- {caller}")


if __name__ == "__main__":
    main()
