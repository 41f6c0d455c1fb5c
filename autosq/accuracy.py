"""Where a candidate's accuracy objective comes from.

- :class:`ProxyAccuracy`: a zero-cost proxy score of the untrained network (kind ``proxy``);
  a score, not a percentage: only its ranking means something.
- Trained validation top-1 on the user's data (kind ``val_top1``) lives in :mod:`autosq.train`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autosq.arch import SqueezeNetConfig
from autosq.errors import UsageError

DEFAULT_PROXY = "synflow"
TrainCallback = Callable[[int, int, float, float], None]
"""on_train(step, steps, loss, images_per_s), called while a candidate trains."""


class ProxyAccuracy:
    """Scores candidates with a zero-cost proxy (see :mod:`autosq.proxies`)."""

    kind = "proxy"
    expensive = False

    def __init__(self, name: str = DEFAULT_PROXY) -> None:
        from autosq.proxies import PROXIES

        if name not in PROXIES:
            raise UsageError(f"unknown proxy {name!r}; known proxies: {', '.join(PROXIES)}")
        self.name = name

    def score(self, config: SqueezeNetConfig, seed: int) -> tuple[float, dict[str, Any]]:
        from autosq.proxies import proxy_score

        return proxy_score(self.name, config, seed=seed), {"proxy": self.name}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "proxy": self.name}


def make_accuracy(proxy: str, data: str | None, epochs: float, batch_size: int,
                  input_size: int, num_classes: int | None,
                  on_train: TrainCallback | None = None) -> tuple[Any, int]:
    """(accuracy estimator, number of classes) for a search: trained on ``data`` when given
    (the classes follow the data), else the zero-cost ``proxy`` (1000 classes by default)."""
    if data is None:
        classes = 1000 if num_classes is None else num_classes
        if classes < 1:
            raise UsageError(f"--num-classes must be >= 1; got {classes}")
        return ProxyAccuracy(proxy), classes
    from autosq.data import load_dataset
    from autosq.train import Recipe, TrainedAccuracy

    recipe = Recipe(epochs=epochs, batch_size=batch_size)
    ds = load_dataset(data, input_size)
    if num_classes is not None and num_classes != ds.num_classes:
        raise UsageError(f"--num-classes {num_classes} does not match the data: {data} has "
                         f"{ds.num_classes} classes (leave --num-classes out to follow the data)")
    return TrainedAccuracy(ds, recipe, on_train), ds.num_classes
