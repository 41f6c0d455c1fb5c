"""``autosq measure``: time one model for a device, with the stats and how they were obtained;
or, with ``--predict``, its latency from the device's calibrated predictor, with its error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from autosq.cli._options import (
    arch_config,
    at_least,
    base_e_option,
    bypass_option,
    conv1_option,
    freq_option,
    incr_e_option,
    json_option,
    macro_option,
    max_memory_mb_option,
    max_model_mb_option,
    max_seconds_option,
    one_of,
    pct_3x3_option,
    positive,
    profiles_option,
    sr_option,
)


def measure(
    model: Path | None = typer.Argument(None, help="An ONNX file to time."),
    device: str = typer.Option("host", "--device", "-d", help="Device profile name or .toml file."),
    preset: str | None = typer.Option(
        None, "--preset", help="Time a named preset (architecture flags override it)."
    ),
    base_e: int | None = base_e_option(),
    incr_e: int | None = incr_e_option(),
    freq: int | None = freq_option(),
    pct_3x3: float | None = pct_3x3_option(),
    sr: float | None = sr_option(),
    macro: str | None = macro_option(),
    bypass: str | None = bypass_option(),
    conv1_filters: int | None = conv1_option(),
    input_size: int | None = typer.Option(
        None, "--input-size", callback=at_least(1),
        help="Input side for an architecture (default: the profile's)."
    ),
    num_classes: int = typer.Option(1000, "--num-classes", callback=at_least(1),
                                    help="Classes for an architecture."),
    precision: str = typer.Option("fp32", "--precision", callback=one_of(("fp32", "int8")),
                                  help="Time the architecture's fp32 or int8 (quantized) graph."),
    predict: bool = typer.Option(False, "--predict", help="Print the latency the device's "
                                 "predictor gives (kind predicted, with its error) instead of "
                                 "timing; see `autosq calibrate`."),
    max_ms: float | None = typer.Option(
        None, "--max-ms", callback=positive(),
        help="Latency budget: stop early once clearly over it."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Through an agent: time again, even if "
                               "the agent has this model's result cached."),
    max_model_mb: float = max_model_mb_option(),
    max_seconds: float = max_seconds_option(),
    max_memory_mb: float = max_memory_mb_option(),
    profiles: list[Path] = profiles_option(),
    as_json: bool = json_option("one JSON object"),
) -> None:
    """Time a model with ONNX Runtime for a device: measured here, estimated, or on its agent."""
    from autosq.errors import ConfigError, ProfileError, UsageError
    from autosq.measure.profiles import load_profile

    flags: dict[str, Any] = {"base_e": base_e, "incr_e": incr_e, "freq": freq,
                             "pct_3x3": pct_3x3, "sr": sr, "macro": macro, "bypass": bypass,
                             "conv1_filters": conv1_filters}
    described = preset is not None or any(v is not None for v in flags.values())
    if (model is None) == (not described):
        raise UsageError("give either MODEL.onnx or an architecture (--preset NAME and/or flags "
                         "such as --base-e), not both, not neither")
    if model is not None and precision != "fp32":
        raise UsageError("--precision applies to an architecture; an ONNX file is timed as it is")
    profile = load_profile(device, profiles)
    config = None
    if described:
        size = input_size or profile.input_size
        try:
            config = arch_config(preset, {**flags, "input_size": size,
                                          "num_classes": num_classes})
        except ConfigError as exc:
            if input_size is not None or "input_size" not in str(exc):
                raise
            raise ProfileError(f"{profile.path}: key 'runtime.input_size' ({size}) does not fit "
                               f"{preset or 'this architecture'}: {exc}; give --input-size or "
                               "set another in the profile") from None
        what = f"{preset or 'architecture'} @ {size}x{size}" + \
            (f" {precision}" if precision != "fp32" else "")
    else:
        assert model is not None
        what = str(model)
        if input_size is not None:  # fills the model's dynamic height and width
            import dataclasses

            profile = dataclasses.replace(profile, input_size=input_size)
    from autosq.measure import timer_for
    from autosq.measure.limits import Limits
    from autosq.measure.protocol import TimingProtocol

    limits = Limits(max_model_mb=max_model_mb, max_seconds=max_seconds,
                    max_memory_mb=max_memory_mb)
    timer = timer_for(profile, TimingProtocol.careful(), limits, fresh)
    if predict:
        if config is None:
            raise UsageError("--predict needs an architecture (--preset and/or flags), not an "
                             "ONNX file: the predictor reads the architecture's plan")
        _predict(what, profile, timer, config, precision, as_json)
        return
    if model is not None:
        from autosq._io import not_a_file

        if (problem := not_a_file(model)) is not None:
            raise UsageError(f"model file {model} {problem} (expected an .onnx file)")
        size_b = model.stat().st_size
        if size_b > max_model_mb * 1024 * 1024:
            raise UsageError(f"model file {model} is {size_b / 2**20:.1f} MB, over "
                             f"--max-model-mb {max_model_mb:g}")
        onnx_bytes = model.read_bytes()
    else:
        from autosq.searching.evaluate import export_model

        assert config is not None
        onnx_bytes = export_model(config, precision, seed=0)
    from autosq.cli.render import print_latency

    result = timer.time(onnx_bytes, max_ms)
    if as_json:
        typer.echo(
            json.dumps({"model": what, "device": profile.name, **result.to_dict()}, indent=2)
        )
    else:
        print_latency(what, profile, result)


def _predict(what: str, profile: Any, timer: Any, config: Any, precision: str,
             as_json: bool) -> None:
    from autosq.errors import UsageError
    from autosq.measure.features import graph_precision, latency_features
    from autosq.outputs.calibrate import device_predictor

    predictor = device_predictor(profile, timer)
    if graph_precision(precision) not in predictor.precisions:
        raise UsageError(f"the predictor for {profile.name} was calibrated on "
                         f"{', '.join(predictor.precisions)} graphs only; calibrate with a space "
                         f"that includes {precision}")
    ms = predictor.predict_row(latency_features(config, precision))
    if as_json:
        typer.echo(json.dumps({
            "model": what, "device": profile.name, "latency_ms": ms,
            "latency_kind": "predicted", "form": predictor.form,
            "cv_mape": predictor.cv_mape, "cv_mape_ci": list(predictor.cv_mape_ci),
            "cv_worst": predictor.cv_worst, "cv_p90": predictor.cv_p90,
            "cv_spearman": predictor.cv_spearman, "samples": predictor.samples}, indent=2))
    else:
        via = (" calibrated on the device through its agent,"
               if profile.latency_source == "estimated" else "")
        typer.echo(f"{what} on {profile.name}: {ms:.3f} ms (predicted,{via} "
                   f"+-{predictor.cv_p90:.0%} for 9 in 10; {predictor.error_text()})")
