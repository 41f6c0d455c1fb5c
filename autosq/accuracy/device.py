"""Where a training runs: ``--train-device auto|cpu|cuda`` (auto: the first GPU torch sees).

On a GPU a training uses mixed precision (``torch.autocast``: bfloat16 where the GPU has it,
else float16 with a gradient scaler) and channels-last tensors, the usual settings for
convolutions on current GPUs; on the CPU it runs in float32, as before, seeded and bit for bit
reproducible for a thread count; on a GPU with cuDNN's deterministic algorithms, so that a seed
gives the same network there too. Where a candidate trains never changes where it is timed (the
device profile says that). A GPU that runs out of memory is one line naming the batch size to
lower.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autosq.errors import TrainingError, UsageError

if TYPE_CHECKING:
    import torch

TRAIN_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainDevice:
    """A resolved training device: ``cpu`` or ``cuda`` (with its name), and its precision."""

    kind: str
    name: str = "cpu"
    dtype: str = "float32"  # autocast's, on a GPU
    channels_last: bool = False

    @property
    def torch(self) -> torch.device:
        """The torch device."""
        import torch

        return torch.device(self.kind)

    def describe(self) -> str:
        """``cpu (float32)`` or ``cuda: NVIDIA H200 (bfloat16 autocast, channels-last)``."""
        if self.kind == "cpu":
            return "cpu (float32)"
        return f"cuda: {self.name} ({self.dtype} autocast, channels-last)"


def resolve_device(spec: str | None = None, name: str = "train_device") -> TrainDevice:
    """The device a training runs on: ``auto`` (the default) takes the first GPU torch sees,
    else the CPU; ``cuda`` without one is a :class:`UsageError` naming ``name``."""
    import torch

    spec = "auto" if spec is None else spec  # an empty value is a mistake, not the default
    if spec not in TRAIN_DEVICES:
        raise UsageError(f"{name} must be one of {', '.join(TRAIN_DEVICES)}; got {spec!r}")
    has_cuda = torch.cuda.is_available()
    if spec == "cuda" and not has_cuda:
        raise UsageError(f"{name} cuda: torch sees no GPU here (torch {torch.__version__}, "
                         "a CPU build or no driver); use cpu or auto")
    if spec == "cpu" or not has_cuda:
        return TrainDevice("cpu")
    bf16 = torch.cuda.is_bf16_supported()
    return TrainDevice("cuda", torch.cuda.get_device_name(0),
                       "bfloat16" if bf16 else "float16", channels_last=True)


@contextlib.contextmanager
def autocast(device: TrainDevice) -> Iterator[None]:
    """Mixed precision on a GPU; nothing on the CPU."""
    if device.kind == "cpu":
        yield
        return
    import torch

    dtype = torch.bfloat16 if device.dtype == "bfloat16" else torch.float16
    with torch.autocast("cuda", dtype=dtype):
        yield


def scaler(device: TrainDevice) -> torch.amp.GradScaler | None:
    """A gradient scaler for float16 autocast (bfloat16 and the CPU need none)."""
    if device.kind != "cuda" or device.dtype != "float16":
        return None
    import torch

    return torch.amp.GradScaler("cuda")


@contextlib.contextmanager
def deterministic(device: TrainDevice) -> Iterator[None]:
    """cuDNN's deterministic algorithms (and no autotuning) on a GPU, restored on exit: cuDNN
    may otherwise pick algorithms that add in a varying order (its documentation says which),
    and the same seed must give the same network. This covers cuDNN's part only (the final
    average pooling's backward, which torch lists as non-deterministic, adds one value per input
    for a 1x1 output: exact in any order). On an H200 the defaults happened to be bit-equal
    too (bench/gpu_bench.py): not a measured fix. Nothing on the CPU, which is deterministic
    for a thread count."""
    if device.kind == "cpu":
        yield
        return
    from torch.backends import cudnn

    before = (cudnn.deterministic, cudnn.benchmark)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = before


@contextlib.contextmanager
def out_of_memory_is_one_line(device: TrainDevice, batch: int) -> Iterator[None]:
    """A GPU running out of memory becomes a :class:`TrainingError` naming the batch size."""
    try:
        yield
    except RuntimeError as exc:
        if device.kind == "cuda" and "out of memory" in str(exc).lower():
            import torch

            torch.cuda.empty_cache()
            raise TrainingError(f"the GPU ({device.name}) ran out of memory training in batches "
                                f"of {batch}: lower --batch-size (e.g. {max(1, batch // 2)})") \
                from None
        raise
