"""Image folders in the ImageFolder layout: scan (with clear errors), fingerprint for the cache
key, decode with Pillow (unreadable images skipped and listed), split seeded and stratified."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.accuracy.datasets.records import (
    BUILTIN_SHAPES,
    EXT_LIST,
    IMAGE_EXTENSIONS,
    RawDataset,
)
from autosq.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import torch


def scan(root: Path) -> dict[str, dict[str, list[Path]]]:
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
            f"holding images ({EXT_LIST})"
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
            raise DataError(f"class {name!r} in {folder} has no images ({EXT_LIST})")
        out[name] = files
    return out


def fingerprint(root: Path, layout: dict[str, dict[str, list[Path]]]) -> list[list[Any]]:
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


def build_folder(
    root: Path,
    layout: dict[str, dict[str, list[Path]]],
    size: int,
    seed: int,
    val_fraction: float,
    max_per_class: int | None,
) -> RawDataset:
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
                f"first: {paths[0]}); expected images Pillow can open ({EXT_LIST})"
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
    return RawDataset(classes, train_x, train_y, val_x, val_y, skipped, split_desc)


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
