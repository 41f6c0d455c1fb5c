"""Which objectives the main job should optimise by default (issue 18, item 1): the main job
(``autosq search --device rpi4 --max-mb 5``, 50 trials, TPE, synflow) run with
``--objectives accuracy,latency`` and with ``accuracy,latency,size`` (what every study
optimised before the choice existed), for ``--seeds`` seeds, each in a fresh SQLite study.

Afterwards every feasible candidate either run timed is timed again together, interleaved
(autosq's own confirm protocol through the rpi4 profile's estimated timer), so both settings
are ranked on one clock. Printed per run:

- front: members of the front the run reports (``--all``), and of its accuracy-latency front
  (what the table and the page show first);
- hv2: the accuracy-latency hypervolume of the run's feasible candidates on the common clock,
  normalised to [0, 1] in the box from (the lowest proxy score of all runs, the 100 ms budget)
  to (the highest score, 0 ms): what the user reads first;
- hv3: the same with size as the third axis (0 to the 5 MiB budget): what a size-aware user
  would read;
- wall: the run's seconds (search and its own re-timing).

Usage: .venv/bin/python bench/objectives_bench.py [--seeds 3] [--trials 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SETTINGS = ("accuracy,latency", "accuracy,latency,size")


def main() -> int:
    from autosq.measure import timer_for
    from autosq.measure.profiles import load_profile
    from autosq.measure.protocol import TimingProtocol
    from autosq.searching.evaluate import export_model
    from autosq.searching.pareto import normalized_hypervolume, pareto_front
    from autosq.searching.records import load_records
    from autosq.searching.run import run_search
    from autosq.searching.storage import load_study

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=50)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="objectives_bench_"))
    runs: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        order = SETTINGS if seed % 2 == 0 else SETTINGS[::-1]  # alternate which goes first
        for objectives in order:
            storage = f"sqlite:///{folder / f'{seed}-{len(objectives)}.db'}"
            t0 = time.perf_counter()
            result = run_search(device="rpi4", max_mb=5, trials=args.trials, seed=seed,
                                objectives=objectives, storage=storage)
            wall = time.perf_counter() - t0
            recs = [r for r in load_records(load_study(storage, result.study_name))
                    if r.feasible and r.timing != "predicted"]
            runs.append({"seed": seed, "objectives": objectives, "wall": wall,
                         "front": len(result.members),
                         "primary": sum(m.primary for m in result.members),
                         "recs": recs})
    # One clock for every feasible candidate of every run.
    models: dict[str, bytes] = {}
    for run in runs:
        for r in run["recs"]:
            models.setdefault(r.key, export_model(r.config, r.precision, seed=0))
    keys = list(models)
    timer = timer_for(load_profile("rpi4"), TimingProtocol.confirm())
    t0 = time.perf_counter()
    clock = {k: res.latency_ms for k, res in zip(keys, timer.time_many([models[k] for k in keys]),
                                                 strict=True)}
    clock_s = time.perf_counter() - t0
    accs = [r.accuracy for run in runs for r in run["recs"]]
    lo, hi = min(accs), max(accs)
    print(f"common clock: {len(keys)} distinct candidates, {clock_s:.0f} s; scores {lo:.4g} to "
          f"{hi:.4g}")
    print(f"{'seed':>4} {'objectives':<24} {'front':>5} {'a-l front':>9} {'hv2':>7} {'hv3':>7} "
          f"{'wall s':>7}")
    table: dict[str, list[tuple[int, int, float, float]]] = {s: [] for s in SETTINGS}
    for run in runs:
        pts2 = [(r.accuracy, clock[r.key], 0.0) for r in run["recs"]]
        pts3 = [(r.accuracy, clock[r.key], r.size_mb) for r in run["recs"]]
        hv2 = normalized_hypervolume(pts2, (lo, 100.0, 1.0), (hi, 0.0, 0.0))
        hv3 = normalized_hypervolume(pts3, (lo, 100.0, 5.0), (hi, 0.0, 0.0))
        on_clock = len(pareto_front(pts2))
        print(f"{run['seed']:>4} {run['objectives']:<24} {run['front']:>5} {run['primary']:>9} "
              f"{hv2:>7.4f} {hv3:>7.4f} {run['wall']:>7.1f}   (a-l front on the clock: "
              f"{on_clock})")
        table[run["objectives"]].append((run["front"], run["primary"], hv2, hv3))
    print("medians:")
    for s, rows in table.items():
        print(f"  {s:<24} front {statistics.median(r[0] for r in rows):g}, a-l front "
              f"{statistics.median(r[1] for r in rows):g}, hv2 "
              f"{statistics.median(r[2] for r in rows):.4f}, hv3 "
              f"{statistics.median(r[3] for r in rows):.4f}")
    print(f"files: {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
