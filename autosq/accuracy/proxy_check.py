"""``proxy-check``: how well each zero-cost proxy ranks architectures by trained accuracy.

A seeded sample of distinct architectures from a space is trained on real data with the
standard recipe; each proxy scores the same untrained networks; Spearman's rho and Kendall's
tau-b between proxy and validation top-1 say which proxy to trust.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autosq.accuracy.correlation import kendall, spearman
from autosq.accuracy.proxies import PROXIES
from autosq.arch.space import make_config

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.accuracy.train import Recipe
    from autosq.arch.space import SearchSpace


@dataclass
class ProxyCheck:
    """The sampled architectures, their trained accuracy and proxy scores, and the table."""

    data: dict[str, Any]
    space: str
    recipe: dict[str, Any]
    archs: list[dict[str, Any]] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)

    def best(self) -> str:
        """The proxy with the highest Kendall tau (Spearman breaks ties)."""
        usable = [r for r in self.table if r["kendall"] == r["kendall"]]  # drop nan
        return str(max(usable, key=lambda r: (r["kendall"], r["spearman"]))["proxy"])

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "space": self.space, "recipe": self.recipe,
                "archs": self.archs, "table": self.table}


def sample_archs(space: SearchSpace, n: int, seed: int, input_size: int,
                 num_classes: int) -> list[dict[str, Any]]:
    """``n`` distinct architectures drawn uniformly from the space's grid (seeded)."""
    rng = random.Random(seed)
    grid = list(space.grid(9))
    rng.shuffle(grid)
    chosen: dict[str, dict[str, Any]] = {}
    for values in grid:
        config = make_config(values, input_size, num_classes)
        chosen.setdefault(config.arch_id, values)
        if len(chosen) == n:
            break
    return list(chosen.values())


def run_proxy_check(data: Dataset, space: SearchSpace, n: int, recipe: Recipe, seed: int = 0,
                    on_arch: Callable[[int, int, dict[str, Any]], None] | None = None
                    ) -> ProxyCheck:
    """Train ``n`` sampled architectures and correlate every proxy with their accuracy."""
    from autosq.accuracy.proxies import proxy_score
    from autosq.accuracy.train import train

    images = data.train_x[:64]
    check = ProxyCheck(data=data.describe(), space=space.name, recipe=vars(recipe))
    for i, values in enumerate(sample_archs(space, n, seed, data.input_size, data.num_classes)):
        config = make_config(values, data.input_size, data.num_classes)
        result = train(config, data, recipe, seed=seed)
        row: dict[str, Any] = {"values": values, "arch_id": config.arch_id,
                               "val_top1": result.val_top1, "train_seconds": result.seconds,
                               "images_per_s": result.images_per_s}
        for name in PROXIES:
            row[name] = proxy_score(name, config, images=images, seed=seed)
        check.archs.append(row)
        if on_arch is not None:
            on_arch(i + 1, n, row)
    acc = [a["val_top1"] for a in check.archs]
    for name in PROXIES:
        scores = [a[name] for a in check.archs]
        check.table.append({"proxy": name, "spearman": spearman(scores, acc),
                            "kendall": kendall(scores, acc)})
    return check
