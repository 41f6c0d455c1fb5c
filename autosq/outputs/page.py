"""``autosq report``: one self-contained HTML page of a study, to choose a model from.

The page is ``page_template.html`` (inline styles and script, shipped as a data file) with the
study's data inlined as JSON: the feasible front (each member's metaparameters, numbers with
how they were obtained, layers, sizes per precision, latency protocol, the export command),
the recommended member and why, every trial (skipped and failed ones with their reasons), the
settings and provenance, and with ``devices`` the comparison grid and each device's points.
A Content-Security-Policy forbids every network request; nothing is loaded from outside.

What the page shows first: the accuracy-latency front of the members (a staircase), with
size as the marker's area; with a third objective the rest of the front is in the table and one
click away.
"""

from __future__ import annotations

import html
import json
import platform
import shlex
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from autosq.arch.cost import cost_of
from autosq.arch.plan import Plan, plan
from autosq.compress.estimate import DC_PRECISIONS, compressed_bytes
from autosq.searching.pareto import KNEE_RULE
from autosq.searching.records import TrialRecord, load_records
from autosq.searching.result import SearchResult, build_result
from autosq.searching.storage import load_study

MAX_PAGE_BYTES = 5 * 1024 * 1024  # the size budget: a 500-trial study is well under it


def _layers(p: Plan) -> list[dict[str, Any]]:
    return [{"name": layer.name, "kind": layer.kind, "cin": layer.cin, "cout": layer.cout,
             "kernel": layer.kernel, "out": layer.out_hw, "params": layer.params,
             "macs": layer.macs} for layer in p.layers]


def _sizes(p: Plan) -> dict[str, float]:
    c = cost_of(p)
    out = {prec: c.size_mb(prec) for prec in ("fp32", "int8")}
    for name, bits in DC_PRECISIONS.items():
        out[f"{name} (predicted)"] = compressed_bytes(p, bits) / 2**20
    return out


def _trial(r: TrialRecord) -> dict[str, Any]:
    lat = r.latency
    return {"trial": r.trial, "config": {**r.values, "precision": r.precision},
            "accuracy": r.accuracy, "accuracy_kind": r.accuracy_kind,
            "latency_ms": None if lat is None else lat.latency_ms,
            "latency_kind": None if lat is None else lat.latency_kind,
            "timing": r.timing, "size_mb": r.size_mb, "params": r.params, "macs": r.macs,
            "peak_mem_mb": r.peak_mem_mb, "feasible": r.feasible,
            "status": (r.skipped or r.untimed_reason or ("fits" if r.feasible else
                       "over budget: " + ", ".join(k for k, v in r.constraints.items()
                                                   if v > 0)))}


def page_data(result: SearchResult, recs: list[TrialRecord], failed: list[dict[str, Any]],
              compare: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values."""
    from autosq import __version__

    members = []
    for m in result.members:
        r = m.record
        lat = r.latency
        p = plan(r.config)
        members.append({
            **m.to_json(),
            "layers": _layers(p), "sizes": _sizes(p),
            "protocol": {} if lat is None else lat.protocol,
            # The storage as shown everywhere: a password is masked, never put in the page.
            "export": (f"autosq export --study {shlex.quote(result.study_name)} --storage "
                       f"{shlex.quote(result.storage)} --trial {m.trial} --out model.onnx"),
        })
    rec = result.recommended
    why = None
    if rec is not None:
        why = (f"Trial {rec.trial}: {KNEE_RULE} It reaches accuracy {rec.accuracy:.4g} "
               f"({rec.record.accuracy_kind}) at {rec.latency_ms:.3g} ms ({rec.latency_kind}) "
               f"and {rec.record.size_mb:.3g} MiB, among {len(result.members)} members.")
    s = result.settings
    return {
        "study": result.study_name, "storage": result.storage,
        "settings": {"device": s.device, "budget": s.budget.to_dict(), "space": s.space,
                     "input_size": s.input_size, "num_classes": s.num_classes,
                     "accuracy": s.accuracy.to_dict(), "sizes": s.sizes,
                     "objectives": s.objectives.to_list()},
        "provenance": {"autosq": __version__, "python": platform.python_version(),
                       "machine": platform.machine(), "written_at":
                       time.strftime("%Y-%m-%d %H:%M:%S"), "latencies": result.retimed},
        "counts": vars(result.counts), "hypervolume": result.hypervolume,
        "members": members, "recommended": None if rec is None else rec.trial,
        "why": why, "nearest_miss": result.nearest_miss, "notes": result.notes,
        "trials": [_trial(r) for r in recs] + failed,
        "compare": compare,
    }


def _clean(value: Any) -> Any:
    """JSON-ready with strict JSON: non-finite numbers become null."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def render_page(data: dict[str, Any]) -> bytes:
    """The HTML page with ``data`` inlined (``</`` escaped so the JSON cannot end the
    script element)."""
    template = resources.files("autosq.outputs").joinpath("page_template.html").read_text(
        encoding="utf-8")
    payload = json.dumps(_clean(data), allow_nan=False, default=str).replace("</", "<\\/")
    page = template.replace("__TITLE__", html.escape(f"autosq: {data['study']}")).replace(
        "__DATA__", payload)
    return page.encode("utf-8")


def _failed(study: Any) -> list[dict[str, Any]]:
    from autosq.searching.records import FAIL_ATTR

    return [{"trial": t.number, "status": "failed: " + str(t.user_attrs.get(FAIL_ATTR, "?")),
             "config": t.params, "feasible": False}
            for t in study.get_trials(deepcopy=False) if t.state.name == "FAIL"]


def _compare(study: Any, devices: Sequence[str], profiles: Sequence[str | Path]
             ) -> dict[str, Any]:
    from autosq.outputs.compare import compare_study

    c = compare_study(study, devices, [None], [None], profiles)
    return {"rows": c.to_json(), "notes": c.notes,
            "points": {d: [p._asdict() for p in pts] for d, pts in c.points.items()}}


def write_report(*, study: str, out: Path | str, storage: str,
                 devices: Sequence[str] = (), profiles: Sequence[str | Path] = (),
                 result: SearchResult | None = None) -> int:
    """Write the study's page to ``out``; returns its size in bytes. ``result``: the study's
    result when the caller has it (a search that just ended), else it is built."""
    from autosq._io import write_files
    from autosq.errors import UsageError

    out = Path(out)
    st = load_study(storage, study)
    result = result or build_result(st, storage)
    compare = _compare(st, devices, profiles) if devices else None
    page = render_page(page_data(result, load_records(st), _failed(st), compare))
    if len(page) > MAX_PAGE_BYTES:
        raise UsageError(f"the page would be {len(page):,} bytes, over its "
                         f"{MAX_PAGE_BYTES:,}-byte budget")
    write_files([(out, page)])
    return len(page)


__all__ = ["MAX_PAGE_BYTES", "page_data", "render_page", "write_report"]
