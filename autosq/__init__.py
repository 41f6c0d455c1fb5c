"""autosq: hardware-aware search of the SqueezeNet family.

The public surface is small and imports nothing heavy: torch and onnxruntime load only when a
function that needs them runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autosq.arch import Plan, SqueezeNetConfig, plan, preset
from autosq.cost import Cost, cost
from autosq.errors import AutosqError

if TYPE_CHECKING:
    import pandas as pd

    from autosq.result import SearchResult

__version__ = "0.1.0"


def search(device: str = "host", max_mb: float | None = None, **kwargs: Any) -> SearchResult:
    """Search SqueezeNets that fit ``device``; ``result.front`` is a pandas DataFrame.

    ``autosq.search(device="rpi4", max_mb=5)`` runs the same search as the CLI. Keyword
    arguments are those of :func:`autosq.study.run_search` (space, trials, seed, sampler,
    storage, study, input_size, num_classes, max_ms, max_ram_mb, ...).
    """
    from autosq.study import run_search

    return run_search(device=device, max_mb=max_mb, **kwargs)


def compare(devices: list[str], max_mb: list[float | None] | float | None = None,
            max_ms: list[float | None] | float | None = None, **kwargs: Any) -> pd.DataFrame:
    """What the same budget buys on each device, as a DataFrame (one row per device and
    budget). Keyword arguments are those of :func:`autosq.comparison.run_compare` (study, storage,
    space, trials, ...)."""
    from autosq.comparison import run_compare

    def as_list(v: list[float | None] | float | None) -> list[float | None]:
        return list(v) if isinstance(v, list) else [v]

    return run_compare(devices, as_list(max_mb), as_list(max_ms), **kwargs).frame


__all__ = [
    "AutosqError",
    "Cost",
    "Plan",
    "SqueezeNetConfig",
    "__version__",
    "compare",
    "cost",
    "plan",
    "preset",
    "search",
]
