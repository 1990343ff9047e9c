"""Valid-action detection: propose the actions the game understands in a state.

Pipeline for one state (:meth:`ValidActionSource.detect`):

1. **Templates** from the game (:mod:`galad.candidates.valid.grammar`): Jericho's bindings borrowed by name, else
   the story file's own syntax/grammar table.
2. **Objects**: words of the observation, ``look`` and ``inventory`` that the game's dictionary knows as
   nouns (plus adjective-noun pairs); each is examined once from the saved state, names the parser rejects
   are dropped and names that reach the same object (same reply, same world) collapse into one.
3. **Admissibility**, in two stages, by stepping each filled template from the saved state with the tight
   restore/step loop of :mod:`galad.candidates.valid.probe`: first the no-object and one-object templates, then
   the two-object ones over at most ``max_pair_held`` held objects and ``max_pair_other`` others (those the
   last observation mentions, then those a one-object action changed the world with, first), one of each
   pair held. A candidate is invalid when its reply is a parser failure; else it is valid, also when it
   only prints text, unless its template gives that same reply
   (object names masked) for several objects (the verb's default refusal). Whether the world changed is
   judged on the object table minus what a turn of ``look``/``inventory`` moves (the clock's noise).
   Candidates with the same resulting world and reply collapse into one (``n``/``north``).
4. Fewer candidates: ZIL syntax lines tell which objects must be held or must not be (``take``), borrowed
   templates running the same action routine are tried once, and templates the parser rejected for their
   words ("There was no verb in that sentence") are remembered per game and skipped, as are actions that
   hung or halted the emulator (and templates that did so three times in one state). With a ``budget``,
   only that many candidates are stepped, the verbs players type most first.
5. Large batches are split across ``threads`` engines of this process (libfrotz steps without the GIL);
   worker processes only for batches of ``min_batch_for_pool`` or more. A step that overruns
   ``step_timeout`` is stopped by the prober's watchdog and skipped, an emulator halt is skipped, and the
   rest of the batch is still evaluated. Results are cached by the world state
   (:meth:`ValidActionSource.world_key`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from galad import paths
from galad.candidates.base import GameState
from galad.candidates.valid.grammar import Grammar, load_grammar, verb_usage
from galad.candidates.valid.probe import MARKER as _MARKER
from galad.candidates.valid.probe import (  # noqa: F401 - PARSER_FAILURES and Status are re-exported
    PARSER_FAILURES,
    VOCABULARY_FAILURES,
    Outcome,
    Prober,
    Status,
    object_region,
)
from galad.errors import GaladError

log = logging.getLogger(__name__)

_POOL_TIMEOUT = "(worker pool overran the call bound)"
_SAID_VERB_USAGE = 1000  # the ClubFloyd count a verb the state's text uses ranks with at least ("pull", "climb")
_ASKS_FOR_SECOND = re.compile(  # the parser wants a second object: "What do you want to hit the dragon with?"
    r"(?:What do you want to|say what to) [a-z][a-z' -]* "
    r"(?:with|to|in|into|on|onto|at|from|under|behind|over|through|for|about)[?.]", re.I)
_HAZARDOUS_TEMPLATE = 3  # candidates of one template that halted or hung in one state: skip the template

_TOKEN = re.compile(r"[a-z][a-z'-]*")
_NOT_OBJECTS = frozenset(
    "a an the it its them him her his hers you your me my myself self yourself i here there all everything "
    "some this that these those one and or but of to in on at by with from".split()
)


_PARENS = re.compile(r"\([^)]*\)")
_ITEM_SPLIT = re.compile(r"[\n,;:.!]|\band\b")

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
    min_batch_for_pool: int = 5000
    """Batches smaller than this run in this process (measured on 2 loaded cores: the pool's transfer and
    round trips cost more than they save even at 2,500 candidates; threads below do better)."""
    threads: int = 2
    """Engines stepping a batch in parallel threads of this process (libfrotz releases the GIL)."""
    min_batch_for_threads: int = 200
    """Batches smaller than this run on one engine."""
    max_objects: int = 12
    """Most objects filled into one-object templates (inventory first, then the room)."""
    max_pair_held: int = 4
    """Most held objects combined in two-object templates (one object of each pair is held)."""
    max_pair_other: int = 3
    """Most other objects combined in two-object templates (those a one-object action changed the world
    with first: takeable, openable, people)."""
    budget: int = 0
    """Most candidates stepped per state (0: all). Candidates are ranked first: no-object templates, then
    verbs by how often players type them (ClubFloyd transcript counts, :func:`~galad.candidates.valid.grammar.verb_usage`),
    each verb's objects in the order above; one-object templates get the budget less a fifth kept for the
    two-object ones. Trades rarely used verbs' replies for speed (``galad candidates bench --budget``)."""
    text_only: Literal["all", "marked", "none"] = "all"
    """Which actions that only print text (reply not a parser failure, world unchanged) are valid: all of
    them but a verb's default refusal (``all``), those whose reply carries an annotation marker, i.e. a
    morally salient or rewarded event (``marked``), or none, as in Jericho (``none``)."""
    prefer_jericho: bool = True
    """Use Jericho's grammar bindings where it has them for the game (else the story's own grammar)."""
    remember_hazards: bool = True
    """Skip, for the rest of this source's life, exact actions that once hung or halted the emulator, and
    templates whose candidates did so three times in one state."""
    cache_size: int = 4096
    """States whose results are kept in memory (LRU)."""
    disk_cache: bool | str | Path = False
    """Also keep detections in a SQLite file: ``True`` for ``<GALAD_HOME>/valid_cache.sqlite``, shared by
    processes and runs, or a file's path (the trainer keeps one per run). Keyed by game, story file, these
    settings and :meth:`ValidActionSource.world_key`; the first detection stored for a key is the one every
    reader gets, so a rerun or a resumed run sees what the first saw. A world key leaves the RNG and timers
    out, so a detection made in one run can differ from the one another run would make in "the same" world:
    runs that must reproduce alone use a file of their own."""
    world_key: bool = True
    """Cache by the world state (:meth:`ValidActionSource.world_key`: object table, score, flags; not move
    counters or timers) so that revisited worlds hit during RL; False: by ``GameState.key()`` (RAM and
    text)."""
    seed: int = 1
    """Frotz seed of the worker engines (the state's RNG is restored with it, so this rarely matters)."""


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


# worker processes: one Prober per story, created on first use
_PROBERS: dict[tuple, Prober] = {}


def _work(story_file: str, seed: int, step_timeout: float, score_global: int | None, engine_state: tuple,
          actions: list[str], noise: tuple[int, ...] = ()) -> list[Outcome]:
    key = (story_file, seed, step_timeout, score_global)
    prober = _PROBERS.get(key)
    if prober is None:
        prober = _PROBERS[key] = Prober(story_file, seed, step_timeout, score_global)
    return prober.run(engine_state, actions, noise)


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
        self._local: dict[tuple[str, int], Prober] = {}
        self._threads: ThreadPoolExecutor | None = None
        self._pool = None
        self._cache: OrderedDict[str, Detection] = OrderedDict()
        self._template_of: dict[str, str] = {}
        self._object_of: dict[str, str] = {}  # candidate -> its first object
        self._volatile: dict[str, frozenset[int]] = {}
        self.broken: dict[str, set[str]] = {}
        """Game -> templates skipped from now on: the parser rejected every candidate for its words, or its
        candidates halted or hung the emulator repeatedly."""
        self.hazards: dict[str, set[str]] = {}
        """Game -> actions that hung or halted the emulator (skipped later when ``remember_hazards``)."""
        self._db = None
        if self.config.disk_cache:
            from galad.store import SqliteStore

            where = self.config.disk_cache
            where = paths.galad_home() / "valid_cache.sqlite" if where is True else Path(where)
            self._db = SqliteStore(where, "detections", ("scope",), what="valid-action cache")

    # --- protocol ---------------------------------------------------------------------------------
    def propose(self, states: Sequence[GameState]) -> list[list[str]]:
        """One list of valid actions per state (cached by ``GameState.key()``)."""
        return [self.detect(s).actions for s in states]

    # --- detection --------------------------------------------------------------------------------
    def detect(self, state: GameState) -> Detection:
        """Detect the valid actions of one state (cached by :meth:`world_key`).

        Raises:
            CandidateError: the state carries no engine snapshot.
        """
        key = self.world_key(state)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        det = self._stored(state.game, key)
        if det is None:
            t0 = time.perf_counter()
            det = self._detect(state)
            det.seconds = time.perf_counter() - t0
            if self._db is not None:  # the first writer wins: read back what every process will see
                self._db.put_many((self._scope(state.game),), [(key, _to_json(det))], replace=False)
                det = self._stored(state.game, key) or det
            else:
                self._cache[self.world_key(state)] = det  # the detection may have learned more volatile globals
        self._cache[key] = det
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)
        return det

    def _scope(self, game: str) -> str:
        """What a stored detection depends on besides the world: the game, its story file and the settings."""
        c = self.config
        _, story = _story(game)
        settings = (_DETECTOR_VERSION, c.max_objects, c.max_pair_held, c.max_pair_other, c.text_only,
                    c.prefer_jericho, c.world_key) + ((c.budget,) if c.budget else ())
        return f"{game}:{_file_digest(story)}:{hashlib.blake2b(repr(settings).encode(), digest_size=8).hexdigest()}"

    def _stored(self, game: str, key: str) -> Detection | None:
        if self._db is None:
            return None
        found = self._db.get_many((self._scope(game),), [key])
        return _from_json(found[key]) if key in found else None

    def world_key(self, state: GameState) -> str:
        """Cache key of a state's world: its object table and property region, score and the globals that a
        turn doing nothing leaves alone (learned per game from ``look``/``inventory`` in every detection).

        Approximation: states that differ only in move counters, timers, the parser's scratch globals, the
        RNG or the text around them share one detection (its replies and signatures are those of the
        first such state). With ``world_key`` off, or without an engine snapshot: ``state.key()``.
        """
        if state.engine_state is None:
            return state.key()
        if not self.config.world_key:
            return state.key() if state.ram_hash else state.key() + ":" + _state_digest(state.engine_state)
        engine_state, episode = _split_state(state.engine_state)
        spec, story = _story(state.game)
        vol = self._volatile.get(state.game)
        if vol is None:
            vol = self._prober(spec, story).volatile_globals(engine_state, ["look", "inventory"])
            if self._db is not None:  # one set per game for every run, or stored keys would never match
                scope = self._scope(state.game)
                self._db.put_many((scope,), [("volatile", json.dumps(sorted(vol)))], replace=False)
                stored = self._db.get_many((scope,), ["volatile"]).get("volatile")
                vol = frozenset(json.loads(stored)) if stored is not None else vol
            self._volatile[state.game] = vol
        ram = engine_state[0]
        ram = ram.tobytes() if hasattr(ram, "tobytes") else bytes(ram)
        a, b = object_region(story)
        g = (ram[0x0C] << 8) | ram[0x0D]
        h = hashlib.blake2b(digest_size=16)
        h.update(state.game.encode())
        h.update(ram[a:b])
        h.update(bytes(x for i in range(240) if i not in vol for x in ram[g + 2 * i : g + 2 * i + 2]))
        h.update(b"done" if episode is not None and getattr(episode, "done", False) else b"")
        return h.hexdigest()

    def _detect(self, state: GameState) -> Detection:
        if state.engine_state is None:
            raise CandidateError("GameState.engine_state is missing: pass JiminyEnv.get_state()")
        engine_state, episode = _split_state(state.engine_state)
        if episode is not None and getattr(episode, "done", False):
            return Detection([])
        spec, story = _story(state.game)
        grammar = load_grammar(story, spec.name, self.config.prefer_jericho)
        prober = self._prober(spec, story)
        # look and inventory pass a turn without changing anything: what they move is the clock's noise
        res = prober.run(engine_state, ["look", "inventory"], keep_world=True)
        noise = prober.noise(engine_state, res)
        # globals a do-nothing turn touches depend on the command history too: keep learning them (not with
        # the disk cache, whose keys must stay comparable across runs)
        if self._db is None:
            self._volatile[state.game] = self._volatile.get(state.game, frozenset()) | prober.volatile_globals(
                engine_state, ["look", "inventory"])
        look = state.look or res[0].text
        inventory = state.inventory or res[1].text
        objects, held = self._objects(prober, grammar, engine_state, state.obs, look, inventory)
        self._template_of, self._object_of = {}, {}
        # stage 1: no-object and one-object templates
        broken = self.broken.setdefault(state.game, set())
        first = self._fill(grammar, spec, objects, held, (0, 1), broken)
        budget = self.config.budget
        if budget:
            said = {grammar.key(t) for text in (state.obs, look, inventory) for t in _words(text)}
            first = self._ranked(first, grammar, said)[: budget - budget // 5]
        outcomes = self.evaluate(state.game, engine_state, first, noise)
        self._remember_broken(outcomes, broken)
        self._judge(outcomes, grammar)
        # stage 2: two-object templates over a few objects, ranked with what stage 1 showed (_pair_objects)
        pair_objs = self._pair_objects(outcomes, objects, held, grammar, state.obs)
        second = self._fill(grammar, spec, pair_objs, held, (2,), broken)
        if budget:
            # the parser asked for a second object ("What do you want to hit the lock with?"): "hit lock with X"
            # first
            lead = {(grammar.key(o.action.split()[0]), self._object_of.get(o.action)): 0 for o in outcomes
                    if o.status == "invalid" and _ASKS_FOR_SECOND.search(o.text)}
            second = self._ranked(second, grammar, said, lead)[: max(0, budget - len(first))]
        more = self.evaluate(state.game, engine_state, second, noise)
        self._remember_broken(more, broken)
        self._judge(more, grammar)
        outcomes += more
        candidates = first + second
        det = _collapse(outcomes, by_effect=self.config.text_only != "all")
        det.objects = objects
        det.n_candidates = len(candidates)
        return det

    def _ranked(self, candidates: list[str], grammar: Grammar, said: set[str],
                lead: dict[tuple[str, str | None], int] | None = None) -> list[str]:
        """``candidates`` by their template: no-object ones first, then by how often players type the verb or a
        synonym running the same routine, a verb the state's text uses (a spell in the spell book, "fill") counted
        as a common one, and divided by (1 + k)^2 for a verb's k-th template with as many objects, fewest words
        first (``look at``, ``look in``, ``look under``, ... share one count). Before that, candidates by the
        level ``lead`` gives their verb and first object (lowest first; those it does not name last). Stable: a
        template's objects keep their order."""
        lead = lead or {}
        weight: dict[str, float] = {}
        nth: dict[tuple[str, int], int] = {}
        for t in sorted(grammar.templates, key=lambda t: len(t.text.split())):
            verb = grammar.key(t.text.split()[0])
            k = nth[(verb, t.holes)] = nth.get((verb, t.holes), -1) + 1
            n = max(t.popularity(), _SAID_VERB_USAGE) if verb in said else t.popularity()
            weight[t.text] = n / (1 + k) ** 2

        def rank(a: str) -> tuple[bool, int, float]:
            tpl = self._template_of.get(a, a)
            return ("OBJ" in tpl, lead.get((grammar.key(a.split()[0]), self._object_of.get(a)), 9),
                    -weight.get(tpl, 0.0))
        return sorted(candidates, key=rank)

    def _remember_broken(self, outcomes: list[Outcome], broken: set[str]) -> None:
        """Templates to skip in this game from now on: those all of whose candidates got a vocabulary failure
        ("There was no verb in that sentence", "I don't know the word": they do not parse whatever the state),
        and those whose candidates halted the emulator or overran the step bound ``_HAZARDOUS_TEMPLATE``
        times in one state (sherlock's ``pour OBJ in OBJ`` halts for every pair)."""
        verdict: dict[str, bool] = {}
        hazards: dict[str, int] = {}
        for o in outcomes:
            tpl = self._template_of.get(o.action)
            if tpl is None or tpl == o.action:
                continue
            if o.status in ("halted", "timeout") and o.text != _POOL_TIMEOUT:
                hazards[tpl] = hazards.get(tpl, 0) + 1
            if verdict.get(tpl) is not False:
                verdict[tpl] = o.status == "invalid" and VOCABULARY_FAILURES.search(o.text) is not None
        broken.update(t for t, bad in verdict.items() if bad)
        if self.config.remember_hazards:
            broken.update(t for t, n in hazards.items() if n >= _HAZARDOUS_TEMPLATE)

    def _judge(self, outcomes: list[Outcome], grammar: Grammar) -> None:
        mode = self.config.text_only
        if mode == "all":
            _mark_default_replies(outcomes, self._template_of, grammar)
            return
        for o in outcomes:
            if o.status == "valid" and not o.changed and not (mode == "marked" and _MARKER.search(o.text)):
                o.status = "invalid"

    def _pair_objects(self, outcomes: list[Outcome], objects: list[str], held: set[str],
                      grammar: Grammar, obs: str) -> list[str]:
        """Objects for two-object templates: up to ``max_pair_held`` held ones and ``max_pair_other`` others,
        those the last observation mentions first (what play is about now), then for the others those a
        one-object action changed the world with (takeable, openable, people...). Names the parser mostly
        refused in one-object templates (ambiguous, out of reach) are left out."""
        active: set[str] = set()
        tried: dict[str, int] = {}
        refused: dict[str, int] = {}
        for o in outcomes:
            tpl = self._template_of.get(o.action, "")
            if tpl.count("OBJ") != 1:
                continue
            pre, post = tpl.split("OBJ")
            name = o.action[len(pre): len(o.action) - len(post)]
            tried[name] = tried.get(name, 0) + 1
            if o.status == "invalid" and not o.signature:  # a parser failure (default refusals are signed)
                refused[name] = refused.get(name, 0) + 1
            elif o.status == "valid" and o.changed:
                active.add(name)
        cfg = self.config
        usable = [o for o in objects if refused.get(o, 0) <= 0.5 * tried.get(o, 0) or o in active]
        said = {grammar.key(t) for t in _words(obs)}
        fresh = lambda o: grammar.key(o.split()[-1]) not in said  # noqa: E731
        mine = sorted((o for o in usable if o in held), key=fresh)[: cfg.max_pair_held]
        other = sorted((o for o in usable if o not in held), key=lambda o: (fresh(o), o not in active))
        return mine + other[: cfg.max_pair_other]

    def evaluate(self, game: str, engine_state, actions: Sequence[str], noise: Sequence[int] = ()) -> list[Outcome]:
        """Step each action from the state; split across workers for large batches.

        An emulator halt or a step overrunning ``step_timeout`` skips that action only; the rest are
        still evaluated. Skipped actions are remembered as hazards for the game. ``noise``: object-region
        offsets that do not count as a change of the world (:meth:`Prober.noise`).
        """
        engine_state, _ = _split_state(engine_state)
        spec, story = _story(game)
        cfg = self.config
        actions = list(dict.fromkeys(actions))
        if cfg.remember_hazards and game in self.hazards:
            actions = [a for a in actions if a not in self.hazards[game]]
        sg = spec.score_global if spec.score_source == "global" else None
        if cfg.workers > 0 and len(actions) >= cfg.min_batch_for_pool:
            outcomes = self._pooled(story, sg, engine_state, actions, noise)
        elif cfg.threads > 1 and len(actions) >= cfg.min_batch_for_threads:
            outcomes = self._threaded(spec, story, engine_state, actions, noise)
        else:
            outcomes = self._prober(spec, story).run(engine_state, actions, noise)
        for o in outcomes:
            if o.status in ("halted", "timeout") and o.text != _POOL_TIMEOUT:
                log.warning("%s: %r %s; skipped", game, o.action,
                            "halted the emulator" if o.status == "halted" else "overran the step bound")
                self.hazards.setdefault(game, set()).add(o.action)
        return outcomes

    def _pooled(self, story: str, sg, engine_state, actions: list[str], noise: Sequence[int]) -> list[Outcome]:
        cfg = self.config
        if self._pool is None:
            # spawn: workers import only this module and the engine (no torch, no inherited threads)
            self._pool = mp.get_context("spawn").Pool(cfg.workers)
        n = cfg.workers * 2
        chunks = [actions[i::n] for i in range(n)]
        jobs = [self._pool.apply_async(_work, (story, cfg.seed, cfg.step_timeout, sg, engine_state, c, tuple(noise)))
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

    def _prober(self, spec, story: str, k: int = 0) -> Prober:
        """This process's ``k``-th engine for a story (each its own copy of libfrotz)."""
        p = self._local.get((story, k))
        if p is None:
            sg = spec.score_global if spec.score_source == "global" else None
            p = self._local[(story, k)] = Prober(story, self.config.seed, self.config.step_timeout, sg)
        return p

    def _threaded(self, spec, story: str, engine_state, actions: list[str], noise: Sequence[int]) -> list[Outcome]:
        """Interleaved chunks on ``threads`` engines of this process: libfrotz's step runs without the GIL,
        so the engines step in parallel with no state transfer between processes."""
        n = self.config.threads
        if self._threads is None:
            self._threads = ThreadPoolExecutor(n, thread_name_prefix="galad-probe")
        chunks = [actions[i::n] for i in range(n)]
        probers = [self._prober(spec, story, k) for k in range(n)]
        futures = [self._threads.submit(p.run, engine_state, c, noise) for p, c in zip(probers, chunks)]
        parts = [f.result() for f in futures]
        out: list[Outcome] = [None] * len(actions)  # type: ignore[list-item]
        for i, part in enumerate(parts):
            out[i::n] = part
        return out

    def _objects(self, prober: Prober, grammar: Grammar, engine_state, obs: str, look: str,
                 inventory: str) -> tuple[list[str], set[str]]:
        names: dict[str, int] = {}  # name -> priority (0 inventory, 1 look, 2 observation)
        for prio, text in ((0, inventory), (1, look), (2, obs)):
            toks = _words(text)
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
        # an inventory item ends with its noun ("A pot of gold", "a small stone (providing light)"), one per
        # line or in a list ("You have a coin, an earthworm and a stone."): matching any word would take the
        # held "gold coffin" for the "gold" on the floor
        heads = set()
        for item in _ITEM_SPLIT.split(_PARENS.sub("", _body(inventory).lower())):
            toks = _TOKEN.findall(item)
            if toks:
                heads.add(grammar.key(toks[-1]))
        def is_held(name: str) -> bool:
            w = grammar.key(name.split()[-1])
            # a shorter synonym of the listed noun counts too ("match" for "A matchbook")
            return w in heads or (len(w) >= 4 and any(h.startswith(w) for h in heads))

        held = {o for o in objects if is_held(o)}
        return objects, held

    def _fill(self, grammar: Grammar, spec, objects: list[str], held: set[str], arities: tuple[int, ...],
              skip: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
        """Fill the templates with ``arities`` holes, but those in ``skip``; records each candidate's template
        in ``_template_of`` and its first object in ``_object_of``."""
        out: list[str] = []
        for t in grammar.templates:
            h = t.holes
            if h not in arities or t.text in skip:
                continue
            n0 = len(out)
            if h == 0:
                out.append(t.text)
            elif h == 1:
                need = t.held[0] if t.held else False
                away = t.room[0] if t.room else False
                for o in objects[: self.config.max_objects]:
                    if (not need or o in held) and (not away or o not in held):
                        out.append(t.text.replace("OBJ", o))
                        self._object_of.setdefault(out[-1], o)
            elif h == 2:
                n1, n2 = (t.held + (False, False))[:2]
                r1, r2 = (t.room + (False, False))[:2]
                for o1 in objects:
                    if (n1 and o1 not in held) or (r1 and o1 in held):
                        continue
                    for o2 in objects:
                        # one object of a pair is held (put/give/throw X, unlock/attack/tie with X)
                        if (o1 != o2 and (not n2 or o2 in held) and (not r2 or o2 not in held)
                                and (o1 in held or o2 in held)):
                            out.append(t.text.replace("OBJ", o1, 1).replace("OBJ", o2, 1))
                            self._object_of.setdefault(out[-1], o1)
            for a in out[n0:]:
                self._template_of.setdefault(a, t.text)
        return [a for a in out if not spec.is_blocked(a)]

    def close(self) -> None:
        """Stop the worker pool and the local engines."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        if self._threads is not None:
            self._threads.shutdown()
            self._threads = None
        for p in self._local.values():
            p.close()
        self._local.clear()
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "ValidActionSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _words(text: str) -> list[str]:
    """The lower-case words of a reply, annotation markers left out."""
    return _TOKEN.findall(_MARKER.sub("", text).lower())


def _body(text: str) -> str:
    """A reply without its status line (padded with runs of spaces: room name, score, moves or time)."""
    return "\n".join(ln for ln in text.split("\n") if "   " not in ln)


def _mark_default_replies(outcomes: list[Outcome], template_of: dict[str, str], grammar: Grammar) -> None:
    """Text-only replies a template gives for several different objects are the verb's default
    refusal ("You can't wear the _."), not a response to the object: mark them invalid."""
    names = grammar.nouns | grammar.adjectives
    word: dict[str, str] = {}
    done: dict[str, str] = {}

    def masked(text: str) -> str:
        m = done.get(text)
        if m is None:
            parts = []
            for t in _words(text):
                w = word.get(t)
                if w is None:
                    w = word[t] = "_" if grammar.key(t) in names else t
                parts.append(w)
            m = done[text] = " ".join(parts)
        return m

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


def _representative(actions: list[str]) -> str:
    """The name of a group of actions with one outcome: a compass direction, else the fewest words, the verb
    players use most ("take bowl", not "carry bowl"), then the longest spelling."""
    def rank(a: str) -> tuple:
        words = a.split()
        return (words[0] not in _DIRECTIONS, len(words), -verb_usage(a), -len(a))
    return min(actions, key=rank)


def _collapse(outcomes: list[Outcome], by_effect: bool = False) -> Detection:
    """One action per distinct outcome: by signature (world and reply), or with ``by_effect`` by effect
    (world, score and annotation markers: what an agent's choice changes)."""
    groups: dict[str, list[Outcome]] = {}
    skipped = []
    for o in outcomes:
        if o.status == "valid":
            groups.setdefault(o.effect if by_effect else o.signature, []).append(o)
        elif o.status in ("halted", "timeout"):
            skipped.append(o)
    reps: dict[str, list[str]] = {}
    sigs: dict[str, str] = {}
    for group in groups.values():
        acts = [o.action for o in group]
        rep = _representative(acts)
        reps[rep] = acts
        sigs[rep] = group[acts.index(rep)].signature
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


_DETECTOR_VERSION = 3  # bump when detection changes what it finds: stored detections of older ones are not used


def _to_json(det: Detection) -> str:
    return json.dumps({"actions": det.actions, "groups": det.groups, "signatures": det.signatures,
                       "objects": det.objects, "n_candidates": det.n_candidates, "seconds": det.seconds})


def _from_json(text: str) -> Detection:
    return Detection(**json.loads(text))


@cache
def _file_digest(path: str) -> str:
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=8).hexdigest()


@cache
def _story(game: str):
    from galad.env.registry import get_game

    spec = get_game(game)
    folder = spec.require_installed()
    return spec, str(folder / spec.story.name)


def game_state_from_env(env, obs: str, prev_action: str = "", look: str = "", inventory: str = "") -> GameState:
    """A :class:`GameState` of a :class:`~galad.env.jiminy.JiminyEnv` as it is now."""
    from galad.env.engine import ram_hash

    return GameState(env.game, obs, look, inventory, prev_action, ram_hash=ram_hash(env.state_key()),
                     engine_state=env.get_state())


def default_workers() -> int:
    """Worker processes to use by default: the CPUs this process may run on, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return min(4, n) if n > 1 else 0
