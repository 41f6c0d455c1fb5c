"""Hostile .dcz containers (badinput-2: B-dz-*): resealed with a valid checksum, each is refused
in one line before anything is decoded or written, in bounded memory and time; a container that
declares a network as large as autosq decodes is decoded within the bounds."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import seal, split, tiny_config, valid_container, zero_bomb

from autosq.compress.container import ContainerError, from_bytes

Cli = Callable[..., tuple[int, str, str]]
GIB = 1 << 30


# Runs autosq in a child and prints the child's own peak memory (RUSAGE_CHILDREN would mix in
# every earlier child of the test process).
_MEASURED = ("import resource, sys\nfrom autosq.cli import main\ncode = main(sys.argv[1:])\n"
             "print(f'maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', "
             "file=sys.stderr)\nsys.exit(code)")


def measured(args: list[str], cache: Path) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """(wall seconds, peak resident bytes, the run) of ``autosq ARGS`` in a child process."""
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _MEASURED, *args], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "AUTOSQ_CACHE_DIR": str(cache)})
    wall = time.perf_counter() - t0
    peak = int(run.stderr.strip().splitlines()[-1].split()[1]) * 1024
    return wall, peak, run


def _edit_layer(data: bytes, **changes: object) -> bytes:
    header, payload = split(data)
    header["layers"][0].update(changes)
    return seal(header, payload)


@functools.cache
def _cases() -> dict[str, bytes]:
    good = valid_container()
    header, payload = split(good)
    renamed = dict(header, layers=[dict(header["layers"][0], name="../../../..adv-pwned"),
                                   *header["layers"][1:]])
    shaped = dict(header, layers=[dict(e, shape=[2, 2]) for e in header["layers"]])
    return {
        "deepjson": seal(b"[" * 200_000 + b"]" * 200_000),  # B-dz-deepjson
        "hdrlist": seal(b"[1,2,3]"),  # B-dz-hdrlist
        "hugeentries": _edit_layer(good, entries=10**12),  # B-dz-hugeentries
        "entries2e9": _edit_layer(good, entries=2 * 10**9),  # B-dz-entries2e9
        "bomb": zero_bomb(tiny_config(), declared=4_000_000),  # B-dz-bomb4m (small)
        "nametrav": seal(renamed, payload),  # B-dz-nametrav-pt
        "wrongshapes": seal(shaped, payload),  # B-dz-wrongshapes-pt
        "codebook": _edit_layer(good, codebook_len=10**9),
        "notjson": seal(b"\xff\xfe{"),
        "config": seal(dict(header, config={"base_e": [[1] * 4] * 4}), payload),
    }


WHY = {"deepjson": "nests deeper than", "hdrlist": "not an object with a config",
       "hugeentries": "its entries is 1000000000000", "entries2e9": "its entries is 2000000000",
       "bomb": "its entries is 4000000", "nametrav": "is not a conv of its network",
       "wrongshapes": "has shape [2, 2]", "codebook": "its codebook_len",
       "notjson": "header is not JSON", "config": "base_e must be an integer"}


def test_every_hostile_container_is_refused_before_decoding() -> None:
    for name, data in _cases().items():
        t0 = time.perf_counter()
        with pytest.raises(ContainerError) as info:
            from_bytes(data, f"{name}.dcz")
        message = str(info.value)
        assert WHY[name] in message and f"{name}.dcz is not a readable" in message, message
        assert len(message) < 400 and "\n" not in message
        assert time.perf_counter() - t0 < 2, name  # checked from declared sizes, not decoded


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_the_cli_refuses_them_in_one_line_writing_nothing(cli: Cli, tmp_path: Path,
                                                          suffix: str) -> None:
    for name in ("hdrlist", "nametrav", "wrongshapes"):
        path = tmp_path / f"{name}.dcz"
        path.write_bytes(_cases()[name])
        code, _, err = cli("decompress", str(path), "--out", str(tmp_path / f"o{suffix}"))
        assert code == 2 and len(err.strip().splitlines()) == 1 and WHY[name] in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.dcz"]
        path.unlink()


def test_a_container_of_the_largest_network_decodes_in_bounded_memory_and_time(
        tmp_path: Path, isolated_cache: Path) -> None:
    # All-zero 1-bit streams of a network of 4.6M weights (the most symbols a byte can hold):
    # decoded and written as a checked ONNX model, well under 1 GiB and 30 s. At the cap
    # (2**24 weights): docs/errors.md, "Untrusted files" (bench/hostile_bench.py).
    from autosq.arch.config import SqueezeNetConfig

    config = SqueezeNetConfig(base_e=64, incr_e=64, freq=1, pct_3x3=0.5, sr=0.5, macro="v1.1",
                              num_classes=2000, input_size=32)
    path = tmp_path / "bomb.dcz"
    path.write_bytes(zero_bomb(config))
    wall, peak, run = measured(["decompress", str(path), "--out", str(tmp_path / "o.onnx")],
                               isolated_cache)
    assert run.returncode == 0, run.stderr
    assert wall < 30 and peak < GIB, (wall, peak)
    card = json.loads((tmp_path / "o.onnx.json").read_text())
    assert card["decompressed_from"] == str(path)
