"""``autosq report``: one self-contained HTML page of a study, to choose a model from.

The page is ``page_template.html`` (inline styles and script, shipped as a data file) with the
study's data inlined as JSON: the feasible front (each member's metaparameters, numbers with
how they were obtained, layers, sizes per precision, latency protocol, the export command),
the recommended member and why, every trial (skipped and failed ones with their reasons), the
settings and provenance, and with ``devices`` the comparison grid and each device's points.
A Content-Security-Policy forbids every network request; nothing is loaded from outside.

What the page shows first: the accuracy-latency front of the members (a staircase), with
size as the marker's area, thinned to at most 15 members (:mod:`autosq.searching.thinning`;
with ``devices``, the best member under each compared device's budget is kept too); the whole
front is one click away.

Hostile text (a study named ``<!--<script>``, a fail reason holding ``</script>``) can neither
end the data's script element nor reach the title unescaped: the JSON escapes ``<``, ``>``,
``&`` and U+2028/9, and the template's placeholders are filled in one pass.
"""

from __future__ import annotations

import html
import json
import platform
import re
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
from autosq.searching.thinning import THIN_RULE, best_under, thin

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
    from autosq._version import __version__

    shown = _shown(result, compare)
    members = []
    for m in result.members:
        r = m.record
        lat = r.latency
        p = plan(r.config)
        members.append({
            **m.to_json(), "shown": m.trial in shown,
            "layers": _layers(p), "sizes": _sizes(p),
            "protocol": {} if lat is None else lat.protocol,
            # The storage as shown everywhere: a password is masked, never put in the page.
            "export": (f"autosq export --study {shlex.quote(result.study_name)} --storage "
                       f"{shlex.quote(result.storage)} --trial {m.trial} --out model.onnx"),
        })
    rec = result.recommended
    why = None
    if rec is not None:
        why = (f"Trial {rec.trial}: accuracy {rec.accuracy:.4g} ({rec.record.accuracy_kind}) "
               f"at {rec.latency_ms:.3g} ms ({rec.latency_kind}) and {rec.record.size_mb:.3g} "
               f"MiB, among {len(result.members)} members. {KNEE_RULE}")
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
        "caveat": s.accuracy.caveat(),
        "thin_rule": THIN_RULE, "knee_rule": KNEE_RULE,
        "screen_error": None if result.screen_error is None else result.screen_error.describe(),
        "trials": [_trial(r) for r in recs] + failed,
        "compare": compare,
    }


def _shown(result: SearchResult, compare: dict[str, Any] | None) -> set[int]:
    """The members shown before the click: the result's own choice, and with devices compared,
    thinned again keeping also the best and the recommended member of each device's row."""
    if not compare:
        return {m.trial for m in result.shown}
    first = [m for m in result.members if m.primary or m.recommended]
    index = {m.trial: i for i, m in enumerate(first)}
    points = [(m.accuracy, m.latency_ms, 0.0) for m in first]
    keep = [i for i, m in enumerate(first) if m.recommended]
    if result.settings.budget.max_ms is not None:
        best = best_under(points, result.settings.budget.max_ms)
        keep += [] if best is None else [best]
    keep += [index[t] for row in compare["rows"] for t in (row.get("trial"),
             row.get("recommended_trial")) if t in index]
    return {first[i].trial for i in thin(points, keep)}


def _clean(value: Any) -> Any:
    """JSON-ready with strict JSON: non-finite numbers become null."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


# Inside <script>, the HTML parser ends the element at "</script" and treats "<!--" and
# "<script" specially whatever the JSON means; JavaScript once ended lines at U+2028/9. Each is
# written as a JSON escape, which JSON.parse reads back as the same character.
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                  "\u2029": "\\u2029"}
_PLACEHOLDER = re.compile(r"__(TITLE|DATA)__")


def script_json(data: Any) -> str:
    """``data`` as strict JSON that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(_clean(data), allow_nan=False, default=str)
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_UNSAFE[m.group()], text)


def render_page(data: dict[str, Any]) -> bytes:
    """The HTML page with ``data`` inlined (:func:`script_json`) and its title; both
    placeholders are filled in one pass, so neither value can bring in the other's."""
    template = resources.files("autosq.outputs").joinpath("page_template.html").read_text(
        encoding="utf-8")
    values = {"TITLE": html.escape(f"autosq: {data['study']}"), "DATA": script_json(data)}
    page = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
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


__all__ = ["MAX_PAGE_BYTES", "page_data", "render_page", "script_json", "write_report"]
