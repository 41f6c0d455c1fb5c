"""Score a stored proxy-check study's architectures with the supernet as it is now, against the
study's stored reference accuracies: how a change to the supernet moves its ranking, without
training the references again.

Usage: python bench/rescore_supernet.py STUDY.json DATA [--input-size 32] [--seed 0]
(STUDY.json from `autosq proxy-check --json`; DATA the same --data it was run with.)
"""

from __future__ import annotations

import argparse
import json
import time

from autosq.accuracy.correlation import bootstrap_interval, kendall, spearman
from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.oneshot import SupernetAccuracy
from autosq.arch.space import load_space, make_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("study")
    ap.add_argument("data")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with open(args.study) as fh:
        study = json.load(fh)
    data = load_dataset(args.data, args.input_size)
    est = SupernetAccuracy(data, load_space(study["space"]), seed=args.seed)
    archs = study["archs"]
    t0 = time.perf_counter()
    for macro in sorted({a["values"].get("macro", "v1.0") for a in archs}):
        est.supernet(macro)
    train_s = time.perf_counter() - t0
    ref, scores = [], []
    t1 = time.perf_counter()
    for a in archs:
        ref.append(a["reference_top1"])
        scores.append(est.score(make_config(a["values"], args.input_size, data.num_classes),
                                args.seed)[0])
    score_s = time.perf_counter() - t1
    rho, tau = spearman(scores, ref), kendall(scores, ref)
    rci = bootstrap_interval(scores, ref, spearman, seed=args.seed)
    tci = bootstrap_interval(scores, ref, kendall, seed=args.seed)
    print(f"{len(archs)} architectures of {study['space']}, reference {study['reference_steps']}"
          f" steps; supernet {est.recipe}")
    print(f"supernet: Spearman {rho:+.3f} [{rci[0]:+.2f}, {rci[1]:+.2f}], Kendall {tau:+.3f} "
          f"[{tci[0]:+.2f}, {tci[1]:+.2f}], {(train_s + score_s) / len(archs):.2f} s per "
          f"candidate ({train_s:.0f} s training, {score_s / len(archs):.2f} s a score)")


if __name__ == "__main__":
    main()
