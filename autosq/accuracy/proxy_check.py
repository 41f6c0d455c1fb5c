"""``proxy-check``: how well each accuracy estimator ranks architectures like real training.

A seeded sample of distinct architectures, spread over the space by size, is trained stand-alone
for a long budget (the reference); every estimator scores the same architectures: the zero-cost
proxies, the supernet, and short stand-alone training at one or two budgets. For each, Spearman's
rho and Kendall's tau-b against the reference, with percentile-bootstrap 95% intervals, and its
cost per candidate. A few architectures are trained again from another seed: the seed-to-seed
spread of the reference says which differences are too small to call a ranking.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from autosq.accuracy.correlation import bootstrap_interval, kendall, spearman
from autosq.accuracy.proxies import PROXIES
from autosq.arch.plan import plan
from autosq.arch.space import make_config
from autosq.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.accuracy.train import OnStep
    from autosq.arch.space import SearchSpace

DEFAULT_REFERENCE_STEPS = 1500
DEFAULT_SHORT_BUDGETS = (100, 500)


@dataclass(frozen=True)
class EstimatorRow:
    """One estimator's agreement with the reference ranking, and what it costs."""

    estimator: str
    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]
    seconds_per_candidate: float


@dataclass(frozen=True)
class ArchRow:
    """One sampled architecture: its reference accuracy and every estimator's score."""

    values: dict[str, Any]
    arch_id: str
    params: int
    reference_top1: float
    reference_seconds: float
    scores: dict[str, float]


@dataclass
class ProxyCheck:
    """The study: what it was run on, each architecture, each estimator, the reference's spread."""

    data: dict[str, Any]
    space: str
    reference_steps: int
    seed: int
    archs: list[ArchRow] = field(default_factory=list)
    table: list[EstimatorRow] = field(default_factory=list)
    seed_spread: dict[str, float] = field(default_factory=dict)

    def best(self) -> str:
        """The estimator with the highest Kendall tau (Spearman breaks ties)."""
        usable = [r for r in self.table if not math.isnan(r.kendall)]
        if not usable:
            return "none (the reference accuracies or every score are constant)"
        return max(usable, key=lambda r: (r.kendall, r.spearman)).estimator

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"data": self.data, "space": self.space, "reference_steps": self.reference_steps,
                "seed": self.seed, "archs": [asdict(a) for a in self.archs],
                "table": [asdict(r) for r in self.table], "seed_spread": self.seed_spread}


def sample_archs(space: SearchSpace, n: int, seed: int, input_size: int,
                 num_classes: int) -> list[dict[str, Any]]:
    """``n`` distinct architectures spread over the space: the grid's distinct architectures
    sorted by parameter count, one drawn (seeded) from each of ``n`` equal strata."""
    rng = random.Random(seed)
    grid = list(space.grid(9))
    rng.shuffle(grid)
    distinct: dict[str, tuple[int, dict[str, Any]]] = {}
    for values in grid:
        try:
            config = make_config(values, input_size, num_classes)
        except ConfigError:  # a grid point outside the valid networks
            continue
        distinct.setdefault(config.arch_id, (plan(config).params, values))
    ordered = [v for _, v in sorted(distinct.values(), key=lambda pv: pv[0])]
    if len(ordered) <= n:
        return ordered
    edges = [round(i * len(ordered) / n) for i in range(n + 1)]
    return [ordered[rng.randrange(edges[i], edges[i + 1])] for i in range(n)]


def run_proxy_check(data: Dataset, space: SearchSpace, n: int, seed: int = 0,
                    reference_steps: int = DEFAULT_REFERENCE_STEPS,
                    short_budgets: tuple[int, ...] = DEFAULT_SHORT_BUDGETS,
                    supernet: bool = True, spread_archs: int = 8,
                    on_arch: Callable[[int, int, ArchRow], None] | None = None,
                    threads: int | None = None, pretrained: str | None = None,
                    train_device: str | None = None,
                    on_step: OnStep | None = None) -> ProxyCheck:
    """Run the study on ``n`` architectures of ``space`` (see the module docstring); every
    training uses ``threads`` threads (default: the training default) and reports its steps to
    ``on_step``. With ``pretrained`` (a SOURCE), each short budget is also measured
    fine-tuning from the inherited weights (``pretrained N steps``)."""
    from autosq.accuracy.oneshot import SupernetAccuracy
    from autosq.accuracy.proxies import proxy_score
    from autosq.accuracy.threads import resolve_threads
    from autosq.accuracy.train import Recipe, finetune_recipe, train

    threads = resolve_threads(threads)
    from autosq.accuracy.device import resolve_device

    device = resolve_device(train_device)

    check = ProxyCheck(data=data.describe(), space=space.name, reference_steps=reference_steps,
                       seed=seed)
    reference = Recipe(min_steps=reference_steps, default_epochs=0.0)
    shorts = {f"train {s} steps": Recipe(min_steps=s, default_epochs=0.0) for s in short_budgets}
    init, tuned_data = None, data
    finetunes: dict[str, Recipe] = {}
    if pretrained is not None:
        from autosq.arch.pretrained import load_pretrained

        init = load_pretrained(pretrained, tuple(sorted({str(v) for v in space.values_of(
            "macro", "v1.0")})))
        tuned_data = data.renormalised(init.normalisation)
        finetunes = {f"pretrained {s} steps": replace(finetune_recipe(), min_steps=s)
                     for s in short_budgets}
    cost: dict[str, float] = {name: 0.0 for name in [*PROXIES, *shorts, *finetunes]}
    sn = SupernetAccuracy(data, space, seed=seed, threads=threads) if supernet else None
    archs = sample_archs(space, n, seed, data.input_size, data.num_classes)
    if len(archs) < 3:
        raise UsageError(f"space {space.name!r} has {len(archs)} distinct valid architectures "
                         f"at {data.input_size}px; a rank correlation needs at least 3")
    images = data.sample("train", 64)[0]
    for i, values in enumerate(archs):
        config = make_config(values, data.input_size, data.num_classes)
        ref = train(config, data, reference, seed=seed, threads=threads, device=device,
                    on_step=on_step)
        scores: dict[str, float] = {}
        for name in PROXIES:
            t0 = time.perf_counter()
            scores[name] = proxy_score(name, config, images=images, seed=seed)
            cost[name] += time.perf_counter() - t0
        for name, recipe in shorts.items():
            r = train(config, data, recipe, seed=seed, threads=threads, device=device,
                    on_step=on_step)
            scores[name] = r.val_top1
            cost[name] += r.seconds
        for name, recipe in finetunes.items():
            r = train(config, tuned_data, recipe, seed=seed, threads=threads, init=init,
                      device=device, on_step=on_step)
            scores[name] = r.val_top1
            cost[name] += r.seconds
        if sn is not None:
            if "supernet" not in cost:
                t0 = time.perf_counter()
                for macro in sorted({v.get("macro", "v1.0") for v in archs}):
                    sn.supernet(macro)
                cost["supernet"] = time.perf_counter() - t0  # training, shared by all
            t0 = time.perf_counter()
            scores["supernet"] = sn.score(config, seed)[0]
            cost["supernet"] += time.perf_counter() - t0
        row = ArchRow(values, config.arch_id, plan(config).params, ref.val_top1, ref.seconds,
                      scores)
        check.archs.append(row)
        if on_arch is not None:
            on_arch(i + 1, len(archs), row)
    acc = [a.reference_top1 for a in check.archs]
    for name in cost:
        s = [a.scores[name] for a in check.archs]
        check.table.append(EstimatorRow(
            estimator=name, spearman=spearman(s, acc),
            spearman_ci=bootstrap_interval(s, acc, spearman, seed=seed),
            kendall=kendall(s, acc), kendall_ci=bootstrap_interval(s, acc, kendall, seed=seed),
            seconds_per_candidate=cost[name] / max(1, len(check.archs))))
    # The reference's own noise: the first few architectures trained again from another seed.
    again = [train(make_config(a.values, data.input_size, data.num_classes), data, reference,
                   seed=seed + 1, threads=threads, device=device, on_step=on_step).val_top1
             for a in check.archs[:spread_archs]]
    diffs = [b - a.reference_top1 for a, b in zip(check.archs, again, strict=False)]
    if len(diffs) >= 2:
        check.seed_spread = {"archs": float(len(diffs)),
                             "mean_abs_diff": statistics.fmean(abs(d) for d in diffs),
                             "sd_diff": statistics.stdev(diffs)}
    return check
