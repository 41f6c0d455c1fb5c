"""What the search's screen buys for its time: how closely screens of different block lengths
rank candidates against a common clock, and what each costs.

Candidates: ``--models`` (150) configurations drawn at random (seeded) from a space (default:
the peer harness's SqueezeNet v1.1 space, ``../shared/peer/v11_space.toml``) that fit
``--max-mb`` (5) at fp32, exported at the host profile's input size as a search exports them.
Each is screened ``--passes`` (2) times by each variant (the shipped screen,
``TimingProtocol.screen()``, with each block length of ``--blocks`` in seconds), in one
timing process per variant as a search has; models are visited in a shuffled order and, for each
model, the variants in a rotating order, so that drift hits them alike. Then the common clock of
bench/peer_bench.py (4 passes of a fresh session, 3 warm-up and 10 timed runs, median of the
pass medians) times every model.

Prints, per variant: Spearman of its latencies against the clock (each pass, and the median of
its passes against the clock), the median own / clock ratio, its two passes against each other,
and what a screen costs (seconds per model in all, and in timed runs).

Usage: .venv/bin/python bench/screen_bench.py [--models 150] [--passes 2] [--seed 0]
           [--blocks 0.025,0.015,0.010] [--space FILE] [--max-mb 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from peer_bench import common_clock, spearman  # noqa: E402


def candidates(space_file: str, n: int, max_mb: float, seed: int, input_size: int
               ) -> list[bytes]:
    """``n`` exported models drawn at random from the space, each within ``max_mb`` at fp32."""
    import optuna

    from autosq.arch.cost import cost_of
    from autosq.arch.plan import plan
    from autosq.arch.space import load_space, make_config, split_values
    from autosq.searching.evaluate import export_model

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_file)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out: list[bytes] = []
    while len(out) < n:
        trial = study.ask()
        values = space.sample(trial)
        config = make_config(values, input_size, 1000)
        _, precision = split_values(values)
        if cost_of(plan(config)).size_mb(precision) <= max_mb:
            out.append(export_model(config, precision, seed=len(out)))
        study.tell(trial, 0.0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=150)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blocks", default="0.025,0.015,0.010")
    parser.add_argument("--space", default=str(ROOT.parent / "shared" / "peer" / "v11_space.toml"))
    parser.add_argument("--max-mb", type=float, default=5.0)
    args = parser.parse_args()

    from autosq.measure import timer_for
    from autosq.measure.profiles import load_profile
    from autosq.measure.protocol import TimingProtocol

    profile = load_profile("host")
    models = candidates(args.space, args.models, args.max_mb, args.seed, profile.input_size)
    shipped = TimingProtocol.screen()
    blocks = [float(b) for b in args.blocks.split(",")]
    variants = {f"blocks {b * 1e3:g} ms": dataclasses.replace(shipped, block_seconds=b)
                for b in blocks}
    timers = {name: timer_for(profile, p) for name, p in variants.items()}
    own: dict[str, list[list[float]]] = {name: [[] for _ in models] for name in variants}
    cost: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    rng = random.Random(args.seed)
    started = time.perf_counter()
    names = list(variants)
    for _ in range(args.passes):
        order = list(range(len(models)))
        rng.shuffle(order)
        for k, i in enumerate(order):
            for name in names[k % len(names):] + names[:k % len(names)]:
                result = timers[name].time(models[i])
                own[name][i].append(result.latency_ms)
                cost[name].append((result.seconds, result.run_seconds))
    screened = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, m in enumerate(models):
            paths.append(Path(tmp) / f"m{i}.onnx")
            paths[-1].write_bytes(m)
        t0 = time.perf_counter()
        clock = [statistics.median(m) for m in common_clock(paths, 4, 10, args.seed)]
        clocked = time.perf_counter() - t0
    print(f"{len(models)} models from {Path(args.space).name} (<= {args.max_mb:g} MiB, "
          f"{profile.input_size} px), clock median {statistics.median(clock):.2f} ms; "
          f"screens {screened:.0f} s, clock {clocked:.0f} s")
    print(f"{'variant':>16} {'rho each pass':>16} {'rho median':>10} {'own/clock':>9} "
          f"{'pass v pass':>11} {'s/screen':>9} {'s runs':>7}")
    for name in names:
        passes = [[o[p] for o in own[name]] for p in range(args.passes)]
        each = " ".join(f"{spearman(p, clock):.4f}" for p in passes)
        med = [statistics.median(o) for o in own[name]]
        ratio = statistics.median(m / c for m, c in zip(med, clock, strict=True))
        self_rho = spearman(passes[0], passes[1]) if args.passes > 1 else float("nan")
        secs = statistics.mean(c[0] for c in cost[name])
        runs = statistics.mean(c[1] for c in cost[name])
        print(f"{name:>16} {each:>16} {spearman(med, clock):>10.4f} {ratio:>9.3f} "
              f"{self_rho:>11.4f} {secs:>9.4f} {runs:>7.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
