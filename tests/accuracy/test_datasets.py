"""Datasets: the generated shapes set, image folders, bad data, the caches and augmentation."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import autosq.accuracy.datasets as data
from autosq.accuracy.datasets import cache as data_cache
from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.datasets import shapes as data_shapes
from autosq.accuracy.datasets import sources as data_sources
from autosq.accuracy.datasets.shapes import SHAPES_CLASSES
from autosq.errors import DataError, UsageError

SMALL = "builtin:shapes:20"
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "grey": (128, 128, 128),
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own cache folder and an empty in-process cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUTOSQ_CACHE_DIR", str(cache))
    monkeypatch.setattr(data_cache, "_MEMORY", type(data_cache._MEMORY)())
    yield cache


def make_folder(
    root: Path, classes: dict[str, int], size: tuple[int, int] = (20, 14), ext: str = ".png"
) -> Path:
    """One subfolder per class, each with ``n`` small images of the class's colour."""
    for name, n in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            colour = tuple(min(255, c + 3 * i) for c in COLOURS[name])
            Image.new("RGB", size, colour).save(root / name / f"img{i}{ext}")
    return root


def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_cache, "_MEMORY", type(data_cache._MEMORY)())


def pixels(ds: Any, split: str = "train") -> torch.Tensor:
    """Every image of a split, validation-transformed and normalised (small sets only)."""
    return torch.cat([x for x, _ in ds.batches(split, 64, workers=0)])


# ---------------------------------------------------------------------------------------------
# builtin:shapes


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_shapes_and_dtypes(size: int) -> None:
    ds = load_dataset(SMALL, size)
    assert ds.classes == list(SHAPES_CLASSES)
    assert ds.num_classes == 10
    assert pixels(ds).shape == (200, 3, size, size)
    assert pixels(ds, "val").shape == (40, 3, size, size)
    assert pixels(ds).dtype == pixels(ds, "val").dtype == torch.float32
    assert ds.train_y.dtype == ds.val_y.dtype == torch.int64
    assert ds.input_size == size
    assert ds.split == "generated"
    assert ds.skipped == []
    # Exactly balanced, every class in both splits.
    assert torch.bincount(ds.train_y, minlength=10).tolist() == [20] * 10
    assert torch.bincount(ds.val_y, minlength=10).tolist() == [4] * 10


def test_shapes_default_count_and_cap() -> None:
    assert data._parse_builtin("builtin:shapes") == 300  # and 60 validation images per class
    ds = load_dataset("builtin:shapes", 16, max_per_class=30)
    assert torch.bincount(ds.train_y).tolist() == [30] * 10
    assert torch.bincount(ds.val_y).tolist() == [6] * 10
    assert ds.name == "builtin:shapes"


def test_shapes_deterministic_per_seed(isolated_cache: Path) -> None:
    a = load_dataset(SMALL, 32, seed=3)
    # Generated again from nothing: both caches emptied.
    data_cache._MEMORY.clear()
    for f in _cache_files(isolated_cache):
        f.unlink()
    b = load_dataset(SMALL, 32, seed=3)
    assert torch.equal(pixels(a), pixels(b)) and torch.equal(a.train_y, b.train_y)
    assert torch.equal(pixels(a, "val"), pixels(b, "val")) and torch.equal(a.val_y, b.val_y)
    c = load_dataset(SMALL, 32, seed=4)
    assert not torch.equal(pixels(a), pixels(c))
    assert not torch.equal(pixels(a, "val"), pixels(c, "val"))


def test_shapes_generation_is_deterministic_without_caches() -> None:
    import numpy as np

    def draw(seed: int) -> tuple[Any, Any]:
        labels, images = data_shapes._generate_shapes(30, 24, seed=seed, stream=0)
        return np.concatenate(list(images())), labels  # 300 images: two chunks

    (x1, y1), (x2, y2), (x3, _) = draw(7), draw(7), draw(8)
    assert x1.shape == (300, 3, 24, 24) and (x1 == x2).all() and (y1 == y2).all()
    assert not (x1 == x3).all()


def test_shapes_train_and_val_disjoint() -> None:
    ds = load_dataset(SMALL, 32)
    train = {bytes(t.numpy().tobytes()) for t in pixels(ds)}
    val = {bytes(t.numpy().tobytes()) for t in pixels(ds, "val")}
    assert len(train) == len(ds.train) and len(val) == len(ds.val)
    assert not train & val


def test_normalised_with_train_statistics() -> None:
    ds = load_dataset(SMALL, 32)
    mean = pixels(ds).mean(dim=(0, 2, 3))
    std = pixels(ds).std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-4)
    assert torch.allclose(std, torch.ones(3), atol=1e-2)
    # Validation uses the train statistics: close to, not exactly, standardised.
    assert pixels(ds, "val").mean(dim=(0, 2, 3)).abs().max() < 0.3
    info = ds.describe()
    assert info["n_train"] == 200 and info["n_val"] == 40
    assert info["classes"] == list(SHAPES_CLASSES)
    assert info["split"] == "generated" and info["skipped"] == 0
    assert len(info["mean"]) == 3 and len(info["std"]) == 3
    assert all(0 < m < 1 for m in info["mean"]) and all(0 < s < 1 for s in info["std"])


def test_describe_is_json_ready() -> None:
    import json

    info = load_dataset(SMALL, 32).describe()
    assert json.loads(json.dumps(info)) == info
    assert {"name", "classes", "n_train", "n_val", "input_size", "skipped", "split"} <= set(info)
    assert info["name"] == SMALL and info["input_size"] == 32


def test_returned_lists_are_not_the_cached_ones() -> None:
    a = load_dataset(SMALL, 32)
    a.classes.append("oops")
    b = load_dataset(SMALL, 32)
    assert b.classes == list(SHAPES_CLASSES)


# ---------------------------------------------------------------------------------------------
# Image folders


def test_folder_seeded_split(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "ds", {"red": 6, "green": 6, "blue": 10})
    ds = load_dataset(str(root), 16, seed=1)
    assert ds.classes == ["blue", "green", "red"]
    assert ds.name == str(root)
    assert ds.split == "seeded split 80/20 (seed 1)"
    assert pixels(ds).shape == (18, 3, 16, 16) and pixels(ds, "val").shape == (4, 3, 16, 16)
    # Stratified: every class in both splits, in proportion.
    assert torch.bincount(ds.train_y, minlength=3).tolist() == [8, 5, 5]
    assert torch.bincount(ds.val_y, minlength=3).tolist() == [2, 1, 1]
    # Reproducible for a seed (rebuilt, not cached), different for another.
    fresh = load_dataset(str(root), 16, seed=1)
    assert torch.equal(pixels(ds), pixels(fresh))
    data_cache._MEMORY.clear()
    for f in (tmp_path / "cache" / "data").iterdir():
        f.unlink()
    again = load_dataset(str(root), 16, seed=1)
    assert torch.equal(pixels(ds), pixels(again))
    assert torch.equal(pixels(ds, "val"), pixels(again, "val"))
    other = load_dataset(str(root), 16, seed=2)
    assert other.split == "seeded split 80/20 (seed 2)"
    assert ds.val.rows.tolist() != other.val.rows.tolist()


def test_folder_colours_survive_resize_and_crop(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "ds", {"red": 3, "blue": 3}, size=(40, 12), ext=".JPG")
    ds = load_dataset(str(root), 16, val_fraction=0.34)
    # Undo the normalisation: red images are red, blue images blue.
    rgb = pixels(ds) * torch.tensor(ds.std)[None, :, None, None]
    rgb = rgb + torch.tensor(ds.mean)[None, :, None, None]
    for img, label in zip(rgb, ds.train_y, strict=True):
        r, _, b = img.mean(dim=(1, 2)).tolist()
        assert (r > b) == (ds.classes[int(label)] == "red")


def test_folder_val_fraction_and_cap(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "ds", {"red": 10, "green": 10})
    ds = load_dataset(str(root), 16, val_fraction=0.5)
    assert ds.split == "seeded split 50/50 (seed 0)"
    assert torch.bincount(ds.val_y).tolist() == [5, 5]
    capped = load_dataset(str(root), 16, max_per_class=4)
    assert torch.bincount(capped.train_y).tolist() == [3, 3]
    assert torch.bincount(capped.val_y).tolist() == [1, 1]


def test_folder_train_val_layout(tmp_path: Path) -> None:
    make_folder(tmp_path / "ds" / "train", {"red": 5, "green": 4, "blue": 3})
    make_folder(tmp_path / "ds" / "val", {"red": 2, "green": 1, "blue": 1})
    # Nested folders count, hidden ones and other files do not.
    make_folder(tmp_path / "ds" / "train" / "red" / "more", {"red": 1})
    make_folder(tmp_path / "ds" / "train" / "red" / ".hidden", {"red": 2})
    (tmp_path / "ds" / "train" / "red" / "notes.txt").write_text("not an image")
    ds = load_dataset(str(tmp_path / "ds"), 16)
    assert ds.classes == ["blue", "green", "red"]
    assert ds.split == "train/val folders"
    assert torch.bincount(ds.train_y).tolist() == [3, 4, 6]
    assert torch.bincount(ds.val_y).tolist() == [1, 1, 2]
    assert ds.describe()["n_val"] == 4


def test_unreadable_image_skipped_and_counted(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "ds", {"red": 5, "green": 5})
    bad = root / "red" / "x.jpg"
    bad.write_bytes(b"this is not a jpeg at all" * 10)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\).*x\.jpg"):
        ds = load_dataset(str(root), 16)
    assert ds.skipped == [str(bad)]
    assert ds.describe()["skipped"] == 1
    assert len(ds.train_y) + len(ds.val_y) == 10
    # Also from the caches: the warning repeats on every load that has skipped images.
    with pytest.warns(UserWarning, match="skipped 1"):
        again = load_dataset(str(root), 16)
    assert again.skipped == [str(bad)]


def test_class_of_only_unreadable_images(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "ds", {"red": 3})
    (root / "green").mkdir()
    (root / "green" / "a.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"class 'green' in .* has no readable images"):
        load_dataset(str(root), 16)


# ---------------------------------------------------------------------------------------------
# Bad data


def _bad(tmp_path: Path, case: str) -> str:
    root = tmp_path / "ds"
    if case == "missing":
        return str(tmp_path / "nowhere")
    if case == "file":
        root.write_text("a file")
    elif case == "no classes":
        root.mkdir()
        (root / "loose.png").write_bytes(b"")
        (root / ".git").mkdir()
    elif case == "one class":
        make_folder(root, {"red": 3})
    elif case == "empty class":
        make_folder(root, {"red": 3})
        (root / "green").mkdir()
        (root / "green" / "readme.txt").write_text("no images here")
    elif case == "mismatch":
        make_folder(root / "train", {"red": 3, "green": 3})
        make_folder(root / "val", {"red": 1, "blue": 1})
    elif case == "train only":
        make_folder(root / "train", {"red": 3, "green": 3})
    elif case == "too few to split":
        make_folder(root, {"red": 3, "green": 1})
    else:
        return case
    return str(root)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", r"dataset folder .*nowhere does not exist; expected a folder"),
        ("file", r"dataset .*ds is not a folder; expected a folder with one subfolder per class"),
        ("no classes", r"has no class subfolders; expected one subfolder per class"),
        ("one class", r"has one class \('red'\); needs at least 2 classes"),
        ("empty class", r"class 'green' in .*ds has no images \(\.jpg, \.jpeg, \.png"),
        ("mismatch", r"train/ and val/ in .* have different classes \(only in train/: green; "),
        ("train only", r"has train/ but no val/"),
        ("too few to split", r"class 'green' in .* has 1 readable image\(s\).*no training"),
        ("builtin:foo", r"unknown built-in dataset 'builtin:foo'; known: builtin:shapes"),
        ("builtin:shapes:x", r"bad image count in 'builtin:shapes:x'"),
        ("builtin:shapes:0", r"bad image count"),
    ],
)
def test_bad_data(tmp_path: Path, case: str, message: str) -> None:
    spec = _bad(tmp_path, case)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(spec, 16)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": 4}, "input size must be"),
        ({"seed": -1}, "seed must be"),
        ({"val_fraction": 1.0}, "validation fraction"),
        ({"val_fraction": 0.0}, "validation fraction"),
        ({"max_per_class": 0}, "max images per class"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"input_size": 16, **kwargs}
    with pytest.raises(DataError, match=message):
        load_dataset(SMALL, **args)


# ---------------------------------------------------------------------------------------------
# Caches


def _cache_files(cache: Path) -> list[Path]:
    return sorted((cache / "data").glob("*.u8"))


def test_disk_cache_used_by_a_fresh_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    first = load_dataset(SMALL, 32)
    files = _cache_files(isolated_cache)
    assert len(files) == 1 and not list((isolated_cache / "data").glob("*.tmp"))
    assert first.describe()["pixels"] == f"decoded cache {files[0]}"

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("generated again instead of read from the cache")

    monkeypatch.setattr(data_cache, "build_cache", boom)
    fresh_memory(monkeypatch)
    second = load_dataset(SMALL, 32)
    assert torch.equal(pixels(first), pixels(second))
    assert torch.equal(first.val_y, second.val_y)
    assert first.describe() == second.describe()
    # Another key is not served from that file.
    with pytest.raises(AssertionError, match="generated again"):
        load_dataset(SMALL, 32, seed=1)


def test_memory_cache_keeps_the_loaded_record(monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset(SMALL, 32)
    monkeypatch.setattr(data_cache, "open_cache", lambda *a: pytest.fail("read the disk again"))
    second = load_dataset(SMALL, 32)
    assert second.train.source is first.train.source


def test_corrupt_cache_file_is_rebuilt(
    isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_dataset(SMALL, 32)
    (path,) = _cache_files(isolated_cache)
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a full disk
    fresh_memory(monkeypatch)
    second = load_dataset(SMALL, 32)
    assert torch.equal(pixels(first), pixels(second))
    assert path.stat().st_size > 1000  # written again, whole
    path.write_bytes(b"not a cache file")
    fresh_memory(monkeypatch)
    assert torch.equal(pixels(load_dataset(SMALL, 32), "val"), pixels(first, "val"))


def test_folder_cache_and_invalidation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_folder(tmp_path / "ds", {"red": 5, "green": 5})
    first = load_dataset(str(root), 16)
    real_decode = data_sources.decode_image
    calls: list[Path] = []

    def counting(path: Path, size: int) -> Any:
        calls.append(path)
        return real_decode(path, size)

    monkeypatch.setattr(data_sources, "decode_image", counting)
    fresh_memory(monkeypatch)
    second = load_dataset(str(root), 16)
    assert calls == [] and torch.equal(pixels(first), pixels(second))
    # A changed folder is a new key: decoded again, with the new image.
    Image.new("RGB", (8, 8), (0, 0, 0)).save(root / "green" / "new.png")
    third = load_dataset(str(root), 16)
    assert len(calls) == 11
    assert len(third.train_y) + len(third.val_y) == 11


def test_a_full_disk_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = data_cache.build_cache

    def full(key: str, count: int, side: int, images: Any, on_decode: Any = None) -> Any:
        def failing() -> Any:
            yield from images
            raise OSError(28, "No space left on device")

        return real(key, count, side, failing(), on_decode)

    monkeypatch.setattr(data_cache, "build_cache", full)
    ds = load_dataset(SMALL, 32)  # generated shapes: held in memory instead
    assert len(ds.train_y) == 200 and ds.describe()["pixels"].startswith("decoded in memory")
    root = make_folder(tmp_path / "ds", {"red": 4, "green": 4})
    with pytest.warns(UserWarning, match=r"no decoded cache for .*\(writing it failed \(No "
                                         r"space left on device\)\): its images are decoded"):
        folder = load_dataset(str(root), 16)
    assert folder.describe()["pixels"].startswith("decoded from the files")
    assert pixels(folder).shape == (6, 3, 16, 16)
    assert not list((tmp_path / "cache" / "data").glob("*"))  # no half file left


def test_a_data_set_bigger_than_the_room_is_read_from_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    root = make_folder(tmp_path / "ds", {"red": 4, "green": 4})
    with pytest.warns(UserWarning, match=r"the decoded images would take 0.00 GiB and .* has "
                                         r"0.00 GiB free"):
        ds = load_dataset(str(root), 16)
    assert len(ds.train) + len(ds.val) == 8


def test_an_image_gone_while_training_is_replaced_and_said(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from autosq.accuracy.datasets.stream import train_batches

    monkeypatch.setattr(data_cache, "room_for", lambda count, side: "no room (test)")
    root = make_folder(tmp_path / "ds", {"red": 6, "green": 6})
    with pytest.warns(UserWarning, match="no decoded cache"):
        ds = load_dataset(str(root), 16)
    first = ds.train.source.paths[int(ds.train.rows[0])]  # type: ignore[attr-defined]
    first.write_bytes(b"corrupted in the middle of an epoch")
    with pytest.warns(UserWarning, match="cannot be read now: replaced by the next one"):
        batches = list(train_batches(ds, 4, 3, seed=0))
    assert len(batches) == 3 and all(x.shape == (4, 3, 16, 16) for x, _ in batches)


def test_unwritable_cache_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_cache, "cache_path", lambda key: None)
    ds = load_dataset(SMALL, 32)
    assert len(ds.train_y) == 200
    assert not list((tmp_path / "cache").glob("**/*.u8"))


def test_import_is_cheap() -> None:
    code = ("import sys, autosq.accuracy.datasets, autosq.accuracy.datasets.records; "
            "print(sorted({'torch', 'numpy', 'PIL'} & set(sys.modules)))")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"


def test_unusable_cache_folder_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AUTOSQ_CACHE_DIR", str(blocker))
    assert len(load_dataset(SMALL, 32).train_y) == 200


def test_folder_image_modes_and_formats(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("L", (30, 20), 200).save(root / "a" / "grey.png")
    Image.new("RGBA", (12, 30), (10, 200, 10, 128)).save(root / "a" / "alpha.PNG")
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 250, 0, 0] + [0] * 762)
    palette.save(root / "a" / "pal.gif", transparency=0)
    palette.save(root / "b" / "pal.png", transparency=0)
    Image.new("RGB", (9, 9), (1, 2, 3)).save(root / "b" / "tiny.bmp")
    Image.new("RGB", (40, 40), (1, 2, 200)).save(root / "b" / "photo.webp")
    ds = load_dataset(str(root), 24, val_fraction=0.34)
    assert ds.skipped == []
    assert len(ds.train_y) == 4 and len(ds.val_y) == 2
    assert pixels(ds).shape[1:] == (3, 24, 24)


@pytest.mark.parametrize("spec", ["", "  "])
def test_an_empty_data_name_is_refused_not_read_as_the_current_folder(
        spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()  # the current folder would look like a data set of one class
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="data is empty; expected a folder of images"):
        load_dataset(spec, 32)
