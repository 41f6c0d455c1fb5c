"""A second real data set for the accuracy studies: the UCI handwritten digits.

scikit-learn ships them inside its wheel (``sklearn.datasets.load_digits``: 1,797 real 8x8
grey-level scans of handwritten digits, 10 classes, from 43 writers), so nothing is downloaded.
:func:`write_digits` writes them as an ImageFolder (one folder per digit, 8x8 PNGs) that
``autosq ... --data FOLDER`` reads; autosq's loader upscales them to the input size and splits
them 80/20, seeded and stratified (1,437 train / 360 validation images).

Usage: python bench/digits.py OUT_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_digits(root: Path) -> Path:
    """Write the 1,797 digits under ``root/<digit>/NNNN.png``; returns ``root``."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        # 0..16 grey levels, ink high: to 0..255 with white ink on black, as scanned.
        pixels = np.clip(np.rint(image * 255.0 / 16.0), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/digits.py OUT_FOLDER")
    print(write_digits(Path(sys.argv[1])))
