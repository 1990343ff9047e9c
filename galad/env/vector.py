"""A small subprocess pool of :class:`JiminyEnv`, one env per worker, stepped in parallel.

Each call is sent to every worker first and then collected, so the envs step concurrently. Besides the
Gymnasium calls, workers answer what the trainer needs from an env's live state: ``look``/``inventory``
read without spending a step, a RAM hash for caches, the engine snapshot (for lookahead candidate
sources), ground-truth lookahead, and get/set_state for checkpoints.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from galad.errors import GaladError


@dataclass
class EnvView:
    """One env's state as the trainer sees it after reset or step."""

    obs: str
    reward: int = 0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    look: str = ""
    inventory: str = ""
    ram_hash: str = ""
    engine_state: Any = None


def _view(env, obs, reward=0, terminated=False, truncated=False, info=None, with_state=False) -> EnvView:
    from galad.env.engine import ram_hash

    done = terminated or truncated
    return EnvView(
        obs, reward, terminated, truncated, info or {},
        look="" if done else env.peek("look"),
        inventory="" if done else env.peek("inventory"),
        ram_hash=ram_hash(env.state_key()),
        engine_state=env.get_state() if (with_state and not done) else None,
    )


def _worker(conn, kwargs: dict, with_state: bool) -> None:  # pragma: no cover - runs in the child
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Ctrl-C in a terminal, or a scheduler's SIGTERM, reaches the whole process group: the learner still
    # needs the env states for its last checkpoint, and closes the workers itself (EOF ends them too).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from galad.env.jiminy import JiminyEnv

    try:
        env = JiminyEnv(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send((False, exc))
        return
    conn.send((True, None))
    while True:
        try:
            cmd, args = conn.recv()
        except EOFError:
            break
        try:
            if cmd == "reset":
                obs, info = env.reset(**args)
                out = _view(env, obs, info=info, with_state=with_state)
            elif cmd == "step":
                out = _view(env, *env.step(args), with_state=with_state)
            elif cmd == "lookahead":
                out = env.lookahead(args)
            elif cmd == "get_state":
                out = env.get_state()
            elif cmd == "set_state":
                env.set_state(args)
                out = None
            elif cmd == "close":
                env.close()
                conn.send((True, None))
                break
            else:
                raise ValueError(f"unknown command {cmd}")
            conn.send((True, out))
        except BaseException as exc:  # noqa: BLE001
            if not isinstance(exc, GaladError):
                exc = RuntimeError(f"env worker failed: {exc!r}\n{traceback.format_exc()}")
            conn.send((False, exc))


def env_seeds(n: int, seed: int, distinct: bool = False) -> list[int]:
    """The Frotz seeds of ``n`` envs: ``seed`` for all (the Jiminy Cricket protocol runs its 8 envs at seed 1), or
    ``seed + i`` for env ``i`` when ``distinct``."""
    return [seed + i if distinct else seed for i in range(n)]


class EnvPool:
    """JiminyEnvs in worker processes, one per Frotz seed.

    Args:
        seeds: env ``i``'s Frotz seed (their number is the number of envs; :func:`env_seeds` makes the list).
        with_engine_state: include the engine snapshot in every view (for lookahead candidate sources).
        **env_kwargs: passed to :class:`JiminyEnv` (``game``, ``start_percentage``, ``step_limit``, ...).
    """

    def __init__(self, seeds: Sequence[int], with_engine_state: bool = False, **env_kwargs):
        ctx = mp.get_context("spawn")  # workers import no torch: spawn keeps them small and fork-safe
        self.conns, self.procs = [], []
        for i, seed in enumerate(seeds):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, {**env_kwargs, "seed": seed}, with_engine_state),
                            daemon=True, name=f"galad-env-{i}")
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
        for c in self.conns:
            ok, err = c.recv()
            if not ok:
                self.close()
                raise err

    def __len__(self) -> int:
        return len(self.conns)

    def _all(self, cmd: str, args: Sequence[Any], idx: Sequence[int] | None = None) -> list[Any]:
        return self._recv(self._send(cmd, args, idx))

    def _send(self, cmd: str, args: Sequence[Any], idx: Sequence[int] | None = None) -> list[int]:
        idx = list(range(len(self.conns))) if idx is None else list(idx)
        for i, a in zip(idx, args):
            self.conns[i].send((cmd, a))
        return idx

    def _recv(self, idx: Sequence[int]) -> list[Any]:
        out = []
        for i in idx:
            ok, val = self.conns[i].recv()
            if not ok:
                raise val
            out.append(val)
        return out

    def reset(self, idx: Sequence[int] | None = None) -> list[EnvView]:
        idx = list(range(len(self))) if idx is None else list(idx)
        return self._all("reset", [{}] * len(idx), idx)

    def step(self, actions: Sequence[str], idx: Sequence[int] | None = None) -> list[EnvView]:
        return self._all("step", actions, idx)

    def lookahead(self, actions: Sequence[Sequence[str]], idx: Sequence[int] | None = None) -> list[list[dict]]:
        return self._all("lookahead", actions, idx)

    def get_states(self) -> list[Any]:
        return self._all("get_state", [None] * len(self))

    def set_states(self, states: Sequence[Any]) -> None:
        self._all("set_state", states)

    def close(self) -> None:
        for c, p in zip(self.conns, self.procs):
            try:
                if p.is_alive():
                    c.send(("close", None))
                    c.poll(5) and c.recv()
            except (OSError, EOFError):
                pass
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        self.conns, self.procs = [], []
