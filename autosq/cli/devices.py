"""``autosq devices``: the device profiles, their budgets and how their latency is obtained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from autosq.cli._options import json_option, profiles_option


def devices(
    profiles: list[Path] = profiles_option(),
    as_json: bool = json_option("a JSON list"),
) -> None:
    """List the device profiles (shipped, from --profiles and from $AUTOSQ_PROFILES)."""
    from autosq.cli.render import print_devices
    from autosq.measure.profiles import list_profiles

    found = list_profiles(profiles)
    predictors = {p.name: _predictor_state(p) for p in found}
    if as_json:
        typer.echo(json.dumps([{**p.to_dict(), "predictor": predictors[p.name]} for p in found],
                              indent=2))
    else:
        print_devices(found, {name: _short(state) for name, state in predictors.items()})


def _predictor_state(profile: Any) -> dict[str, Any] | None:
    """The device's stored latency predictor, its error, and whether it is current (known
    without the network for devices timed here; an agent's device is checked when used)."""
    from autosq.measure.predictor import stored_predictors

    stored = stored_predictors(profile.name)
    if not stored:
        return None
    p = stored[-1]
    current: bool | None = None
    if profile.latency_source == "measured":
        import onnxruntime as ort

        from autosq.measure.host import machine_key
        from autosq.outputs.calibrate import calibration_for

        now = calibration_for(profile, None, machine_key(), ort.__version__)
        current = any(q.calibration == now for q in stored)
        p = next((q for q in stored if q.calibration == now), p)
    return {"form": p.form, "samples": p.samples, "cv_mape": p.cv_mape,
            "cv_mape_ci": list(p.cv_mape_ci), "cv_worst": p.cv_worst,
            "cv_spearman": p.cv_spearman, "current": current}


def _short(state: dict[str, Any] | None) -> str:
    if state is None:
        return "-"
    text = f"MAPE {state['cv_mape']:.1%}, {state['samples']} samples"
    return text + (" (stale: recalibrate)" if state["current"] is False else "")
