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


__all__ = [
    "AutosqError",
    "Cost",
    "Plan",
    "SqueezeNetConfig",
    "__version__",
    "cost",
    "plan",
    "preset",
    "search",
]
