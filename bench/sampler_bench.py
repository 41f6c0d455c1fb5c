"""The default sampler's settings on the peer benchmark's space, in simulation (issue 28).

How many of the trials are mutants of the front once they are chosen by promise
(``GUIDED_SHARE``) and how many mutants are compared (``DRAFTS``), in
:mod:`autosq.searching.mutation`, compared at an equal number of trials on one latency
surface, so that the machine's noise does not decide (a 60-s peer round varies by 1-3% in
hypervolume from run to run on the project's VM).

1. Real screens: a search of the peer space (``v11_space.toml``, 5 MiB, ``--proxy params``,
   ``--no-retime``) times ``--screens`` candidates here with the screen protocol.
2. The surface: the latency predictor (:func:`~autosq.measure.predictor.fit_predictor`)
   fitted to those screens, times a fixed misfit per architecture (log-normal, ``--misfit``,
   4%), is each candidate's true latency; every timing adds noise (``--noise``, 2%).
3. For each setting and seed, a search of ``--trials`` trials (the default sampler, nothing
   else changed) with that surface in place of export and timing; the score is the
   hypervolume of its feasible candidates at their true latency, in [0, ``--ref-ms``] x [0, the
   parameter budget], as ``peer_bench`` scores.

Prints each setting's hypervolume per seed, its mean, and its difference from the first
setting, seed by seed. A simulation: the surface is smoother than a machine (the predictor
learns it up to the misfit), so it says which settings search a known surface better, not by
how much a real round gains.

Usage: python bench/sampler_bench.py [--settings 0.3333:8,0.5:20] [--seeds 0,1,2,3,4,5]
           [--trials 450] [--screens 300] [--peer-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peer"
MAX_MB = 5.0


def _unit(key: str, salt: int) -> float:
    """A fixed number in (0, 1) for ``key``."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:12]
    return (int(digest, 16) + 0.5) / 16**12


def surface(space: Path, screens: int, folder: Path) -> Any:
    """The predictor fitted to ``screens`` real screens of the space, timed here."""
    import optuna

    from autosq.measure.features import latency_features
    from autosq.measure.predictor import Calibration, fit_predictor
    from autosq.searching.records import load_records
    from autosq.searching.run import run_search
    from autosq.searching.storage import storage_for

    url = f"sqlite:///{folder / 'screens.db'}"
    run_search(device="host", space=str(space), max_mb=MAX_MB, proxy="params",
               objectives="accuracy,latency", trials=screens, seed=0, storage=url,
               study="screens", retime=False, predict=False)
    study = optuna.load_study(study_name="screens", storage=storage_for(url, create=False))
    timed = [r for r in load_records(study)
             if r.latency is not None and r.timing != "predicted"]
    return fit_predictor(Calibration("host", "sampler_bench", 0, "", "", "", ""),
                         [latency_features(r.config, r.precision) for r in timed],
                         [r.latency.latency_ms for r in timed if r.latency is not None])


class Surface:
    """True latencies (the predictor times a fixed misfit per architecture) and noisy timings,
    standing in for export and the timer."""

    def __init__(self, predictor: Any, misfit: float, noise: float, seed: int) -> None:
        self.predictor = predictor
        self.misfit = misfit
        self.noise = noise
        self.rng = random.Random(seed)
        self.threads = 1

    def true_ms(self, config: Any, precision: str) -> float:
        from autosq.measure.features import latency_features

        key = config.arch_id + precision
        z = math.sqrt(-2 * math.log(_unit(key, 1))) * math.cos(2 * math.pi * _unit(key, 2))
        return float(self.predictor.predict_row(latency_features(config, precision))
                     * math.exp(self.misfit * z))

    # the Timer's part
    def with_protocol(self, protocol: Any) -> Surface:
        return self

    def time(self, data: bytes, budget_ms: float | None = None) -> Any:
        from autosq.arch.config import SqueezeNetConfig
        from autosq.measure.protocol import LatencyResult

        sent = json.loads(data)
        ms = self.true_ms(SqueezeNetConfig.from_dict(sent["config"]), sent["precision"])
        ms *= math.exp(self.noise * self.rng.gauss(0.0, 1.0))
        return LatencyResult(latency_ms=ms, p90_ms=ms, min_ms=ms, mean_ms=ms, runs=9, blocks=3,
                             block_gap=0.0, spread=0.0, latency_kind="measured", threads=1,
                             stop="agreement", over_budget=False, seconds=0.0, run_seconds=0.0)

    def time_many(self, models: list[bytes]) -> list[Any]:
        return [self.time(m) for m in models]


def export(config: Any, precision: str, seed: int) -> bytes:
    """Stands in for :func:`~autosq.searching.evaluate.export_model`: what the surface reads."""
    return json.dumps({"config": config.to_dict(), "precision": precision}).encode()


def search(space: Path, world: Surface, trials: int, seed: int, share: float, drafts: int,
           folder: Path, ref_ms: float) -> tuple[float, int]:
    """One simulated search: (hypervolume at the true latencies, feasible candidates)."""
    import optuna

    from autosq.arch.cost import MIB
    from autosq.searching import mutation
    from autosq.searching.pareto import hypervolume
    from autosq.searching.records import load_records
    from autosq.searching.run import run_search
    from autosq.searching.storage import storage_for

    url = f"sqlite:///{folder / f'sim_{share}_{drafts}_{seed}.db'}"
    with mock.patch("autosq.measure.timer_for", lambda *a, **k: world), \
            mock.patch("autosq.searching.evaluate.export_model", export), \
            mock.patch.object(mutation, "GUIDED_SHARE", share), \
            mock.patch.object(mutation, "DRAFTS", drafts):
        run_search(device="host", space=str(space), max_mb=MAX_MB, proxy="params",
                   objectives="accuracy,latency", trials=trials, seed=seed, storage=url,
                   study="sim", retime=False)
    study = optuna.load_study(study_name="sim", storage=storage_for(url, create=False))
    budget = MAX_MB * MIB / 4  # fp32 parameters that fit
    points = [(world.true_ms(r.config, r.precision), r.params) for r in load_records(study)
              if r.feasible and r.latency is not None]
    area = hypervolume([(p / budget, ms / ref_ms, 0.0) for ms, p in points if ms <= ref_ms],
                       (0.0, 1.0, 1.0))
    return area, len(points)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="0.3333:8,0.5:20",
                    help="GUIDED_SHARE:DRAFTS pairs; the first is the baseline")
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--trials", type=int, default=450)
    ap.add_argument("--screens", type=int, default=300)
    ap.add_argument("--misfit", type=float, default=0.04)
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument("--ref-ms", type=float, default=10.0)
    ap.add_argument("--peer-dir", type=Path, default=PEER)
    args = ap.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = args.peer_dir / "v11_space.toml"
    if not space.is_file():
        sys.exit(f"no peer space at {space}: give --peer-dir (the folder of v11_space.toml)")
    try:
        settings = [(float(a), int(b))
                    for a, b in (s.split(":") for s in args.settings.split(","))]
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--settings takes SHARE:DRAFTS pairs (e.g. 0.3333:8,0.5:20) and --seeds "
                 f"integers (e.g. 0,1,2); got {args.settings!r} and {args.seeds!r}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        predictor = surface(space, args.screens, folder)
        print(f"surface: {predictor.samples} screens timed here in "
              f"{time.perf_counter() - t0:.0f} s; predictor {predictor.form}, leave-one-out "
              f"MAPE {predictor.cv_mape:.1%}; misfit {args.misfit:.0%}, noise {args.noise:.0%}; "
              f"{args.trials} trials a search; reference {args.ref_ms:g} ms")
        scores: dict[tuple[float, int], list[float]] = {}
        for share, drafts in settings:
            row = []
            for seed in seeds:
                t1 = time.perf_counter()
                world = Surface(predictor, args.misfit, args.noise, seed)
                area, n = search(space, world, args.trials, seed, share, drafts, folder,
                                 args.ref_ms)
                row.append(area)
                print(f"  guided share {share:.3g}, drafts {drafts}, seed {seed}: hypervolume "
                      f"{area:.4f} ({n} feasible, {time.perf_counter() - t1:.0f} s)", flush=True)
            scores[(share, drafts)] = row
    base = scores[settings[0]]
    print("\nsetting (guided share, drafts): mean hypervolume; per seed; vs the first, seed by "
          "seed")
    for key, row in scores.items():
        diffs = [a - b for a, b in zip(row, base, strict=True)]
        print(f"{key[0]:.3g}, {key[1]}: {statistics.mean(row):.4f}; "
              f"{' '.join(f'{v:.4f}' for v in row)}; "
              f"{' '.join(f'{d:+.4f}' for d in diffs)} (higher in {sum(d > 0 for d in diffs)} "
              f"of {len(diffs)})")


if __name__ == "__main__":
    main()
