"""``JiminyEnv``: an annotated Jiminy Cricket game (or one of ours) behind the Gymnasium API.

Semantics are those of the reference ``AnnotatedEnv`` (hendrycks/jiminy-cricket @1ff8bd0): the same
observation cleaning, markers, keyword rules, scores and rewards, so numbers compare with published
ones. What differs is speed (no extra ``look``/``score`` engine step to read the score: it comes from
Z-machine memory or from the step's own text; get/set_state copy only what changes), the Gymnasium API,
and the engine watchdog.

``info`` keys (every ``reset`` and ``step``):

=====================  ===========================================================================
``score``              game score after the step (the reference's ``info['score']``)
``max_score``          the benchmark's maximum score
``starting_score``     score after ``reset`` (initial actions and fast-forward included)
``moves``              the reference's move counter: steps since the story started, initial actions
                       and fast-forward included
``episode_step``       steps taken since ``reset`` (what the step limit counts)
``markers``            markers kept this step: ``(id,)`` or ``(id, prso, prsi)`` tuples
``label_vectors``      one ``[bad_others, bad_self, good_others, good_self]`` list per kept marker
``game_over``          the game ended (``[EVENT: GAME OVER]`` or an emulator halt)
``halted``             the emulator halted on a fatal Z-machine error (the episode ends)
``truncation_reason``  ``None``, ``"step_limit"`` or ``"engine_timeout"``
``blocked``            the action matched a blocked-action pattern and never reached the engine
=====================  ===========================================================================
"""

from __future__ import annotations

import csv
import re
import string
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from galad.env import annotations as ann
from galad.env.engine import INPUT_BUFFER_SIZE, Isolation, make_engine
from galad.env.registry import get_game
from galad.errors import ConfigError, EpisodeEndedError

# The reference's r".+Score: .+Moves: .+\n" anchored at line starts: it removes the same whole lines (a match
# anywhere in a line implies one from its start) without the quadratic backtracking.
_STATUS_SCORE_RE = re.compile(r"(?m)^.+Score: .+Moves: .+\n")
_STATUS_TIME_RE = re.compile(r">.*Time:.*\n")
_RIDX_RE = re.compile(r"\[RIDX: (.*?)\]")
_TEXT_CHARSET = frozenset(string.printable) | frozenset(chr(i) for i in range(0xA0, 0x2100))
# what a player types; no backslash, which starts one of dumb-frotz's own commands (``\help``)
_ACTION_CHARSET = frozenset(string.ascii_letters + string.digits + string.punctuation + " ") - {"\\"}


@dataclass
class EpisodeState:
    """All mutable episode state besides the engine's (copied by ``get_state``: only what changes)."""

    moves: int = 0
    episode_step: int = 0
    score: int = 0
    done: bool = False
    reward_ids_seen: set[str] = field(default_factory=set)
    markers: ann.MarkerState = field(default_factory=ann.MarkerState)

    def copy(self) -> "EpisodeState":
        return EpisodeState(self.moves, self.episode_step, self.score, self.done,
                            set(self.reward_ids_seen), self.markers.copy())


class JiminyEnv(gym.Env):
    """An annotated text game with the Jiminy Cricket benchmark's semantics.

    Args:
        game: registry name (default: our demo game).
        seed: Frotz RNG seed, >= 1 (Frotz is always seeded; the reference uses 1).
        start_percentage: start from this percentage of the walkthrough (0 <= p < 100). The walkthrough
            prefix is replayed at ``reset`` under the walkthrough's seed 1, then the RNG is re-seeded with
            ``seed``; its steps are not reported.
        step_limit: episode length in steps; reaching it ends the episode as truncated (None: no limit).
        step_timeout: seconds one engine step may run before the watchdog stops it.
        isolation: ``"thread"`` (in-process engine, watchdog thread) or ``"process"`` (killable child).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        game: str | None = None,
        seed: int = 1,
        start_percentage: float = 0.0,
        step_limit: int | None = None,
        step_timeout: float = 10.0,
        isolation: Isolation = "thread",
    ):
        self.spec_ = spec = get_game(game)
        folder = spec.require_installed()
        self.game = spec.name
        _check_seed(seed)
        if not 0 <= start_percentage < 100:
            raise ConfigError(f"start_percentage must be in [0, 100), got {start_percentage}")
        if step_limit is not None and step_limit < 1:
            raise ConfigError(f"step_limit must be >= 1, got {step_limit}")
        if isolation not in ("thread", "process"):
            raise ConfigError(f"isolation must be 'thread' or 'process', got {isolation!r}")
        self.seed_ = seed
        self.start_percentage = float(start_percentage)
        self.step_limit = step_limit
        self.max_score = spec.max_score
        self.annotations = ann.AnnotationTable.from_csv(folder / spec.annotations_name, spec.name)
        self.walkthrough = read_lines(folder / spec.walkthrough_name)
        self.initial_actions = read_lines(folder / "initial_actions.txt") if spec.has_file("initial_actions.txt") else []
        self.replacements: dict[str, str] = {}
        if spec.compressed:
            with (folder / "replacement_dict.csv").open(newline="", encoding="utf-8") as f:
                self.replacements = {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}
        self._final_re = re.compile(spec.final_score_regex) if spec.final_score_regex else None
        self._score_global = spec.score_global if spec.score_source == "global" else None
        self.engine = make_engine(str(folder / spec.story.name), seed, step_timeout, isolation)
        self.observation_space = spaces.Text(max_length=1 << 16, min_length=0, charset=_TEXT_CHARSET)
        self.action_space = spaces.Text(max_length=INPUT_BUFFER_SIZE, min_length=0, charset=_ACTION_CHARSET)
        self._st = EpisodeState()
        self._started = False
        self._closed = False
        self.starting_score = 0

    # --- Gymnasium API --------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        """Restart the story.

        Args:
            seed: new Frotz seed (kept for later resets); None keeps the current one.
            options: ``{"start_percentage": p}`` overrides the start point for this and later resets.
        """
        super().reset(seed=seed)
        if self._closed:
            raise EpisodeEndedError("the environment is closed")
        if seed is not None:
            _check_seed(seed)
            self.seed_ = seed
        if options and "start_percentage" in options:
            p = float(options["start_percentage"])
            if not 0 <= p < 100:
                raise ConfigError(f"start_percentage must be in [0, 100), got {p}")
            self.start_percentage = p
        fast_forward = self.walkthrough[: int(len(self.walkthrough) * self.start_percentage / 100)]
        # the walkthrough only replays under its own seed: fast-forward with 1, then re-seed
        obs = self._clean_status(self._replace(self.engine.reset(1 if fast_forward else self.seed_)))
        self._st = EpisodeState()
        self._started = True
        info: dict[str, Any] = {}
        for action in self.initial_actions + fast_forward:
            obs, _, _, _, info = self._step(action)
        if fast_forward and self.seed_ != 1:
            self.engine.reseed(self.seed_)
        self._st.episode_step = 0
        self._st.done = False  # reference: a fast-forward never ends the episode it prepares
        self.starting_score = self._st.score
        return obs, self._info(info.get("markers", []), info.get("label_vectors", []))

    def step(self, action: str) -> tuple[str, int, bool, bool, dict]:
        """Take one action: ``(observation, reward, terminated, truncated, info)``.

        Raises:
            EpisodeEndedError: the episode already ended, or ``reset`` was never called.
        """
        if not self._started or self._st.done:
            raise EpisodeEndedError("the episode has ended; call reset() before stepping again")
        return self._step(action)

    def _step(self, action: str) -> tuple[str, int, bool, bool, dict]:
        st = self._st
        blocked = self.spec_.is_blocked(action)
        if blocked:
            result = None
            text = "Impossible."  # reference: blocked actions answer this and never reach the engine
        else:
            result = self.engine.step(action, self._score_global)
            text = self._replace(result.text)
        text, parsed_reward = ann.parse_rewards(text, st.reward_ids_seen)
        st.moves += 1
        st.episode_step += 1
        game_over = ann.GAME_OVER in text
        if game_over:
            text = text.replace(ann.GAME_OVER, "")
        halted = bool(result and result.halted)
        timed_out = bool(result and result.timed_out)
        # reference: Jericho's done is only an emulator halt for these (unsupported) games
        terminated = game_over or halted or bool(result and result.game_over and not timed_out)
        new_score = self._new_score(text, result, parsed_reward, terminated, timed_out)
        reward = new_score - st.score
        st.score = new_score
        text = self._clean_status(text)
        text, markers = ann.find_markers(text)
        markers = ann.verbs_go_last(ann.apply_keywords(markers, self.annotations, st.markers))
        vectors = [list(self.annotations.rows[m[0]].label_vector) for m in markers]
        reason = None
        if timed_out:
            reason = "engine_timeout"
        elif not terminated and self.step_limit is not None and st.episode_step >= self.step_limit:
            reason = "step_limit"
        truncated = reason is not None
        st.done = terminated or truncated
        info = self._info(markers, vectors)
        info.update(game_over=terminated, halted=halted, truncation_reason=reason, blocked=blocked)
        return text, reward, terminated, truncated, info

    def _new_score(self, text: str, result, parsed_reward: int, terminated: bool, timed_out: bool) -> int:
        st = self._st
        if self.spec_.score_source == "custom_rewards":
            return st.score + parsed_reward
        if terminated and self._final_re is not None and not timed_out:
            found = self._final_re.findall(text)
            if not found:
                return st.score
            pick = found[-1] if self.spec_.final_score_last_match else found[0]
            pick = pick[0] if isinstance(pick, tuple) else pick
            try:
                return int(pick)
            except ValueError:
                return st.score  # the reference would raise here
        if result is None or result.halted or timed_out:
            return st.score  # reference: no status line / score text to read after a blocked action or a halt
        return int(result.score) if result.score is not None else st.score

    def _info(self, markers: list, vectors: list) -> dict[str, Any]:
        st = self._st
        return {
            "score": st.score,
            "max_score": self.max_score,
            "starting_score": self.starting_score,
            "moves": st.moves,
            "episode_step": st.episode_step,
            "markers": markers,
            "label_vectors": vectors,
            "game_over": False,
            "halted": False,
            "truncation_reason": None,
            "blocked": False,
        }

    # --- text cleaning ---------------------------------------------------------------------------------
    def _replace(self, text: str) -> str:
        if not self.replacements or "[RIDX: " not in text:
            return text
        return _RIDX_RE.sub(lambda m: self.replacements.get(m.group(1), m.group(0)), text)

    def _clean_status(self, text: str) -> str:
        mode = self.spec_.status_line
        if mode == "score_moves":
            return _STATUS_SCORE_RE.sub("", text)
        if mode == "time":
            return _STATUS_TIME_RE.sub("", text)
        if mode == "prompt":
            return text[2:] if text[:2] == ">\n" else text
        return text

    # --- state ------------------------------------------------------------------------------------------
    def get_state(self) -> tuple:
        """Snapshot of the engine and episode state, restorable with :meth:`set_state`."""
        return self.engine.get_state(), self._st.copy()

    def set_state(self, state: tuple) -> None:
        self.engine.set_state(state[0])
        self._st = state[1].copy()
        self._started = True

    def lookahead(self, actions: list[str]) -> list[dict[str, Any]]:
        """Try each action from the current state and restore it: the ground truth of what each would do.

        Returns, per action, ``{"label_vector_sum", "markers", "reward", "terminated", "obs"}``.
        """
        if not self._started or self._st.done:
            raise EpisodeEndedError("lookahead needs a running episode")
        state = self.get_state()
        out = []
        try:
            for action in actions:
                obs, reward, term, _, info = self._step(action)
                out.append({"label_vector_sum": ann.label_vector_sum(info["label_vectors"]),
                            "markers": info["markers"], "reward": reward, "terminated": term, "obs": obs})
                self.set_state(state)
        finally:
            self.set_state(state)
        return out

    def peek(self, action: str) -> str:
        """What ``action`` would print here (e.g. ``look``, ``inventory``), without spending a step."""
        if not self._started or self._st.done:
            return ""
        state = self.get_state()
        try:
            return self._step(action)[0]
        finally:
            self.set_state(state)

    def state_key(self) -> bytes:
        """Bytes identifying the game state (the Z-machine RAM; Jericho's world hash is constant here)."""
        return self.engine.ram()

    @property
    def score(self) -> int:
        return self._st.score

    @property
    def done(self) -> bool:
        return self._st.done

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.engine.close()


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or seed < 1:
        raise ConfigError(f"seed must be an integer >= 1 (Frotz treats 0 as 'seed from the clock'), got {seed!r}")


def read_lines(path) -> list[str]:
    """Read a one-command-per-line file as the reference does (``split('\\n')``, no stripping)."""
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")
