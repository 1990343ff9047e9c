"""Configuration dataclasses: one docstring per field; the ``galad train`` flags are generated from them.

A run's resolved configuration is saved as ``config.json`` in its run folder. ``--config file.toml`` loads
values (flat keys, as the field names) and command-line flags override them.

Why not ``tyro``, which builds the same flags from the same field docstrings: it parses a whole command line with
its own parser, so ``galad train`` would leave the argparse tree of the other commands and its help and errors would
become rich boxes (an unknown ``--agent`` is a 5-line box, not one ``galad: error:`` line), ``--harm-threshold``
would read ``{None}|FLOAT``, and it fills in defaults, so the TOML file and ``--resume`` could no longer tell a
given flag from an unset one. The ~40 lines below cost less than those changes and three more dependencies.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
import types
import tomllib
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from galad.errors import ConfigError

Agent = Literal["drrn", "cmps", "cmps-persistent", "galad", "oracle"]
AGENTS: tuple[str, ...] = typing.get_args(Agent)
"""Every agent, in the order tables list them."""
CMPS_AGENTS = ("cmps", "cmps-persistent")
"""The two forms of commonsense policy shaping (they score actions alone by default)."""
SCORING_AGENTS = (*CMPS_AGENTS, "galad")
"""Agents that score candidates with a value model."""
Candidates = Literal["valid", "lm"]
ContextMode = Literal["action", "context"]
Device = Literal["auto", "cpu", "cuda"]

POLICY_HARM_THRESHOLD = 0.39
"""Default tau of the cmps and galad policies (CMPS's in the Jiminy Cricket paper)."""


def policy_tau(threshold: float | None) -> float:
    """The P(harm) above which cmps penalises, galad removes and distillation drops an action: ``threshold`` when
    given, else :data:`POLICY_HARM_THRESHOLD`."""
    return POLICY_HARM_THRESHOLD if threshold is None else threshold


@dataclass
class TrainConfig:
    """Everything ``galad train`` needs; defaults train GALAD on the demo game in a few minutes."""

    game: str = "demo"
    """Game to train on (registry name)."""
    agent: Agent = "galad"
    """Policy between candidates and the Q-network: drrn (unconstrained), cmps (commonsense policy shaping as in the
    Jiminy Cricket code), cmps-persistent (its penalty kept out of the regressed Q), galad or oracle."""
    candidates: Candidates = "valid"
    """Candidate source: the game's valid actions (valid) or a CALM-style language model (lm)."""
    envs: int = 8
    """Parallel environments, each in its own worker process."""
    steps: int = 100
    """Training steps (each steps every env once); the Jiminy protocol trains 15,000 (experiments/paper.toml)."""
    early_stop_step: int = 5000
    """At this step, stop the run if no env has yet scored above the starting score (the Jiminy protocol: 5,000);
    0 never stops early."""
    seed: int = 1
    """Seed of everything (Python, NumPy, torch and the envs' Frotz RNG)."""
    env_seeds: Literal["same", "distinct"] = "same"
    """Frotz seed of each env: same (every env gets seed, as the Jiminy protocol's 8 envs all get 1) or distinct
    (env i gets seed + i)."""
    start_percentage: float = 0.0
    """Start every episode this far (%) into the walkthrough."""
    episode_steps: int = 100
    """Episode length; reaching it truncates the episode (Jiminy protocol: 100)."""
    step_timeout: float = 10.0
    """Seconds one engine step may run before the watchdog stops it."""
    device: Device = "auto"
    """Where the DRRN, the value model and the LM generator run: ``auto`` (CUDA when torch sees a GPU), ``cpu``
    or ``cuda``. int8 quantisation of the value model is for the CPU only (on a GPU it runs in fp32). A resumed
    run may change it."""
    # DRRN (as in the CALM / Jiminy Cricket code)
    embedding_dim: int = 128
    """Shared token embedding size."""
    hidden_dim: int = 128
    """Hidden size of each GRU encoder (obs, look, inventory, action) and of the scoring MLP."""
    lr: float = 1e-4
    """Adam learning rate."""
    gamma: float = 0.9
    """Discount factor."""
    batch_size: int = 64
    """TD update batch size."""
    memory_size: int = 10000
    """Replay memory capacity (transitions)."""
    priority_fraction: float = 0.5
    """Share of each batch drawn from the best-scoring episodes' transitions."""
    clip: float = 5.0
    """Gradient-norm clip."""
    max_tokens: int = 64
    """Tokens kept per encoder input, the most recent (the GPU reference keeps 512; GRU backprop on a CPU is the cost)."""
    # value model and policies
    harm_threshold: float | None = None
    """tau: cmps penalises and galad removes candidates with P(harm) > tau; default 0.39, the tau of CMPS in the
    Jiminy Cricket paper, one line for both policies so that they differ only in what they do with a flag (a
    value model's card threshold is what ``galad value score`` reports as harmful)."""
    cmps_weight: float = 10.0
    """CMPS: Q - weight * 1[P(harm) > threshold], when acting and in TD targets (cmps also on the regressed Q)."""
    value_model: str = ""
    """Value model: empty for GALAD's own trained model, else a Hugging Face id or local folder."""
    context_mode: ContextMode | None = None
    """Scorer input: action only ("I {action}.") or observation + action; default: action for cmps, context for galad."""
    max_candidates: int = 30
    """Candidates the language model proposes per state (top-k; the valid-action source proposes all it finds)."""
    valid_text_only: Literal["all", "marked", "none"] = "all"
    """Valid-action source: which actions that change nothing but the text count as valid: all but a verb's
    default refusal (all, one action per distinct world and reply), none (Jericho's definition, one action per
    effect on the world), or marked (uses the benchmark's ground-truth annotation markers: keeps the replies
    that carry one, and markers separate effects; the earlier default, which the committed training results
    ran with). all and none read no marker; all is the default: on the candidates table's states it recalls
    more walkthrough actions than none and marked and nearly marked's marker actions, at about 10x none's actions
    per state (experiments/results/candidates/README.md)."""
    valid_budget: int = 0
    """Valid-action source: most candidates stepped per state, the verbs players type most first (0: all; a budget
    finds fewer rarely used verbs' and two-object replies: measured in experiments/results/candidates/, and by
    ``galad candidates bench --budget``)."""
    # logging
    run_dir: str = "runs"
    """Parent folder of run folders."""
    checkpoint_every: int = 500
    """Save a checkpoint every this many steps (and on exit)."""
    log_every: int = 10
    """Write TensorBoard scalars every this many steps."""

    def resolved_harm_threshold(self) -> float:
        return policy_tau(self.harm_threshold)

    def resolved_context_mode(self) -> ContextMode:
        if self.context_mode is not None:
            return self.context_mode
        return "action" if self.agent in CMPS_AGENTS else "context"

    def validate(self) -> "TrainConfig":
        checks = [
            (self.envs >= 1, "envs must be >= 1"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.early_stop_step >= 0, "early_stop_step must be >= 0 (0: never stop early)"),
            (self.seed >= 1, "seed must be >= 1 (Frotz treats 0 as 'seed from the clock')"),
            (0 <= self.start_percentage < 100, "start_percentage must be in [0, 100)"),
            (self.episode_steps >= 1, "episode_steps must be >= 1"),
            (0 < self.gamma <= 1, "gamma must be in (0, 1]"),
            (self.batch_size >= 1 and self.memory_size >= self.batch_size, "memory_size must be >= batch_size >= 1"),
            (0 <= self.priority_fraction <= 1, "priority_fraction must be in [0, 1]"),
            (self.harm_threshold is None or 0 <= self.harm_threshold <= 1, "harm_threshold must be in [0, 1]"),
            (self.max_candidates >= 1, "max_candidates must be >= 1"),
            (self.valid_budget >= 0, "valid_budget must be >= 0 (0: every candidate)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        hints = field_types(type(self))
        for f in dataclasses.fields(self):
            choices = literal_choices(hints[f.name])
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(c for c in choices if c)}, "
                                  f"got {getattr(self, f.name)!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- docstrings → CLI ------------------------------------------------------------------------------


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (read from its source)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[node.target.id] = nxt.value.value.strip()
    return docs


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Each field's annotation, evaluated (they are strings under ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def literal_choices(tp: Any) -> tuple | None:
    """Allowed values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if typing.get_origin(arg) is Literal:
                return typing.get_args(arg) + (None,)
    return None


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per field, help from the field docstring; defaults are None (unset)."""
    docs, hints = field_docs(cls), field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]  # Optional[X] -> X
        choices = literal_choices(tp)
        kwargs: dict[str, Any] = {"default": None, "help": f"{docs.get(f.name, '')} (default: {f.default})".replace("%", "%%")}
        if choices:
            kwargs["choices"] = [c for c in choices if c is not None]
        elif tp in (int, float, str):
            kwargs["type"] = tp
        parser.add_argument(flag, dest=f.name, **kwargs)


def build_config(cls: type, args: argparse.Namespace, config_file: str | None = None):
    """Defaults ← TOML file ← flags that were given."""
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{config_file}: unknown setting(s) {', '.join(sorted(unknown))}")
    for name in names:
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def load_json_config(cls: type, path: Path):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable run configuration ({exc})") from None

