"""Workers on one PostgreSQL study: trials per minute with 1, 2 and 3 local workers, and how
much the workers inflate each other's timings.

A PostgreSQL server is started on loopback (tests/pgserver.py, from the machine's server
programs). Each arm runs `autosq search --workers K` on a fresh database: the `tiny` space at
32 px, trained on builtin:shapes:30 for 1 epoch (real CPU work beside the timings). Inflation:
every timed trial's architecture is timed again afterwards, in one quiet process, interleaved;
the median of (latency in the search / quiet latency) per arm.

Usage: python bench/workers_bench.py [--trials 18] [--workers 1,2,3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pgserver import PgServer

from autosq.measure.local import LocalTimer
from autosq.searching.evaluate import export_model
from autosq.searching.records import load_records
from autosq.searching.storage import load_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=18)
    ap.add_argument("--workers", default="1,2,3")
    args = ap.parse_args()
    server = PgServer()
    server.start()
    try:
        for k in (int(x) for x in args.workers.split(",")):
            url = server.new_database()
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "autosq", "search", "--device", "host",
                            "--space", "tiny", "--input-size", "32", "--max-mb", "1",
                            "--data", "builtin:shapes:30", "--epochs", "1", "--trials",
                            str(args.trials), "--workers", str(k), "--storage", url,
                            "--study", "b", "--no-retime", "--json"], check=True,
                           stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            recs = [r for r in load_records(load_study(url, "b")) if r.latency is not None]
            timer = LocalTimer()
            quiet = timer.time_many([export_model(r.config, r.precision, 0) for r in recs])
            timer.close()
            ratios = [r.latency.latency_ms / q.latency_ms
                      for r, q in zip(recs, quiet, strict=True) if r.latency is not None]
            print(f"{k} worker(s): {args.trials} trials in {wall:.0f} s = "
                  f"{args.trials / wall * 60:.1f} trials/min; timing inflation (search / quiet"
                  f" re-timing) median {statistics.median(ratios):.3f}, "
                  f"p90 {statistics.quantiles(ratios, n=10)[-1]:.3f} over {len(ratios)} trials")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
