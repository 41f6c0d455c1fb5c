"""Datasets for training candidates: a built-in generated set, or a folder of images, streamed.

``load_dataset(spec, input_size)`` gives a :class:`Dataset`: which images form the train and
validation splits, their labels, and how they are normalised. Pixels are read as batches are
needed (:mod:`autosq.accuracy.datasets.stream`), so memory does not grow with the data set.
``spec`` is either

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
  to 256/224 of ``input_size`` (bilinear) and the centre cropped to a square: what training
  crops from and validation centre-crops.

Every image is decoded once into the decoded cache on disk (:mod:`.cache`; ``on_decode`` sees
the progress); where it cannot be written (no room: a warning says so), a folder's images are
decoded from the files as they are read, and a generated set is held in memory. Unreadable
images (any file Pillow fails to decode, empty files) are skipped, listed in
``Dataset.skipped`` and reported by one warning with their count and the first path. A class
whose images are all unreadable is an error.

``max_per_class`` caps the images of a class, deterministically for a seed: for a folder split
here the cap applies to the class before the split; with ``train/`` and ``val/`` it applies to
each; for ``builtin:shapes`` it caps ``N`` (validation stays ``N // 5``).

The images are normalised with each channel's mean and std over a seeded sample of at most
:data:`STATS_IMAGES` training images (validation-transformed), or a pretrained source's
convention (:meth:`Dataset.renormalised`).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from autosq.accuracy.datasets.cache import OnDecode
from autosq.accuracy.datasets.records import (
    BUILTIN_SHAPES,
    EVAL_TRANSFORM,
    IMAGE_EXTENSIONS,
    TRAIN_AUGMENTATION,
    Dataset,
    Split,
)
from autosq.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

    from autosq.accuracy.datasets.folder import FolderRows
    from autosq.accuracy.datasets.records import ImageSource
    from autosq.arch.weights import Normalisation

MIN_INPUT_SIZE = 8
SHAPES_TRAIN_PER_CLASS = 300
STATS_IMAGES = 1000
# Photos are stored at this share of the input size: validation centre-crops the input size
# from it, the usual 256/224.
STORED_SCALE = 256 / 224

__all__ = ["BUILTIN_SHAPES", "EVAL_TRANSFORM", "IMAGE_EXTENSIONS", "TRAIN_AUGMENTATION",
           "Dataset", "check_spec", "load_dataset"]


def check_spec(spec: str) -> None:
    """Refuse an empty data name: ``Path("")`` is the current folder, never what was meant."""
    if not spec.strip():
        raise DataError("data is empty; expected a folder of images with one subfolder per "
                        "class, or builtin:shapes[:N]")


def load_dataset(
    spec: str,
    input_size: int,
    seed: int = 0,
    val_fraction: float = 0.2,
    max_per_class: int | None = None,
    on_decode: OnDecode | None = None,
) -> Dataset:
    """Load ``builtin:shapes[:N]`` or an ImageFolder-layout folder as a streamed Dataset.

    Raises :class:`DataError` (one line naming the path and what is expected) for a missing or
    malformed dataset. See the module docstring for the splits, the cache and skipped images.
    """
    from autosq.accuracy.datasets.cache import cache_key, remember, remembered

    _check_args(input_size, seed, val_fraction, max_per_class)
    check_spec(spec)
    if spec.startswith("builtin:"):
        n_train = _parse_builtin(spec)
        if max_per_class is not None:
            n_train = min(n_train, max_per_class)
        key = cache_key(["builtin", BUILTIN_SHAPES, n_train, input_size, seed])
        dataset = remembered(key) or _shapes(spec, key, n_train, input_size, seed, on_decode)
    else:
        from autosq.accuracy.datasets.folder import fingerprint, scan

        root = Path(spec).expanduser()
        layout = scan(root)
        prints = fingerprint(root, layout)
        side = max(input_size, round(input_size * STORED_SCALE))
        key = cache_key(["folder", str(root.resolve()), side, seed, val_fraction, max_per_class,
                         prints])
        dataset = remembered(key) or _folder(spec, key, root, layout, prints, side, input_size,
                                             seed, val_fraction, max_per_class, on_decode)
    remember(key, dataset)
    for note in dataset.notes:
        warnings.warn(note, stacklevel=2)
    if dataset.skipped:
        warnings.warn(f"skipped {len(dataset.skipped)} unreadable image(s) in {spec} (first: "
                      f"{dataset.skipped[0]})", stacklevel=2)
    # A fresh object per call: a caller editing its lists must not edit the kept one. The name
    # is this call's spec ("builtin:shapes" and "builtin:shapes:300" share a cache entry).
    return replace(dataset, name=spec, classes=list(dataset.classes),
                   skipped=list(dataset.skipped), notes=[])


def _shapes(spec: str, key: str, n_train: int, size: int, seed: int,
            on_decode: OnDecode | None) -> Dataset:
    import numpy as np
    import torch

    from autosq.accuracy.datasets.cache import build_cache, open_cache, room_for
    from autosq.accuracy.datasets.shapes import SHAPES_CLASSES, shapes_rows
    from autosq.accuracy.datasets.sources import ArraySource

    n_val = max(1, n_train // 5)
    count = 10 * (n_train + n_val)
    cached = open_cache(key, count, size)
    notes: list[str] = []
    source: ImageSource
    if cached is None:
        # Where the images go is decided before any is drawn (or any label array allocated):
        # the decoded cache, or memory when the cache has no room.
        why = room_for(count, size)
        if why is not None:
            _check_memory(spec, count, size, why)
        train_y, val_y, images = shapes_rows(n_train, size, seed)
        built = build_cache(key, count, size, images, on_decode) if why is None else why
        if isinstance(built, str):  # no cache: a generated set is held in memory instead
            _check_memory(spec, count, size, built)
            _, _, images = shapes_rows(n_train, size, seed)
            source = ArraySource(np.stack(list(images)))
        else:
            cached = built
    else:
        train_y, val_y, _ = shapes_rows(n_train, size, seed)
    if cached is not None:
        source = cached.file
    train = Split(source, np.arange(len(train_y)), torch.from_numpy(train_y))
    val = Split(source, np.arange(len(train_y), count), torch.from_numpy(val_y))
    return _finish(Dataset(spec, list(SHAPES_CLASSES), size, train, val, [], "generated",
                           _identity(), key, source.describe(), notes=notes), seed)


def _folder(spec: str, key: str, root: Path, layout: dict[str, dict[str, list[Path]]],
            prints: list[list[object]], side: int, input_size: int, seed: int,
            val_fraction: float, max_per_class: int | None,
            on_decode: OnDecode | None) -> Dataset:
    import numpy as np
    import torch

    from autosq.accuracy.datasets.cache import build_cache, open_cache, room_for
    from autosq.accuracy.datasets.folder import folder_rows, split_rows
    from autosq.accuracy.datasets.sources import FileSource

    sizes = {root / str(p[0]): int(p[2]) for p in prints}  # type: ignore[call-overload]
    rows = folder_rows(root, layout, seed, max_per_class, sizes)
    count = len(rows.paths)
    cached = open_cache(key, count, side)
    notes: list[str] = []
    if cached is None:
        why = room_for(count, side)
        if why is None:
            built = build_cache(key, count, side, _parallel(rows, side), on_decode)
            why = built if isinstance(built, str) else None
            cached = None if isinstance(built, str) else built
        if why is not None:
            notes.append(f"no decoded cache for {spec} ({why}): its images are decoded from "
                         "the files as they are read, and an unreadable one is replaced by the "
                         "next")
    source: ImageSource = cached.file if cached is not None else FileSource(rows.paths, side)
    bad = set(cached.bad) if cached is not None else set(rows.empty)
    train, val, how = split_rows(rows, bad, seed, val_fraction)
    labels = torch.tensor(rows.labels, dtype=torch.int64)
    t, v = np.array(train, dtype=np.int64), np.array(val, dtype=np.int64)
    skipped = [str(rows.paths[r]) for r in sorted(bad)]
    return _finish(Dataset(spec, list(rows.classes), input_size, Split(source, t, labels[t]),
                           Split(source, v, labels[v]), skipped, how, _identity(), key,
                           source.describe(), notes=notes), seed)


def _parallel(rows: FolderRows, side: int) -> Iterator[np.ndarray | None]:
    """Decode the rows' files in order, on every CPU this process may use (empty files are
    unreadable without opening them)."""
    from autosq.accuracy.datasets.sources import decode_image
    from autosq.accuracy.threads import available_cpus

    jobs = [(None if r in rows.empty else p) for r, p in enumerate(rows.paths)]
    workers = min(available_cpus(), 8)
    if workers <= 1 or len(jobs) < 256:
        for path in jobs:
            yield None if path is None else decode_image(path, side)
        return
    import multiprocessing

    from autosq.accuracy.datasets.forked import start_pool

    context = multiprocessing.get_context("fork" if "fork" in
                                          multiprocessing.get_all_start_methods() else None)
    pool = start_pool(context, workers)
    try:
        yield from pool.imap(_decode_job, [(p, side) for p in jobs], chunksize=32)
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()  # the workers finish their queue and exit: nothing is killed mid-task
    finally:
        pool.join()


def _decode_job(job: tuple[Path | None, int]) -> np.ndarray | None:
    from autosq.accuracy.datasets.sources import decode_image

    path, side = job
    return None if path is None else decode_image(path, side)


def _identity() -> Normalisation:
    from autosq.arch.weights import Normalisation

    return Normalisation((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "none")


def _finish(dataset: Dataset, seed: int) -> Dataset:
    """The dataset normalised with its training images' statistics (a seeded sample)."""
    import numpy as np
    import torch

    from autosq.accuracy.datasets.records import Split
    from autosq.arch.weights import Normalisation

    n = len(dataset.train)
    pick = np.sort(np.random.default_rng([seed, 7]).permutation(n)[:STATS_IMAGES])
    probe = replace(dataset, train=Split(dataset.train.source, dataset.train.rows[pick],
                                         dataset.train.labels[torch.from_numpy(pick)]))
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count = 0
    for x, _ in probe.batches("train", 256, workers=0):
        total += x.sum((0, 2, 3), dtype=torch.float64)
        squares += x.square_().sum((0, 2, 3), dtype=torch.float64)
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt()
    # A constant channel (a grey-scale set, say) has std 0: leave its scale alone.
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    norm = Normalisation(tuple(float(m) for m in mean), tuple(float(s) for s in std),  # type: ignore[arg-type]
                         "the data's own")
    return replace(dataset, normalisation=norm)


def _check_memory(spec: str, images: int, input_size: int, no_cache: str) -> None:
    """Refuse, with the numbers, a generated set this machine cannot hold in memory (only when
    there is no decoded cache to put it in: ``no_cache`` says why)."""
    from autosq.memory import check_allocation

    check_allocation(images * 3 * input_size * input_size * 1.0,
                     f"{spec} ({images:,} images at {input_size}px) needs to be held in memory "
                     f"(no decoded cache: {no_cache}) and",
                     "ask for fewer images or a smaller input size, or give autosq a cache "
                     "folder with room (AUTOSQ_CACHE_DIR)")


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
