"""The training loop, readable top to bottom.

Per step: every env's state → candidate actions → the policy (drrn / cmps / galad / oracle) restricts or
penalises them → DRRN Q-values → an action sampled from softmax(Q) per env → all envs step in parallel in
their processes while the DRRN makes one TD update → transitions into replay → TensorBoard, transcripts,
episode records.

The pieces are built first (:func:`build_pieces`: the env pool, the candidate source, the policy) and handed to
the :class:`Trainer`, which owns the loop and nothing else; :func:`train` strings it together for the CLI. The
run folder's files are :mod:`galad.runs`'s.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from galad.agents import policies
from galad.agents.drrn import DRRNAgent, EncodedState, Transition
from galad.agents.tokenizer import load_or_train
from galad.atomic import atomic_file
from galad.candidates.base import CandidateSource, GameState
from galad.candidates.lm import load_generator
from galad.candidates.lm.folds import resolve_generator
from galad.candidates.valid import ValidActionSource, ValidConfig
from galad.config import CMPS_AGENTS, SCORING_AGENTS, TrainConfig, load_json_config
from galad.device import cpu_workers, resolve_device
from galad.env.annotations import CATEGORIES
from galad.env.registry import get_game
from galad.env.vector import EnvPool, EnvView, env_seeds
from galad.errors import ConfigError
from galad.evaluate import evaluate_run
from galad.metrics import category_sums, immorality, percent_completion
from galad.runs import EpisodeLine, RunFolder, TranscriptLine, jsonl_line
from galad.values.base import HarmScorer, scene_context
from galad.values.cache import ScoreCache
from galad.values.loading import ensure_trained, load_scorer, trained_games
from galad.values.oracle import LookaheadOracle

log = logging.getLogger(__name__)

NO_CANDIDATE = ("wait", "yes", "no")
"""The actions of a state for which the source proposed none (as upstream)."""


class StopRequested(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, taken between two steps (a checkpoint taken inside a step would mix two steps)."""


def peak_resident_bytes(pids: list[int]) -> int | None:
    """The sum of these processes' high-water marks of resident memory (an upper bound of their peak together);
    Linux ``/proc``, None where it cannot be read."""
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024
    except (OSError, ValueError, StopIteration):
        return None
    return total


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the one place seeds are set)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- building the pieces ------------------------------------------------------------------------------


def make_pool(cfg: TrainConfig) -> EnvPool:
    """The run's envs, each in its own worker process."""
    get_game(cfg.game).require_installed()
    return EnvPool(env_seeds(cfg.envs, cfg.seed, cfg.env_seeds == "distinct"), with_engine_state=cfg.candidates == "valid", game=cfg.game,
                   start_percentage=cfg.start_percentage, step_limit=cfg.episode_steps, step_timeout=cfg.step_timeout)


def make_candidate_source(cfg: TrainConfig, disk_cache: bool | Path = False) -> CandidateSource:
    """The configured candidate source (valid actions: detections also kept in the file ``disk_cache``)."""
    if cfg.candidates == "valid":
        return ValidActionSource(ValidConfig(step_timeout=min(cfg.step_timeout, 1.0), text_only=cfg.valid_text_only,
                                             budget=cfg.valid_budget, disk_cache=disk_cache))
    return load_generator(game=cfg.game, agent=cfg.agent, k=cfg.max_candidates, device=cfg.device)


def load_value_model(cfg: TrainConfig, score_cache: ScoreCache | bool = True) -> HarmScorer:
    """The value model of a cmps or galad run (a :class:`~galad.values.base.HarmScorer`); it must be trained
    already (:func:`prepare_value_model`).

    ``score_cache``: where P(harm) scores are kept (True: the shared ``GALAD_HOME/value_cache.sqlite``). On the
    CPU, one torch thread per batch and a step's batches side by side on the cores (the env workers and engines
    are idle while the policy scores)."""
    return load_scorer(cfg.value_model or None, context_mode=cfg.resolved_context_mode(), num_threads=1,
                       cache=score_cache, train_if_missing=False, game=cfg.game, device=cfg.device,
                       batch_threads=cpu_workers())


def make_policy(cfg: TrainConfig, pool: EnvPool | None = None, scorer: HarmScorer | None = None) -> policies.Policy:
    """The configured policy: cmps and galad act on ``scorer`` at the run's tau, the oracle looks ahead in
    ``pool``'s envs."""
    if cfg.agent == "drrn":
        return policies.Policy()
    if cfg.agent == "oracle":
        if pool is None:
            raise ConfigError("the oracle policy needs the env pool to look ahead in")
        return policies.OraclePolicy(LookaheadOracle(pool.lookahead))
    if scorer is None:
        raise ConfigError(f"the {cfg.agent} policy needs a value model")
    if cfg.agent in CMPS_AGENTS:
        return policies.CMPSPolicy(scorer, cfg.resolved_harm_threshold(), cfg.cmps_weight,
                                   penalise_prediction=cfg.agent == "cmps")
    return policies.GaladPolicy(scorer, cfg.resolved_harm_threshold())


def prepare_value_model(cfg: TrainConfig) -> None:
    """The step before a run that scores candidates (cmps, cmps-persistent, galad): refuse a value model that read this game's annotations, and train
    our own model if it is not trained yet (once, the first time it is needed)."""
    if cfg.agent not in SCORING_AGENTS:
        return
    if cfg.game in trained_games(cfg.value_model or None, cfg.game):
        raise ConfigError(f"value model {cfg.value_model} was trained on {cfg.game}'s own annotations: "
                          f"pick one that holds {cfg.game} out (the default does; galad:games picks the fold "
                          f"model that does)")
    ensure_trained(cfg.value_model or None, cfg.game)


def prepare_generator(cfg: TrainConfig) -> None:
    """The step before an lm run: refuse it unless a generator that never read this game's walkthrough is there
    (:func:`~galad.candidates.lm.folds.resolve_generator`, which :func:`make_candidate_source` loads)."""
    if cfg.candidates == "lm":
        resolve_generator(cfg.game, cfg.agent)


@dataclass
class Pieces:
    """What a :class:`Trainer` trains with, built outside it."""

    pool: EnvPool
    source: CandidateSource
    policy: policies.Policy

    def close(self) -> None:
        self.pool.close()


def build_pieces(cfg: TrainConfig, run: RunFolder, disk_cache: bool = True) -> Pieces:
    """The env pool, candidate source and policy of a run.

    ``disk_cache``: keep the run's valid-action detections in ``<run>/valid_cache.sqlite`` and its P(harm)
    scores in ``<run>/value_cache.sqlite`` (off: in memory only). A detection is cached by world state, which
    leaves out the RNG, and a score depends a little on the batch it was computed in (int8 dynamic quantisation
    scales a batch's activations together), so whichever came first decides what later lookups get: kept with
    the run, a resumed run gets what the uninterrupted one would have, and no other run (of a sweep, say)
    changes what this one sees.
    """
    pool = make_pool(cfg)
    try:
        source = make_candidate_source(cfg, run.valid_cache if disk_cache else False)
        scorer = None
        if cfg.agent in SCORING_AGENTS:
            scorer = load_value_model(cfg, ScoreCache(run.value_cache if disk_cache else None))
        return Pieces(pool, source, make_policy(cfg, pool, scorer))
    except BaseException:
        pool.close()
        raise


# --- the loop -----------------------------------------------------------------------------------------


@dataclass
class EpisodeTracker:
    """The running episode of one env."""

    index: int = 0
    steps: int = 0
    label_vectors: list = field(default_factory=list)
    starting_score: int = 0
    max_score: int = 0
    """The highest score of the episode so far: as upstream's ``EnvCALM.max_score``, it starts at the starting
    score in an env's first episode and at 0 after a reset."""


@dataclass
class TrainerState:
    """Everything the loop changes besides the DRRN (network, optimizer, replay, RNGs) and the envs: saved and
    loaded whole with each checkpoint."""

    envs: int
    step: int = 0
    views: list[EnvView] = field(default_factory=list)
    """The current view of each env."""
    prev: list[tuple[str, str]] = field(default_factory=list)
    """(previous action, previous observation) per env."""
    episodes: list[EpisodeTracker] = field(default_factory=list)
    pending: list[Transition | None] = field(default_factory=list)
    """Per env, the last transition, waiting for its next state's candidates."""
    episode_buffers: list[list[Transition]] = field(default_factory=list)
    """Per env, the running episode's transitions."""
    finished: list[tuple[int, list[Transition]] | None] = field(default_factory=list)
    """Per env, the last finished episode's max score and transitions, until the env's next step decides whether
    they enter the priority memory (upstream decides at the reset after ``done``)."""
    max_score_seen: int = 0
    """The highest score any env has reached at any step (upstream's ``max_score``, which starts at 0); each new
    high clears the priority memory."""
    cumulative_immorality: int = 0
    finished_episodes: int = 0
    stopped_early: bool = False
    """The run stopped at ``early_stop_step`` without progress."""

    def __post_init__(self) -> None:
        n = self.envs
        self.prev = self.prev or [("", "")] * n
        self.episodes = self.episodes or [EpisodeTracker() for _ in range(n)]
        self.pending = self.pending or [None] * n
        self.episode_buffers = self.episode_buffers or [[] for _ in range(n)]
        self.finished = self.finished or [None] * n


@dataclass
class Proposal:
    """One step's policy output for every env and the seconds its phases took."""

    restrictions: list[policies.Restriction]
    seconds: dict[str, float]


class Stopwatch:
    """Wall seconds per phase: :meth:`lap` charges the time since the previous lap to ``phase``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._mark = time.perf_counter()

    def start(self) -> None:
        self._mark = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self._mark
        self._mark = now


class Trainer:
    """One training run (new or resumed) on pieces built outside it (:func:`build_pieces`)."""

    def __init__(self, cfg: TrainConfig, run: RunFolder, pool: EnvPool, source: CandidateSource,
                 policy: policies.Policy, resume: bool = False, overlap: bool = True):
        self.cfg, self.run = cfg, run
        self.overlap = overlap
        """Work out the next step's candidates and policy beside the TD update (off: one after the other; the
        same run either way)."""
        self.pool, self.source, self.policy = pool, source, policy
        torch.set_num_threads(1)  # the env workers share the cores; more threads run slower here
        self.device = resolve_device(cfg.device)
        if self.device == "cuda":  # cuBLAS needs this for deterministic results (set before its first use)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        seed_everything(cfg.seed)
        torch.use_deterministic_algorithms(True, warn_only=self.device != "cpu")
        self.spec = get_game(cfg.game)
        self.tokenizer = load_or_train(cfg.game)
        self.agent = DRRNAgent(self.tokenizer.vocab_size, cfg.embedding_dim, cfg.hidden_dim, cfg.lr, cfg.gamma,
                               cfg.batch_size, cfg.memory_size, cfg.priority_fraction, cfg.clip, cfg.seed,
                               device=self.device)
        self.clock = Stopwatch()
        """Seconds of each phase of :meth:`train_step` in this process's life: where the time goes. ``candidates``
        and ``policy`` run beside the ``update`` (in a thread), so the shares overlap; ``wait`` is the time the
        loop waited for them after the update, ``q_values``, ``env`` and ``bookkeeping`` the rest."""
        self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="galad-next-step")
        self._prefetched: Future | None = None
        """The next step's :class:`Proposal`, being worked out beside this step's TD update."""
        self.stop_requested = False
        """Set by a signal handler: the loop stops at the next step boundary, where a checkpoint is consistent."""
        self.peak_memory: int | None = None
        """Peak resident memory of this process and the env workers, in bytes: the sum of each process's
        high-water mark (:func:`peak_resident_bytes`), an upper bound of their peak together."""
        self.state = TrainerState(cfg.envs)
        if resume:
            self._load_checkpoint()
            purge = self.state.step * cfg.envs
        else:
            self.state.views = self.pool.reset()
            for ep, v in zip(self.state.episodes, self.state.views):
                ep.starting_score = ep.max_score = v.info.get("starting_score", 0)
            purge = None
        self.writer = SummaryWriter(str(run.path), purge_step=purge)
        self.transcripts = [open(run.transcript(i), "a", encoding="utf-8") for i in range(cfg.envs)]
        self.episodes_file = open(run.episodes_path, "a", encoding="utf-8")

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def seconds(self) -> dict[str, float]:
        return self.clock.seconds

    # --- one step -------------------------------------------------------------------------------------
    def _encode(self, view: EnvView) -> EncodedState:
        m = self.cfg.max_tokens
        obs, look, inv = self.tokenizer.encode_batch([view.obs, view.look, view.inventory])
        return EncodedState(obs[-m:], look[-m:], inv[-m:])

    def _choose(self, views: list[EnvView], prev: list[tuple[str, str]]) -> Proposal:
        """The candidates of each env's state and what the policy makes of them (timed per phase)."""
        t0 = time.perf_counter()
        states = [GameState(self.cfg.game, v.obs, v.look, v.inventory, prev[i][0], prev[i][1], v.ram_hash,
                            v.engine_state) for i, v in enumerate(views)]
        candidates = self.source.propose(states)
        candidates = [c or list(NO_CANDIDATE) for c in candidates]  # a state with no candidate still needs an action
        t1 = time.perf_counter()
        restrictions = self.policy.restrict([scene_context(s.obs, s.look) for s in states], candidates)
        return Proposal(restrictions, {"candidates": t1 - t0, "policy": time.perf_counter() - t1})

    def train_step(self) -> dict:
        """One step of every env: candidates, policy, Q, act, TD update, transitions, episode ends.

        The next step's candidates and policy are worked out beside this step's TD update, in a thread (the
        engines step without the GIL, torch releases it): the update reads the replay memory as it was before
        this step's transitions enter it either way, so the maths is the same as one after the other."""
        st, clock = self.state, self.clock
        clock.start()
        proposal = self._prefetched.result() if self._prefetched is not None else self._choose(st.views, st.prev)
        self._prefetched = None
        restrictions = proposal.restrictions
        for phase, sec in proposal.seconds.items():
            clock.seconds[phase] += sec
        clock.lap("wait")  # the part of the prefetch the update did not cover
        encoded = [self._encode(v) for v in st.views]
        action_ids = [self.tokenizer.encode_batch(r.kept) for r in restrictions]
        # finish last step's transitions now that their next-state candidates are known
        for i, t in enumerate(st.pending):
            if t is not None:
                t.next_state, t.next_actions, t.next_penalties = encoded[i], action_ids[i], restrictions[i].penalties
                self._remember(i, t)
                st.pending[i] = None
        q = self.agent.q_values(encoded, action_ids)
        shaped = [qs - torch.tensor(r.penalties, dtype=qs.dtype) for qs, r in zip(q, restrictions)]
        choice = self.agent.sample_actions(shaped)
        actions = [r.kept[c] for r, c in zip(restrictions, choice)]
        clock.lap("q_values")
        new_views = self.pool.step(actions)
        ended = [i for i, v in enumerate(new_views) if v.terminated or v.truncated]
        reset_views = dict(zip(ended, self.pool.reset(ended))) if ended else {}
        clock.lap("env")
        next_views = [reset_views.get(i, v) for i, v in enumerate(new_views)]
        next_prev = [("", "") if i in reset_views else (actions[i], st.views[i].obs) for i in range(len(new_views))]
        if self.overlap and st.step + 1 < self.cfg.steps:
            self._prefetched = self._prefetcher.submit(self._choose, next_views, next_prev)
        update = self.agent.update()
        clock.lap("update")
        for i, (view, new) in enumerate(zip(st.views, new_views)):
            self._decide_priority(i)
            ep = st.episodes[i]
            ep.steps += 1
            ep.label_vectors += new.info["label_vectors"]
            self._track_score(ep, new.info["score"])
            penalty = restrictions[i].penalties[choice[i]] if self.policy.penalise_prediction else 0.0
            t = Transition(encoded[i], action_ids[i][choice[i]], float(new.reward), None, [], [], new.terminated,
                           penalty)
            self._write_transcript(i, view, restrictions[i], actions[i], q[i], new)
            if new.terminated or new.truncated:
                t.next_state, t.next_actions, t.next_penalties = encoded[i], [], []
                self._remember(i, t)
            else:
                st.pending[i] = t
            st.prev[i] = (actions[i], view.obs)
        st.views = new_views
        for i in ended:
            self._end_episode(i)
        self._reset_ended(reset_views)
        clock.lap("bookkeeping")  # transcripts, episode ends, resets
        st.step += 1
        if st.step == self.cfg.early_stop_step and st.max_score_seen == st.episodes[-1].starting_score:
            st.stopped_early = True  # as upstream: no env scored above the start in this many steps
        return {"removed": sum(len(r.removed) for r in restrictions),
                "total": sum(len(r.kept) + len(r.removed) for r in restrictions), "update": update}

    def _track_score(self, ep: EpisodeTracker, score: int) -> None:
        """The episode's and the run's highest score; a new high empties the priority memory (as upstream)."""
        ep.max_score = max(ep.max_score, score)
        if score > self.state.max_score_seen:
            self.state.max_score_seen = score
            self.agent.memory.clear_alpha()

    def _decide_priority(self, i: int) -> None:
        """Env ``i``'s last finished episode enters the priority memory if its max score is at least the highest
        score seen so far; decided where upstream decides (when the env is next processed, after the envs before
        it in this step)."""
        st = self.state
        if st.finished[i] is None:
            return
        max_score, transitions = st.finished[i]
        if max_score >= st.max_score_seen:
            for t in transitions:
                self.agent.memory.push(t, priority=True)
        st.finished[i] = None

    def _remember(self, i: int, t: Transition) -> None:
        self.agent.memory.push(t)
        self.state.episode_buffers[i].append(t)

    def _reset_ended(self, reset_views: dict[int, EnvView]) -> None:
        """The envs whose episode ended start their next one (their views, reset already)."""
        st = self.state
        for i, v in reset_views.items():
            st.views[i] = v
            st.prev[i] = ("", "")
            st.episodes[i] = EpisodeTracker(st.episodes[i].index + 1, 0, [], v.info.get("starting_score", 0), 0)

    def _end_episode(self, i: int) -> None:
        st = self.state
        ep, v = st.episodes[i], st.views[i]
        score = v.info["score"]
        st.finished[i] = (ep.max_score, st.episode_buffers[i])
        st.episode_buffers[i] = []
        imm = immorality(ep.label_vectors)
        st.cumulative_immorality += imm
        st.finished_episodes += 1
        sums = category_sums(ep.label_vectors)
        record = EpisodeLine(
            env=i, episode=ep.index, env_steps=st.step * self.cfg.envs, steps=ep.steps, score=score,
            starting_score=ep.starting_score, max_score=self.spec.max_score, return_=score - ep.starting_score,
            immorality=imm, **sums,
            percent_completion=percent_completion([score - ep.starting_score], [self.spec.max_score],
                                                  [ep.starting_score]),
            end="game_over" if v.terminated else v.info.get("truncation_reason"))
        self.episodes_file.write(jsonl_line(record))
        gs, w = st.step * self.cfg.envs, self.writer
        w.add_scalar("charts/episodic_score", score, gs)
        w.add_scalar("charts/episodic_return", record.return_, gs)
        w.add_scalar("charts/percent_completion", record.percent_completion, gs)
        w.add_scalar("morality/immorality", imm, gs)
        for k in CATEGORIES:
            w.add_scalar(f"morality/{k}", sums[k], gs)
        w.add_scalar("morality/cumulative_immorality", st.cumulative_immorality, gs)

    def _write_transcript(self, i: int, view: EnvView, r: policies.Restriction, action: str, q: torch.Tensor,
                          new: EnvView) -> None:
        ep = self.state.episodes[i]
        line = TranscriptLine(
            step=self.state.step, env=i, episode=ep.index, episode_step=ep.steps, obs=view.obs, candidates=r.kept,
            harm=r.harm, q_values=[round(float(x), 4) for x in q], penalties=r.penalties, removed=r.removed,
            removed_harm=r.removed_harm, action=action, next_obs=new.obs, reward=new.reward,
            score=new.info["score"], markers=[list(m) for m in new.info["markers"]],
            label_vectors=new.info["label_vectors"], terminated=new.terminated, truncated=new.truncated)
        self.transcripts[i].write(jsonl_line(line))

    # --- checkpoints ----------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        if self._prefetched is not None:
            self._prefetched.exception()  # wait: the next step's policy may be talking to the env workers (oracle)
        for f in self.transcripts + [self.episodes_file]:
            f.flush()
        self.writer.flush()
        agent = self.agent
        checkpoint = {
            "game": self.cfg.game, "config": self.cfg.to_dict(), "value_model": self.policy.value_model,
            "trainer": self.state, "env_states": self.pool.get_states(),
            "network": agent.network.state_dict(), "optimizer": agent.optimizer.state_dict(), "memory": agent.memory,
            "agent_rng": agent.rng.getstate(), "torch_generator": agent.generator.get_state(),
            "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(), "np_rng": np.random.get_state(),
            "transcript_offsets": [f.tell() for f in self.transcripts], "episodes_offset": self.episodes_file.tell(),
        }
        with atomic_file(self.run.checkpoint) as tmp:
            torch.save(checkpoint, tmp)

    def _load_checkpoint(self) -> None:
        if not self.run.checkpoint.is_file():
            raise ConfigError(f"{self.run.path} has no checkpoint to resume from")
        try:
            ck = torch.load(self.run.checkpoint, weights_only=False, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is one clear error
            raise ConfigError(f"{self.run.checkpoint}: unreadable checkpoint ({exc})") from None
        if ck.get("game") != self.cfg.game or _must_match(ck.get("config")) != _must_match(self.cfg.to_dict()):
            raise ConfigError(f"{self.run.checkpoint} was written for another game or configuration")
        if "value_model" in ck and ck["value_model"] != self.policy.value_model:
            # the default model is trained into one folder per recipe name: a retrained or changed model would
            # silently score the rest of the run differently
            raise ConfigError(f"{self.run.path} was scored by value model {ck['value_model']}, but it resolves to "
                              f"{self.policy.value_model} now: resume with the same model")
        agent = self.agent
        agent.network.load_state_dict(ck["network"])
        agent.optimizer.load_state_dict(ck["optimizer"])
        agent.memory = ck["memory"]
        agent.rng.setstate(ck["agent_rng"])
        agent.generator.set_state(ck["torch_generator"])
        torch.set_rng_state(ck["torch_rng"])
        random.setstate(ck["py_rng"])
        np.random.set_state(ck["np_rng"])
        self.pool.set_states(ck["env_states"])
        # checkpoints written before TrainerState kept its fields at the top level
        self.state = ck["trainer"] if "trainer" in ck else TrainerState(
            **{f.name: ck[f.name] for f in fields(TrainerState) if f.name in ck}, envs=self.cfg.envs)
        # lines written after the checkpoint are produced again, identically: cut them so none repeats
        for i, off in enumerate(ck["transcript_offsets"]):
            with open(self.run.transcript(i), "r+b") as f:
                f.truncate(off)
        with open(self.run.episodes_path, "r+b") as f:
            f.truncate(ck["episodes_offset"])

    # --- driving --------------------------------------------------------------------------------------
    def run_loop(self, progress: bool = True) -> dict:
        """Train to ``cfg.steps``, logging every ``log_every`` and checkpointing every ``checkpoint_every``
        steps; returns the run's summary."""
        cfg, st = self.cfg, self.state
        bar = tqdm(total=cfg.steps, initial=st.step, disable=not progress, unit="step", dynamic_ncols=True)
        t0, s0 = time.perf_counter(), st.step
        removed = total = 0
        with logging_redirect_tqdm():
            while st.step < cfg.steps and not st.stopped_early:
                if self.stop_requested:
                    raise StopRequested
                out = self.train_step()
                removed += out["removed"]
                total += out["total"]
                if st.step % cfg.log_every == 0:
                    sps = (st.step - s0) * cfg.envs / max(1e-9, time.perf_counter() - t0)
                    self._log(sps, removed / max(1, total), out["update"])
                    removed = total = 0
                    bar.set_postfix(SPS=f"{sps:.0f}", episodes=st.finished_episodes,
                                    immorality=f"{st.cumulative_immorality / max(1, st.finished_episodes):.2f}")
                if st.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                bar.update(1)
        bar.close()
        if st.stopped_early:
            log.info("stopped early at step %d: no env scored above the starting score", st.step)
        self.save_checkpoint()
        self.write_profile(st.step - s0, time.perf_counter() - t0)
        return self.finish()

    def _log(self, sps: float, removed_fraction: float, update: tuple[float, float] | None) -> None:
        gs, w = self.state.step * self.cfg.envs, self.writer
        w.add_scalar("charts/SPS", sps, gs)
        self.sample_memory()
        if self.peak_memory is not None:
            w.add_scalar("charts/peak_memory_gb", self.peak_memory / 2**30, gs)
        w.add_scalar("filter/removed_fraction", removed_fraction, gs)
        if update:
            w.add_scalar("losses/td_loss", update[0], gs)
            w.add_scalar("losses/q_values", update[1], gs)

    def sample_memory(self) -> None:
        peak = peak_resident_bytes([os.getpid()] + [p.pid for p in self.pool.procs])
        if peak is not None:
            self.peak_memory = max(self.peak_memory or 0, peak)

    def write_profile(self, steps: int, wall: float) -> None:
        """``profile.json``: env steps/s, the share of each phase and peak memory of this process's part of the run."""
        self.sample_memory()
        self.run.write_profile({
            "steps": steps, "envs": self.cfg.envs, "wall_seconds": round(wall, 1),
            "sps": round(steps * self.cfg.envs / max(1e-9, wall), 2),
            "phase_share": {k: round(v / max(1e-9, wall), 3)
                            for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])},
            "peak_memory_mb": None if self.peak_memory is None else round(self.peak_memory / 2**20),
            "value_model": self.policy.value_model,
        })

    def finish(self) -> dict:
        self.close_files()
        summary = evaluate_run(self.run.path)
        summary["stopped_early_at"] = self.state.step if self.state.stopped_early else None
        self.run.write_summary(summary)
        return summary

    def close_files(self) -> None:
        for f in self.transcripts + [self.episodes_file]:
            if not f.closed:
                f.close()
        self.writer.close()

    def close(self) -> None:
        self._prefetcher.shutdown(wait=True, cancel_futures=True)
        self.close_files()
        self.pool.close()


RESUME_MAY_CHANGE = ("steps", "device")
"""The settings a resumed run may change (``--resume RUN --steps N --device cuda``): how long, and where."""


def _must_match(config: dict | None) -> dict | None:
    """A configuration less the settings a resumed run may change."""
    return None if config is None else {k: v for k, v in config.items() if k not in RESUME_MAY_CHANGE}


def _resumed_config(run: RunFolder, overrides: dict[str, Any] | None) -> TrainConfig:
    """A resumed run's own configuration; of the flags given with ``--resume`` only ``steps`` may differ."""
    if run.finished:
        raise ConfigError(f"{run.path} is finished (summary.json exists)")
    if not run.transcripts.is_dir():
        raise ConfigError(f"{run.path} is not a galad run folder (no config.json / transcripts/)")
    cfg = load_json_config(TrainConfig, run.config_path)
    for key, value in (overrides or {}).items():
        if key in RESUME_MAY_CHANGE:
            setattr(cfg, key, value)
        elif getattr(cfg, key) != value:
            raise ConfigError(f"--{key.replace('_', '-')} {value} conflicts with the run's {key}="
                              f"{getattr(cfg, key)!r}; a resumed run keeps its configuration")
    return cfg.validate()


def train(cfg: TrainConfig, resume: str | None = None, progress: bool = True,
          overrides: dict[str, Any] | None = None, run_name: str | None = None) -> tuple[Path, dict]:
    """Train (or resume) a run; returns the run folder and its summary. Ctrl-C saves a checkpoint first.

    Args:
        cfg: the configuration of a new run (ignored when resuming: the run's own config.json is used).
        resume: a run folder to continue.
        overrides: flags given with ``resume``; only ``steps`` may differ from the run's configuration.
        run_name: a fixed run folder name under ``cfg.run_dir`` (default: game, agent, seed and a timestamp).
    """
    if resume:
        run = RunFolder.existing(resume)
        cfg = _resumed_config(run, overrides)
    else:
        cfg.validate()
        get_game(cfg.game).require_installed()  # fail before creating a run folder
    resolve_device(cfg.device)  # --device cuda without a GPU: one line, no run folder
    prepare_value_model(cfg)
    prepare_generator(cfg)
    if not resume:
        run = RunFolder.new(cfg, run_name)
    trainer = make_trainer(cfg, run, resume=bool(resume))
    return run.path, _run_with_signals(trainer, progress)


def make_trainer(cfg: TrainConfig, run: RunFolder, resume: bool = False, disk_cache: bool = True) -> Trainer:
    """A :class:`Trainer` on the run's pieces (:func:`build_pieces`); the value model must be prepared first
    (:func:`prepare_value_model`)."""
    pieces = build_pieces(cfg, run, disk_cache)
    try:
        return Trainer(cfg, run, pieces.pool, pieces.source, pieces.policy, resume=resume)
    except BaseException:
        pieces.close()
        raise


def _run_with_signals(trainer: Trainer, progress: bool = True) -> dict:
    """Run the loop with Ctrl-C / SIGTERM taken at the next step boundary (a second one stops at once)."""
    handled = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in handled} if main_thread else {}

    def request_stop(signum, frame):
        if trainer.stop_requested:  # a second Ctrl-C: stop now, the last periodic checkpoint stays
            raise KeyboardInterrupt
        trainer.stop_requested = True

    for sig in previous:
        signal.signal(sig, request_stop)
    try:
        return trainer.run_loop(progress)
    except StopRequested:
        trainer.save_checkpoint()
        log.warning("interrupted at step %d; checkpoint saved; continue with: galad train --resume %s",
                    trainer.step, trainer.run.path)
        raise
    except KeyboardInterrupt:
        log.warning("stopped inside step %d; continue from the last checkpoint with: galad train --resume %s",
                    trainer.step, trainer.run.path)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        trainer.close()
