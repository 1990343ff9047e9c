"""Which torch device a run uses: ``--device auto|cpu|cuda`` for the DRRN, the value model and the generator.

``auto`` picks CUDA when torch sees a GPU, else the CPU. Two things follow the device everywhere: int8 dynamic
quantisation (a CPU kernel) only on the CPU, and on the CPU one torch thread per model call, because the env
workers and the valid-action engines share the cores (on two cores, two threads per call ran many times slower
under that contention); independent batches then run side by side in threads instead (:func:`cpu_workers`).
"""

from __future__ import annotations

import os
import typing

from galad.config import Device
from galad.errors import ConfigError

DEVICES: tuple[str, ...] = typing.get_args(Device)


def resolve_device(spec: str = "auto") -> str:
    """``"cpu"`` or ``"cuda"`` for a device setting.

    Raises:
        ConfigError: an unknown setting, or ``cuda`` where torch sees no CUDA device.
    """
    if spec not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {spec!r}")
    if spec == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if spec == "cuda" and not available:
        raise ConfigError("device cuda: torch sees no CUDA device here (a CPU-only torch build, or no GPU); "
                          "use --device cpu or auto")
    return "cuda" if available else "cpu"


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cpu_workers(limit: int = 2) -> int:
    """Threads to run independent CPU batches side by side: the cores this process may use, at most ``limit``."""
    return max(1, min(limit, available_cpus()))
