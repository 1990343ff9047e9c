"""The Z-machine engine (Jericho's libfrotz) behind a watchdog.

libfrotz can execute Z-code forever inside one ``step`` call (spellbreaker: ``extinguish carpet`` after
walkthrough step 220). Python signals cannot interrupt a foreign call, so two layers guard each step:

* ``isolation="thread"`` (default, no per-step cost): the engine runs in this process; one watchdog
  thread per engine raises libfrotz's own ``emulator_halted`` flag when a step overruns its bound, which
  makes the interpreter loop return at the next opcode. The episode then ends as truncated.
* ``isolation="process"``: the engine runs in a child process that is killed (and restarted) when a step
  overruns its bound, whatever the engine is doing, even a hang inside C code. Costs one pipe round
  trip per call (~30 µs).

Both report an emulator halt (a fatal Z-machine error) instead of swallowing it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import multiprocessing as mp
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Literal

Isolation = Literal["thread", "process"]

#: Longest action libfrotz accepts, in bytes (Jericho truncates longer input).
INPUT_BUFFER_SIZE = 198

_WATCHDOG_FLAG = 2  # our value of emulator_halted; libfrotz itself sets 1 on a fatal error


@functools.cache
def _stdout_purger():
    """A function that drops what C stdio holds for stdout, or None where libc has no ``__fpurge``.

    libfrotz's dumb interface writes a BEL (``putchar('\\a')``) to the process's C stdout whenever a game
    beeps (trinity does); left alone, the bytes reach our own stdout later and corrupt JSON output.
    """
    try:
        libc = ctypes.CDLL(None)
        purge = libc.__fpurge
        c_stdout = ctypes.c_void_p.in_dll(libc, "stdout")
    except (OSError, AttributeError, ValueError):
        return None
    purge.argtypes = [ctypes.c_void_p]
    purge.restype = None
    # C stdout may be unbuffered (PYTHONUNBUFFERED, python -u), which would write each BEL at once: give it a
    # buffer so the purge can drop them. Python's own sys.stdout does not go through C stdio.
    libc.fflush(None)
    libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
    libc.setvbuf(c_stdout.value, None, 0, 1 << 16)  # 0 = _IOFBF
    return lambda: purge(c_stdout.value)



@dataclass
class StepResult:
    """What one engine step returned."""

    text: str
    """The raw text the game printed."""
    halted: bool = False
    """The emulator halted on a fatal Z-machine error."""
    timed_out: bool = False
    """The step overran the watchdog bound and was stopped."""
    game_over: bool = False
    """Jericho's own game-over/victory detection (for unsupported games: only an emulator halt)."""
    score: int | None = None
    """The score global after the step, when asked for."""


class EngineTimeout(Exception):
    """Internal: a step overran its bound."""


class FrotzEngine:
    """One Jericho ``FrotzEnv`` used through its library calls, guarded by a watchdog thread.

    Args:
        story_file: path of the ``.z3``/``.z4``/``.z5`` file.
        seed: Frotz RNG seed (>= 1; 0 would make Frotz seed itself from the clock).
        step_timeout: seconds one step may run before it is stopped.
    """

    def __init__(self, story_file: str, seed: int, step_timeout: float = 10.0):
        from jericho import FrotzEnv  # imported lazily: building it is not needed to read registries

        if seed < 1:
            raise ValueError("Frotz seed must be >= 1 (0 means 'seed from the clock')")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # every annotated game is "unsupported" by Jericho (MD5 unknown)
            self._env = FrotzEnv(story_file, seed=seed)
        self._lib = self._env.frotz_lib
        self._halted = ctypes.c_int.in_dll(self._lib, "emulator_halted")
        self._zmp = ctypes.c_void_p.in_dll(self._lib, "zmp")
        self._purge = _stdout_purger()
        if self._purge is not None:
            self._purge()  # loading the story ran it up to its first prompt
        self.story_file = story_file
        self.seed = seed
        self.step_timeout = step_timeout
        self._globals_addr: int | None = None
        # watchdog: the stepping thread publishes (step number, start time); the watchdog polls it
        self._step_no = 0
        self._step_started: float | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._watchdog = threading.Thread(target=self._watch, name="galad-frotz-watchdog", daemon=True)
        self._watchdog.start()

    # --- watchdog ---------------------------------------------------------------------------------
    def _watch(self) -> None:
        poll = max(0.01, min(0.5, self.step_timeout / 4))
        while not self._closed:
            with self._cond:
                self._cond.wait(poll)
            started, no = self._step_started, self._step_no
            if started is not None and time.monotonic() - started > self.step_timeout and no == self._step_no:
                self._halted.value = _WATCHDOG_FLAG

    # --- engine calls -----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> str:
        """Restart the story (with a new seed if given); returns the opening text."""
        if seed is not None:
            self.seed = seed
        self._globals_addr = None
        self._env._seed = self.seed  # set directly: FrotzEnv.seed() maps falsy seeds to -1
        text = self._env.reset()[0]
        if self._purge is not None:
            self._purge()
        return text

    def step(self, action: str, score_global: int | None = None) -> StepResult:
        """Send one command; returns the game's text, stopped by the watchdog if it overruns.

        With ``score_global`` the result carries that global's value after the step (one call, so a
        process-isolated engine pays one round trip).
        """
        data = action.encode("utf-8")[:INPUT_BUFFER_SIZE] + b"\n"
        self._step_no += 1
        self._step_started = time.monotonic()
        try:
            raw = self._lib.step(data)
        finally:
            self._step_started = None
            if self._purge is not None:
                self._purge()
        halted = self._halted.value
        text = raw.decode("cp1252")
        if halted == _WATCHDOG_FLAG:
            return StepResult(text, timed_out=True, game_over=True)
        if halted > 0:
            return StepResult(text, halted=True, game_over=True)
        over = bool(self._lib.game_over()) or bool(self._lib.victory())
        score = self.read_global(score_global) if score_global is not None else None
        return StepResult(text, game_over=over, score=score)

    def reseed(self, seed: int) -> None:
        """Re-seed the Frotz RNG in place, as Frotz's ``seed_random`` would, keeping the game state."""
        a, counter = self._lib.getRngA(), self._lib.getRngCounter()
        if seed < 1000:  # Frotz: small seeds select the predictable counting mode
            self._lib.setRng(a, seed, 0)
        else:
            self._lib.setRng(seed, 0, counter)
        self.seed = seed

    def read_global(self, index: int) -> int:
        """Z-machine global variable ``index`` (signed 16-bit), read straight from memory."""
        base = self._zmp.value
        if self._globals_addr is None:
            hdr = ctypes.string_at(base + 0x0C, 2)
            self._globals_addr = (hdr[0] << 8) | hdr[1]
        b = ctypes.string_at(base + self._globals_addr + 2 * index, 2)
        v = (b[0] << 8) | b[1]
        return v - 0x10000 if v & 0x8000 else v

    def ram(self) -> bytes:
        """The dynamic memory of the Z-machine (for hashing game states)."""
        return ctypes.string_at(self._zmp.value, self._lib.getRAMSize())

    def get_state(self) -> tuple:
        return self._env.get_state()

    def set_state(self, state: tuple) -> None:
        self._env.set_state(state)
        self._halted.value = 0

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._cond.notify_all()


# ------------------------------------------------------------------------------------------------
# process isolation


def _serve(conn, factory, story_file: str, seed: int, step_timeout: float) -> None:  # pragma: no cover - child
    engine = factory(story_file, seed, step_timeout)
    while True:
        try:
            method, args = conn.recv()
        except EOFError:
            return
        if method == "close":
            return
        try:
            conn.send((True, getattr(engine, method)(*args)))
        except Exception as exc:  # noqa: BLE001 - forwarded to the parent
            conn.send((False, exc))


class ProcessEngine:
    """A :class:`FrotzEngine` in a child process that is killed and restarted when a call overruns.

    It has the same methods as :class:`FrotzEngine`. After a timeout the child is replaced by a fresh one
    at the story's start; the caller ends the episode (the env marks it truncated).
    """

    def __init__(self, story_file: str, seed: int, step_timeout: float = 10.0, factory=FrotzEngine):
        if seed < 1:
            raise ValueError("Frotz seed must be >= 1 (0 means 'seed from the clock')")
        self.factory = factory
        self.story_file = story_file
        self.seed = seed
        self.step_timeout = step_timeout
        self._ctx = mp.get_context("spawn")
        self._start()

    def _start(self) -> None:
        self._conn, child = self._ctx.Pipe()
        # the child has its own watchdog thread; ours is the outer bound for hangs it cannot stop
        self._proc = self._ctx.Process(
            target=_serve, args=(child, self.factory, self.story_file, self.seed, self.step_timeout), daemon=True
        )
        self._proc.start()
        child.close()

    def _call(self, method: str, *args, timeout: float | None = None):
        self._conn.send((method, args))
        bound = (timeout if timeout is not None else self.step_timeout) + 5.0
        if not self._conn.poll(bound):
            self._kill()
            raise EngineTimeout(f"engine call {method!r} overran {bound:.0f} s; engine process restarted")
        ok, value = self._conn.recv()
        if not ok:
            raise value
        return value

    def _kill(self) -> None:
        self._proc.kill()
        self._proc.join()
        self._conn.close()
        self._start()

    def reset(self, seed: int | None = None) -> str:
        if seed is not None:
            self.seed = seed
        return self._call("reset", seed, timeout=60.0)

    def step(self, action: str, score_global: int | None = None) -> StepResult:
        try:
            return self._call("step", action, score_global)
        except EngineTimeout:
            return StepResult("", timed_out=True, game_over=True)

    def reseed(self, seed: int) -> None:
        self._call("reseed", seed)
        self.seed = seed

    def read_global(self, index: int) -> int:
        return self._call("read_global", index)

    def ram(self) -> bytes:
        return self._call("ram")

    def get_state(self) -> tuple:
        return self._call("get_state")

    def set_state(self, state: tuple) -> None:
        self._call("set_state", state)

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(("close", ()))
            except OSError:
                pass
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._conn.close()


def make_engine(story_file: str, seed: int, step_timeout: float, isolation: Isolation):
    """Build the engine for an isolation mode."""
    cls = FrotzEngine if isolation == "thread" else ProcessEngine
    return cls(story_file, seed, step_timeout)


def ram_hash(ram: bytes) -> str:
    """Hash of Z-machine RAM, the state key for caches."""
    return hashlib.blake2b(ram, digest_size=16).hexdigest()
