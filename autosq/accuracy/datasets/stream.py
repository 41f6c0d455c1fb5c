"""Batches, read and transformed as they are needed: the usual ImageNet recipe scaled to the
input size. Training: a random-resized crop (a random area of 35-100% of the stored image, an
aspect ratio from 3/4 to 4/3) resized to the input size, and a horizontal flip half the time.
Validation: the centre of the stored image (stored at 256/224 of the input size for photos, so
this is the usual resize-and-centre-crop; generated shapes are stored at the input size).
Then each channel is normalised (:attr:`Dataset.normalisation`).

Reproducible: every random draw of an image comes from a generator seeded by (seed, epoch,
image), and the order of each epoch from one seeded by (seed, epoch), so the batches are the
same whether they are prepared in this process or in worker processes, and however many.

Worker processes (``torch.utils.data.DataLoader``) read and transform batches beside the
training when it pays: images decoded from files, large inputs, a GPU. Small inputs read from a
cache or memory are prepared in this process, where they cost a few percent of a CPU training
step (``bench/data_bench.py``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from autosq.errors import DataError

if TYPE_CHECKING:
    from autosq.accuracy.datasets.records import Dataset, Split

AREA = (0.35, 1.0)
RATIO = (3 / 4, 4 / 3)
MAX_SUBSTITUTES = 32  # unreadable images in a row before a split is given up on
MAX_WORKERS = 8


def _seed(*parts: int) -> int:
    """One 63-bit seed from several (a stable mix, not Python's salted hash)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (p & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


class Samples(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """The images of one split as normalised tensors: keys are ``(epoch, position)`` for
    training (augmented) and positions for validation (centre crop)."""

    def __init__(self, split: Split, size: int, mean: tuple[float, ...],
                 std: tuple[float, ...], train: bool, seed: int = 0,
                 augment: bool = True) -> None:
        self.split = split
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.train = train
        self.seed = seed
        self.augment = augment

    def __len__(self) -> int:
        return len(self.split)

    def _image(self, position: int) -> tuple[np.ndarray, int]:
        """The image at ``position`` (an unreadable one replaced by the next readable)."""
        n = len(self.split)
        for k in range(MAX_SUBSTITUTES):
            p = (position + k) % n
            image = self.split.source.read(int(self.split.rows[p]))
            if image is not None:
                if k:
                    warnings.warn(f"image {int(self.split.rows[position])} of the data cannot "
                                  "be read now: replaced by the next one", stacklevel=2)
                return image, p
        raise DataError(f"{MAX_SUBSTITUTES} images in a row cannot be read (from position "
                        f"{position}; {self.split.source.describe()}): was the data folder "
                        "changed or removed while training?")

    def __getitem__(self, key: Any) -> tuple[torch.Tensor, int]:
        epoch, position = key if self.train else (0, key)
        image, p = self._image(int(position))
        x = torch.from_numpy(np.array(image, copy=True))
        side = x.shape[-1]
        if self.train and self.augment:
            rng = np.random.default_rng(_seed(self.seed, int(epoch), int(self.split.rows[p])))
            top, left, h, w = _random_box(rng, side)
            flip = bool(rng.random() < 0.5)
        else:
            s = min(self.size, side)
            top = left = (side - s) // 2
            h = w = s
            flip = False
        out = x[:, top:top + h, left:left + w].float().div_(255.0)
        if (h, w) != (self.size, self.size):
            out = F.interpolate(out[None], size=(self.size, self.size), mode="bilinear",
                                align_corners=False, antialias=h > self.size or w > self.size)[0]
        if flip:
            out = out.flip(2)
        out = out.sub_(self.mean).div_(self.std)
        return out, int(self.split.labels[p])


def _random_box(rng: np.random.Generator, side: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random-resized crop of a ``side`` square (torchvision's
    rule: ten tries at a box of the drawn area and aspect, else the whole image)."""
    area = side * side
    for _ in range(10):
        target = area * rng.uniform(*AREA)
        ratio = math.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1])))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= side and 0 < h <= side:
            return int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1)), h, w
    return 0, 0, side, side


class TrainBatches(torch.utils.data.Sampler[list[tuple[int, int]]]):
    """``steps`` batches of ``(epoch, position)`` keys: each epoch in a seeded order, a
    partial last batch of an epoch dropped (as the loop always did)."""

    def __init__(self, n: int, batch: int, steps: int, seed: int) -> None:
        self.n, self.batch, self.steps, self.seed = n, min(batch, n), steps, seed

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step, epoch = 0, 0
        while True:
            gen = torch.Generator().manual_seed(_seed(self.seed, epoch))
            order = torch.randperm(self.n, generator=gen).tolist()
            for start in range(0, self.n - self.batch + 1, self.batch):
                if step == self.steps:
                    return
                yield [(epoch, p) for p in order[start:start + self.batch]]
                step += 1
            epoch += 1


def eval_batch_size(size: int, largest: int = 256) -> int:
    """A batch for evaluation at ``size`` px that keeps its tensors small (256 images at 64 px
    and below; 21 at 224 px), so memory does not grow with the input size either."""
    return max(1, min(largest, (64 * 64 * 256) // (size * size)))


def _worker_init(_: int) -> None:
    from autosq.accuracy.datasets.forked import reset_signals

    reset_signals()
    torch.set_num_threads(1)  # a worker prepares images; the training owns the cores


def _loader(samples: Samples, batches: Any, workers: int,
            pin: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if workers <= 0:
        for keys in batches:
            items = [samples[k] for k in keys]
            yield torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])
        return
    import multiprocessing

    from autosq._signals import signals_held

    context = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    loader = torch.utils.data.DataLoader(
        samples, batch_sampler=batches, num_workers=workers, worker_init_fn=_worker_init,
        prefetch_factor=4, pin_memory=pin, multiprocessing_context=context)
    with signals_held():  # the workers fork here: a signal raised in at-fork hooks is lost
        batches_of = iter(loader)
    yield from batches_of


def choose_workers(dataset: Dataset, threads: int, device: str = "cpu",
                   requested: int | None = None) -> int:
    """Worker processes for a training's batches: ``requested`` when given; on a GPU as many as
    the CPUs allow; on the CPU the spare CPUs (the training keeps ``threads``) when images are
    decoded from files or larger than 64 px, else none (this process prepares them)."""
    from autosq.accuracy.datasets.sources import FileSource
    from autosq.accuracy.threads import available_cpus

    if requested is not None:
        return max(0, min(MAX_WORKERS, requested))
    cpus = available_cpus()
    if device != "cpu":
        return min(MAX_WORKERS, max(1, cpus - 1))
    spare = cpus - threads
    heavy = isinstance(dataset.train.source, FileSource) or dataset.input_size > 64
    return min(MAX_WORKERS, spare) if heavy and spare > 0 else 0


def train_batches(dataset: Dataset, batch: int, steps: int, seed: int, workers: int = 0,
                  pin: bool = False,
                  augment: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` augmented (unless ``augment`` is false), normalised training batches (see the
    module docstring)."""
    norm = dataset.normalisation
    samples = Samples(dataset.train, dataset.input_size, norm.mean, norm.std, True, seed,
                      augment)
    return _loader(samples, TrainBatches(len(dataset.train), batch, steps, seed), workers, pin)


def eval_batches(dataset: Dataset, split: str, batch: int = 256, workers: int | None = None,
                 pin: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every image of ``split`` ("train" or "val"), in order, centre-cropped and normalised, in
    batches of at most ``batch`` (fewer at large inputs: :func:`eval_batch_size`)."""
    part = _split(dataset, split)
    norm = dataset.normalisation
    samples = Samples(part, dataset.input_size, norm.mean, norm.std, False)
    batch = min(batch, eval_batch_size(dataset.input_size))
    keys = [list(range(i, min(i + batch, len(part)))) for i in range(0, len(part), batch)]
    if workers is None:
        from autosq.accuracy.threads import default_threads

        workers = choose_workers(dataset, default_threads())
    return _loader(samples, keys, workers, pin)


def sample(dataset: Dataset, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images of ``split`` (centre-cropped, normalised), read in this process."""
    part = _split(dataset, split)
    norm = dataset.normalisation
    samples = Samples(part, dataset.input_size, norm.mean, norm.std, False)
    items = [samples[i] for i in range(min(n, len(part)))]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def _split(dataset: Dataset, split: str) -> Split:
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val'; got {split!r}")
    part: Split = getattr(dataset, split)
    return part
