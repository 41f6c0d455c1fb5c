"""Peak memory of a search with data at 224 px, at two folder sizes (issue 26).

Writes N generated JPEG photos (256 px, 4 classes; tests/accuracy/test_stream.py's) for each N,
then runs ``autosq search --data FOLDER --input-size 224`` (a small fixed space, 2 trials, a
short training) in a fresh cache folder, and samples the resident memory of the whole process
tree (autosq and every process it started: loader workers, the timing process, decoders) every
0.2 s. Prints the peak of the tree's sum and of its largest process, and the wall time, per N:
memory should not grow with N.

Usage: python bench/memory_bench.py [--sizes 2000,20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = ('name = "s"\n[fixed]\nmacro = "v1.1"\nbase_e = 32\nincr_e = 32\nfreq = 2\n'
         'pct_3x3 = 0.5\nconv1_filters = 32\n[params.sr]\ntype = "float"\nlow = 0.125\n'
         'high = 0.25\nstep = 0.125\n')


def _tree_rss(pid: int) -> tuple[int, int]:
    """(sum, largest) resident bytes of ``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(parts[1]), int(parts[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children.get(p, [])
    values = [rss.get(p, 0) for p in seen]
    return sum(values), max(values, default=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--keep", type=Path, help="write the photos here (kept for reruns)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "accuracy"))
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # test_stream's util
    from test_stream import _photos

    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPUs; "
          "autosq search --data FOLDER --input-size 224 (2 trials, --epochs 0.05, batch 32)")
    print("| photos | decoded as float32 | peak RSS, whole tree | peak RSS, largest process | "
          "wall |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        (Path(tmp) / "s.toml").write_text(SPACE)
        for n in (int(s) for s in args.sizes.split(",")):
            folder = base / f"photos{n}"
            if not folder.exists():
                _photos(folder, n)
            env = {**os.environ, "AUTOSQ_CACHE_DIR": str(Path(tmp) / f"cache{n}")}
            cmd = [sys.executable, "-m", "autosq", "search", "--data", str(folder),
                   "--input-size", "224", "--space", str(Path(tmp) / "s.toml"), "--trials", "2",
                   "--max-ms", "0", "--epochs", "0.05", "--batch-size", "32", "--no-retime",
                   "--storage", f"sqlite:///{tmp}/s{n}.db", "--json"]
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            peak_sum = peak_one = 0
            while proc.poll() is None:
                total, largest = _tree_rss(proc.pid)
                peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
                time.sleep(0.2)
            wall = time.perf_counter() - t0
            if proc.returncode:
                print(f"| {n:,} | failed: {proc.stderr.read().strip()[-300:]} |")
                continue
            decoded = n * 3 * 224 * 224 * 4 / 2**30
            print(f"| {n:,} | {decoded:.1f} GiB | {peak_sum / 2**30:.2f} GiB | "
                  f"{peak_one / 2**30:.2f} GiB | {wall:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
