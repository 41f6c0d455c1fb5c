"""Wall time and peak memory of autosq on hostile Deep Compression files (issue 29): each file
is handed to ``autosq decompress`` / ``autosq compress`` in a fresh child process, which reports
its own peak resident memory. The bound to show: under 1 GiB and 30 s each.

- ``cap``: a container of a network at the size cap (2**24 weights), every stream all zero
  bits under 1-bit Huffman codes (the most symbols a byte can hold): decoded for real;
- ``bomb``: the same kind of streams in a small network declaring 32M entries in a layer;
- ``entries``: a layer declaring 10**12 entries;
- ``laughs``: a 2 KB .pt whose config is a "billion laughs" list (compress).

Usage: python bench/hostile_bench.py
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

_CHILD = ("import resource, sys\nfrom autosq.cli import main\ncode = main(sys.argv[1:])\n"
          "print(f'maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', "
          "file=sys.stderr)\nsys.exit(code)")


def measure(args: list[str]) -> tuple[float, float, int, str]:
    """(wall s, peak MB, exit code, autosq's last line) of ``autosq ARGS`` in a child."""
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                         timeout=600)
    wall = time.perf_counter() - t0
    lines = run.stderr.strip().splitlines()
    peak = int(lines[-1].split()[1]) / 1024
    said = next((line for line in reversed(lines[:-1]) if line.startswith("autosq:")),
                run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "")
    return wall, peak, run.returncode, said


def main() -> None:
    from hostile import laughs_pt, seal, split, tiny_config, valid_container, zero_bomb

    from autosq.arch.config import SqueezeNetConfig
    from autosq.compress.container import MAX_WEIGHTS, expected_layers

    cap = SqueezeNetConfig(base_e=128, incr_e=128, freq=1, pct_3x3=0.5, sr=0.5, macro="v1.1",
                           num_classes=6800, input_size=32)
    weights = sum(s[0] * s[1] * s[2] * s[3] for s, _ in expected_layers(cap).values())
    assert weights <= MAX_WEIGHTS
    header, payload = split(valid_container())
    header["layers"][0]["entries"] = 10**12
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        files = {"cap.dcz": zero_bomb(cap), "bomb.dcz": zero_bomb(tiny_config(), 32_000_000),
                 "entries.dcz": seal(header, payload), "laughs.pt": laughs_pt()}
        for name, data in files.items():
            (root / name).write_bytes(data)
        cases = [(f"cap ({weights:,} weights) -> .onnx", ["decompress", "cap.dcz", "--out",
                                                          "cap.onnx"]),
                 ("cap -> .pt", ["decompress", "cap.dcz", "--out", "cap.pt"]),
                 ("bomb (32M entries declared) -> .onnx", ["decompress", "bomb.dcz", "--out",
                                                           "b.onnx"]),
                 ("entries (10**12 declared) -> .onnx", ["decompress", "entries.dcz", "--out",
                                                         "e.onnx"]),
                 ("laughs .pt -> compress", ["compress", "laughs.pt", "--out", "l.dcz"])]
        print(f"{'file':40} {'size':>10} {'wall s':>7} {'peak MB':>8} {'exit':>4}  says")
        for label, args in cases:
            args = [str(root / a) if a.endswith((".dcz", ".onnx", ".pt")) else a for a in args]
            size = Path(args[1]).stat().st_size
            wall, peak, code, said = measure(args)
            print(f"{label:40} {size:10,} {wall:7.1f} {peak:8.0f} {code:4}  {said[:90]}")


if __name__ == "__main__":
    main()
