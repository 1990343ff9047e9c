"""Valid-action detection: propose the actions the game understands in a state.

Pipeline for one state (:meth:`ValidActionSource.detect`):

1. **Templates** from the game (:mod:`galad.candidates.grammar`): Jericho's bindings borrowed by name, else
   the story file's own syntax/grammar table.
2. **Objects**: words of the observation, ``look`` and ``inventory`` that the game's dictionary knows as
   nouns (plus adjective-noun pairs); each is examined once from the saved state, names the parser rejects
   are dropped and names that reach the same object (same reply, same world) collapse into one.
3. **Admissibility**: every filled template is stepped from the saved state. It is valid when the world
   changed (object table bytes, score, game end) or when the reply is not a parser failure reply, so
   actions that only print text count. Candidates with the same resulting world and reply collapse into
   one (``n``/``north``, ``x lamp``/``examine lamp``).
4. The batch is split across worker processes (each with its own engine and watchdog); a step that
   overruns ``step_timeout`` is stopped by the engine watchdog and skipped, an emulator halt is skipped,
   and the rest of the batch is still evaluated. Results are cached by :meth:`GameState.key`.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import multiprocessing as mp
import os
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from galad.candidates.base import GameState
from galad.candidates.grammar import Grammar, load_grammar
from galad.errors import GaladError

log = logging.getLogger(__name__)

_POOL_TIMEOUT = "(worker pool overran the call bound)"

Status = Literal["valid", "invalid", "halted", "timeout"]

#: Replies of the parsers (Infocom ZIL, Inform 6 library) that mean "not understood / not applicable".
PARSER_FAILURES = re.compile(
    "|".join(
        [
            r"I don'?t know the word",
            r"You used the word .* in a way that I don'?t understand",
            r"That sentence isn'?t one I recogni[sz]e",
            r"There was no verb in that sentence",
            r"There seems? to be a noun missing",
            r"There were too many nouns",
            r"I found too many nouns",
            r"You can'?t see any",
            r"I can'?t see any",
            r"You don'?t see any",
            r"I don'?t see (?:any|what you are referring to)",
            r"It'?s not clear what you'?re referring to",
            r"I (?:don'?t|didn'?t) understand",
            r"I beg your pardon",
            r"^\s*What do you want to",
            r"\bWhat do you want to [a-z ]+\?\s*$",
            r"^\s*\[?Which (?:\w+ )?do you mean",
            r"\bWhich \w+ do you mean",
            r"You can'?t use multiple",
            r"You can'?t refer to multiple",
            r"You don'?t have (?:the|that|any|a|an)\b",
            r"You aren'?t holding",
            r"You'?re not holding",
            r"You need to be holding",
            r"That'?s not a verb I recogni[sz]e",
            r"You can'?t see any such thing",
            r"I only understood you as far as",
            r"You seem to want to talk to someone",
            r"You can only do that to something animate",
            r"There are none at all available",
            r"Nothing to do!",
            r"You excepted something not included",
            r"That noun did not make sense",
            r"I didn'?t recogni[sz]e that",
            r"I couldn'?t find",
            r"You must supply a noun",
            r"You must tell me",
            r"^\s*Huh\?",
            r"Please use units of time",
            r"Impossible\.\s*$",
            r"Emulator halted",
        ]
    ),
    re.I | re.M,
)

_TOKEN = re.compile(r"[a-z][a-z'-]*")
_MARKER = re.compile(r"\[(?:ID|RWD_ID|EVENT|RIDX)[^\]]*\]")
_NOT_OBJECTS = frozenset(
    "a an the it its them him her his hers you your me my myself self yourself i here there all everything "
    "some this that these those one and or but of to in on at by with from".split()
)


_DIRECTIONS = frozenset(
    "n s e w ne nw se sw u d north south east west northeast northwest southeast southwest up down".split()
)


class CandidateError(GaladError):
    """Valid-action detection could not run on a state."""


@dataclass
class ValidConfig:
    """Settings of :class:`ValidActionSource`."""

    workers: int = 2
    """Worker processes for stepping candidates (0: all in this process)."""
    step_timeout: float = 1.0
    """Seconds one candidate step may run before the engine watchdog stops it (it is then skipped)."""
    call_timeout: float = 120.0
    """Seconds one state's batch may take in the worker pool before the pool is killed and restarted."""
    min_batch_for_pool: int = 400
    """Batches smaller than this run in this process (the pool round trip would cost more)."""
    max_objects: int = 12
    """Most objects filled into one-object templates (inventory first, then the room)."""
    max_pair_objects: int = 6
    """Most objects combined in two-object templates."""
    count_text_only: bool = True
    """Count actions that only print text (reply not a parser failure) as valid."""
    prefer_jericho: bool = True
    """Use Jericho's grammar bindings where it has them for the game (else the story's own grammar)."""
    remember_hazards: bool = True
    """Skip, for the rest of this source's life, exact actions that once hung or halted the emulator."""
    cache_size: int = 4096
    """States whose results are kept (LRU)."""
    seed: int = 1
    """Frotz seed of the worker engines (the state's RNG is restored with it, so this rarely matters)."""


@dataclass
class Outcome:
    """What stepping one candidate from the saved state did."""

    action: str
    """The candidate."""
    status: Status
    """``valid``, ``invalid`` (parser failure, nothing changed), ``halted`` or ``timeout``."""
    signature: str = ""
    """Hash of the resulting world (object table, score) and reply: equal signatures are one action."""
    text: str = ""
    """The reply (raw game text)."""
    changed: bool = False
    """The world changed (object table bytes, score or game end)."""


@dataclass
class Detection:
    """The result of :meth:`ValidActionSource.detect` for one state."""

    actions: list[str]
    """One action per distinct valid outcome, in template order."""
    groups: dict[str, list[str]] = field(default_factory=dict)
    """Representative action -> every candidate that led to the same outcome."""
    signatures: dict[str, str] = field(default_factory=dict)
    """Representative action -> its outcome signature."""
    objects: list[str] = field(default_factory=list)
    """Object names used."""
    n_candidates: int = 0
    """Candidates stepped."""
    skipped: list[Outcome] = field(default_factory=list)
    """Candidates that halted the emulator or overran the step bound."""
    seconds: float = 0.0
    """Wall time of the detection."""


# --------------------------------------------------------------------------------------------------
# the prober: one engine that steps candidates from a saved state (used in-process and in workers


@cache
def _object_region(story_file: str) -> tuple[int, int]:
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


class Prober:
    """Steps candidate actions from saved states on one story (an engine with its watchdog)."""

    def __init__(self, story_file: str, seed: int = 1, step_timeout: float = 1.0,
                 score_global: int | None = None):
        from galad.env.engine import FrotzEngine

        self.engine = FrotzEngine(story_file, seed, step_timeout)
        self.story_file = story_file
        self.score_global = score_global
        self._region = _object_region(story_file)
        self._zmp = self.engine._zmp

    def _world(self) -> bytes:
        a, b = self._region
        return ctypes.string_at(self._zmp.value + a, b - a)

    def run(self, engine_state: tuple, actions: Sequence[str]) -> list[Outcome]:
        """Step each action from ``engine_state``; an overrun or a halt is recorded and skipped."""
        eng = self.engine
        eng.set_state(engine_state)
        world0 = self._world()
        score0 = eng.read_global(self.score_global) if self.score_global is not None else None
        out = []
        for action in actions:
            eng.set_state(engine_state)
            res = eng.step(action)
            if res.timed_out:
                out.append(Outcome(action, "timeout"))
                continue
            if res.halted:
                out.append(Outcome(action, "halted"))
                continue
            world = self._world()
            score = eng.read_global(self.score_global) if self.score_global is not None else None
            text = res.text
            changed = world != world0 or score != score0 or res.game_over
            failed = PARSER_FAILURES.search(_MARKER.sub("", text)) is not None
            h = hashlib.blake2b(world, digest_size=16)
            h.update(repr(score).encode())
            h.update(_normalise(text).encode("utf-8", "replace"))
            out.append(Outcome(action, "invalid" if failed and not changed else "valid", h.hexdigest(), text,
                               changed))
        eng.set_state(engine_state)
        return out

    def close(self) -> None:
        self.engine.close()


def _normalise(text: str) -> str:
    return " ".join(text.replace(">", " ").split())


# worker processes: one Prober per story, created on first use
_PROBERS: dict[tuple, Prober] = {}


def _work(story_file: str, seed: int, step_timeout: float, score_global: int | None, engine_state: tuple,
          actions: list[str]) -> list[Outcome]:
    key = (story_file, seed, step_timeout, score_global)
    prober = _PROBERS.get(key)
    if prober is None:
        prober = _PROBERS[key] = Prober(story_file, seed, step_timeout, score_global)
    return prober.run(engine_state, actions)


# --------------------------------------------------------------------------------------------------


class ValidActionSource:
    """A :class:`~galad.candidates.base.CandidateSource` proposing the valid actions of each state.

    Args:
        config: settings (defaults: :class:`ValidConfig`).

    Example:
        >>> env = JiminyEnv("demo"); obs, info = env.reset()
        >>> src = ValidActionSource()
        >>> src.propose([GameState("demo", obs, engine_state=env.get_state())])
    """

    def __init__(self, config: ValidConfig | None = None):
        self.config = config or ValidConfig()
        self._local: dict[str, Prober] = {}
        self._pool = None
        self._cache: OrderedDict[str, Detection] = OrderedDict()
        self.hazards: dict[str, set[str]] = {}
        """Game -> actions that hung or halted the emulator (skipped later when ``remember_hazards``)."""

    # --- protocol ---------------------------------------------------------------------------------
    def propose(self, states: Sequence[GameState]) -> list[list[str]]:
        """One list of valid actions per state (cached by ``GameState.key()``)."""
        return [self.detect(s).actions for s in states]

    # --- detection --------------------------------------------------------------------------------
    def detect(self, state: GameState) -> Detection:
        """Detect the valid actions of one state (cached by ``state.key()``).

        Raises:
            CandidateError: the state carries no engine snapshot.
        """
        key = state.key() if state.ram_hash else state.key() + ":" + _state_digest(state.engine_state)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        t0 = time.perf_counter()
        det = self._detect(state)
        det.seconds = time.perf_counter() - t0
        self._cache[key] = det
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)
        return det

    def _detect(self, state: GameState) -> Detection:
        if state.engine_state is None:
            raise CandidateError("GameState.engine_state is missing: pass JiminyEnv.get_state()")
        engine_state, episode = _split_state(state.engine_state)
        if episode is not None and getattr(episode, "done", False):
            return Detection([])
        spec, story = _story(state.game)
        grammar = load_grammar(story, spec.name, self.config.prefer_jericho)
        prober = self._prober(spec, story)
        look, inventory = state.look, state.inventory
        if not look or not inventory:
            res = prober.run(engine_state, ["look", "inventory"])
            look = look or res[0].text
            inventory = inventory or res[1].text
        objects, held = self._objects(prober, grammar, engine_state, state.obs, look, inventory)
        candidates = self._fill(grammar, spec, objects, held, state.game)
        outcomes = self.evaluate(state.game, engine_state, candidates)
        if self.config.count_text_only:
            _mark_default_replies(outcomes, self._template_of, grammar)
        else:
            for o in outcomes:
                if o.status == "valid" and not o.changed:
                    o.status = "invalid"
        det = _collapse(outcomes)
        det.objects = objects
        det.n_candidates = len(candidates)
        return det

    def evaluate(self, game: str, engine_state, actions: Sequence[str]) -> list[Outcome]:
        """Step each action from the state; split across workers for large batches.

        An emulator halt or a step overrunning ``step_timeout`` skips that action only; the rest are
        still evaluated. Skipped actions are remembered as hazards for the game.
        """
        engine_state, _ = _split_state(engine_state)
        spec, story = _story(game)
        cfg = self.config
        actions = list(dict.fromkeys(actions))
        if cfg.remember_hazards and game in self.hazards:
            actions = [a for a in actions if a not in self.hazards[game]]
        sg = spec.score_global if spec.score_source == "global" else None
        if cfg.workers <= 0 or len(actions) < cfg.min_batch_for_pool:
            outcomes = self._prober(spec, story).run(engine_state, actions)
        else:
            outcomes = self._pooled(story, sg, engine_state, actions)
        for o in outcomes:
            if o.status in ("halted", "timeout") and o.text != _POOL_TIMEOUT:
                log.warning("%s: %r %s; skipped", game, o.action,
                            "halted the emulator" if o.status == "halted" else "overran the step bound")
                self.hazards.setdefault(game, set()).add(o.action)
        return outcomes

    def _pooled(self, story: str, sg, engine_state, actions: list[str]) -> list[Outcome]:
        cfg = self.config
        if self._pool is None:
            # spawn: workers import only this module and the engine (no torch, no inherited threads)
            self._pool = mp.get_context("spawn").Pool(cfg.workers)
        n = cfg.workers * 2
        chunks = [actions[i::n] for i in range(n)]
        jobs = [self._pool.apply_async(_work, (story, cfg.seed, cfg.step_timeout, sg, engine_state, c))
                for c in chunks if c]
        deadline = time.monotonic() + cfg.call_timeout
        out: list[Outcome] = []
        for job, chunk in zip(jobs, [c for c in chunks if c]):
            try:
                out.extend(job.get(max(0.0, deadline - time.monotonic())))
            except mp.TimeoutError:
                log.warning("candidate batch overran %.0f s; worker pool restarted", cfg.call_timeout)
                out.extend(Outcome(a, "timeout", text=_POOL_TIMEOUT) for a in chunk)
                self._pool.terminate()
                self._pool = None
                break
        order = {a: i for i, a in enumerate(actions)}
        return sorted(out, key=lambda o: order.get(o.action, len(order)))

    def _prober(self, spec, story: str) -> Prober:
        p = self._local.get(story)
        if p is None:
            sg = spec.score_global if spec.score_source == "global" else None
            p = self._local[story] = Prober(story, self.config.seed, self.config.step_timeout, sg)
        return p

    def _objects(self, prober: Prober, grammar: Grammar, engine_state, obs: str, look: str,
                 inventory: str) -> tuple[list[str], set[str]]:
        names: dict[str, int] = {}  # name -> priority (0 inventory, 1 look, 2 observation)
        for prio, text in ((0, inventory), (1, look), (2, obs)):
            toks = _TOKEN.findall(_MARKER.sub("", text).lower())
            for i, tok in enumerate(toks):
                if tok in _NOT_OBJECTS or tok in _DIRECTIONS or grammar.key(tok) not in grammar.nouns:
                    continue
                names.setdefault(tok, prio)
                prev = toks[i - 1] if i else ""
                if prev and prev not in _NOT_OBJECTS and grammar.key(prev) in (grammar.adjectives or grammar.nouns):
                    names.setdefault(f"{prev} {tok}", prio)
        ordered = sorted(names, key=lambda n: (names[n], len(n.split()), n))
        outs = prober.run(engine_state, [f"{grammar.examine} {n}" for n in ordered])
        by_sig: dict[str, str] = {}
        for name, o in zip(ordered, outs):
            if o.status == "valid" and o.signature not in by_sig:
                by_sig[o.signature] = name
        objects = list(by_sig.values())[: self.config.max_objects]
        inv = set(_TOKEN.findall(inventory.lower()))
        held = {o for o in objects if o.split()[-1] in inv}
        return objects, held

    def _fill(self, grammar: Grammar, spec, objects: list[str], held: set[str], game: str) -> list[str]:
        pair_objs = objects[: self.config.max_pair_objects]
        out: list[str] = []
        self._template_of: dict[str, str] = {}
        for t in grammar.templates:
            h = t.holes
            n0 = len(out)
            if h == 0:
                out.append(t.text)
            elif h == 1:
                need = t.held[0] if t.held else False
                out.extend(t.text.replace("OBJ", o) for o in objects if not need or o in held)
            elif h == 2:
                n1, n2 = (t.held + (False, False))[:2]
                for o1 in pair_objs:
                    if n1 and o1 not in held:
                        continue
                    for o2 in pair_objs:
                        if o1 != o2 and (not n2 or o2 in held):
                            out.append(t.text.replace("OBJ", o1, 1).replace("OBJ", o2, 1))
            for a in out[n0:]:
                self._template_of.setdefault(a, t.text)
        if spec.blocked_actions:
            blocked = re.compile("|".join(f"(?:{p})" for p in spec.blocked_actions))
            out = [a for a in out if not blocked.search(a)]
        return out

    def close(self) -> None:
        """Stop the worker pool and the local engines."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        for p in self._local.values():
            p.close()
        self._local.clear()

    def __enter__(self) -> "ValidActionSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _mark_default_replies(outcomes: list[Outcome], template_of: dict[str, str], grammar: Grammar) -> None:
    """Text-only replies a template gives for several different objects are the verb's default
    refusal ("You can't wear the _."), not a response to the object: mark them invalid."""
    names = grammar.nouns | grammar.adjectives

    def masked(text: str) -> str:
        return " ".join("_" if grammar.key(t) in names else t for t in _TOKEN.findall(_MARKER.sub("", text).lower()))

    seen: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.status != "valid" or o.changed:
            continue
        tpl = template_of.get(o.action, o.action)
        if "OBJ" not in tpl:
            continue
        seen.setdefault((tpl, masked(o.text)), []).append(o)
    for group in seen.values():
        if len(group) >= 2:
            for o in group:
                o.status = "invalid"


def _collapse(outcomes: list[Outcome]) -> Detection:
    groups: dict[str, list[str]] = {}
    skipped = []
    for o in outcomes:
        if o.status == "valid":
            groups.setdefault(o.signature, []).append(o.action)
        elif o.status in ("halted", "timeout"):
            skipped.append(o)
    reps: dict[str, list[str]] = {}
    sigs: dict[str, str] = {}
    for sig, acts in groups.items():
        rep = min(acts, key=lambda a: (len(a.split()), -len(a)))
        reps[rep] = acts
        sigs[rep] = sig
    return Detection(list(reps), reps, sigs, skipped=skipped)


def _split_state(state) -> tuple[tuple, object | None]:
    """``JiminyEnv.get_state()`` -> (engine snapshot, episode state); a bare engine snapshot passes."""
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], tuple):
        return state[0], state[1]
    return state, None


def _state_digest(state) -> str:
    eng, _ = _split_state(state)
    h = hashlib.blake2b(digest_size=8)
    for part in eng:
        h.update(bytes(part) if hasattr(part, "tobytes") else repr(part).encode())
    return h.hexdigest()


@cache
def _story(game: str):
    from galad.env.registry import get_game

    spec = get_game(game)
    folder = spec.require_installed()
    return spec, str(folder / spec.story.name)


def game_state_from_env(env, obs: str, prev_action: str = "", look: str = "", inventory: str = "") -> GameState:
    """A :class:`GameState` of a :class:`~galad.env.jiminy.JiminyEnv` as it is now."""
    from galad.candidates.base import ram_hash

    return GameState(env.game, obs, look, inventory, prev_action, ram_hash=ram_hash(env.state_key()),
                     engine_state=env.get_state())


def default_workers() -> int:
    """Worker processes to use by default: the CPUs this process may run on, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return min(4, n) if n > 1 else 0
