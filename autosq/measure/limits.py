"""Bounds on timing an untrusted model: its file size, the memory and wall time of the process
that times it, the input it declares, and how many sessions fit in that memory together. A
leaf module (no onnxruntime, numpy or torch), so the checks run before anything is allocated.

A model file is small and says what it will allocate: a 96-byte ONNX file can declare a
30000x30000 input (3.4 GiB of floats), and a 343-byte ``Loop`` can run for 10^15 iterations.
So the input a model declares is checked against a limit before it is created, and the timing
runs in a child process with an address-space limit and a wall-clock cap
(:mod:`autosq.measure.contained`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from autosq.errors import MeasurementError, TimingUnavailable, UsageError

MIB = 1024 * 1024

# Bytes per element of the input types a timing can feed (random values of that type).
_FLOAT_TYPES = {"tensor(float)": 4, "tensor(float16)": 2, "tensor(double)": 8}
MAX_SECONDS = 86400.0  # a day: a longer cap is a mistake, and overflows some clocks


def _physical_mb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MIB
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 4096.0


def inherited_mb() -> float | None:
    """The address space this process may have at most (the hard ``RLIMIT_AS`` it inherited,
    ``ulimit -v``), in MB; None when unlimited. The timing process can limit itself only to
    that or less."""
    try:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None
    return None if hard == resource.RLIM_INFINITY else hard / MIB


def memory_ceiling_mb() -> float:
    """The most a timing process may be given: this machine's memory, or less when this
    process inherited a lower address-space limit."""
    inherited = inherited_mb()
    return _physical_mb() if inherited is None else min(_physical_mb(), inherited)


MIN_MEMORY_MB = 256.0  # the timing process itself needs about 150 MB


def default_memory_mb() -> float:
    """Half of this machine's memory, at most 8 GiB: room for any SqueezeNet, and a hostile
    model cannot take the machine down with it. Never more than this process may have: under
    an inherited ``ulimit -v`` the cap follows it."""
    return min(8192.0, _physical_mb() / 2, memory_ceiling_mb())


def ceiling_text() -> str:
    """The ceiling of a memory limit, as a message says it."""
    inherited = inherited_mb()
    if inherited is not None and inherited < _physical_mb():
        return f"what this process may use ({inherited:.0f} MB, an inherited ulimit -v)"
    return f"this machine's memory ({_physical_mb():.0f} MB)"


@dataclass(frozen=True)
class Limits:
    """What one timing may use. ``max_seconds`` is wall time per model timed (session creation,
    warm-up and runs); ``max_memory_mb`` bounds the timing process's address space;
    ``max_input_mb`` the input the model declares (by default a quarter of the memory)."""

    max_model_mb: float = 512.0
    max_seconds: float = 120.0
    max_memory_mb: float = 0.0  # 0: default_memory_mb()
    max_input_mb: float = 0.0  # 0: a quarter of max_memory_mb

    def __post_init__(self) -> None:
        for name in ("max_model_mb", "max_seconds", "max_memory_mb", "max_input_mb"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(f"{name} must be a finite number >= 0; got {value!r}")
        if self.max_model_mb <= 0 or self.max_seconds <= 0:
            raise UsageError("max_model_mb and max_seconds must be > 0")
        if self.max_seconds > MAX_SECONDS:
            raise UsageError(f"max_seconds must be at most {MAX_SECONDS:g} (a day); got "
                             f"{self.max_seconds:g}")
        if self.max_memory_mb > memory_ceiling_mb():
            raise UsageError(f"max_memory_mb must be at most {ceiling_text()}; got "
                             f"{self.max_memory_mb:g}")
        if not self.max_memory_mb:
            if default_memory_mb() < MIN_MEMORY_MB:
                raise TimingUnavailable(
                    f"this process may use only {default_memory_mb():.0f} MB of address space "
                    f"(an inherited ulimit -v); timing a model needs at least "
                    f"{MIN_MEMORY_MB:g} MB: raise the limit (ulimit -v) and run it again")
            object.__setattr__(self, "max_memory_mb", default_memory_mb())
        if self.max_memory_mb < MIN_MEMORY_MB:
            raise UsageError(f"max_memory_mb must be at least {MIN_MEMORY_MB:g} (the timing "
                             f"process itself needs about 150 MB); got {self.max_memory_mb:g}")
        if not self.max_input_mb:
            object.__setattr__(self, "max_input_mb", self.max_memory_mb / 4)

    def check_model_size(self, n_bytes: int) -> None:
        """Refuse a model file over ``max_model_mb``."""
        if n_bytes > self.max_model_mb * MIB:
            raise MeasurementError(f"the model file is {n_bytes / MIB:.1f} MB, over the limit of "
                                   f"{self.max_model_mb:g} MB (--max-model-mb)")


def input_shape(name: str, dims: Sequence[int | str | None] | None, type_: str,
                input_size: int | None,
                max_input_mb: float) -> tuple[int, ...]:
    """The concrete shape to feed a model input declared as ``dims`` of ``type_``.

    Dynamic dimensions are filled: the first (batch) with 1, the last two of a 4-D input with
    ``input_size`` (when given); any other dynamic dimension is refused, since nothing says how
    large it should be. Refused too: non-float inputs, and an input over ``max_input_mb``, with
    the numbers."""
    if type_ not in _FLOAT_TYPES:
        raise MeasurementError(f"the model's input {name!r} is {type_}; autosq times image "
                               "models, whose input is a float (or float16, double) tensor")
    if dims is None:
        raise MeasurementError(f"the model's input {name!r} has no declared shape; autosq "
                               "needs at least its rank")
    shape: list[int] = []
    for i, d in enumerate(dims):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif isinstance(d, int):
            raise MeasurementError(f"dimension {i} of the model's input {name!r} is {d}; an "
                                   "input needs at least one element along every dimension")
        elif i == 0:
            shape.append(1)
        elif len(dims) == 4 and i >= 2 and input_size is not None:
            shape.append(input_size)
        else:
            raise MeasurementError(f"dimension {i} of the model's input {name!r} is dynamic "
                                   f"({d!r}); autosq fills only the batch and, for NCHW "
                                   "inputs, height and width from the input size")
    n_bytes = math.prod(shape) * _FLOAT_TYPES[type_]
    if n_bytes > max_input_mb * MIB:
        raise MeasurementError(
            f"the model's input {name!r} has shape {'x'.join(map(str, shape))}: "
            f"{n_bytes / MIB:,.0f} MB, over the limit of {max_input_mb:g} MB (a quarter of "
            "the timing process's memory limit); refused before allocating it")
    return tuple(shape)


# Address space of one ONNX Runtime session beside its weights (arena, graph, thread pool):
# measured here for SqueezeNets, about 22 MB at 224x224 and 64 MB at 448x448, so a fixed part
# and a part per input pixel; and the timing process's own (onnxruntime imported, first session).
SESSION_BASE_BYTES = 8 * 1024 * 1024
SESSION_BYTES_PER_PIXEL = 300
WEIGHT_COPIES = 3
PROCESS_BASE_MB = 256.0
DEFAULT_SIDE = 224  # for a model whose input size is not known before its session exists


def session_bytes(model_bytes: int, input_side: int | None) -> int:
    """The address space a session of this model is expected to take."""
    side = input_side or DEFAULT_SIDE
    return (WEIGHT_COPIES * model_bytes + SESSION_BASE_BYTES
            + SESSION_BYTES_PER_PIXEL * side * side)


def interleaved_groups(sizes: Sequence[int], max_memory_mb: float,
                       input_side: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges over models of ``sizes`` bytes, in order, each group's
    sessions expected to fit together in half of what ``max_memory_mb`` leaves beside the
    process itself (every group holds at least one model)."""
    budget = max(0.0, max_memory_mb - PROCESS_BASE_MB) * 1024 * 1024 / 2
    groups: list[tuple[int, int]] = []
    start, used = 0, 0.0
    for i, n in enumerate(sizes):
        need = session_bytes(n, input_side)
        if i > start and used + need > budget:
            groups.append((start, i))
            start, used = i, 0.0
        used += need
    if start < len(sizes):
        groups.append((start, len(sizes)))
    return groups
