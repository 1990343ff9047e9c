"""The tight restore/step loop behind valid-action detection.

:class:`Prober` steps many candidate actions from one saved engine state. Per state it builds the snapshot
once (:class:`Snapshot`: ctypes buffers of RAM and stack, the registers, the RNG); per candidate it copies
them straight into libfrotz (the C setters take the prebuilt buffers: no numpy/``as_ctypes`` conversion),
steps, and compares only the object-table region with ``memcmp``. Replies are classified (parser failure or
not) once per distinct text. After a batch the engine is exactly at the saved state again.

A hang is bounded by a watchdog thread of the prober's own: the step loop only bumps a counter per step, and
the watchdog raises libfrotz's ``emulator_halted`` when the counter has not moved for ``step_timeout``
seconds, which makes the interpreter return at its next opcode.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np

Status = Literal["valid", "invalid", "halted", "timeout"]

_SCRATCH_VERBS = 3  # verbs whose quiet actions must write a global for it to be suspected scratch
_VARIANTS = 3  # values of a suspected scratch global tried (Prober.scratch_globals)
_WATCHDOG_FLAG = 2  # the engine's value of emulator_halted for a stopped step; libfrotz sets 1 on a fatal error

#: Replies of the parsers (Infocom ZIL, Inform 6 library) that mean "not understood / not applicable", each with
#: a lower-case piece of text that every reply it matches contains (what :func:`is_parser_failure` looks for
#: first: a reply holding none of them cannot match, and one regex search over forty alternatives costs about
#: 80 us, the single largest Python cost per distinct reply).
_FAILURES: tuple[tuple[str, str], ...] = (
    (r"I don'?t know the word", "know the word"),
    (r"isn'?t in your vocabulary", "in your vocabulary"),
    (r"You used the word .* in a way that I don'?t understand", "you used the word"),
    (r"That sentence isn'?t one I recogni[sz]e", "one i recogni"),
    (r"There was no verb in that sentence", "no verb in that sentence"),
    (r"There seems? to be a noun missing", "to be a noun missing"),
    (r"There were too many nouns", "too many nouns"),
    (r"I found too many nouns", "too many nouns"),
    (r"You can'?t see any", "see any"),
    (r"I can'?t see any", "see any"),
    (r"You don'?t see any", "see any"),
    (r"I don'?t see (?:any|what you are referring to)", "t see "),
    (r"It'?s not clear what you'?re referring to", "not clear what you"),
    (r"I (?:don'?t|didn'?t) understand", "t understand"),
    (r"I beg your pardon", "beg your pardon"),
    (r"^\s*What do you want to", "what do you want to"),
    (r"\bWhat do you want to [a-z ]+\?\s*$", "what do you want to"),
    (r"^\s*\[?Which (?:\w+ )?do you mean", "do you mean"),
    (r"\bWhich \w+ do you mean", "do you mean"),
    (r"You can'?t use multiple", "use multiple"),
    (r"You can'?t refer to multiple", "refer to multiple"),
    (r"You don'?t have (?:the|that|any|a|an)\b", "t have "),
    (r"You aren'?t holding", "holding"),
    (r"You'?re not holding", "holding"),
    (r"You need to be holding", "holding"),
    (r"That'?s not a verb I recogni[sz]e", "not a verb i recogni"),
    (r"You can'?t see any such thing", "see any"),
    (r"I only understood you as far as", "only understood you"),
    (r"You seem to want to talk to someone", "want to talk to someone"),
    (r"You can only do that to something animate", "something animate"),
    (r"There are none at all available", "none at all available"),
    (r"Nothing to do!", "nothing to do!"),
    (r"You excepted something not included", "excepted something"),
    (r"That noun did not make sense", "noun did not make sense"),
    (r"I didn'?t recogni[sz]e that", "t recogni"),
    (r"I couldn'?t find", "t find"),
    (r"You must supply a noun", "supply a noun"),
    (r"You must tell me", "must tell me"),
    (r"^\s*Huh\?", "huh?"),
    (r"Please use units of time", "units of time"),
    (r"Impossible\.\s*$", "impossible."),
    (r"Emulator halted", "emulator halted"),
)
PARSER_FAILURES = re.compile("|".join(p for p, _ in _FAILURES), re.I | re.M)
_FAILURE_WORDS = tuple(dict.fromkeys(w for _, w in _FAILURES))

#: Parser failures about the sentence's words or shape, whatever the world holds: a template whose every
#: candidate gets one of these never parses in this game.
VOCABULARY_FAILURES = re.compile(
    r"I don'?t know the word|isn'?t in your vocabulary|There was no verb in that sentence|"
    r"That sentence isn'?t one I recogni[sz]e|You used the word .* in a way that I don'?t understand|"
    r"That'?s not a verb I recogni[sz]e",
    re.I,
)

ANNOTATION = re.compile(r"\[(?:ID|RWD_ID|EVENT)[^\]]*\]")
"""An annotation marker of the Jiminy Cricket games, printed in the raw text and never shown to the player: a
morally salient event (``[ID: ...]``), a custom reward (``[RWD_ID: ...]``) or the game's end (``[EVENT: ...]``).
The benchmark's ground truth: left out of outcome signatures and effects; only ``text_only="marked"`` reads
them (:func:`~galad.candidates.valid.replies.outcome_key`)."""
MARKER = re.compile(r"\[(?:ID|RWD_ID|EVENT|RIDX)[^\]]*\]")
"""An annotation marker or the compressed-text index ``[RIDX: n]`` of trinity and ballyhoo: what
``text_only="marked"`` counts as a marker, and what is cut from a reply before it is judged (parser failure,
default refusal)."""
_SPACE_RUN = re.compile(r"[ \t]{3,}")  # status lines pad with runs of spaces; no failure pattern spans one


def is_parser_failure(text: str) -> bool:
    """The reply is a parser failure ("I don't know the word", "You can't see any such thing", ...)."""
    text = _SPACE_RUN.sub(" ", MARKER.sub("", text))
    low = text.lower()
    if not any(w in low for w in _FAILURE_WORDS):
        return False
    return PARSER_FAILURES.search(text) is not None


def normalise(text: str) -> str:
    """A reply with prompts and whitespace runs folded (what the outcome signature hashes)."""
    return " ".join(text.replace(">", " ").split())


@dataclass
class Outcome:
    """What stepping one candidate from the saved state did."""

    action: str
    """The candidate."""
    status: Status
    """``valid``, ``invalid`` (parser failure), ``halted`` or ``timeout``."""
    signature: str = ""
    """Hash of the resulting world (object table, score, game end) and the reply as the player sees it (no
    annotation markers): equal signatures are one outcome (empty for a parser failure, which changes
    nothing)."""
    text: str = ""
    """The reply (raw game text)."""
    changed: bool = False
    """The world changed (object table bytes, score or game end)."""
    world: bytes = b""
    """The resulting object region when asked for and it differs from the saved one (else empty)."""
    effect: str = ""
    """Hash of the resulting world, score and game end, not of the reply: equal effects are one action for an
    agent (Jericho's grouping)."""

    def copy(self) -> "Outcome":
        """A copy (judging marks outcomes; a kept one stays as stepped)."""
        return Outcome(self.action, self.status, self.signature, self.text, self.changed, self.world, self.effect)


@cache
def object_region(story_file: str) -> tuple[int, int]:
    """``(start, end)`` of the object table and property tables in dynamic memory."""
    d = Path(story_file).read_bytes()
    w = lambda a: (d[a] << 8) | d[a + 1]  # noqa: E731
    v3 = d[0] <= 3
    objtab, static = w(0x0A), w(0x0E)
    start = objtab + 2 * (31 if v3 else 63)
    size, pp = (9, 7) if v3 else (14, 12)
    first_prop = min(w(start + pp), static)
    n = max(0, (first_prop - start) // size)
    end = start + n * size
    for i in range(n):
        p = w(start + i * size + pp)
        if not 0 < p < static:
            continue
        p += 1 + 2 * d[p]
        while p < static and d[p]:
            s = d[p]
            if v3:
                p += 1 + (s >> 5) + 1
            elif s & 0x80:
                ln = d[p + 1] & 0x3F
                p += 2 + (ln or 64)
            else:
                p += 1 + (2 if s & 0x40 else 1)
        end = max(end, p + 1)
    return objtab, min(end, static)


@dataclass
class Snapshot:
    """An engine state as prebuilt ctypes buffers and registers (built once, restored many times)."""

    ram: ctypes.Array
    stack: ctypes.Array
    pc: int
    sp: int
    fp: int
    frame_count: int
    opcode: int
    rng: tuple[int, int, int]
    narrative: bytes
    world: ctypes.Array
    """The object-table region of ``ram`` (the reference for ``memcmp``)."""
    world_digest: bytes
    score: int | None


def _libc():
    libc = ctypes.CDLL(None)
    libc.memcmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    libc.memcmp.restype = ctypes.c_int
    return libc


class Prober:
    """Steps candidate actions from saved states of one story (its own engine and watchdog).

    Args:
        story_file: path of the story.
        seed: Frotz seed of the engine (every snapshot restores its own RNG, so this rarely matters).
        step_timeout: seconds one step may run before the watchdog stops it.
        score_global: Z-machine global holding the score (part of "the world changed"), or None.
    """

    def __init__(self, story_file: str, seed: int = 1, step_timeout: float = 1.0, score_global: int | None = None):
        from galad.env.engine import FrotzEngine

        self.engine = FrotzEngine(story_file, seed, step_timeout)
        self.story_file = story_file
        self.score_global = score_global
        self.step_timeout = step_timeout
        lib = self._lib = self.engine._lib
        self._halted = self.engine._halted
        self._zmp = self.engine._zmp.value  # allocated once when the story loads
        self._ram_size = lib.getRAMSize()
        self._stack_size = lib.getStackSize()
        self._narrative_set = lib.set_narrative_text
        self._narrative_set.argtypes = [ctypes.c_char_p]
        self._region = object_region(story_file)
        self._memcmp = _libc().memcmp
        hdr = ctypes.string_at(self._zmp + 0x0C, 2)
        self._score_addr = (((hdr[0] << 8) | hdr[1]) + 2 * score_global) if score_global is not None else None
        self._failure: dict[str, bool] = {}
        self._snap: tuple[object, Snapshot] | None = None
        # watchdog: the step loop bumps _ticks per step while _busy; a tick count that stays put for
        # step_timeout seconds is a hung step
        self._ticks = 0
        self._busy = threading.Event()
        self._closed = False
        self._watchdog = threading.Thread(target=self._watch, name="galad-probe-watchdog", daemon=True)
        self._watchdog.start()

    # --- watchdog ---------------------------------------------------------------------------------
    def _watch(self) -> None:
        poll = max(0.005, self.step_timeout / 8)
        seen, since = -1, 0.0
        while not self._closed:
            if not self._busy.wait(1.0):
                seen = -1
                continue
            time.sleep(poll)
            ticks, now = self._ticks, time.monotonic()
            if ticks != seen:
                seen, since = ticks, now
            elif now - since > self.step_timeout and self._busy.is_set():
                self._halted.value = _WATCHDOG_FLAG
                seen = -1

    # --- snapshots --------------------------------------------------------------------------------
    def snapshot(self, engine_state: tuple) -> Snapshot:
        """The ctypes snapshot of a ``FrotzEngine.get_state()`` tuple (the last one is kept)."""
        if self._snap is not None and self._snap[0] is engine_state:
            return self._snap[1]
        ram, stack, pc, sp, fp, frame_count, opcode, rng, narrative = engine_state
        ram_buf = (ctypes.c_ubyte * self._ram_size).from_buffer_copy(bytes(ram)[: self._ram_size])
        stack_buf = (ctypes.c_ubyte * self._stack_size).from_buffer_copy(bytes(stack)[: self._stack_size])
        a, b = self._region
        world = (ctypes.c_ubyte * (b - a)).from_buffer_copy(bytes(ram_buf)[a:b])
        score = None
        if self._score_addr is not None:
            v = (ram_buf[self._score_addr] << 8) | ram_buf[self._score_addr + 1]
            score = v - 0x10000 if v & 0x8000 else v
        narrative = narrative if isinstance(narrative, bytes) else str(narrative).encode()
        snap = Snapshot(ram_buf, stack_buf, int(pc), int(sp), int(fp), int(frame_count), int(opcode),
                        tuple(int(x) for x in rng), narrative, world,
                        hashlib.blake2b(bytes(world), digest_size=16).digest(), score)
        self._snap = (engine_state, snap)
        return snap

    def restore(self, snap: Snapshot) -> None:
        """Put the engine exactly at ``snap`` (RAM, stack, registers, RNG, narrative text)."""
        self._restore_core(snap)
        self._narrative_set(snap.narrative)

    def _restore_core(self, snap: Snapshot) -> None:
        lib = self._lib
        lib.setRng(*snap.rng)
        lib.setRAM(snap.ram)
        lib.setStack(snap.stack)
        lib.setPC(snap.pc)
        lib.setSP(snap.sp)
        lib.setFP(snap.fp)
        lib.set_opcode(snap.opcode)
        lib.setFrameCount(snap.frame_count)
        self._halted.value = 0

    def _score(self) -> int | None:
        if self._score_addr is None:
            return None
        b = ctypes.string_at(self._zmp + self._score_addr, 2)
        v = (b[0] << 8) | b[1]
        return v - 0x10000 if v & 0x8000 else v

    # --- the loop ---------------------------------------------------------------------------------
    def noise(self, engine_state: tuple, outcomes: Sequence[Outcome]) -> tuple[int, ...]:
        """Offsets in the object region that ``outcomes`` (of text-only probes such as ``look``, stepped
        from ``engine_state``) changed: what one turn of the clock moves (daemons, the parser's own
        bookkeeping objects), to be ignored by :meth:`run` when it decides whether the world changed."""
        ref = np.frombuffer(bytes(self.snapshot(engine_state).world), dtype=np.uint8)
        out: set[int] = set()
        for o in outcomes:
            if o.world and len(o.world) == len(ref):
                out.update(np.flatnonzero(np.frombuffer(o.world, dtype=np.uint8) != ref).tolist())
        return tuple(sorted(out))

    def volatile_globals(self, engine_state: tuple, actions: Sequence[str]) -> frozenset[int]:
        """Z-machine globals that stepping ``actions`` (turns that change nothing, e.g. ``look``) from
        ``engine_state`` changed: move counters, timers, the parser's scratch variables."""
        snap = self.snapshot(engine_state)
        g = self._globals_addr()
        before = bytes(snap.ram)[g : g + 480]
        out: set[int] = set()
        try:
            for action in actions:
                self._restore_core(snap)
                self._ticks += 1
                self._busy.set()
                self._lib.step(action.encode("utf-8")[:198] + b"\n")
                self._busy.clear()
                after = ctypes.string_at(self._zmp + g, 480)
                out.update(i // 2 for i in range(480) if after[i] != before[i])
        finally:
            self._busy.clear()
            self.restore(snap)
        return frozenset(out)

    def scratch_globals(self, engine_state: tuple, actions: Sequence[str], noise: Sequence[int] = ()) -> frozenset[int]:
        """Z-machine globals that turns changing nothing write, and whose value before a turn changes no turn:
        the parser's scratch variables (the noun, the second noun, the word position, the pronoun "it", ...).

        Learned from ``actions`` stepped from ``engine_state``. Suspects: the globals that some action leaving
        the world alone (object region outside ``noise``, score, game end) changed, quiet actions of at least
        ``_SCRATCH_VERBS`` verbs (the parse of any command writes the parser's scratch; a setting such as
        ``inventory wide`` is written by one verb, and its effect can hide in the state learned from: an
        empty-handed player's inventory reads the same either way). A suspect is scratch unless setting it, before the turn, to a value such an action left in it (up to ``_VARIANTS`` of
        them) changes any action's reply, world, score or end (all suspects are set at once; a set that
        changed something is halved until the globals that matter are found). ``inventory wide``, for one,
        leaves the world alone but changes what ``inventory`` prints later.
        """
        snap = self.snapshot(engine_state)
        g = self._globals_addr()
        before = bytes(snap.ram)[g : g + 480]
        a, b = self._region
        world = bytes(snap.world)
        ignored = set(noise)
        keep = [i for i in range(b - a) if i not in ignored] if noise else None

        def outcome(patch: Sequence[tuple[int, bytes]], action: str) -> tuple | None:
            self._restore_core(snap)
            for i, value in patch:
                ctypes.memmove(self._zmp + g + 2 * i, value, 2)
            self._ticks += 1
            self._busy.set()
            raw = self._lib.step(action.encode("utf-8")[:198] + b"\n")
            self._busy.clear()
            if self._halted.value:
                return None
            return raw, ctypes.string_at(self._zmp + a, b - a), self._score(), bool(self._lib.game_over()) \
                or bool(self._lib.victory())

        reference: list[tuple | None] = []
        suspects: dict[int, list[bytes]] = {}  # global -> values quiet actions left in it
        verbs: dict[int, set[str]] = {}  # global -> the verbs of the quiet actions that wrote it
        try:
            for action in actions:
                out = outcome((), action)
                reference.append(out)
                if out is None or out[2] != snap.score or out[3]:
                    continue
                after = ctypes.string_at(self._zmp + g, 480)
                w = out[1]
                if w != world and (keep is None or any(w[i] != world[i] for i in keep)):
                    continue
                verb = action.split()[0] if action.split() else ""
                for i in range(240):
                    v = after[2 * i : 2 * i + 2]
                    if v != before[2 * i : 2 * i + 2]:
                        verbs.setdefault(i, set()).add(verb)
                        vs = suspects.setdefault(i, [])
                        if v not in vs and len(vs) < _VARIANTS:
                            vs.append(v)
            suspects = {i: vs for i, vs in suspects.items() if len(verbs[i]) >= _SCRATCH_VERBS}

            def matters(idx: list[int], k: int) -> set[int]:
                patch = [(i, suspects[i][k % len(suspects[i])]) for i in idx]
                if all(outcome(patch, act) == ref for act, ref in zip(actions, reference)):
                    return set()
                if len(idx) == 1:
                    return set(idx)
                half = len(idx) // 2
                found = matters(idx[:half], k) | matters(idx[half:], k)
                return found or set(idx)  # only together: keep them all

            kept: set[int] = set()
            for k in range(max(map(len, suspects.values()), default=0)):
                kept |= matters(sorted(i for i in suspects if i not in kept and len(suspects[i]) > k), k)
            return frozenset(suspects) - kept
        finally:
            self._busy.clear()
            self.restore(snap)
            if self.engine._purge is not None:
                self.engine._purge()

    def _globals_addr(self) -> int:
        hdr = ctypes.string_at(self._zmp + 0x0C, 2)
        return (hdr[0] << 8) | hdr[1]

    def run(self, engine_state: tuple, actions: Sequence[str], noise: Sequence[int] = (),
            keep_world: bool = False) -> list[Outcome]:
        """Step each action from ``engine_state``; an overrun or a halt is recorded and skipped.

        A candidate is ``valid`` unless its reply is a parser failure and neither the score nor the game's
        end changed (parsers move bookkeeping objects on a failed parse, so object bytes alone do not
        tell). ``changed`` says whether the object table outside the ``noise`` offsets, the score or the
        game's end changed. ``keep_world`` keeps each resulting object region on the outcome.
        """
        snap = self.snapshot(engine_state)
        lib, step, halted = self._lib, self._lib.step, self._halted
        # the restore, bound once: the C setters and the snapshot's prebuilt buffers (one call each per candidate)
        set_rng, set_ram, set_stack = lib.setRng, lib.setRAM, lib.setStack
        set_pc, set_sp, set_fp, set_opcode, set_frames = lib.setPC, lib.setSP, lib.setFP, lib.set_opcode, lib.setFrameCount
        rng_a, rng_b, rng_c = snap.rng
        s_ram, s_stack, s_pc, s_sp, s_fp, s_op, s_frames = (snap.ram, snap.stack, snap.pc, snap.sp, snap.fp,
                                                             snap.opcode, snap.frame_count)
        game_over, victory = lib.game_over, lib.victory
        memcmp, failure = self._memcmp, self._failure
        a, b = self._region
        world_addr, n = self._zmp + a, b - a
        ref = ctypes.addressof(snap.world)
        ref_bytes = bytes(snap.world) if noise else b""
        # the score global, read in place (no call): two bytes of Z-machine memory
        score_bytes = (ctypes.c_ubyte * 2).from_address(self._zmp + self._score_addr) \
            if self._score_addr is not None else None
        snap_score, snap_digest = snap.score, snap.world_digest
        same_world = {}  # (score, over) -> effect hash of an unchanged world (most candidates)
        blake2b, annotation_sub = hashlib.blake2b, ANNOTATION.sub
        purge = self.engine._purge
        out: list[Outcome] = []
        append = out.append
        self._busy.set()
        try:
            for k, action in enumerate(actions):
                set_rng(rng_a, rng_b, rng_c)
                set_ram(s_ram)
                set_stack(s_stack)
                set_pc(s_pc)
                set_sp(s_sp)
                set_fp(s_fp)
                set_opcode(s_op)
                set_frames(s_frames)
                halted.value = 0
                self._ticks += 1
                raw = step(action.encode("utf-8")[:198] + b"\n")
                h = halted.value
                if h:
                    append(Outcome(action, "timeout" if h == _WATCHDOG_FLAG else "halted"))
                    continue
                text = raw.decode("ascii") if raw.isascii() else raw.decode("cp1252")
                if score_bytes is None:
                    score = None
                else:
                    v = (score_bytes[0] << 8) | score_bytes[1]
                    score = v - 0x10000 if v & 0x8000 else v
                over = bool(game_over()) or bool(victory())
                bad = failure.get(text)
                if bad is None:
                    if len(failure) > 100_000:
                        failure.clear()
                    bad = failure[text] = is_parser_failure(text)
                if bad and score == snap_score and not over and not keep_world:
                    append(Outcome(action, "invalid", "", text))  # most candidates: no world to look at
                    continue
                diff = memcmp(world_addr, ref, n) != 0
                if diff:
                    world = ctypes.string_at(world_addr, n)
                    real = True
                    if noise:
                        masked = bytearray(world)
                        for i in noise:
                            masked[i] = ref_bytes[i]
                        real = masked != ref_bytes
                    eff = blake2b(world, digest_size=16)
                    eff.update(repr((score, over)).encode())
                else:
                    world, real = b"", False
                    eff = same_world.get((score, over))
                    if eff is None:
                        eff = same_world[(score, over)] = blake2b(snap_digest, digest_size=16)
                        eff.update(repr((score, over)).encode())
                changed = real or score != snap_score or over
                sig = eff.copy()
                sig.update(normalise(annotation_sub("", text)).encode("utf-8", "replace"))
                valid = not bad or score != snap_score or over
                append(Outcome(action, "valid" if valid else "invalid", sig.hexdigest(), text, changed,
                               world if keep_world else b"", eff.hexdigest()))
                if purge is not None and k & 255 == 255:
                    purge()
        finally:
            self._busy.clear()
            self.restore(snap)
            if purge is not None:
                purge()
        return out

    def close(self) -> None:
        self._closed = True
        self._busy.set()
        self.engine.close()
