"""Image folders in the ImageFolder layout: scan (with clear errors), fingerprint for the cache
key, the files in their row order, and the seeded, stratified split over the readable ones."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.accuracy.datasets.records import (
    BUILTIN_SHAPES,
    EXT_LIST,
    IMAGE_EXTENSIONS,
)
from autosq.errors import DataError

if TYPE_CHECKING:
    pass


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


@dataclass(frozen=True)
class FolderRows:
    """Every image file of a dataset folder in row order (class by class; train/ then val/ for
    that layout), its class, and its part ("all", "train" or "val")."""

    root: Path
    classes: list[str]
    paths: list[Path]
    labels: list[int]
    parts: list[str]
    empty: frozenset[int]  # rows whose file is empty: unreadable without decoding


def folder_rows(root: Path, layout: dict[str, dict[str, list[Path]]], seed: int,
                max_per_class: int | None, sizes: dict[Path, int]) -> FolderRows:
    """The files of ``layout`` (capped per class, seeded) in row order; ``sizes`` are the files'
    byte sizes from the fingerprint."""
    classes = list(layout.get("all") or layout["train"])
    paths: list[Path] = []
    labels: list[int] = []
    parts: list[str] = []
    for part, salt in (("all", 0), ("train", 0), ("val", 2)):
        if part not in layout:
            continue
        for ci, name in enumerate(classes):
            kept = _cap(layout[part][name], max_per_class, seed, [salt, ci])
            paths += kept
            labels += [ci] * len(kept)
            parts += [part] * len(kept)
    empty = frozenset(i for i, p in enumerate(paths) if sizes.get(p, 1) == 0)
    return FolderRows(root, classes, paths, labels, parts, empty)


def split_rows(rows: FolderRows, bad: set[int], seed: int,
               val_fraction: float) -> tuple[list[int], list[int], str]:
    """(train rows, val rows, how they were split) over the readable rows: with train/ and
    val/ folders as they are; otherwise each class seeded and stratified, ``val_fraction`` of it
    (at least one image) to validation. Raises :class:`DataError` for a class without readable
    images or too few to split."""
    import numpy as np

    by_class: dict[tuple[str, int], list[int]] = {}
    unreadable: dict[tuple[str, int], list[int]] = {}
    for r, (label, part) in enumerate(zip(rows.labels, rows.parts, strict=True)):
        (unreadable if r in bad else by_class).setdefault((part, label), []).append(r)
    train: list[int] = []
    val: list[int] = []
    for part in dict.fromkeys(rows.parts):
        folder = rows.root if part == "all" else rows.root / part
        for ci, name in enumerate(rows.classes):
            readable = by_class.get((part, ci), [])
            if not readable:
                lost = unreadable.get((part, ci), [])
                raise DataError(
                    f"class {name!r} in {folder} has no readable images ({len(lost)} "
                    f"unreadable, first: {rows.paths[lost[0]] if lost else '-'}); expected "
                    f"images Pillow can open ({EXT_LIST})")
            if part != "all":
                (train if part == "train" else val).extend(readable)
                continue
            n = len(readable)
            n_val = max(1, math.floor(n * val_fraction + 0.5))
            if n_val >= n:
                raise DataError(
                    f"class {name!r} in {rows.root} has {n} readable image(s): a validation "
                    f"split of {val_fraction:g} would leave it no training images; expected at "
                    "least 2 images per class, or train/ and val/ folders")
            order = np.random.default_rng([seed, 1, ci]).permutation(n)
            val += [readable[i] for i in sorted(order[:n_val].tolist())]
            train += [readable[i] for i in sorted(order[n_val:].tolist())]
    if "all" in rows.parts:
        pct = round(100 * val_fraction)
        return train, val, f"seeded split {100 - pct}/{pct} (seed {seed})"
    return train, val, "train/val folders"
