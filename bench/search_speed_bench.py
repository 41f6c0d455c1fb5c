"""Benchmark of the search's end-to-end time against the previous version, alternating the two
in one run, and of what the faster search changes in the front (issue: latency without the
device in the loop, item 6).

Part 1 (speed): ``autosq search --device rpi4 --max-mb 5 --trials 100`` (the main job at 100
trials, TPE, seed 0, a fresh SQLite study each time) run by the previous version and by this
one in turn, ``--rounds`` times; prints each run's wall time (launch to exit, re-timing of the
front included), where this version's time goes, and the median ratio.

Part 2 (fronts): the same job with ``--sampler random --seed 0``, so both versions evaluate the
same 100 candidates; prints how the final fronts differ (members in both, only in one; the
order of the common members), and the same comparison between two runs of the previous
version, which is what timing noise alone does.

The previous version is checked out from git (``--previous``, default the last commit before
screening) into a temporary worktree and run with this checkout's virtual environment.

Usage: python bench/search_speed_bench.py [--rounds 2] [--part 1|2|both] [--previous REV]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = "98fef81"  # the last commit that timed every candidate with the full protocol
JOB = ["search", "--device", "rpi4", "--max-mb", "5", "--trials", "100", "--json"]


def run(code: Path, args: list[str], folder: Path, tag: str) -> tuple[float, list[dict[str, Any]],
                                                                      str]:
    """One search by the autosq at ``code``; its wall time, JSON front and storage URL."""
    db = folder / f"{tag}.db"
    db.unlink(missing_ok=True)
    storage = f"sqlite:///{db}"
    env = {**os.environ, "PYTHONPATH": str(code)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "autosq", *JOB, *args, "--storage", storage],
                         env=env, capture_output=True, text=True, check=True, cwd=folder)
    return time.perf_counter() - t0, json.loads(out.stdout), storage


def key(m: dict[str, Any]) -> str:
    return json.dumps(m["config"], sort_keys=True)


def kendall(a: list[float], b: list[float]) -> float:
    n = len(a)
    s = sum((1 if (a[i] - a[j]) * (b[i] - b[j]) > 0 else -1)
            for i in range(n) for j in range(i + 1, n) if a[i] != a[j] and b[i] != b[j])
    pairs = n * (n - 1) / 2
    return s / pairs if pairs else float("nan")


def compare(name: str, x: list[dict[str, Any]], y: list[dict[str, Any]]) -> None:
    kx, ky = {key(m): m for m in x}, {key(m): m for m in y}
    common = [k for k in kx if k in ky]
    tau = kendall([kx[k]["latency_ms"] for k in common], [ky[k]["latency_ms"] for k in common])
    rec_x = next((key(m) for m in x if m["recommended"]), None)
    rec_y = next((key(m) for m in y if m["recommended"]), None)
    rel = [abs(ky[k]["latency_ms"] / kx[k]["latency_ms"] - 1) for k in common]
    print(f"   {name}: fronts {len(x)} and {len(y)} members, {len(common)} in both, "
          f"{len(kx) - len(common)} only in the first, {len(ky) - len(common)} only in the "
          f"second; latency order of the common ones Kendall tau {tau:.3f}, their latencies "
          f"differ by {statistics.median(rel):.1%} median, {max(rel):.1%} at most; same "
          f"recommended member: {rec_x == rec_y}")


def breakdown(storage: str) -> str:
    import optuna

    from autosq.searching.records import load_records

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0],
                              storage=storage)
    recs = load_records(study)
    total: dict[str, float] = {}
    for r in recs:
        for k, v in r.seconds.items():
            total[k] = total.get(k, 0.0) + v
    timings = [t for t in (r.timing for r in recs) if t]
    untimed = sum(t == "predicted" for t in timings)
    retimed = len((study.user_attrs.get("autosq_retimed") or {}).get("trials", {}))
    first, last = study.trials[0], study.trials[-1]
    span = (last.datetime_complete - first.datetime_start).total_seconds()
    return (f"trials {span:.1f} s (inference runs {total.get('timing_runs', 0):.1f} s, timing "
            f"in all {total.get('timing', 0):.1f} s, export {total.get('export', 0):.1f} s, "
            f"accuracy {total.get('accuracy', 0):.1f} s); {len(timings) - untimed} screened, "
            f"{untimed} left untimed by the predictor; {retimed} re-timed together at the end")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--part", choices=("1", "2", "both"), default="both")
    parser.add_argument("--previous", default=PREVIOUS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autosq-speed-") as tmp:
        folder = Path(tmp)
        old = folder / "previous"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                        args.previous], check=True, capture_output=True)
        try:
            print(f"previous version {args.previous}, this version: the working tree at {ROOT}")
            if args.part in ("1", "both"):
                print(f"1. autosq {' '.join(JOB)} (TPE, seed 0), alternating, "
                      f"{args.rounds} rounds")
                walls: dict[str, list[float]] = {"previous": [], "this": []}
                for i in range(args.rounds):
                    for tag, code in (("previous", old), ("this", ROOT)):
                        wall, front, storage = run(code, [], folder, f"{tag}{i}")
                        walls[tag].append(wall)
                        extra = f"; {breakdown(storage)}" if tag == "this" else ""
                        print(f"   round {i + 1} {tag:8}: {wall:6.1f} s, front {len(front)}"
                              f"{extra}", flush=True)
                ratio = statistics.median(walls["this"]) / statistics.median(walls["previous"])
                print(f"   median wall: previous {statistics.median(walls['previous']):.1f} s, "
                      f"this {statistics.median(walls['this']):.1f} s: ratio {ratio:.2f}")
            if args.part in ("2", "both"):
                print("2. the same job with --sampler random --seed 0 (the same 100 candidates)")
                rnd = ["--sampler", "random", "--seed", "0"]
                fronts: dict[str, list[list[dict[str, Any]]]] = {"previous": [], "this": []}
                for i in range(2):
                    for tag, code in (("previous", old), ("this", ROOT)):
                        wall, front, _ = run(code, rnd, folder, f"r{tag}{i}")
                        fronts[tag].append(front)
                        print(f"   run {i + 1} {tag:8}: {wall:6.1f} s, front {len(front)}",
                              flush=True)
                compare("previous vs previous (timing noise alone)", *fronts["previous"])
                compare("this vs this", *fronts["this"])
                for i in range(2):
                    compare(f"previous vs this, run {i + 1}", fronts["previous"][i],
                            fronts["this"][i])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False, capture_output=True)


if __name__ == "__main__":
    main()
