"""Decoded datasets, cached: in this process (the last few) and on disk as uint8 tensors in
``cache_dir("data")/<sha1 of the key>.pt``, written atomically. A cache file that cannot be read
is ignored and rebuilt; a cache folder that cannot be used only costs time."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autosq._io import cache_dir, write_file
from autosq.accuracy.datasets.records import Dataset, RawDataset, normalise
from autosq.errors import UsageError

# Part of every cache key: bump it when decoding or generation changes, so old caches go unused.
_CACHE_VERSION = 2
# Datasets kept in this process. A search uses one; a few cover tests and benchmarks without
# holding many copies of a large train set.
_MEMORY_SIZE = 4
_MEMORY: OrderedDict[str, Dataset] = OrderedDict()

def cache_key(parts: list[Any]) -> str:
    return json.dumps([_CACHE_VERSION, *parts], separators=(",", ":"))


def cached(key: str, spec: str, input_size: int, build: Callable[[], RawDataset]) -> Dataset:
    """The dataset of ``key`` from this process, else from disk, else built (and stored)."""
    digest = hashlib.sha1(key.encode()).hexdigest()
    if digest in _MEMORY:
        _MEMORY.move_to_end(digest)
        return _MEMORY[digest]
    try:
        path: Path | None = _cache_path(digest)
    except (OSError, UsageError):  # no usable cache folder (read-only home, say): no disk cache
        path = None
    raw = _read_cache(path, key) if path is not None else None
    if raw is None:
        raw = build()
        if path is not None:
            _write_cache(path, key, raw)
    dataset = normalise(raw, spec, input_size)
    _MEMORY[digest] = dataset
    while len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)
    return dataset


def _cache_path(digest: str) -> Path:
    return cache_dir("data") / f"{digest}.pt"


def _read_cache(path: Path, key: str) -> RawDataset | None:
    """The cached raw dataset, or None if absent, unreadable, or for another key."""
    import torch

    if not path.is_file():
        return None
    # Anything wrong with the file (truncated, corrupt, another format) means: build it again.
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("key") != key:
            return None
        raw = RawDataset(
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


def _write_cache(path: Path, key: str, raw: RawDataset) -> None:
    """Store ``raw`` atomically, so a crash never leaves half a cache file."""
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
        write_file(path, lambda tmp: torch.save(blob, tmp), mode=None)
