"""Streaming at the size that ships: the same seeded batches in this process and in workers,
the training recipe's crops, devices, and a large folder trained on in bounded memory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from util import run_autosq_measured

from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.datasets.stream import _random_box, train_batches
from autosq.errors import UsageError

Cli = Callable[..., tuple[int, str, str]]


def test_batches_do_not_depend_on_worker_processes() -> None:
    ds = load_dataset("builtin:shapes:12", 32)
    here = list(train_batches(ds, 16, 5, seed=3, workers=0))
    there = list(train_batches(ds, 16, 5, seed=3, workers=2))
    assert len(here) == len(there) == 5
    for (a, ya), (b, yb) in zip(here, there, strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    other = list(train_batches(ds, 16, 5, seed=4, workers=0))
    assert not torch.equal(here[0][0], other[0][0])


def test_an_epoch_sees_every_image_once_and_crops_stay_inside() -> None:
    ds = load_dataset("builtin:shapes:4", 32)  # 40 training images
    labels = torch.cat([y for _, y in train_batches(ds, 8, 5, seed=0)])
    assert sorted(labels.tolist()) == sorted(ds.train_y.tolist())
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = _random_box(rng, 37)
        assert 0 <= top <= 37 - h and 0 <= left <= 37 - w
        assert 0.35 * 37 * 37 * 0.9 <= h * w <= 37 * 37


def test_a_cuda_training_device_without_a_gpu_is_one_line(cli: Cli) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal only happens without one")
    code, _, err = cli("search", "--data", "builtin:shapes:10", "--input-size", "32",
                       "--train-device", "cuda")
    assert code == 2 and "--train-device cuda: torch sees no GPU here" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli("search", "--data", "builtin:shapes:10", "--train-device", "tpu")
    assert code == 2 and "--train-device must be one of auto, cpu, cuda" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here: torch sees none (CPU "
                    "build or no driver); the GPU path is measured by bench/data_bench.py")
def test_training_on_a_gpu_gives_a_deployed_cpu_network() -> None:
    from autosq.accuracy.device import resolve_device
    from autosq.accuracy.train import Recipe, fit
    from autosq.arch.presets import preset

    ds = load_dataset("builtin:shapes:20", 32)
    device = resolve_device("cuda")
    model, result = fit(preset("squeezenet1_1", input_size=32, num_classes=10), ds,
                        Recipe(epochs=1.0), seed=0, device=device)
    assert result.device.startswith("cuda") and next(model.parameters()).device.type == "cpu"
    with pytest.raises(UsageError, match="must be one of"):
        resolve_device("gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here: torch sees none (CPU "
                    "build or no driver)")
def test_a_gpu_training_is_reproducible() -> None:
    from autosq.accuracy.device import resolve_device
    from autosq.accuracy.train import Recipe, fit
    from autosq.arch.presets import preset

    ds = load_dataset("builtin:shapes:20", 64)
    config = preset("squeezenet1_1", input_size=64, num_classes=10)
    runs = [fit(config, ds, Recipe(epochs=2.0), seed=3, device=resolve_device("cuda"))
            for _ in range(2)]
    (first, a), (second, b) = runs
    assert a.val_top1 == b.val_top1 and a.train_loss == b.train_loss
    for (name, x), y in zip(first.state_dict().items(), second.state_dict().values(),
                            strict=True):
        assert torch.equal(x, y), name


def test_a_folder_of_empty_files_is_one_line(tmp_path: Path) -> None:
    from autosq.errors import DataError

    for name in ("a", "b"):
        (tmp_path / "ds" / name).mkdir(parents=True)
        for i in range(500):
            (tmp_path / "ds" / name / f"{i}.jpg").touch()
    with pytest.raises(DataError, match=r"class 'a' in .* has no readable images \(500 "
                                        r"unreadable"):
        load_dataset(str(tmp_path / "ds"), 32)


def _photos(root: Path, n: int, size: int = 256) -> Path:
    """``n`` JPEG 'photos' in 4 classes: a textured field per class, each image tinted."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    fields = [(40 * np.sin(6 * (xx + label * yy)) + 120).astype(np.float32)
              for label in range(4)]
    for i in range(n):
        label = i % 4
        folder = root / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        tint = np.array([(i * 37) % 90, (i * 53) % 90, (i * 71) % 90], dtype=np.float32)
        img = (fields[label][..., None] + tint).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i}.jpg", quality=70)
    return root


@pytest.mark.slow
@pytest.mark.timeout(1200)  # decoding 3,000 photos and two commands on a loaded 2-core machine
def test_a_large_folder_at_224_px_trains_and_exports_in_bounded_memory(
        tmp_path: Path) -> None:
    """3,000 photos at 224 px: 1.7 GiB as float32 tensors (what the previous loader held, with a
    uint8 copy beside it). A search step and an export each stay far below it."""
    n = 3000
    root = _photos(tmp_path / "photos", n)
    env = {"AUTOSQ_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    db = f"sqlite:///{tmp_path / 's.db'}"
    space = tmp_path / "s.toml"
    space.write_text('name = "s"\n[fixed]\nmacro = "v1.1"\nbase_e = 16\nincr_e = 16\nfreq = 2\n'
                     'pct_3x3 = 0.5\nsr = 0.125\nconv1_filters = 16\n[params.bypass]\n'
                     'type = "categorical"\nchoices = ["none"]\n')
    peaks = []
    for args in (["search", "--data", str(root), "--input-size", "224", "--space", str(space),
                  "--trials", "1", "--max-ms", "0", "--epochs", "0.02", "--batch-size", "16",
                  "--no-retime", "--storage", db, "--study", "big", "--json"],
                 ["export", "--study", "big", "--trial", "0", "--storage", db, "--epochs",
                  "0.02", "--out", str(tmp_path / "m.onnx")]):
        # On the CPU where there is a GPU too: the bound is the loader's, and a GPU training
        # adds CUDA's own host memory (0.2 GiB for a context and one cuDNN conv on an H200).
        proc, peak = run_autosq_measured([*args, "--train-device", "cpu"], env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        assert peak > 100 * 1024, peak  # a Python with torch loaded: the figure is a real one
        peaks.append(peak)
    card = json.loads((tmp_path / "m.onnx.json").read_text())
    assert card["accuracy"]["n_train"] + card["accuracy"]["n_val"] == n
    decoded_float = n * 3 * 224 * 224 * 4 / 2**20  # MiB
    # ru_maxrss is in KiB: the largest process of both commands, at most half the decoded set
    # (measured: about 0.6 GB, whatever the number of images; bench/memory_bench.py)
    assert max(peaks) / 1024 < 0.5 * decoded_float, (max(peaks) / 1024, decoded_float)
