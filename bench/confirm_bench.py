"""Confirmation sized by evidence against re-timing everything (issue 28, items 1 and "must
show"): what share of a whole run the final confirmation takes, before (a fixed 15% margin
around the front, one batch) and after (the exact front, then rounds sized by the screen's
error measured in the study), and how the confirmed front compares with the front that
re-timing every feasible candidate together gives.

Settings (``--setting``):

- ``dense``: the peer benchmark's (``../shared/peer/v11_space.toml``, ``--proxy params`` so
  the parameter count is the accuracy: a dense front), 5 MiB, no latency or memory budget,
  sampling for ``--seconds`` (60): about 370 candidates on this machine;
- ``main``: the main job, ``autosq search --device rpi4 --max-mb 5``, ``--trials`` (100).

Per seed: a search without confirmation (``retime=False``; its wall time is the run's search
part), then on its stored candidates, in an order that alternates with the seed: the evidence
rounds (:func:`autosq.searching.confirmation.confirm_rounds`), the fixed-margin batch (the
previous rule) and every feasible candidate in one batch (``everything``), each timed with
the confirm protocol by the study's own timer, and last every candidate once more
(``everything again``: what timing noise alone changes between two full re-timings).
Printed: each one's models and seconds, the confirmation's share of search + confirmation,
each front's members against everything's (in both, only in one) and its hypervolume with
everything's latencies over everything front's (the study's reference point), the screen
error measured, and a replay: the evidence rounds run again with everything's latencies as
their measurements. Given the same numbers, the replay can miss a member of everything's front
only through a candidate whose screen overstated its latency by more than any confirmed one's
did; the replay says whether that happened.

Usage: python bench/confirm_bench.py [--setting dense|main] [--seeds 0,1,2] [--seconds 60]
           [--trials 100] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer"


def search(setting: str, seed: int, storage: str, seconds: float, trials: int) -> float:
    """The search part, without confirmation; returns its wall time."""
    from autosq.searching.run import run_search

    t0 = time.perf_counter()
    if setting == "dense":
        run_search(device="host", space=str(PEER / "v11_space.toml"), proxy="params",
                   max_mb=5.0, max_ms=0, max_ram_mb=0, trials=10**6, trials_timeout=seconds,
                   seed=seed, storage=storage, study="bench", retime=False)
    else:
        run_search(device="rpi4", max_mb=5.0, trials=trials, seed=seed, storage=storage,
                   study="bench", retime=False)
    return time.perf_counter() - t0


def front_keys(recs: list[Any], lat: dict[str, float], objectives: Any,
               max_ms: float | None) -> set[str]:
    """The front's architectures (keys) with each candidate at ``lat`` (else its search's)."""
    from autosq.searching.pareto import pareto_front

    feasible = [r for r in recs if r.feasible]
    pts, keys = [], []
    for r in feasible:
        ms = lat.get(r.key, r.latency_ms)
        if max_ms is None or ms <= max_ms:
            pts.append(objectives.point(r.accuracy, ms, r.size_mb, r.peak_mem_mb))
            keys.append(r.key)
    return {keys[i] for i in pareto_front(pts)}


def one_seed(setting: str, seed: int, folder: Path, seconds: float,
             trials: int) -> dict[str, Any]:
    import optuna

    from autosq.measure import timer_for
    from autosq.measure.profiles import load_profile
    from autosq.measure.protocol import SCREEN_MARGIN, TimingProtocol
    from autosq.searching.confirmation import confirm_rounds, distinct
    from autosq.searching.evaluate import export_model
    from autosq.searching.pareto import hypervolume, near_front
    from autosq.searching.records import load_records, read_settings
    from autosq.searching.result import _reference
    from autosq.searching.storage import storage_for

    storage = f"sqlite:///{folder / f'{setting}_{seed}.db'}"
    print(f"{setting} seed {seed}: search", file=sys.stderr)
    search_s = search(setting, seed, storage, seconds, trials)
    study = optuna.load_study(study_name="bench", storage=storage_for(storage, create=False))
    settings = read_settings(study)
    recs = load_records(study)
    objectives, max_ms = settings.objectives, settings.budget.max_ms
    protocol = TimingProtocol.confirm()
    timer = timer_for(load_profile(settings.device), protocol)
    feasible = distinct([r for r in recs if r.feasible])

    def time_batch(batch: list[Any]) -> tuple[dict[str, float], float]:
        batch = sorted(batch, key=lambda r: r.latency_ms)
        t0 = time.perf_counter()
        res = timer.time_many([export_model(r.config, r.precision, seed=r.trial or 0)
                               for r in batch])
        return ({r.key: x.latency_ms for r, x in zip(batch, res, strict=True)},
                time.perf_counter() - t0)

    out: dict[str, Any] = {"setting": setting, "seed": seed, "search_s": search_s,
                           "trials": len(study.trials), "feasible": len(feasible)}
    runs: dict[str, tuple[dict[str, float], float, Any]] = {}
    order = ["evidence", "fixed", "everything"]
    # A second "everything" last: two full re-timings differ by timing noise alone.
    for what in [*(order if seed % 2 == 0 else order[::-1]), "everything again"]:
        print(f"{setting} seed {seed}: {what}", file=sys.stderr)
        if what == "evidence":
            t0 = time.perf_counter()
            ret = confirm_rounds(recs, objectives, max_ms, protocol,
                                 lambda b: timer.time_many(
                                     [export_model(r.config, r.precision, seed=r.trial or 0)
                                      for r in b]))
            by_trial = {r.trial: r.key for r in recs}
            runs[what] = ({by_trial[t]: x.latency_ms for t, x in ret.trials.items()},
                          time.perf_counter() - t0, ret)
        elif what == "fixed":
            pts = [r.point(objectives) for r in feasible]
            lat, s = time_batch([feasible[i] for i in near_front(pts, SCREEN_MARGIN)])
            runs[what] = (lat, s, None)
        else:  # everything, everything again
            lat, s = time_batch(feasible)
            runs[what] = (lat, s, None)
    everything = runs["everything"][0]
    kind = recs[0].accuracy_kind or "proxy"
    ref = _reference(settings, recs, kind)
    truth = front_keys(recs, everything, objectives, max_ms)
    by_key = {r.key: r for r in feasible}

    def hv(keys: set[str]) -> float:
        return hypervolume([objectives.point(by_key[k].accuracy, everything[k],
                                             by_key[k].size_mb, by_key[k].peak_mem_mb)
                            for k in keys], ref)

    hv_truth = hv(truth)
    for what, (lat, secs, ret) in runs.items():
        front = front_keys(recs, lat, objectives, max_ms)
        out[what] = {"models": len(lat), "seconds": secs,
                     "share": secs / (search_s + secs), "front": len(front),
                     "in_both": len(front & truth), "only_here": len(front - truth),
                     "only_everything": len(truth - front),
                     "hv_over_everything": hv(front) / hv_truth if hv_truth else float("nan")}
        if ret is not None:
            out[what] |= {"rounds": ret.rounds, "estimated_s": ret.estimated_s,
                          "screen_error": ret.error.describe() if ret.error else None}
    # Replay: the same rounds with everything's latencies as their measurements.
    by_key_res = {}
    from autosq.measure.protocol import LatencyResult

    template = next(r.latency for r in recs if r.latency is not None)
    for k, ms in everything.items():
        by_key_res[k] = LatencyResult(**{**template.__dict__, "latency_ms": ms, "p90_ms": ms,
                                         "min_ms": ms, "mean_ms": ms})
    replay = confirm_rounds(recs, objectives, max_ms, protocol,
                            lambda b: [by_key_res[r.key] for r in b])
    by_trial = {r.trial: r.key for r in recs}
    replayed = front_keys(recs, {by_trial[t]: x.latency_ms for t, x in replay.trials.items()},
                          objectives, max_ms)
    out["replay"] = {"models": sum(replay.rounds), "rounds": replay.rounds,
                     "front_equal": replayed == truth, "only_replay": len(replayed - truth),
                     "only_everything": len(truth - replayed)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", choices=("dense", "main"), default="dense")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="confirm_bench_"))
    folder.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    rows = [one_seed(args.setting, int(s), folder, args.seconds, args.trials)
            for s in args.seeds.split(",")]
    load_after = os.getloadavg()
    (folder / f"confirm_{args.setting}.json").write_text(json.dumps(rows, indent=1))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; load before {load_before[0]:.2f}, after "
          f"{load_after[0]:.2f}; setting {args.setting}")
    for row in rows:
        print(f"\nseed {row['seed']}: {row['trials']} trials, {row['feasible']} feasible "
              f"architectures, search {row['search_s']:.1f} s")
        for what in ("fixed", "evidence", "everything", "everything again"):
            r = row[what]
            extra = (f"; rounds {r['rounds']}, planned {r['estimated_s']:.1f} s; "
                     f"{r['screen_error']}" if "rounds" in r else "")
            print(f"  {what:>16}: {r['models']:4d} models, {r['seconds']:6.1f} s "
                  f"({r['share']:.0%} of the run); front {r['front']} ({r['in_both']} as "
                  f"everything's, {r['only_here']} only here, {r['only_everything']} only in "
                  f"everything's); hypervolume {r['hv_over_everything']:.4f} x everything's"
                  f"{extra}")
        rp = row["replay"]
        print(f"  replay with everything's latencies: {rp['models']} models in rounds "
              f"{rp['rounds']}; front equal to everything's: {rp['front_equal']} "
              f"({rp['only_replay']} only in the replay, {rp['only_everything']} only in "
              "everything's)")
    print(f"\nfiles: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
