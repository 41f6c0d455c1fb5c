"""Datasets for training candidates on the CPU: a built-in generated set, or a folder of images.

``load_dataset(spec, input_size)`` gives a :class:`Dataset` of float32 tensors, normalised with
the per-channel mean and std of its train split (applied to both splits). ``spec`` is either

- ``builtin:shapes`` (or ``builtin:shapes:N``): ten classes drawn with numpy at ``input_size``
  (circle, square, triangle, cross, ring, horizontal stripes, vertical stripes, checkerboard,
  diagonal line, dot grid), each at a random position, scale and rotation, in a random colour
  on a random darker background, with pixel noise. Fully determined by ``seed``: 300 training
  and 60 validation images per class, or ``N`` training and ``N // 5`` (at least 1) validation
  images. Train and validation come from different random streams, so they never share an
  image. ``val_fraction`` does not apply.
- a folder in ImageFolder layout: one subfolder per class holding images (.jpg .jpeg .png .bmp
  .gif .webp, any case, also in nested folders; hidden files and folders are ignored). If the
  folder has ``train/`` and ``val/`` subfolders, those are the two splits and must have the same
  classes; otherwise each class is split seeded and stratified, ``val_fraction`` of it (at
  least one image) going to validation. Images are converted to RGB, their shorter side resized
  to ``input_size`` (bilinear) and the centre cropped to a square.

Unreadable images (any file Pillow fails to decode) are skipped, listed in
``Dataset.skipped`` and reported by one warning per load with their count and the first path:
one broken file in a scraped folder should not stop a search. A class whose images are all
unreadable is empty, which is an error like any other empty class.

``max_per_class`` caps the images of a class, deterministically for a seed: for a folder split
here the cap applies to the class before the split; with ``train/`` and ``val/`` it applies to
each; for ``builtin:shapes`` it caps ``N`` (validation stays ``N // 5``).

Decoded images are cached, since every candidate of a search trains on the same data: in this
process (the last few datasets), and on disk in ``cache_dir()/data/<sha1 of the key>.pt`` as
uint8 tensors. The key holds the spec, the sizes, the seed, the split and, for a folder, every
image's path, mtime and size, so editing the folder invalidates it. Cache files are written
atomically; one that cannot be read is ignored and rebuilt. The tensors of a returned
:class:`Dataset` are shared with the in-process cache: treat them as read-only.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

from autosq.accuracy.datasets.cache import cache_key, cached
from autosq.accuracy.datasets.records import (
    BUILTIN_SHAPES,
    IMAGE_EXTENSIONS,
    Dataset,
    RawDataset,
)
from autosq.errors import DataError

MIN_INPUT_SIZE = 8
SHAPES_TRAIN_PER_CLASS = 300

__all__ = ["BUILTIN_SHAPES", "IMAGE_EXTENSIONS", "Dataset", "load_dataset"]


def load_dataset(
    spec: str,
    input_size: int,
    seed: int = 0,
    val_fraction: float = 0.2,
    max_per_class: int | None = None,
) -> Dataset:
    """Load ``builtin:shapes[:N]`` or an ImageFolder-layout folder as a normalised Dataset.

    Raises :class:`DataError` (one line naming the path and what is expected) for a missing or
    malformed dataset. See the module docstring for the splits, the caches and skipped images.
    """
    _check_args(input_size, seed, val_fraction, max_per_class)
    if spec.startswith("builtin:"):
        n_train = _parse_builtin(spec)
        if max_per_class is not None:
            n_train = min(n_train, max_per_class)
        _check_memory(spec, 10 * (n_train + max(1, n_train // 5)), input_size)
        key = cache_key(["builtin", BUILTIN_SHAPES, n_train, input_size, seed])

        def build() -> RawDataset:
            from autosq.accuracy.datasets.shapes import build_shapes

            return build_shapes(n_train, input_size, seed)

    else:
        from autosq.accuracy.datasets.folder import build_folder, fingerprint, scan

        root = Path(spec).expanduser()
        layout = scan(root)
        _check_memory(spec, sum(min(len(paths), max_per_class or len(paths))
                                for split in layout.values() for paths in split.values()),
                      input_size)
        key = cache_key(
            [
                "folder",
                str(root.resolve()),
                input_size,
                seed,
                val_fraction,
                max_per_class,
                fingerprint(root, layout),
            ]
        )

        def build() -> RawDataset:
            return build_folder(root, layout, input_size, seed, val_fraction, max_per_class)

    dataset = cached(key, spec, input_size, build)
    if dataset.skipped:
        warnings.warn(
            f"skipped {len(dataset.skipped)} unreadable image(s) in {spec} "
            f"(first: {dataset.skipped[0]})",
            stacklevel=2,
        )
    # A fresh object per call: a caller editing its lists must not edit the cached one. The
    # name is this call's spec ("builtin:shapes" and "builtin:shapes:300" share a cache entry).
    return replace(
        dataset,
        name=spec,
        classes=list(dataset.classes),
        skipped=list(dataset.skipped),
        mean=list(dataset.mean),
        std=list(dataset.std),
    )


def _check_memory(spec: str, images: int, input_size: int) -> None:
    """Refuse, with the numbers, a dataset this machine cannot hold: every image is kept as
    8-bit pixels (the cache) and as normalised float32 (the tensors trained on)."""
    from autosq.memory import check_allocation

    check_allocation(images * 3 * input_size * input_size * 5.0,
                     f"{spec} ({images:,} images at {input_size}px)",
                     "ask for fewer images or a smaller input size")


def _check_args(input_size: int, seed: int, val_fraction: float, max_per_class: int | None) -> None:
    if not isinstance(input_size, int) or input_size < MIN_INPUT_SIZE:
        raise DataError(f"input size must be a whole number >= {MIN_INPUT_SIZE}; got {input_size}")
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"data seed must be a whole number >= 0; got {seed}")
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction must be between 0 and 1; got {val_fraction}")
    if max_per_class is not None and max_per_class < 1:
        raise DataError(f"max images per class must be >= 1; got {max_per_class}")


def _parse_builtin(spec: str) -> int:
    """The training images per class of a built-in spec."""
    parts = spec.split(":")
    if parts[:2] != ["builtin", "shapes"] or len(parts) > 3:
        raise DataError(
            f"unknown built-in dataset {spec!r}; known: {BUILTIN_SHAPES} "
            f"(or {BUILTIN_SHAPES}:N for N training images per class)"
        )
    if len(parts) == 2:
        return SHAPES_TRAIN_PER_CLASS
    if not parts[2].isdigit() or int(parts[2]) < 1:
        raise DataError(
            f"bad image count in {spec!r}; expected {BUILTIN_SHAPES}:N with N a whole number >= 1"
        )
    return int(parts[2])
