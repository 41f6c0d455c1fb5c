"""A long main-job search (issue 28, "must show"): ``autosq search --device rpi4 --max-mb 5
--trials 1000`` from launch to exit, as a user runs it (default confirmation, output to a
pipe). Prints the time per trial early and late (median trial length over trials 1-50 and
951-1000, from the study's own start and end stamps), the wall time and the confirmation's
share of it, the peak memory of the largest process (the search or its timing process), the
front's size, and the thinned front exactly as the command printed it.

Usage: python bench/long_search_bench.py [--trials 1000] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import optuna

    from autosq.searching.result import load_result
    from autosq.searching.storage import storage_for

    folder = args.out or Path(tempfile.mkdtemp(prefix="long_search_"))
    folder.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{folder / 'long.db'}"
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "autosq", "search", "--device", "rpi4", "--max-mb", "5",
         "--trials", str(args.trials), "--seed", str(args.seed), "--storage", storage,
         "--study", "long"], capture_output=True, text=True, check=True, cwd=folder,
        env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    load_after = os.getloadavg()[0]
    (folder / "stdout.txt").write_text(proc.stdout)
    (folder / "stderr.txt").write_text(proc.stderr)
    study = optuna.load_study(study_name="long", storage=storage_for(storage, create=False))
    trials = sorted((t for t in study.get_trials(deepcopy=False)
                     if t.datetime_start and t.datetime_complete), key=lambda t: t.number)
    length = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    # Trial to trial (start to start): includes the sampler and the storage between trials.
    cadence = [(b.datetime_start - a.datetime_start).total_seconds()
               for a, b in itertools.pairwise(trials)]
    result = load_result(study="long", storage=storage)
    conf = result.confirmation
    confirm_s = conf.seconds if conf is not None else 0.0
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; load {load_before:.2f} before, "
          f"{load_after:.2f} after")
    print(f"autosq search --device rpi4 --max-mb 5 --trials {args.trials} --seed {args.seed}: "
          f"wall {wall:.0f} s (launch to exit), {len(trials)} trials")
    for name, part in (("first 50", slice(0, 50)), ("last 50", slice(-50, None))):
        print(f"  trials {name}: median length {statistics.median(length[part]):.2f} s, "
              f"start to start {statistics.median(cadence[part]):.2f} s")
    print(f"  confirmation: {conf.describe() if conf else 'none'}; {confirm_s:.1f} s = "
          f"{confirm_s / wall:.1%} of the run")
    if result.screen_error is not None:
        print(f"  screen error: {result.screen_error.describe()}")
    print(f"  peak memory of the largest process: {peak_mb:.0f} MiB")
    print(f"  front: {len(result.members)} members, {len(result.shown)} shown")
    print("\nthe front as printed (COLUMNS=120):\n")
    print(proc.stdout)
    print(f"files: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
