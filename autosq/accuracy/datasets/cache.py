"""The decoded cache: every image of a dataset decoded once, stored as fixed-size uint8 records
in ``cache_dir("data")/<sha1 of the key>.u8``, read back one record at a time.

The key holds everything the pixels depend on (the spec, the stored side, the seed and, for a
folder, every file's path, mtime and size), so editing the folder invalidates the cache. The
file is written to a temporary name and renamed into place only when complete: a crash, a full
disk or Ctrl-C leaves no half file under the final name. Its footer (JSON: key, count, side,
the rows that could not be decoded) is checked when it is opened; a file that does not match
is rebuilt. The cache only saves time: when its folder cannot be used, or the images would not
fit in the disk's free room, the data are read from the files (or held in memory, for small
generated sets) and a warning says why. Decoded datasets are also kept in this process (the
last few), as light records: their pixels stay on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq._io import cache_dir
from autosq.accuracy.datasets.sources import CacheFile
from autosq.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from autosq.accuracy.datasets.records import Dataset

# Part of every cache key: bump it when decoding or generation changes, so old caches go unused.
_CACHE_VERSION = 3
_MAGIC = b"AUTOSQD3"
_FOOTER = struct.Struct("<Q8s")
# Free room the cache leaves on its disk, beyond its own size.
ROOM_MARGIN = 512 * 2**20
_MEMORY_SIZE = 4
_MEMORY: OrderedDict[str, Dataset] = OrderedDict()

OnDecode = Callable[[int, int], None]
"""on_decode(done, total), called as images are decoded into the cache."""

# Where a load without its own on_decode reports decoding progress (set by the CLI).
DECODE_PROGRESS: ContextVar[OnDecode | None] = ContextVar("decode_progress", default=None)


@contextlib.contextmanager
def decode_progress(callback: OnDecode) -> Iterator[None]:
    """Within the block, every dataset load reports its decoding to ``callback``."""
    token = DECODE_PROGRESS.set(callback)
    try:
        yield
    finally:
        DECODE_PROGRESS.reset(token)


def cache_key(parts: list[Any]) -> str:
    """The key of a dataset's decoded pixels (JSON)."""
    return json.dumps([_CACHE_VERSION, *parts], separators=(",", ":"))


def digest(key: str) -> str:
    """The file name part of a key."""
    return hashlib.sha1(key.encode()).hexdigest()


def remembered(key: str) -> Dataset | None:
    """The dataset of ``key`` loaded earlier in this process, if it is still kept."""
    d = digest(key)
    if d in _MEMORY:
        _MEMORY.move_to_end(d)
        return _MEMORY[d]
    return None


def remember(key: str, dataset: Dataset) -> None:
    """Keep a loaded dataset for this process's next load of the same key."""
    _MEMORY[digest(key)] = dataset
    while len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)


@dataclass(frozen=True)
class Cached:
    """An opened cache file and the rows it could not decode."""

    file: CacheFile
    bad: tuple[int, ...]


def cache_path(key: str) -> Path | None:
    """Where the cache of ``key`` lives, or None when no cache folder can be used."""
    try:
        return cache_dir("data") / f"{digest(key)}.u8"
    except (OSError, UsageError):  # no usable cache folder (read-only home, say)
        return None


def open_cache(key: str, count: int, side: int) -> Cached | None:
    """The complete cache of ``key``, or None when there is none (or it is damaged)."""
    path = cache_path(key)
    if path is None or not path.is_file():
        return None
    try:
        size = path.stat().st_size
        records = count * 3 * side * side
        with path.open("rb") as f:
            f.seek(size - _FOOTER.size)
            length, magic = _FOOTER.unpack(f.read(_FOOTER.size))
            if magic != _MAGIC or records + length + _FOOTER.size != size:
                return None
            f.seek(records)
            footer = json.loads(f.read(length))
        if footer.get("key") != key or footer.get("count") != count or footer.get("side") != side:
            return None
        bad = tuple(int(r) for r in footer.get("bad", ()))
    except (OSError, ValueError, TypeError, struct.error):
        return None
    return Cached(CacheFile(path, count, side, 0), bad)


def room_for(count: int, side: int) -> str | None:
    """None when the cache folder has room for ``count`` images, else why not (one line)."""
    path = cache_path("probe")
    if path is None:
        return "no usable cache folder"
    need = count * 3 * side * side
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError as exc:
        return f"its folder cannot be read ({exc.strerror or exc})"
    if need + ROOM_MARGIN > free:
        return (f"the decoded images would take {need / 2**30:.2f} GiB and {path.parent} has "
                f"{free / 2**30:.2f} GiB free")
    return None


def build_cache(key: str, count: int, side: int, images: Iterable[np.ndarray | None],
                on_decode: OnDecode | None = None) -> Cached | str:
    """Write ``count`` images (None: undecodable, stored as zeros) as the cache of ``key``;
    returns it, or why it could not be written (the data are then read without it)."""
    import numpy as np

    path = cache_path(key)
    if path is None:
        return "no usable cache folder"
    on_decode = on_decode or DECODE_PROGRESS.get()
    blank = np.zeros((3, side, side), dtype=np.uint8)
    bad: list[int] = []
    tmp = None
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.",
                                         suffix=".tmp", delete=False) as f:
            tmp = f.name
            done = 0
            for row, image in enumerate(images):
                if image is None:
                    bad.append(row)
                    image = blank
                f.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
                done += 1
                if on_decode is not None and (done % 256 == 0 or done == count):
                    on_decode(done, count)
            if done != count:
                raise ValueError(f"{done} images for {count} rows")
            footer = json.dumps({"key": key, "count": count, "side": side, "bad": bad}).encode()
            f.write(footer + _FOOTER.pack(len(footer), _MAGIC))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        return f"writing it failed ({exc.strerror or exc})"
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return Cached(CacheFile(path, count, side, 0), tuple(bad))
