"""The dataset record: its classes, its two splits (which image of which source, which label),
how its images are normalised and augmented. It holds no pixels: batches are read, transformed
and normalised as they are needed (:mod:`autosq.accuracy.datasets.stream`), so memory does not
grow with the number of images."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import torch

    from autosq.arch.weights import Normalisation

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
EXT_LIST = ", ".join(IMAGE_EXTENSIONS)
BUILTIN_SHAPES = "builtin:shapes"
# The training recipe's augmentation and the validation transform (recorded with each trial).
TRAIN_AUGMENTATION = ("random-resized-crop (area 0.35-1, aspect 3/4-4/3) to the input size, "
                      "horizontal flip")
EVAL_TRANSFORM = "resize to 256/224 of the input size, centre crop"


class ImageSource(Protocol):
    """Where images come from (:mod:`autosq.accuracy.datasets.sources`)."""

    @property
    def side(self) -> int: ...

    def __len__(self) -> int: ...

    def read(self, row: int) -> np.ndarray | None: ...

    def describe(self) -> str: ...


@dataclass
class Split:
    """One split: rows of a source and their labels."""

    source: ImageSource
    rows: np.ndarray  # int64 rows of the source
    labels: torch.Tensor  # int64

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Dataset:
    """A train and a validation split of images, ready to stream into a training loop.

    ``normalisation`` is applied to every image as it is read: the train split's statistics
    (from a bounded sample), or a pretrained source's convention (:meth:`renormalised`).
    ``key`` identifies the pixels (a cache key, or the spec); ``pixels`` says where they come
    from (a decoded cache, memory, or the files themselves)."""

    name: str
    classes: list[str]
    input_size: int
    train: Split
    val: Split
    skipped: list[str]
    split: str
    normalisation: Normalisation
    key: str = ""
    pixels: str = ""
    augmentation: str = TRAIN_AUGMENTATION
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """How many classes (the width of a classifier's output)."""
        return len(self.classes)

    @property
    def train_y(self) -> torch.Tensor:
        """The training labels."""
        return self.train.labels

    @property
    def val_y(self) -> torch.Tensor:
        """The validation labels."""
        return self.val.labels

    @property
    def mean(self) -> list[float]:
        """The per-channel mean the images are normalised with (of [0, 1] pixel values)."""
        return list(self.normalisation.mean)

    @property
    def std(self) -> list[float]:
        """The per-channel std the images are normalised with."""
        return list(self.normalisation.std)

    def normalised_as(self, norm: Normalisation) -> bool:
        """Whether the images are normalised with ``norm``'s mean and std."""
        return all(abs(a - b) < 1e-6 for a, b in zip((*self.mean, *self.std),
                                                     (*norm.mean, *norm.std), strict=True))

    @property
    def fingerprint(self) -> str:
        """A short digest of which images form the splits (the files' names, sizes and
        times, the stored side, the split's seed and fraction): a study records it, so that a
        changed data folder is not mixed into a resumed search."""
        import hashlib
        import json

        try:
            parts = json.loads(self.key)[1:]  # without the cache format's version
        except (ValueError, TypeError):
            parts = [self.key]
        blob = json.dumps(parts, separators=(",", ":"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def renormalised(self, norm: Normalisation) -> Dataset:
        """The same images, normalised with ``norm`` (a pretrained source's convention)."""
        return replace(self, normalisation=norm)

    # -- pixels, as they are needed ----------------------------------------------------------
    def sample(self, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` images of a split (or all), validation-transformed and normalised:
        for probes (proxies, calibration, checks). Bounded: never more than asked."""
        from autosq.accuracy.datasets.stream import sample

        return sample(self, split, n)

    def batches(self, split: str, batch_size: int = 256,
                workers: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every image of a split, in order, validation-transformed and normalised."""
        from autosq.accuracy.datasets.stream import eval_batches

        return eval_batches(self, split, batch_size, workers)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: name, classes, split sizes, input size, skipped count, split,
        normalisation, augmentation and where the pixels come from."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "num_classes": self.num_classes,
            "n_train": len(self.train),
            "n_val": len(self.val),
            "input_size": self.input_size,
            "skipped": len(self.skipped),
            "split": self.split,
            "mean": [round(m, 6) for m in self.mean],
            "std": [round(s, 6) for s in self.std],
            "normalisation": self.normalisation.name,
            "augmentation": self.augmentation,
            "validation": EVAL_TRANSFORM,
            "pixels": self.pixels,
        }
