"""Benchmark of the search (issue: `autosq search --device rpi4 --max-mb 5`).

Part A runs the main job as `make demo` does (rpi4, 5 MiB, the profile's 100 ms, default space,
50 trials, the default timing protocol) and prints trials per minute, where the wall time goes
(the timed inference runs are the floor no search can go under), what the cheap-first gate
skipped and what those candidates cost, and the re-timing of the front.

Part B compares, in one run and with one timing protocol, the hypervolume reached by TPE and by
random sampling after 50 trials with the front of a dense sweep of the same space (every point
of the `tiny` space at 64x64 on this machine, 0.3 MiB). Hypervolumes are normalised with one
reference and one ideal point for all three.

Usage: python bench/search_bench.py [--part a|b|both] [--trials 50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from autosq.accuracy.estimators import ProxyAccuracy
from autosq.arch.space import load_space
from autosq.measure import timer_for
from autosq.measure.local import LocalTimer
from autosq.measure.profiles import load_profile
from autosq.measure.protocol import TimingProtocol
from autosq.searching.evaluate import Evaluator
from autosq.searching.pareto import Point, normalized_hypervolume, pareto_front
from autosq.searching.records import Budget, TrialRecord, load_records
from autosq.searching.result import build_result
from autosq.searching.run import run_search


def part_a(trials: int, folder: Path) -> None:
    storage = f"sqlite:///{folder / 'a.db'}"
    t0 = time.perf_counter()
    result = run_search(device="rpi4", max_mb=5, trials=trials, storage=storage, retime=False)
    search_wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    recs = load_records(study)
    fresh = [r for r in recs if not r.duplicate]
    skipped = [r for r in fresh if r.skipped]
    timed = [r for r in fresh if r.latency is not None]

    def total(key: str, rows: list[TrialRecord] = fresh) -> float:
        return sum(r.seconds.get(key, 0.0) for r in rows)

    runs = total("timing_runs")
    phases = {"timed inference runs (the floor)": runs,
              "timing overhead (session, warm-up)": total("timing") - runs,
              "export (plan -> ONNX graph)": total("export"),
              "accuracy proxy": total("accuracy"),
              "plan and cost (analytic)": total("analyse")}
    other = search_wall - sum(phases.values())
    print(f"A. autosq search --device rpi4 --max-mb 5 ({trials} trials, default protocol)")
    print(f"   search wall time {search_wall:.1f} s: {60 * trials / search_wall:.1f} trials/min")
    for name, sec in phases.items():
        print(f"   {name:38} {sec:7.2f} s  {sec / search_wall:6.1%}")
    print(f"   {'Optuna, storage, model build, other':38} {other:7.2f} s  "
          f"{other / search_wall:6.1%}")
    print(f"   trials: {len(recs)}, of which {len(recs) - len(fresh)} repeated an architecture "
          f"(measurements reused), {len(skipped)} skipped by the size/memory gate, "
          f"{len(timed)} timed")
    if skipped:
        print(f"   skipped candidates cost {1e3 * total('analyse', skipped) / len(skipped):.2f} ms"
              f" each (plan and cost); a timed one cost "
              f"{sum(sum(r.seconds.values()) - r.seconds.get('timing_runs', 0) for r in timed) / max(1, len(timed)):.2f} s")  # noqa: E501
    t1 = time.perf_counter()
    final = build_result(study, storage,
                         retime=timer_for(load_profile("rpi4"), TimingProtocol.confirm()))
    print(f"   re-timing the front together: {len(final.members)} members in "
          f"{time.perf_counter() - t1:.1f} s; {len(final.notes)} dropped for the latency budget")


BENCH = TimingProtocol(warmup_runs=3, warmup_seconds=0.02, block_runs=5, block_seconds=0.02,
                       min_blocks=3, target_gap=0.05, max_seconds=0.5)


def part_b(trials: int, folder: Path) -> None:
    budget, size = 0.3, 64
    space = load_space("tiny")
    common: dict[str, Any] = {"device": "host", "max_mb": budget, "max_ms": 0, "space": "tiny",
                              "trials": trials, "input_size": size, "protocol": BENCH,
                              "retime": False, "seed": 0}
    fronts: dict[str, list[Point]] = {}
    clock: dict[str, float] = {}
    for sampler in ("tpe", "random"):
        t0 = time.perf_counter()
        r = run_search(sampler=sampler, storage=f"sqlite:///{folder / sampler}.db", **common)
        clock[sampler] = time.perf_counter() - t0
        study = optuna.load_study(study_name=r.study_name,
                                  storage=f"sqlite:///{folder / sampler}.db")
        fronts[sampler] = [x.scores for x in load_records(study) if x.feasible]
    ev = Evaluator(LocalTimer(protocol=BENCH), Budget(budget), ProxyAccuracy(), size, 1000)
    t0 = time.perf_counter()
    seen: dict[str, Point] = {}
    sweep: list[Point] = []
    n = 0
    for n, values in enumerate(space.grid(100), start=1):
        c = ev.analyse(values)
        if c.config.arch_id in seen:
            sweep.append(seen[c.config.arch_id])
            continue
        c = ev.evaluate(values, seed=n)
        if c.feasible:
            seen[c.config.arch_id] = c.scores
            sweep.append(c.scores)
    clock["sweep"] = time.perf_counter() - t0
    fronts["sweep"] = sweep
    everything = [p for pts in fronts.values() for p in pts]
    reference = (min(p[0] for p in everything), 1.1 * max(p[1] for p in everything), budget)
    ideal = (max(p[0] for p in everything), min(p[1] for p in everything),
             min(p[2] for p in everything))
    print(f"B. tiny space at {size}x{size} on this machine, {budget} MiB, one timing protocol "
          f"(blocks of 0.02 s), accuracy = synflow proxy")
    print(f"   reference {tuple(round(v, 3) for v in reference)}, ideal "
          f"{tuple(round(v, 3) for v in ideal)}")
    sweep_hv = normalized_hypervolume([fronts["sweep"][i] for i in pareto_front(fronts["sweep"])],
                                      reference, ideal)
    for name in ("tpe", "random", "sweep"):
        pts = fronts[name]
        hv = normalized_hypervolume([pts[i] for i in pareto_front(pts)], reference, ideal)
        label = f"{trials} trials" if name != "sweep" else f"all {n} points"
        print(f"   {name:7} {label:14} feasible {len(pts):5d}  hypervolume {hv:.4f}  "
              f"({hv / sweep_hv:6.1%} of the sweep's)  {clock[name]:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("a", "both"):
            part_a(args.trials, Path(tmp))
        if args.part in ("b", "both"):
            part_b(args.trials, Path(tmp))


if __name__ == "__main__":
    main()
