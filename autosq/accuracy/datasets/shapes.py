"""``builtin:shapes``: ten classes of shapes and textures drawn with numpy, deterministically
for a seed (see :mod:`autosq.accuracy.datasets`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    Arr = np.ndarray

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

def shapes_rows(n_train: int, size: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray, Iterator[np.ndarray]]:
    """(train labels, val labels, every image in row order: the train split's, then the
    validation split's), drawn a chunk at a time, so a large set never sits in memory."""
    # Separate streams of one seed: the splits are independent and never share an image.
    train_y, train_images = _generate_shapes(n_train, size, seed, stream=0)
    val_y, val_images = _generate_shapes(max(1, n_train // 5), size, seed, stream=1)

    def rows() -> Iterator[np.ndarray]:
        for chunk in (*train_images(), *val_images()):
            yield from chunk

    return train_y, val_y, rows()


# The difficulty, measured with autosq.accuracy.train.fit (default recipe, one init seed each) on
# the default 3000 training images: squeezenet1_1 reaches 48% and 77% validation top-1 at 64 px
# after 2 epochs, 66% at 32 px after 5; a 7k-parameter BN CNN 77% at 32 px after 3 epochs
# (Adam). A first draft (either polarity, half-size 0.35-0.7, noise up to 0.1) gave 20% at 64 px.
_SCALE = (0.5, 0.85)  # half-size of a shape, as a fraction of half the image side
_NOISE = (0.01, 0.04)  # standard deviation of the pixel noise, of the 0..1 range
_CONTRAST = 0.3  # least luminance step from background to shape
_CHUNK = 256  # images drawn at once: bounds the temporaries (~4 MB each at 64 px)


def _generate_shapes(
    n_per_class: int, size: int, seed: int, stream: int
) -> tuple[np.ndarray, Callable[[], Iterator[np.ndarray]]]:
    """``n_per_class`` images of each shape class, shuffled: (N,) int64 labels, and a function
    whose iterator draws the (chunk, 3, S, S) uint8 images in order (call it once).

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

    def images() -> Iterator[np.ndarray]:
        yield from _draw(rng, n, size, labels, scale, centre, spin, mirror, shape_param, phase,
                         background, foreground, noise_sd, gx, gy)

    return labels, images


def _draw(rng: np.random.Generator, n: int, size: int, labels: Arr, scale: Arr, centre: Arr,
          spin: Arr, mirror: Arr, shape_param: Arr, phase: Arr, background: Arr, foreground: Arr,
          noise_sd: Arr, gx: Arr, gy: Arr) -> Iterator[np.ndarray]:
    import numpy as np

    f32 = np.float32
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
        yield image.astype(np.uint8)


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


def _circle(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    return np.hypot(u, v) - (0.85 + 0.15 * a)


def _square(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    return _box(u, v, 0.8)


def _triangle(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    # Equilateral with circumradius 1: three half-planes at inradius 0.5.
    edges = [u * np.cos(t) + v * np.sin(t) for t in np.radians([90.0, 210.0, 330.0])]
    return np.maximum(np.maximum(edges[0], edges[1]), edges[2]) - 0.5


def _cross(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    w = np.maximum(0.2 + 0.12 * a, px)
    au, av = np.abs(u), np.abs(v)
    return np.minimum(np.maximum(au - 1.0, av - w), np.maximum(au - w, av - 1.0))


def _ring(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    half_width = np.maximum(0.13 + 0.14 * a, 0.75 * px)
    return np.abs(np.hypot(u, v) - (1.0 - half_width)) - half_width


def _stripes(t: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    period = np.maximum(0.35 + 0.25 * a, 4.0 * px)
    return -np.sin(2 * np.pi * t / period + ph) * period / (2 * np.pi)


def _hstripes(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    return np.maximum(_box(u, v, 0.9), _stripes(v, px, a, ph[:, 0]))


def _vstripes(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    return np.maximum(_box(u, v, 0.9), _stripes(u, px, a, ph[:, 0]))


def _checkerboard(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    cell = np.maximum(0.25 + 0.15 * a, 2.5 * px)
    wave = np.sin(np.pi * u / cell + ph[:, 0]) * np.sin(np.pi * v / cell + ph[:, 1])
    return np.maximum(_box(u, v, 0.9), -wave * cell / np.pi)


def _diagonal_line(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
    import numpy as np

    w = np.maximum(0.1 + 0.1 * a, 0.75 * px)
    return np.maximum(np.abs(v) - w, np.abs(u) - 1.1)


def _dot_grid(u: np.ndarray, v: np.ndarray, px: Arr, a: Arr, ph: Arr) -> np.ndarray:
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
