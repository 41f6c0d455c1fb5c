"""Where a dataset's pixels come from, one image at a time: a decoded cache file on disk (read
with ``pread``, so no copy of the set is ever held in memory and worker processes share the
page cache), an array in memory (small generated sets when there is no usable cache folder),
or the image files themselves (decoded as they are read, when the cache would not fit).

Every source gives ``read(row)``: a ``(3, side, side)`` uint8 image, or None for a file that
cannot be decoded. Sources hold no open file between processes: each process opens its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


MAX_STRIP = 16  # an image resized larger than this many crops is resized by its crop alone


def decode_image(path: Path, side: int) -> np.ndarray | None:
    """(3, side, side) uint8: the shorter side resized to ``side`` (bilinear, as Pillow's
    reduced JPEG decoding allows), the centre cropped square; None if unreadable."""
    import warnings

    import numpy as np
    from PIL import Image, ImageOps

    # Whatever Pillow raises on a broken file (OSError, SyntaxError, struct errors, decompression
    # bombs, ...) means the same here: this image cannot be used.
    try:
        with warnings.catch_warnings():
            # Pillow warns (on stderr) of an image over its pixel limit and decodes it; here
            # one that would still be that large after draft() is refused, below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
        with opened:
            # JPEG can decode at a reduced scale, still at least side x side: much faster.
            opened.draft("RGB", (side, side))
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and opened.size[0] * opened.size[1] > limit:
                return None  # a decompression bomb (or a photo too large to decode here)
            image = ImageOps.exif_transpose(opened)
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")
            image = image.convert("RGB")
            w, h = image.size
            scale = side / min(w, h)
            nw, nh = max(side, round(w * scale)), max(side, round(h * scale))
            left, top = (nw - side) // 2, (nh - side) // 2
            if nw * nh <= MAX_STRIP * side * side:
                image = image.resize((nw, nh), Image.Resampling.BILINEAR)
                image = image.crop((left, top, left + side, top + side))
            else:
                # A long strip (a 1-pixel-high PNG of a few bytes, say) would be resized to
                # gigabytes: resize only the square the crop keeps, the same pixels' mapping.
                sx, sy = w / nw, h / nh
                image = image.resize((side, side), Image.Resampling.BILINEAR, box=(
                    left * sx, top * sy, (left + side) * sx, (top + side) * sy))
            array = np.asarray(image, dtype=np.uint8)
    except Exception:
        return None
    return np.ascontiguousarray(array.transpose(2, 0, 1))


@dataclass
class ArraySource:
    """Images held in memory: a ``(N, 3, side, side)`` uint8 array."""

    images: np.ndarray

    @property
    def side(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def read(self, row: int) -> np.ndarray | None:
        image: np.ndarray = self.images[row]
        return image

    def describe(self) -> str:
        return f"decoded in memory ({self.images.nbytes / 2**20:,.0f} MiB)"


@dataclass
class CacheFile:
    """A decoded cache: ``count`` records of ``3 * side * side`` bytes after ``offset``."""

    path: Path
    count: int
    side: int
    offset: int
    _fd: int | None = field(default=None, repr=False, compare=False)
    _pid: int = field(default=0, repr=False, compare=False)

    def __len__(self) -> int:
        return self.count

    def read(self, row: int) -> np.ndarray | None:
        import numpy as np

        size = 3 * self.side * self.side
        for _ in range(2):
            if self._fd is None or self._pid != os.getpid():  # a worker process opens its own
                self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
            raw = os.pread(self._fd, size, self.offset + row * size)
            if len(raw) == size:
                break
            # The file was replaced (rebuilt by another process): read the new one.
            os.close(self._fd)
            self._fd = None
        else:
            raise OSError(f"the decoded cache {self.path} is shorter than its footer says")
        return np.frombuffer(raw, dtype=np.uint8).reshape(3, self.side, self.side)

    def __getstate__(self) -> dict[str, object]:  # no open file travels to another process
        return {**self.__dict__, "_fd": None, "_pid": 0}

    def describe(self) -> str:
        return f"decoded cache {self.path}"


@dataclass
class FileSource:
    """The image files themselves, decoded at ``side`` each time they are read."""

    paths: list[Path]
    side: int

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, row: int) -> np.ndarray | None:
        return decode_image(self.paths[row], self.side)

    def describe(self) -> str:
        return "decoded from the files as they are read (no cache)"
