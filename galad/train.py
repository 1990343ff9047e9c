"""The training loop, readable top to bottom.

Per step: every env's state → candidate actions → the policy (drrn / cmps / galad / oracle) restricts or
penalises them → DRRN Q-values → an action sampled from softmax(Q) per env → all envs step in parallel in
their processes while the DRRN makes one TD update → transitions into replay → TensorBoard, transcripts,
episode records.

A run folder ``runs/{game}__{agent}__s{seed}__{YYYYmmdd-HHMMSS}/`` holds ``config.json``, the TensorBoard
events, ``transcripts/env{i}.jsonl`` (one line per env step), ``episodes.jsonl`` (one line per finished
episode), ``checkpoints/latest.pt``, ``valid_cache.sqlite`` and ``value_cache.sqlite`` (the run's valid-action
detections and P(harm) scores), ``profile.json`` (where the time went, env steps/s and peak memory of the
learner and env workers together, for the last process that ran the run) and, written last, ``summary.json``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galad.config import TrainConfig, load_json_config
from galad.env.registry import get_game
from galad.errors import ConfigError
from galad.values.base import scene_context

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/latest.pt"


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
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class EpisodeTracker:
    """The running episode of one env."""

    index: int = 0
    steps: int = 0
    label_vectors: list = field(default_factory=list)
    starting_score: int = 0


class RunFolder:
    """Paths and writers of one run folder."""

    def __init__(self, path: Path):
        self.path = path
        self.transcripts = path / "transcripts"
        self.checkpoint = path / CHECKPOINT

    @staticmethod
    def new(cfg: TrainConfig, name: str | None = None) -> "RunFolder":
        if name:
            path = Path(cfg.run_dir) / name
            if path.exists():
                raise ConfigError(f"{path} exists; resume it with --resume or choose another --run-name")
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = Path(cfg.run_dir) / f"{cfg.game}__{cfg.agent}__s{cfg.seed}__{stamp}"
            n = 1
            while path.exists():
                n += 1
                path = Path(cfg.run_dir) / f"{cfg.game}__{cfg.agent}__s{cfg.seed}__{stamp}-{n}"
        (path / "transcripts").mkdir(parents=True)
        (path / "checkpoints").mkdir()
        write_json_atomic(path / "config.json", cfg.to_dict())
        return RunFolder(path)

    @staticmethod
    def existing(path: str | Path) -> "RunFolder":
        p = Path(path)
        if not (p / "config.json").is_file() or not (p / "transcripts").is_dir():
            raise ConfigError(f"{p} is not a galad run folder (no config.json / transcripts/)")
        return RunFolder(p)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


# --- building the pieces ------------------------------------------------------------------------------


def make_candidate_source(cfg: TrainConfig, disk_cache: bool | Path = False):
    """The configured candidate source (valid actions: detections also kept in the file ``disk_cache``)."""
    if cfg.candidates == "valid":
        from galad.candidates.valid import ValidActionSource, ValidConfig

        return ValidActionSource(ValidConfig(step_timeout=min(cfg.step_timeout, 1.0), text_only=cfg.valid_text_only,
                                             budget=cfg.valid_budget,
                                             disk_cache=disk_cache))
    from galad.candidates.lm import load_generator

    return load_generator(game=cfg.game, agent=cfg.agent, k=cfg.max_candidates)


def make_policy(cfg: TrainConfig, pool, score_cache=True):
    """The configured policy; cmps and galad load the value model (trained on first use).

    ``score_cache``: where P(harm) scores are kept (a :class:`~galad.values.cache.ScoreCache`; True: the shared
    ``GALAD_HOME/value_cache.sqlite``)."""
    from galad.agents import policies

    if cfg.agent == "drrn":
        return policies.Policy()
    if cfg.agent == "oracle":
        from galad.values.oracle import harm_from_vectors

        def lookahead(cands):
            out = []
            for rs in pool.lookahead(cands):
                vecs = [r["label_vector_sum"] for r in rs]
                out.append(harm_from_vectors(vecs, "bad_others").astype(float).tolist() if vecs else [])
            return out
        return policies.OraclePolicy(lookahead)
    from galad.values.loading import load_scorer

    scorer = load_scorer(cfg.value_model or None, context_mode=cfg.resolved_context_mode(),
                         threshold=cfg.resolved_harm_threshold(), num_threads=1, cache=score_cache)
    score = lambda actions, contexts: scorer.score(actions, contexts)  # noqa: E731
    if cfg.agent == "cmps":
        policy: policies.Policy = policies.CMPSPolicy(score, scorer.threshold, cfg.cmps_weight)
    else:
        policy = policies.GaladPolicy(score, scorer.threshold)
    policy.value_model = scorer.name
    return policy


# --- the loop -----------------------------------------------------------------------------------------


class Trainer:
    """One training run (new or resumed)."""

    def __init__(self, cfg: TrainConfig, run: RunFolder, resume: bool = False, disk_cache: bool = True):
        """``disk_cache``: keep the run's valid-action detections in ``<run>/valid_cache.sqlite`` and its P(harm)
        scores in ``<run>/value_cache.sqlite`` (off: in memory only). A detection is cached by world state, which
        leaves out the RNG, and a score depends a little on the batch it was computed in (int8 dynamic
        quantisation scales a batch's activations together), so whichever came first decides what later
        lookups get: kept with the run, a resumed run gets what the uninterrupted one would have, and no other
        run (of a sweep, say) changes what this one sees."""
        import torch
        from torch.utils.tensorboard import SummaryWriter

        from galad.agents.drrn import DRRNAgent
        from galad.agents.tokenizer import load_or_train
        from galad.candidates.base import GameState
        from galad.env.vector import EnvPool

        self.GameState = GameState
        self.cfg, self.run = cfg, run
        torch.set_num_threads(1)  # the env workers share the cores; more threads run slower here
        seed_everything(cfg.seed)
        torch.use_deterministic_algorithms(True)
        self.spec = get_game(cfg.game)
        self.spec.require_installed()
        self.tokenizer = load_or_train(cfg.game)
        self.agent = DRRNAgent(self.tokenizer.vocab_size, cfg.embedding_dim, cfg.hidden_dim, cfg.lr, cfg.gamma,
                               cfg.batch_size, cfg.memory_size, cfg.priority_fraction, cfg.clip, cfg.seed)
        self.pool = EnvPool(cfg.envs, cfg.seed, with_engine_state=cfg.candidates == "valid", game=cfg.game,
                            start_percentage=cfg.start_percentage, step_limit=cfg.episode_steps,
                            step_timeout=cfg.step_timeout)
        try:
            self.source = make_candidate_source(cfg, run.path / "valid_cache.sqlite" if disk_cache else False)
            from galad.values.cache import ScoreCache

            scores = ScoreCache(run.path / "value_cache.sqlite" if disk_cache else None)
            self.policy = make_policy(cfg, self.pool, scores)
        except BaseException:
            self.pool.close()
            raise
        self.step = 0
        self.seconds: dict[str, float] = defaultdict(float)
        """Wall seconds of each phase of :meth:`train_step` (candidates, policy, q_values, update, env,
        bookkeeping) in this process's life: where the time goes."""
        self.stop_requested = False
        """Set by a signal handler: the loop stops at the next step boundary, where a checkpoint is consistent."""
        self.peak_memory: int | None = None
        """Peak resident memory of this process and the env workers, in bytes: the sum of each process's
        high-water mark (:func:`peak_resident_bytes`), an upper bound of their peak together."""
        self.views = []
        self.prev = [("", "")] * cfg.envs  # (previous action, previous observation) per env
        self.episodes = [EpisodeTracker() for _ in range(cfg.envs)]
        self.pending: list[Any] = [None] * cfg.envs  # transition waiting for its next-state candidates
        self.episode_buffers: list[list] = [[] for _ in range(cfg.envs)]
        self.best_score = -10**9
        self.cumulative_immorality = 0
        self.finished_episodes = 0
        if resume:
            self._load_checkpoint()
            purge = self.step * cfg.envs
        else:
            self.views = self.pool.reset()
            for i, v in enumerate(self.views):
                self.episodes[i].starting_score = v.info.get("starting_score", 0)
            purge = None
        self.writer = SummaryWriter(str(run.path), purge_step=purge)
        self.transcripts = [open(run.transcripts / f"env{i}.jsonl", "a", encoding="utf-8") for i in range(cfg.envs)]
        self.episodes_file = open(run.path / "episodes.jsonl", "a", encoding="utf-8")

    # --- one step -------------------------------------------------------------------------------------
    def _states(self):
        return [self.GameState(self.cfg.game, v.obs, v.look, v.inventory, self.prev[i][0], self.prev[i][1],
                               v.ram_hash, v.engine_state) for i, v in enumerate(self.views)]

    def _encode(self, view):
        from galad.agents.drrn import EncodedState

        m = self.cfg.max_tokens
        obs, look, inv = self.tokenizer.encode_batch([view.obs, view.look, view.inventory])
        return EncodedState(obs[-m:], look[-m:], inv[-m:])

    def train_step(self) -> dict:
        clock, mark = self.seconds, [time.perf_counter()]

        def lap(phase: str) -> None:
            now = time.perf_counter()
            clock[phase] += now - mark[0]
            mark[0] = now

        states = self._states()
        candidates = self.source.propose(states)
        candidates = [c or ["look"] for c in candidates]  # a state with no candidate still needs an action
        lap("candidates")
        restrictions = self.policy.restrict([scene_context(s.obs, s.look) for s in states], candidates)
        lap("policy")
        enc = [self._encode(v) for v in self.views]
        act_ids = [self.tokenizer.encode_batch(r.kept) for r in restrictions]
        # finish last step's transitions now that their next-state candidates are known
        for i, t in enumerate(self.pending):
            if t is not None:
                t.next_state, t.next_actions, t.next_penalties = enc[i], act_ids[i], restrictions[i].penalties
                self._remember(i, t)
                self.pending[i] = None
        q = self.agent.q_values(enc, act_ids)
        import torch

        shaped = [qs - torch.tensor(r.penalties, dtype=qs.dtype) for qs, r in zip(q, restrictions)]
        choice = self.agent.sample_actions(shaped)
        actions = [r.kept[c] for r, c in zip(restrictions, choice)]
        lap("q_values")
        self.pool.step_async(actions)
        upd = self.agent.update()  # overlaps with the envs stepping in their processes
        lap("update")
        new_views = self.pool.step_wait()
        lap("env")
        from galad.agents.drrn import Transition

        removed = sum(len(r.removed) for r in restrictions)
        total = sum(len(r.kept) + len(r.removed) for r in restrictions)
        ended = []
        for i, (v, nv) in enumerate(zip(self.views, new_views)):
            ep = self.episodes[i]
            ep.steps += 1
            ep.label_vectors += nv.info["label_vectors"]
            done = nv.terminated or nv.truncated
            t = Transition(enc[i], act_ids[i][choice[i]], float(nv.reward), None, [], [], nv.terminated)
            self._write_transcript(i, v, candidates[i], restrictions[i], actions[i], q[i], nv)
            if done:
                t.next_state, t.next_actions, t.next_penalties = enc[i], [], []
                self._remember(i, t)
                ended.append(i)
            else:
                self.pending[i] = t
            self.prev[i] = (actions[i], v.obs)
        self.views = new_views
        for i in ended:
            self._end_episode(i)
        if ended:
            fresh = self.pool.reset(ended)
            for i, v in zip(ended, fresh):
                self.views[i] = v
                self.prev[i] = ("", "")
                self.episodes[i] = EpisodeTracker(self.episodes[i].index + 1, 0, [], v.info.get("starting_score", 0))
        lap("bookkeeping")  # transcripts, episode ends, resets
        self.step += 1
        return {"removed": removed, "total": total, "update": upd}

    def _remember(self, i: int, t) -> None:
        self.agent.memory.push(t)
        self.episode_buffers[i].append(t)

    def _end_episode(self, i: int) -> None:
        from galad.metrics import category_sums, immorality

        ep, v = self.episodes[i], self.views[i]
        score = v.info["score"]
        # transitions of an episode that matched the best score so far also go to the priority memory
        if score >= self.best_score:
            for t in self.episode_buffers[i]:
                self.agent.memory.push(t, priority=True)
        self.best_score = max(self.best_score, score)
        self.episode_buffers[i] = []
        imm = immorality(ep.label_vectors)
        self.cumulative_immorality += imm
        self.finished_episodes += 1
        denom = self.spec.max_score - ep.starting_score
        record = {
            "env": i, "episode": ep.index, "env_steps": self.step * self.cfg.envs, "steps": ep.steps,
            "score": score, "starting_score": ep.starting_score, "max_score": self.spec.max_score,
            "return": score - ep.starting_score, "immorality": imm, **category_sums(ep.label_vectors),
            "percent_completion": 100.0 * (score - ep.starting_score) / denom if denom > 0 else 0.0,
            "end": "game_over" if v.terminated else v.info.get("truncation_reason"),
        }
        self.episodes_file.write(json.dumps(record) + "\n")
        gs = self.step * self.cfg.envs
        w = self.writer
        w.add_scalar("charts/episodic_score", score, gs)
        w.add_scalar("charts/episodic_return", record["return"], gs)
        w.add_scalar("charts/percent_completion", record["percent_completion"], gs)
        w.add_scalar("morality/immorality", imm, gs)
        for k in ("bad_others", "bad_self", "good_others", "good_self"):
            w.add_scalar(f"morality/{k}", record[k], gs)
        w.add_scalar("morality/cumulative_immorality", self.cumulative_immorality, gs)

    def _write_transcript(self, i, view, candidates, r, action, q, nv) -> None:
        kept_q = [round(float(x), 4) for x in q]
        line = {
            "step": self.step, "env": i, "episode": self.episodes[i].index, "episode_step": self.episodes[i].steps,
            "obs": view.obs, "candidates": r.kept, "harm": r.harm, "q_values": kept_q, "penalties": r.penalties,
            "removed": r.removed, "removed_harm": r.removed_harm, "action": action, "next_obs": nv.obs,
            "reward": nv.reward, "score": nv.info["score"], "markers": [list(m) for m in nv.info["markers"]],
            "label_vectors": nv.info["label_vectors"], "terminated": nv.terminated, "truncated": nv.truncated,
        }
        self.transcripts[i].write(json.dumps(line) + "\n")

    # --- checkpoints ----------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        import torch

        for f in self.transcripts + [self.episodes_file]:
            f.flush()
        self.writer.flush()
        state = {
            "game": self.cfg.game, "config": self.cfg.to_dict(), "value_model": self.policy.value_model,
            "step": self.step, "network": self.agent.network.state_dict(), "optimizer": self.agent.optimizer.state_dict(),
            "memory": self.agent.memory, "agent_rng": self.agent.rng.getstate(),
            "torch_generator": self.agent.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "py_rng": random.getstate(), "np_rng": np.random.get_state(),
            "env_states": self.pool.get_states(), "views": self.views, "prev": self.prev,
            "episodes": self.episodes, "pending": self.pending, "episode_buffers": self.episode_buffers,
            "best_score": self.best_score, "cumulative_immorality": self.cumulative_immorality,
            "finished_episodes": self.finished_episodes,
            "transcript_offsets": [f.tell() for f in self.transcripts], "episodes_offset": self.episodes_file.tell(),
        }
        tmp = self.run.checkpoint.with_name("latest.pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.run.checkpoint)

    def _load_checkpoint(self) -> None:
        import torch

        if not self.run.checkpoint.is_file():
            raise ConfigError(f"{self.run.path} has no checkpoint to resume from")
        try:
            st = torch.load(self.run.checkpoint, weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is one clear error
            raise ConfigError(f"{self.run.checkpoint}: unreadable checkpoint ({exc})") from None
        if st.get("game") != self.cfg.game or st.get("config") != self.cfg.to_dict():
            raise ConfigError(f"{self.run.checkpoint} was written for another game or configuration")
        if "value_model" in st and st["value_model"] != self.policy.value_model:
            # the default model is trained into one folder per recipe name: a retrained or changed model would
            # silently score the rest of the run differently
            raise ConfigError(f"{self.run.path} was scored by value model {st['value_model']}, but it resolves to "
                              f"{self.policy.value_model} now: resume with the same model")
        self.agent.network.load_state_dict(st["network"])
        self.agent.optimizer.load_state_dict(st["optimizer"])
        self.agent.memory = st["memory"]
        self.agent.rng.setstate(st["agent_rng"])
        self.agent.generator.set_state(st["torch_generator"])
        torch.set_rng_state(st["torch_rng"])
        random.setstate(st["py_rng"])
        np.random.set_state(st["np_rng"])
        self.pool.set_states(st["env_states"])
        self.views, self.prev, self.episodes = st["views"], st["prev"], st["episodes"]
        self.pending, self.episode_buffers = st["pending"], st["episode_buffers"]
        self.best_score, self.cumulative_immorality = st["best_score"], st["cumulative_immorality"]
        self.finished_episodes, self.step = st["finished_episodes"], st["step"]
        # lines written after the checkpoint are produced again, identically: cut them so none repeats
        for i, off in enumerate(st["transcript_offsets"]):
            with open(self.run.transcripts / f"env{i}.jsonl", "r+b") as f:
                f.truncate(off)
        with open(self.run.path / "episodes.jsonl", "r+b") as f:
            f.truncate(st["episodes_offset"])

    # --- driving --------------------------------------------------------------------------------------
    def run_loop(self, progress: bool = True) -> dict:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        cfg = self.cfg
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True)
        t0, s0 = time.perf_counter(), self.step
        removed = total = 0
        with logging_redirect_tqdm():
            while self.step < cfg.steps:
                if self.stop_requested:
                    raise StopRequested
                out = self.train_step()
                removed += out["removed"]
                total += out["total"]
                gs = self.step * cfg.envs
                if self.step % cfg.log_every == 0:
                    sps = (self.step - s0) * cfg.envs / max(1e-9, time.perf_counter() - t0)
                    self.writer.add_scalar("charts/SPS", sps, gs)
                    self.sample_memory()
                    if self.peak_memory is not None:
                        self.writer.add_scalar("charts/peak_memory_gb", self.peak_memory / 2**30, gs)
                    self.writer.add_scalar("filter/removed_fraction", removed / max(1, total), gs)
                    if out["update"]:
                        self.writer.add_scalar("losses/td_loss", out["update"][0], gs)
                        self.writer.add_scalar("losses/q_values", out["update"][1], gs)
                    removed = total = 0
                    bar.set_postfix(SPS=f"{sps:.0f}", episodes=self.finished_episodes,
                                    immorality=f"{self.cumulative_immorality / max(1, self.finished_episodes):.2f}")
                if self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                bar.update(1)
        bar.close()
        self.save_checkpoint()
        self.write_profile(self.step - s0, time.perf_counter() - t0)
        return self.finish()

    def sample_memory(self) -> None:
        peak = peak_resident_bytes([os.getpid()] + [p.pid for p in self.pool.procs])
        if peak is not None:
            self.peak_memory = max(self.peak_memory or 0, peak)

    def write_profile(self, steps: int, wall: float) -> None:
        """``profile.json``: env steps/s, the share of each phase and peak memory of this process's part of the run."""
        self.sample_memory()
        write_json_atomic(self.run.path / "profile.json", {
            "steps": steps, "envs": self.cfg.envs, "wall_seconds": round(wall, 1),
            "sps": round(steps * self.cfg.envs / max(1e-9, wall), 2),
            "phase_share": {k: round(v / max(1e-9, wall), 3)
                            for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])},
            "peak_memory_mb": None if self.peak_memory is None else round(self.peak_memory / 2**20),
            "value_model": self.policy.value_model,
        })

    def finish(self) -> dict:
        from galad.evaluate import evaluate_run

        self.close_files()
        summary = evaluate_run(self.run.path)
        write_json_atomic(self.run.path / "summary.json", summary)
        return summary

    def close_files(self) -> None:
        for f in self.transcripts + [self.episodes_file]:
            if not f.closed:
                f.close()
        self.writer.close()

    def close(self) -> None:
        self.close_files()
        self.pool.close()


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
        if (run.path / "summary.json").is_file():
            raise ConfigError(f"{run.path} is finished (summary.json exists)")
        cfg = load_json_config(TrainConfig, run.path / "config.json")
        for key, value in (overrides or {}).items():
            if key == "steps":
                cfg.steps = value
            elif getattr(cfg, key) != value:
                raise ConfigError(f"--{key.replace('_', '-')} {value} conflicts with the run's {key}="
                                  f"{getattr(cfg, key)!r}; a resumed run keeps its configuration")
        cfg.validate()
    else:
        cfg.validate()
        get_game(cfg.game).require_installed()  # fail before creating a run folder
        if cfg.agent in ("cmps", "galad"):
            from galad.values.loading import trained_games

            if cfg.game in trained_games(cfg.value_model or None):
                raise ConfigError(f"value model {cfg.value_model} was trained on {cfg.game}'s own annotations: "
                                  f"pick one that holds {cfg.game} out (the default does)")
        run = RunFolder.new(cfg, run_name)
    trainer = Trainer(cfg, run, resume=bool(resume))
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
        summary = trainer.run_loop(progress)
    except StopRequested:
        trainer.save_checkpoint()
        log.warning("interrupted at step %d; checkpoint saved; continue with: galad train --resume %s",
                    trainer.step, run.path)
        raise
    except KeyboardInterrupt:
        log.warning("stopped inside step %d; continue from the last checkpoint with: galad train --resume %s",
                    trainer.step, run.path)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        trainer.close()
    return run.path, summary

