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

import contextlib
import hashlib
import json
import math
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import torch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
BUILTIN_SHAPES = "builtin:shapes"
SHAPES_CLASSES = (
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "horizontal_stripes",
    "vertical_stripes",
    "checkerboard",
    "diagonal_line",
    "dot_grid",
)
SHAPES_TRAIN_PER_CLASS = 300
MIN_INPUT_SIZE = 8
# Part of every cache key: bump it when decoding or generation changes, so old caches go unused.
_CACHE_VERSION = 2
# Datasets kept in this process. A search uses one; a few cover tests and benchmarks without
# holding many copies of a large train set.
_MEMORY_SIZE = 4
_MEMORY: OrderedDict[str, Dataset] = OrderedDict()
_EXT_LIST = ", ".join(IMAGE_EXTENSIONS)


@dataclass
class Dataset:
    """A train and a validation split of normalised images, ready for a training loop."""

    name: str
    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    input_size: int
    skipped: list[str]
    split: str
    # The per-channel statistics the images were normalised with (of [0, 1] pixel values).
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """How many classes (the width of a classifier's output)."""
        return len(self.classes)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: name, classes, split sizes, input size, skipped count, split."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "num_classes": self.num_classes,
            "n_train": int(self.train_y.shape[0]),
            "n_val": int(self.val_y.shape[0]),
            "input_size": self.input_size,
            "skipped": len(self.skipped),
            "split": self.split,
            "mean": [round(m, 6) for m in self.mean],
            "std": [round(s, 6) for s in self.std],
        }


@dataclass
class _Raw:
    """What the caches hold: uint8 images (N, 3, S, S) and int64 labels, before normalising."""

    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    skipped: list[str]
    split: str


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
        key = _key(["builtin", BUILTIN_SHAPES, n_train, input_size, seed])

        def build() -> _Raw:
            return _build_shapes(n_train, input_size, seed)

    else:
        root = Path(spec).expanduser()
        layout = _scan(root)
        key = _key(
            [
                "folder",
                str(root.resolve()),
                input_size,
                seed,
                val_fraction,
                max_per_class,
                _fingerprint(root, layout),
            ]
        )

        def build() -> _Raw:
            return _build_folder(root, layout, input_size, seed, val_fraction, max_per_class)

    dataset = _cached(key, spec, input_size, build)
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


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 1/8 of the side (zero fill) of a batch.

    ``x`` is (N, C, H, W); every random draw comes from ``generator``, so a seeded generator
    gives the same result. Returns a new tensor of the same shape; ``x`` is left alone.
    """
    import torch

    if x.dim() != 4:
        raise ValueError(f"augment expects a batch (N, C, H, W); got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    device = generator.device
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    source = torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
    mh, mw = max(1, h // 8), max(1, w // 8)
    shift_y = torch.randint(-mh, mh + 1, (n,), generator=generator, device=device).tolist()
    shift_x = torch.randint(-mw, mw + 1, (n,), generator=generator, device=device).tolist()
    # Zero fill is the dataset mean after normalising, the least conspicuous background. Slice
    # copies per image beat a gathered index 2-3x at 64 px.
    out = torch.zeros_like(x)
    for i, (dy, dx) in enumerate(zip(shift_y, shift_x, strict=True)):
        out[i, :, max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = source[
            i, :, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)
        ]
    return out


# ---------------------------------------------------------------------------------------------
# Arguments, keys and caches


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


def _key(parts: list[Any]) -> str:
    return json.dumps([_CACHE_VERSION, *parts], separators=(",", ":"))


def _cached(key: str, spec: str, input_size: int, build: Callable[[], _Raw]) -> Dataset:
    """The dataset of ``key`` from this process, else from disk, else built (and stored)."""
    digest = hashlib.sha1(key.encode()).hexdigest()
    if digest in _MEMORY:
        _MEMORY.move_to_end(digest)
        return _MEMORY[digest]
    try:
        path: Path | None = _cache_path(digest)
    except OSError:  # no usable cache folder (read-only home, say): work without the disk cache
        path = None
    raw = _read_cache(path, key) if path is not None else None
    if raw is None:
        raw = build()
        if path is not None:
            _write_cache(path, key, raw)
    dataset = _normalise(raw, spec, input_size)
    _MEMORY[digest] = dataset
    while len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)
    return dataset


def _cache_path(digest: str) -> Path:
    from autosq.latency import cache_dir

    return cache_dir() / "data" / f"{digest}.pt"


def _read_cache(path: Path, key: str) -> _Raw | None:
    """The cached raw dataset, or None if absent, unreadable, or for another key."""
    import torch

    if not path.is_file():
        return None
    # Anything wrong with the file (truncated, corrupt, another format) means: build it again.
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("key") != key:
            return None
        raw = _Raw(
            classes=[str(c) for c in blob["classes"]],
            train_x=blob["train_x"],
            train_y=blob["train_y"],
            val_x=blob["val_x"],
            val_y=blob["val_y"],
            skipped=[str(s) for s in blob["skipped"]],
            split=str(blob["split"]),
        )
    except Exception:
        return None
    ok = (
        all(isinstance(t, torch.Tensor) for t in (raw.train_x, raw.train_y, raw.val_x, raw.val_y))
        and raw.train_x.dtype == torch.uint8
        and raw.val_x.dtype == torch.uint8
        and raw.train_x.dim() == 4
        and raw.val_x.dim() == 4
        and raw.train_x.shape[0] == raw.train_y.shape[0] > 0
        and raw.val_x.shape[0] == raw.val_y.shape[0] > 0
    )
    return raw if ok else None


def _write_cache(path: Path, key: str, raw: _Raw) -> None:
    """Write through a temporary file and a rename, so a crash never leaves half a cache."""
    import torch

    blob = {
        "key": key,
        "classes": raw.classes,
        "train_x": raw.train_x,
        "train_y": raw.train_y,
        "val_x": raw.val_x,
        "val_y": raw.val_y,
        "skipped": raw.skipped,
        "split": raw.split,
    }
    # The cache only saves time: a read-only or full disk must not fail the load.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(blob, fh)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _normalise(raw: _Raw, spec: str, input_size: int) -> Dataset:
    """Float tensors standardised per channel with the train split's mean and std."""
    train = raw.train_x.float().div_(255.0)
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3), correction=0)
    # A constant channel (a grey-scale set, say) has std 0: leave its scale alone.
    std = std.where(std > 1e-6, std.new_ones(()))
    scale = (1.0 / std)[None, :, None, None]
    shift = mean[None, :, None, None]
    train.sub_(shift).mul_(scale)
    val = raw.val_x.float().div_(255.0).sub_(shift).mul_(scale)
    return Dataset(
        name=spec,
        classes=list(raw.classes),
        train_x=train,
        train_y=raw.train_y,
        val_x=val,
        val_y=raw.val_y,
        input_size=input_size,
        skipped=list(raw.skipped),
        split=raw.split,
        mean=[float(m) for m in mean],
        std=[float(s) for s in std],
    )


# ---------------------------------------------------------------------------------------------
# Image folders


def _scan(root: Path) -> dict[str, dict[str, list[Path]]]:
    """split name ("all", or "train" and "val") -> class -> sorted image paths; checks layout."""
    if not root.exists():
        raise DataError(
            f"dataset folder {root} does not exist; expected a folder with one subfolder per "
            f"class, or {BUILTIN_SHAPES}"
        )
    if not root.is_dir():
        raise DataError(
            f"dataset {root} is not a folder; expected a folder with one subfolder per class"
        )
    subdirs = _subdirs(root)
    has_train, has_val = "train" in subdirs, "val" in subdirs
    if has_train != has_val:
        there, missing = ("train", "val") if has_train else ("val", "train")
        raise DataError(
            f"dataset folder {root} has {there}/ but no {missing}/; expected both (each with one "
            f"subfolder per class) or one subfolder per class"
        )
    if not has_train:
        return {"all": _class_files(root, subdirs)}
    train_dir, val_dir = root / "train", root / "val"
    train_classes, val_classes = _subdirs(train_dir), _subdirs(val_dir)
    _check_classes(train_dir, train_classes)
    if train_classes != val_classes:
        only_train = sorted(set(train_classes) - set(val_classes)) or ["-"]
        only_val = sorted(set(val_classes) - set(train_classes)) or ["-"]
        raise DataError(
            f"train/ and val/ in {root} have different classes (only in train/: "
            f"{', '.join(only_train)}; only in val/: {', '.join(only_val)}); expected the same "
            f"class subfolders in both"
        )
    return {
        "train": _class_files(train_dir, train_classes),
        "val": _class_files(val_dir, val_classes),
    }


def _subdirs(folder: Path) -> list[str]:
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise DataError(f"cannot read dataset folder {folder}: {exc.strerror or exc}") from exc
    return sorted(p.name for p in entries if p.is_dir() and not p.name.startswith("."))


def _check_classes(folder: Path, classes: list[str]) -> None:
    if not classes:
        raise DataError(
            f"dataset folder {folder} has no class subfolders; expected one subfolder per class "
            f"holding images ({_EXT_LIST})"
        )
    if len(classes) == 1:
        raise DataError(
            f"dataset folder {folder} has one class ({classes[0]!r}); needs at least 2 classes "
            f"(one subfolder per class)"
        )


def _class_files(folder: Path, classes: list[str]) -> dict[str, list[Path]]:
    _check_classes(folder, classes)
    out: dict[str, list[Path]] = {}
    for name in classes:
        class_dir = folder / name
        files = sorted(
            p
            for p in class_dir.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(class_dir).parts)
            and p.is_file()
        )
        if not files:
            raise DataError(f"class {name!r} in {folder} has no images ({_EXT_LIST})")
        out[name] = files
    return out


def _fingerprint(root: Path, layout: dict[str, dict[str, list[Path]]]) -> list[list[Any]]:
    """[relative path, mtime in ns, size] of every image: any change to the folder shows."""
    out: list[list[Any]] = []
    for files in layout.values():
        for paths in files.values():
            for path in paths:
                try:
                    st = path.stat()
                except OSError as exc:
                    raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from exc
                out.append([str(path.relative_to(root)), st.st_mtime_ns, st.st_size])
    return out


def _cap(paths: list[Path], cap: int | None, seed: int, salt: list[int]) -> list[Path]:
    """At most ``cap`` of ``paths``: a seeded sample, in path order."""
    import numpy as np

    if cap is None or len(paths) <= cap:
        return paths
    rng = np.random.default_rng([seed, *salt])
    keep = sorted(rng.choice(len(paths), size=cap, replace=False).tolist())
    return [paths[i] for i in keep]


def _build_folder(
    root: Path,
    layout: dict[str, dict[str, list[Path]]],
    size: int,
    seed: int,
    val_fraction: float,
    max_per_class: int | None,
) -> _Raw:
    import numpy as np
    import torch

    skipped: list[str] = []

    def read(folder: Path, name: str, paths: list[Path]) -> list[np.ndarray]:
        images = []
        for path in paths:
            image = _decode_image(path, size)
            if image is None:
                skipped.append(str(path))
            else:
                images.append(image)
        if not images:
            raise DataError(
                f"class {name!r} in {folder} has no readable images ({len(paths)} unreadable, "
                f"first: {paths[0]}); expected images Pillow can open ({_EXT_LIST})"
            )
        return images

    def stack(images: list[np.ndarray], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.stack(images))
        return x, torch.tensor(labels, dtype=torch.int64)

    parts: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "val": ([], [])}
    if "all" in layout:
        classes = list(layout["all"])
        for ci, name in enumerate(classes):
            paths = _cap(layout["all"][name], max_per_class, seed, [0, ci])
            images = read(root, name, paths)
            n = len(images)
            n_val = max(1, math.floor(n * val_fraction + 0.5))
            if n_val >= n:
                raise DataError(
                    f"class {name!r} in {root} has {n} readable image(s): a validation split of "
                    f"{val_fraction:g} would leave it no training images; expected at least 2 "
                    f"images per class, or train/ and val/ folders"
                )
            order = np.random.default_rng([seed, 1, ci]).permutation(n)
            val_idx, train_idx = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())
            for split, idx in (("train", train_idx), ("val", val_idx)):
                parts[split][0].extend(images[i] for i in idx)
                parts[split][1].extend([ci] * len(idx))
        pct = round(100 * val_fraction)
        split_desc = f"seeded split {100 - pct}/{pct} (seed {seed})"
    else:
        classes = list(layout["train"])
        for split, salt in (("train", 0), ("val", 2)):
            folder = root / split
            for ci, name in enumerate(classes):
                paths = _cap(layout[split][name], max_per_class, seed, [salt, ci])
                images = read(folder, name, paths)
                parts[split][0].extend(images)
                parts[split][1].extend([ci] * len(images))
        split_desc = "train/val folders"
    train_x, train_y = stack(*parts["train"])
    val_x, val_y = stack(*parts["val"])
    return _Raw(classes, train_x, train_y, val_x, val_y, skipped, split_desc)


def _decode_image(path: Path, size: int) -> np.ndarray | None:
    """(3, size, size) uint8: shorter side resized to ``size``, centre crop; None if unreadable."""
    import numpy as np
    from PIL import Image, ImageOps

    # Whatever Pillow raises on a broken file (OSError, SyntaxError, struct errors, decompression
    # bombs, ...) means the same here: skip this image.
    try:
        with Image.open(path) as opened:
            # JPEG can decode at a reduced scale, still at least size x size: much faster.
            opened.draft("RGB", (size, size))
            image = ImageOps.exif_transpose(opened)
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")
            image = image.convert("RGB")
            w, h = image.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            image = image.resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = (nw - size) // 2, (nh - size) // 2
            image = image.crop((left, top, left + size, top + size))
            array = np.asarray(image, dtype=np.uint8)
    except Exception:
        return None
    return np.ascontiguousarray(array.transpose(2, 0, 1))


# ---------------------------------------------------------------------------------------------
# builtin:shapes


def _build_shapes(n_train: int, size: int, seed: int) -> _Raw:
    import torch

    # Separate streams of one seed: the splits are independent and never share an image.
    train_x, train_y = _generate_shapes(n_train, size, seed, stream=0)
    val_x, val_y = _generate_shapes(max(1, n_train // 5), size, seed, stream=1)
    return _Raw(
        classes=list(SHAPES_CLASSES),
        train_x=torch.from_numpy(train_x),
        train_y=torch.from_numpy(train_y),
        val_x=torch.from_numpy(val_x),
        val_y=torch.from_numpy(val_y),
        skipped=[],
        split="generated",
    )


# The difficulty, measured with autosq.train's fit (its default recipe, one init seed each) on
# the default 3000 training images: squeezenet1_1 reaches 48% and 77% validation top-1 at 64 px
# after 2 epochs, 66% at 32 px after 5; a 7k-parameter BN CNN 77% at 32 px after 3 epochs
# (Adam). A first draft (either polarity, half-size 0.35-0.7, noise up to 0.1) gave 20% at 64 px.
_SCALE = (0.5, 0.85)  # half-size of a shape, as a fraction of half the image side
_NOISE = (0.01, 0.04)  # standard deviation of the pixel noise, of the 0..1 range
_CONTRAST = 0.3  # least luminance step from background to shape
_CHUNK = 256  # images drawn at once: bounds the temporaries (~4 MB each at 64 px)


def _generate_shapes(
    n_per_class: int, size: int, seed: int, stream: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_class`` images of each shape class, shuffled: (N, 3, S, S) uint8, (N,) int64.

    Each image: one shape or textured patch, anti-aliased (coverage from a signed distance),
    at a random position, scale and rotation, in a random colour on a random darker background,
    plus Gaussian pixel noise.
    """
    import numpy as np

    rng = np.random.default_rng([seed, stream])
    k = len(SHAPES_CLASSES)
    n = n_per_class * k
    labels = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), n_per_class))
    scale = rng.uniform(*_SCALE, n)
    centre = rng.uniform(-1.0, 1.0, (n, 2)) * (1.0 - scale)[:, None]
    spin = rng.uniform(0.0, 1.0, n)
    mirror = rng.integers(0, 2, n)
    shape_param = rng.uniform(0.0, 1.0, n)
    phase = rng.uniform(0.0, 2 * np.pi, (n, 2))
    background, foreground = _colours(rng, n)
    noise_sd = rng.uniform(*_NOISE, n)

    # float32 from here: a third faster than float64, and 8-bit output needs no more.
    f32 = np.float32
    coords = ((np.arange(size) + 0.5) / size * 2.0 - 1.0).astype(f32)
    gx, gy = coords[None, None, :], coords[None, :, None]
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        cover = np.empty((stop - start, 1, size, size), dtype=f32)
        chunk_labels = labels[start:stop]
        for c in np.unique(chunk_labels):
            local = np.nonzero(chunk_labels == c)[0]
            g = local + start
            theta = _rotation(int(c), spin[g], mirror[g]).astype(f32)[:, None, None]
            s = scale[g].astype(f32)[:, None, None]
            dx = gx - centre[g, 0].astype(f32)[:, None, None]
            dy = gy - centre[g, 1].astype(f32)[:, None, None]
            cos, sin = np.cos(theta), np.sin(theta)
            u = (dx * cos + dy * sin) / s
            v = (dy * cos - dx * sin) / s
            px = f32(2.0 / size) / s  # one pixel in shape units
            a = shape_param[g].astype(f32)[:, None, None]
            ph = phase[g].astype(f32)[:, :, None, None]
            dist = _SDF[int(c)](u, v, px, a, ph)
            cover[local, 0] = np.clip(0.5 - dist / px, 0.0, 1.0)
        bg = background[start:stop].astype(f32)[:, :, None, None]
        fg = foreground[start:stop].astype(f32)[:, :, None, None]
        image = bg + (fg - bg) * cover
        noise = np.asarray(rng.standard_normal(image.shape, dtype=f32))
        noise *= noise_sd[start:stop].astype(f32)[:, None, None, None]
        image += noise
        # To the nearest integer: add a half, clip to 0..255, truncate (astype).
        image *= 255.0
        image += 0.5
        np.clip(image, 0.0, 255.0, out=image)
        out[start:stop] = image.astype(np.uint8)
    return out, labels


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(background, foreground) RGB pairs, the foreground lighter by at least ``_CONTRAST``.

    One polarity: with either, squeezenet1_1 made 38% instead of 66% at 32 px after 5 epochs
    (51-52% instead of 48-77% at 64 px after 2), learning edges of both signs more slowly.
    """
    import numpy as np

    weights = np.array([0.299, 0.587, 0.114])
    first, second = rng.uniform(0.0, 1.0, (n, 3)), rng.uniform(0.0, 1.0, (n, 3))
    low = np.abs((second - first) @ weights) < _CONTRAST
    while low.any():
        second[low] = rng.uniform(0.0, 1.0, (int(low.sum()), 3))
        low = np.abs((second - first) @ weights) < _CONTRAST
    lighter = ((second - first) @ weights > 0)[:, None]
    return np.where(lighter, first, second), np.where(lighter, second, first)


def _rotation(label: int, spin: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Rotation angles: free for shapes, near the class's own angle for oriented classes."""
    import numpy as np

    name = SHAPES_CLASSES[label]
    if name in ("horizontal_stripes", "vertical_stripes", "checkerboard"):
        # More than +-45 degrees would turn one stripe class into the other.
        return (spin - 0.5) * np.radians(40.0)
    if name == "diagonal_line":
        return np.radians(np.where(mirror == 1, 45.0, 135.0)) + (spin - 0.5) * np.radians(30.0)
    return spin * 2 * np.pi


# Signed distances (negative inside) in shape units, where the shape fits the unit disc. ``px``
# is a pixel in those units, used to keep thin parts at least about a pixel wide; ``a`` in [0, 1)
# varies a class's proportions; ``ph`` holds two phases for textures.
_Sdf = Callable[["np.ndarray", "np.ndarray", "np.ndarray", "np.ndarray", "np.ndarray"], Any]


def _box(u: np.ndarray, v: np.ndarray, half: float) -> np.ndarray:
    import numpy as np

    return np.maximum(np.abs(u), np.abs(v)) - half


def _circle(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    return np.hypot(u, v) - (0.85 + 0.15 * a)


def _square(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    return _box(u, v, 0.8)


def _triangle(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    # Equilateral with circumradius 1: three half-planes at inradius 0.5.
    edges = [u * np.cos(t) + v * np.sin(t) for t in np.radians([90.0, 210.0, 330.0])]
    return np.maximum(np.maximum(edges[0], edges[1]), edges[2]) - 0.5


def _cross(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    w = np.maximum(0.2 + 0.12 * a, px)
    au, av = np.abs(u), np.abs(v)
    return np.minimum(np.maximum(au - 1.0, av - w), np.maximum(au - w, av - 1.0))


def _ring(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    half_width = np.maximum(0.13 + 0.14 * a, 0.75 * px)
    return np.abs(np.hypot(u, v) - (1.0 - half_width)) - half_width


def _stripes(t: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    period = np.maximum(0.35 + 0.25 * a, 4.0 * px)
    return -np.sin(2 * np.pi * t / period + ph) * period / (2 * np.pi)


def _hstripes(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    return np.maximum(_box(u, v, 0.9), _stripes(v, px, a, ph[:, 0]))


def _vstripes(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    return np.maximum(_box(u, v, 0.9), _stripes(u, px, a, ph[:, 0]))


def _checkerboard(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    cell = np.maximum(0.25 + 0.15 * a, 2.5 * px)
    wave = np.sin(np.pi * u / cell + ph[:, 0]) * np.sin(np.pi * v / cell + ph[:, 1])
    return np.maximum(_box(u, v, 0.9), -wave * cell / np.pi)


def _diagonal_line(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    w = np.maximum(0.1 + 0.1 * a, 0.75 * px)
    return np.maximum(np.abs(v) - w, np.abs(u) - 1.1)


def _dot_grid(u: np.ndarray, v: np.ndarray, px: Any, a: Any, ph: Any) -> np.ndarray:
    import numpy as np

    spacing = 0.62
    radius = np.maximum(0.15 + 0.08 * a, px)
    cu = np.clip(np.rint(u / spacing), -1, 1) * spacing
    cv = np.clip(np.rint(v / spacing), -1, 1) * spacing
    return np.hypot(u - cu, v - cv) - radius


_SDF: tuple[_Sdf, ...] = (
    _circle,
    _square,
    _triangle,
    _cross,
    _ring,
    _hstripes,
    _vstripes,
    _checkerboard,
    _diagonal_line,
    _dot_grid,
)
