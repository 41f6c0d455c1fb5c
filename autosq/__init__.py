"""autosq: hardware-aware search of the SqueezeNet family.

The public API, keyword-only and typed: :func:`search` (which is
:func:`autosq.searching.run.run_search`), :func:`compare`, :func:`refine`, :func:`export`,
:func:`load_result`, and the plan and cost of a configuration without torch. It imports
nothing heavy: torch, onnxruntime and optuna load only when a function that needs them runs.
Every error it raises is an :class:`~autosq.errors.AutosqError` whose message names the Python
parameter at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autosq._version import __version__
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.cost import Cost, cost
from autosq.arch.plan import Plan, plan
from autosq.arch.presets import preset
from autosq.errors import AutosqError
from autosq.outputs.compare import Comparison
from autosq.searching.records import TrialRecord
from autosq.searching.refine import RefineChange
from autosq.searching.result import FrontMember, SearchResult, load_result
from autosq.searching.run import run_search as search
from autosq.searching.storage import DEFAULT_STORAGE

if TYPE_CHECKING:
    from autosq.accuracy.train import OnStep
    from autosq.measure.protocol import TimingProtocol
    from autosq.outputs.export import ExportReport

Budgets = Sequence[float | None] | float | None


def compare(
    *,
    devices: Sequence[str],
    max_mb: Budgets = None,
    max_ms: Budgets = None,
    study: str | None = None,
    storage: str = DEFAULT_STORAGE,
    space: str = "default",
    trials: int = 50,
    input_size: int | None = None,
    profiles: Sequence[str | Path] = (),
    protocol: TimingProtocol | None = None,
) -> Comparison:
    """What the same budget buys on each device: ``result.rows`` (one per device and budget),
    ``result.notes`` (how each device's latency was obtained), ``result.frame`` (a DataFrame).

    Budgets are a number or a list of numbers (a grid); None takes the study's size budget and
    no latency budget. Without ``study``, a search on the first device is run first.
    """
    from autosq.errors import UsageError
    from autosq.outputs.compare import run_compare

    if isinstance(devices, str):
        raise UsageError(f"devices must be a list of device names; got the string {devices!r}")

    def as_list(name: str, v: Budgets) -> list[float | None]:
        values = list(v) if isinstance(v, Sequence) else [v]
        for x in values:
            if x is not None and not (isinstance(x, (int, float)) and 0 < x < float("inf")):
                raise UsageError(f"{name} values must be finite numbers > 0; got {x!r}")
        return values or [None]

    return run_compare(list(devices), as_list("max_mb", max_mb), as_list("max_ms", max_ms),
                       study=study, storage=storage, space=space, trials=trials,
                       input_size=input_size, profiles=profiles, protocol=protocol)


def refine(*, study: str, top: int = 3, epochs: float | None = None,
           storage: str = DEFAULT_STORAGE, on_train: OnStep | None = None,
           threads: int | None = None, pretrained: str | None = None) -> list[RefineChange]:
    """Train the ``top`` front members of a study searched with data nearest the knee for
    ``epochs`` (default: 4 times the search's training budget) with ``threads`` threads; their
    new accuracy replaces the search's wherever the study is read. They start from the study's
    pretrained source (``pretrained``: another SOURCE) and teacher, when it had them."""
    from autosq.searching.refine import refine_front
    from autosq.searching.storage import load_study

    return refine_front(load_study(storage, study), storage, top, epochs, on_train=on_train,
                        threads=threads, pretrained=pretrained)


def export(*, study: str, out: str | Path, trial: int | None = None, recommended: bool = False,
           fmt: str = "onnx", quantize: str | None = None, data: str | None = None,
           epochs: float | None = None, untrained: bool = False, threads: int | None = None,
           pretrained: str | None = None, teacher: str | None = None,
           storage: str = DEFAULT_STORAGE,
           profiles: Sequence[str | Path] = ()) -> ExportReport:
    """Write a study's ``trial`` (or its ``recommended`` member) as a checked ONNX file (or a
    PyTorch state_dict with ``fmt="pt"``) with a JSON card beside it, trained on ``data`` or
    the study's own; see :func:`autosq.outputs.export.export_candidate`."""
    from autosq.outputs.export import export_candidate

    return export_candidate(study=study, out=out, storage=storage, trial=trial,
                            recommended=recommended, fmt=fmt, quantize=quantize, data=data,
                            epochs=epochs, untrained=untrained, threads=threads,
                            pretrained=pretrained, teacher=teacher, profiles=profiles)


__all__ = [
    "AutosqError",
    "Comparison",
    "Cost",
    "FrontMember",
    "Plan",
    "RefineChange",
    "SearchResult",
    "SqueezeNetConfig",
    "TrialRecord",
    "__version__",
    "compare",
    "cost",
    "export",
    "load_result",
    "plan",
    "preset",
    "refine",
    "search",
]
