"""autosq: hardware-aware search of the SqueezeNet family.

The public surface is small and imports nothing heavy: torch and onnxruntime load only when a
function that needs them runs.
"""

from __future__ import annotations

from autosq.arch import Plan, SqueezeNetConfig, plan, preset
from autosq.cost import Cost, cost
from autosq.errors import AutosqError

__version__ = "0.1.0"

__all__ = [
    "AutosqError",
    "Cost",
    "Plan",
    "SqueezeNetConfig",
    "__version__",
    "cost",
    "plan",
    "preset",
]
