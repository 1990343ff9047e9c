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
   Candidates with the same resulting world and reply collapse into one (``n``/``north``); with
   ``text_only`` ``none`` or ``marked``, those with the same effect on the world
   (:func:`~galad.candidates.valid.replies.outcome_key`).
4. Fewer candidates: ZIL syntax lines tell which objects must be held or must not be (``take``), borrowed
   templates running the same action routine are tried once, and templates the parser rejected for their
   words ("There was no verb in that sentence") are remembered per game and skipped, as are actions that
   hung or halted the emulator (and templates that did so three times in one state). With a ``budget``,
   only that many candidates are stepped, the verbs players type most first.
5. Large batches are split across ``threads`` engines of this process (libfrotz steps without the GIL);
   worker processes only for batches of ``min_batch_for_pool`` or more. A step that overruns
   ``step_timeout`` is stopped by the prober's watchdog and skipped, an emulator halt is skipped, and the
   rest of the batch is still evaluated. Detections are cached by the world state and what detection reads of
   the state's texts (:meth:`ValidActionSource.world_key`), and each candidate's outcome by the world state
   alone: in a world seen before, only candidates not stepped there yet are stepped.

This module runs the pipeline; its parts live beside it: :mod:`~galad.candidates.valid.fill` (objects, filled
templates, ranking), :mod:`~galad.candidates.valid.pool` (the engines stepping a batch),
:mod:`~galad.candidates.valid.replies` (judging replies, one action per outcome) and
:mod:`~galad.candidates.valid.cache` (world keys, the in-memory and SQLite caches).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from galad.candidates.base import GameState
from galad.candidates.valid import fill
from galad.candidates.valid.cache import DetectionCache, split_state, state_digest
from galad.candidates.valid.grammar import Grammar, load_grammar
from galad.candidates.valid.pool import POOL_TIMEOUT, Batch, Engines
from galad.candidates.valid.probe import VOCABULARY_FAILURES, Outcome
from galad.candidates.valid.replies import Detection, collapse, judge, words
from galad.device import available_cpus
from galad.errors import GaladError

log = logging.getLogger(__name__)

_ASKS_FOR_SECOND = re.compile(  # the parser wants a second object: "What do you want to hit the dragon with?"
    r"(?:What do you want to|say what to) [a-z][a-z' -]* "
    r"(?:with|to|in|into|on|onto|at|from|under|behind|over|through|for|about)[?.]", re.I)
_HAZARDOUS_TEMPLATE = 3  # candidates of one template that halted or hung in one state: skip the template


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
    min_thread_seconds: float = 0.005
    """Batches that one engine would step in less than this many seconds (at the story's cost per candidate,
    measured on the batches run on one engine) run on one engine; longer ones on ``threads`` engines. The
    split does not change an outcome."""
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
    them but a verb's default refusal (``all``, the default, as ``galad train --valid-text-only``'s), none, as
    in Jericho (``none``), or those whose reply carries an annotation marker, i.e. a morally salient or
    rewarded event (``marked``: uses the benchmark's ground-truth annotation markers, and they separate
    actions). ``all`` and ``none`` read no marker (:func:`~galad.candidates.valid.replies.outcome_key`)."""
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
        self._engines = Engines(self.config)
        self._cache = DetectionCache(self.config, lambda game: _story(game)[1])
        self._template_of: dict[str, str] = {}  # candidate -> its template (this detection's)
        self._object_of: dict[str, str] = {}  # candidate -> its first object
        self.broken: dict[str, set[str]] = {}
        """Game -> templates skipped from now on: the parser rejected every candidate for its words, or its
        candidates halted or hung the emulator repeatedly."""
        self.hazards: dict[str, set[str]] = {}
        """Game -> actions that hung or halted the emulator (skipped later when ``remember_hazards``)."""

    # --- protocol ---------------------------------------------------------------------------------
    def propose(self, states: Sequence[GameState]) -> list[list[str]]:
        """One list of valid actions per state (each detection cached by :meth:`world_key`)."""
        return [self.detect(s).actions for s in states]

    # --- detection --------------------------------------------------------------------------------
    def detect(self, state: GameState) -> Detection:
        """Detect the valid actions of one state (cached by :meth:`world_key`).

        Raises:
            CandidateError: the state carries no engine snapshot.
        """
        world = self._world_only(state) if self._keyed(state) else None
        key = self._with_texts(state, world) if world is not None else self.world_key(state)
        det = self._cache.recent(key)
        if det is not None:
            return det
        det = self._stored(state.game, key)
        if det is None:
            t0 = time.perf_counter()
            det = self._detect(state, world)
            det.seconds = time.perf_counter() - t0
            if self._cache.db is not None:  # the first writer wins: read back what every process will see
                det = self._cache.store(state.game, key, det)
        self._cache.keep(key, det)
        return det

    def _stored(self, game: str, key: str) -> Detection | None:
        return self._cache.stored(game, key)

    def world_key(self, state: GameState) -> str:
        """Cache key of a state's world: its object table and property region, score, where the engine
        waits for input, and the globals that a turn doing nothing leaves alone, less the parser's scratch
        globals (learned once per game from the first state keyed: what ``look``/``inventory`` change and
        :meth:`~galad.candidates.valid.probe.Prober.scratch_globals` of its candidates);
        and what detection reads from the state's texts (:func:`~galad.candidates.valid.fill.text_inputs`).

        Approximation: states that differ only in move counters, timers, the parser's scratch globals or
        the RNG share one detection (its replies and signatures are those of the first such state). With
        ``world_key`` off, or without an engine snapshot: ``state.key()``.
        """
        if self._keyed(state):
            return self._with_texts(state, self._world_only(state))
        if state.engine_state is None:
            return state.key()
        return state.key() if state.ram_hash else state.key() + ":" + state_digest(state.engine_state)

    def _keyed(self, state: GameState) -> bool:
        """The state is cached by its world (``world_key`` on, and an engine snapshot to read it from)."""
        return self.config.world_key and state.engine_state is not None

    def _with_texts(self, state: GameState, world: str) -> str:
        """The detection key of a state whose world key is ``world``: that and what detection reads from its
        texts (:func:`~galad.candidates.valid.fill.text_inputs`)."""
        spec, story = _story(state.game)
        grammar = load_grammar(story, spec.name, self.config.prefer_jericho)
        return self._cache.with_texts(world, fill.text_inputs(grammar, state.obs, state.look, state.inventory,
                                                              bool(self.config.budget)))

    def _world_only(self, state: GameState) -> str:
        """The world key without the texts: what a candidate's outcome depends on (its reply, its world)."""
        spec, story = _story(state.game)
        return self._cache.world_key(state, self._engines.prober(spec, story), lambda: self._scratch(state))

    def _scratch(self, state: GameState) -> frozenset[int]:
        """The game's scratch globals (:meth:`~galad.candidates.valid.probe.Prober.scratch_globals`), learned
        from ``look``, ``inventory``, the no-object and one-object candidates of ``state``, and its two-object
        templates over its first four objects, two of them taken as held (at the start of a game the player
        often holds nothing: these are for the parser's two-noun paths, whatever their replies)."""
        engine_state, _ = split_state(state.engine_state)
        s1 = self._stage_one(state, engine_state)
        objs = s1.objects[:4]
        pairs = fill.fill(s1.grammar, s1.spec, objs, set(objs[:2]), (2,), self._template_of, self._object_of,
                          s1.broken)
        return s1.prober.scratch_globals(engine_state, ["look", "inventory"] + s1.actions + pairs, s1.noise)

    def _stage_one(self, state: GameState, engine_state, world: str | None = None) -> "_StageOne":
        """Objects and the no-object and one-object candidates of a state (detection's first stage); ``world``:
        the state's world key without texts, for the outcomes already known there."""
        spec, story = _story(state.game)
        grammar = load_grammar(story, spec.name, self.config.prefer_jericho)
        prober = self._engines.prober(spec, story)
        # look and inventory pass a turn without changing anything: what they move is the clock's noise
        res = prober.run(engine_state, ["look", "inventory"], keep_world=True)
        noise = prober.noise(engine_state, res)
        look = state.look or res[0].text
        inventory = state.inventory or res[1].text
        if world is None:
            def step(actions):
                return prober.run(engine_state, actions)
        else:
            def step(actions):
                return self.evaluate(state.game, engine_state, actions, (), world)
        objects, held = fill.find_objects(step, grammar, state.obs, look, inventory, self.config.max_objects)
        self._template_of, self._object_of = {}, {}
        broken = self.broken.setdefault(state.game, set())
        first = fill.fill(grammar, spec, objects, held, (0, 1), self._template_of, self._object_of, broken)
        return _StageOne(spec, grammar, prober, noise, look, inventory, objects, held, broken, first)

    def _detect(self, state: GameState, world: str | None = None) -> Detection:
        if state.engine_state is None:
            raise CandidateError("GameState.engine_state is missing: pass JiminyEnv.get_state()")
        engine_state, episode = split_state(state.engine_state)
        if episode is not None and getattr(episode, "done", False):
            return Detection([])
        s1 = self._stage_one(state, engine_state, world)
        spec, grammar, noise, look, inventory = s1.spec, s1.grammar, s1.noise, s1.look, s1.inventory
        objects, held, broken, first = s1.objects, s1.held, s1.broken, s1.actions
        cfg = self.config
        budget = cfg.budget
        if budget:
            said = {grammar.key(t) for text in (state.obs, look, inventory) for t in words(text)}
            first = self._ranked(first, grammar, said)[: budget - budget // 5]
        outcomes = self._evaluate_and_judge(state.game, engine_state, first, noise, grammar, broken, world)
        # stage 2: two-object templates over a few objects, ranked with what stage 1 showed (fill.pair_objects)
        pair_objs = fill.pair_objects(outcomes, objects, held, grammar, state.obs, self._template_of,
                                      cfg.max_pair_held, cfg.max_pair_other)
        second = fill.fill(grammar, spec, pair_objs, held, (2,), self._template_of, self._object_of, broken)
        if budget:
            # the parser asked for a second object ("What do you want to hit the lock with?"): "hit lock with X"
            # first
            lead = {(grammar.key(o.action.split()[0]), self._object_of.get(o.action)): 0 for o in outcomes
                    if o.status == "invalid" and _ASKS_FOR_SECOND.search(o.text)}
            second = self._ranked(second, grammar, said, lead)[: max(0, budget - len(first))]
        outcomes += self._evaluate_and_judge(state.game, engine_state, second, noise, grammar, broken, world)
        det = collapse(outcomes, cfg.text_only)
        det.objects = objects
        det.n_candidates = len(first) + len(second)
        return det

    def _evaluate_and_judge(self, game: str, engine_state, candidates: list[str], noise: Sequence[int],
                            grammar: Grammar, broken: set[str], world: str | None = None) -> list[Outcome]:
        """Step the candidates, remember the templates to skip from now on, and judge the replies."""
        outcomes = self.evaluate(game, engine_state, candidates, noise, world)
        self._remember_broken(outcomes, broken)
        judge(outcomes, grammar, self._template_of, self.config.text_only)
        return outcomes

    def _ranked(self, candidates: list[str], grammar: Grammar, said: set[str],
                lead: dict[tuple[str, str | None], int] | None = None) -> list[str]:
        """``candidates`` ranked for the budget (:func:`~galad.candidates.valid.fill.ranked`)."""
        return fill.ranked(candidates, grammar, said, self._template_of, self._object_of, lead)

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
            if o.status in ("halted", "timeout") and o.text != POOL_TIMEOUT:
                hazards[tpl] = hazards.get(tpl, 0) + 1
            if verdict.get(tpl) is not False:
                verdict[tpl] = o.status == "invalid" and VOCABULARY_FAILURES.search(o.text) is not None
        broken.update(t for t, bad in verdict.items() if bad)
        if self.config.remember_hazards:
            broken.update(t for t, n in hazards.items() if n >= _HAZARDOUS_TEMPLATE)

    def evaluate(self, game: str, engine_state, actions: Sequence[str], noise: Sequence[int] = (),
                 world: str | None = None) -> list[Outcome]:
        """Step each action from the state; split across workers for large batches.

        An emulator halt or a step overrunning ``step_timeout`` skips that action only; the rest are
        still evaluated. Skipped actions are remembered as hazards for the game. ``noise``: object-region
        offsets that do not count as a change of the world (:meth:`Prober.noise`). ``world``: the state's
        world key without its texts; an action already stepped in that world (with that noise) is not
        stepped again (its outcome is the first one's).
        """
        engine_state, _ = split_state(engine_state)
        spec, story = _story(game)
        actions = list(dict.fromkeys(actions))
        if self.config.remember_hazards and game in self.hazards:
            actions = [a for a in actions if a not in self.hazards[game]]
        known = self._cache.outcomes(world, noise) if world is not None else None
        todo = [a for a in actions if a not in known] if known is not None else actions
        outcomes = self._engines.run(spec, story, engine_state, todo, noise)
        if known is not None:
            known.update((o.action, o.copy()) for o in outcomes if o.text != POOL_TIMEOUT)
            new = {o.action: o for o in outcomes}
            outcomes = [new[a] if a in new else known[a].copy() for a in actions]
        for o in outcomes:
            if o.status in ("halted", "timeout") and o.text != POOL_TIMEOUT:
                log.warning("%s: %r %s; skipped", game, o.action,
                            "halted the emulator" if o.status == "halted" else "overran the step bound")
                self.hazards.setdefault(game, set()).add(o.action)
        return outcomes

    @contextmanager
    def recording(self) -> Iterator[list[Batch]]:
        """Every batch of candidates the engines step inside the block, in order: its engine state, actions,
        noise and outcomes (for profiles and checks of what detection steps; the list may be cleared inside)."""
        batches: list[Batch] = []
        self._engines.recorded = batches
        try:
            yield batches
        finally:
            self._engines.recorded = None

    def close(self) -> None:
        """Stop the worker pool and the local engines, and close the disk cache."""
        self._engines.close()
        self._cache.close()

    def __enter__(self) -> "ValidActionSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class _StageOne:
    """What :meth:`ValidActionSource._stage_one` found in a state."""

    spec: object
    grammar: Grammar
    prober: object
    noise: tuple[int, ...]
    look: str
    inventory: str
    objects: list[str]
    held: set[str]
    broken: set[str]
    actions: list[str]
    """The no-object and one-object candidates."""


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
    n = available_cpus()
    return min(4, n) if n > 1 else 0
