"""The one entry to the benchmarks: ``make bench`` lists them, ``make bench NAME=x ARGS="..."``
runs ``bench/x.py`` after printing the machine's facts and the date (which every figure in the
docs names). Each benchmark prints figures; none is a timed test."""

from __future__ import annotations

import ast
import os
import platform
import runpy
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
HELPERS = {"run", "digits", "peer_export"}  # imported by benchmarks, not benchmarks


def benchmarks() -> dict[str, str]:
    """name -> the first line of its docstring."""
    out = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem in HELPERS or path.stem.startswith("_"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        out[path.stem] = doc.splitlines()[0] if doc else ""
    return out


def machine() -> str:
    """CPU model, cores, memory, GPU, library versions and the date, on one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except OSError:
        mem = 0.0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [time.strftime("%Y-%m-%d %H:%M"), cpu, f"{cpus} CPUs", f"{mem:.0f} GiB",
             f"Python {platform.python_version()}"]
    try:
        import onnxruntime
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        parts += [f"torch {torch.__version__}", f"onnxruntime {onnxruntime.__version__}", gpu]
    except ImportError:  # pragma: no cover - the project's venv has both
        pass
    return "machine: " + ", ".join(parts)


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1]:
        print("benchmarks (make bench NAME=x ARGS=\"...\"; each prints its figures):")
        for name, line in benchmarks().items():
            print(f"  {name:22} {line}")
        return
    name = sys.argv[1]
    if name not in benchmarks():
        sys.exit(f"no benchmark {name!r}; known: {', '.join(benchmarks())}")
    print(machine(), flush=True)
    sys.argv = [str(HERE / f"{name}.py"), *sys.argv[2:]]
    sys.path.insert(0, str(HERE))
    runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")


if __name__ == "__main__":
    main()
