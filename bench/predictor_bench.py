"""The latency predictor against held-out timings, on a device whose costs differ from this
machine's defaults: a user profile of this machine with 2 threads, graph optimisation "basic"
and 160 px inputs.

1. calibrate from N spread candidates of the default space (the predictor's own cross-validated
   error is what `autosq calibrate` reports);
2. time held-out architectures with the same timer (together, interleaved, as calibrate
   times its samples): every preset, and M random candidates drawn
   with another seed;
3. print the held-out MAPE, worst error, Spearman, and how they compare with the reported error.

Usage: python bench/predictor_bench.py [--samples 30] [--random 20] [--input-size 160]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from pathlib import Path

from autosq.accuracy.correlation import spearman
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.presets import load_presets, preset
from autosq.arch.space import load_space, make_config, split_values
from autosq.errors import ConfigError
from autosq.measure import timer_for
from autosq.measure.features import latency_features
from autosq.measure.profiles import load_profile
from autosq.outputs.calibrate import calibrate, device_calibration, random_values
from autosq.searching.evaluate import export_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--random", type=int, default=20)
    ap.add_argument("--input-size", type=int, default=160)
    ap.add_argument("--space", default="default")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp())
    (folder / "host-2t.toml").write_text(
        'name = "host-2t"\ndescription = "this machine, 2 threads, basic optimisation"\n'
        f'[budget]\nmax_mb = 5\n[runtime]\nthreads = 2\ngraph_optimization = "basic"\n'
        f'input_size = {args.input_size}\n[latency]\nsource = "measured"\n')
    profile = load_profile("host-2t", [folder])
    timer = timer_for(profile)
    space = load_space(args.space)
    predictor, seconds = calibrate(profile, timer, device_calibration(profile, timer), space,
                                   args.samples, seed=0)
    print(f"calibration: {predictor.samples} candidates of {args.space} at "
          f"{args.input_size}px in {seconds:.0f} s; form {predictor.form} "
          f"(LOO MAPE by form: {predictor.forms})")
    print(f"reported: {predictor.error_text()}; p90 {predictor.cv_p90:.1%}")
    graphs: list[tuple[str, SqueezeNetConfig, str]] = []
    for name in sorted(load_presets()):
        config = preset(name, input_size=args.input_size)
        for precision in ("fp32", "int8"):
            graphs.append((f"{name} {precision}", config, precision))
    rng = random.Random(12345)
    while len(graphs) < len(load_presets()) * 2 + args.random:
        values = random_values(space, rng)
        try:
            config = make_config(values, args.input_size, 1000)
        except ConfigError:
            continue
        precision = split_values(values)[1]
        graphs.append((f"random {config.arch_id[:8]} {precision}", config, precision))
    # Timed together, interleaved, as calibrate times its samples.
    results = timer.time_many([export_model(c, p, seed=0) for _, c, p in graphs])
    held = [(name, r.latency_ms, predictor.predict_row(latency_features(c, p)))
            for (name, c, p), r in zip(graphs, results, strict=True)]
    errors = [abs(p - m) / m for _, m, p in held]
    for name, m, p in held:
        print(f"  {name:<40} measured {m:8.3f} ms  predicted {p:8.3f} ms  {(p - m) / m:+.1%}")
    print(f"held-out ({len(held)}: {len(load_presets()) * 2} preset graphs, {args.random} random):"
          f" MAPE {statistics.fmean(errors):.1%}, worst {max(errors):.1%}, "
          f"Spearman {spearman([p for *_, p in held], [m for _, m, _ in held]):.3f}; "
          f"{sum(e <= predictor.cv_p90 for e in errors)} of {len(errors)} within the reported "
          f"p90 ({predictor.cv_p90:.1%})")


if __name__ == "__main__":
    main()
