"""``autosq compress`` and ``autosq decompress``: Deep Compression of an exported model into a
``.dcz`` container, and its exact decoding."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from autosq.cli._options import bits_option, check_output, density_option, json_option
from autosq.compress.schedule import DEFAULT_BITS


def _densities(values: list[str]) -> dict[str, float]:
    from autosq.errors import UsageError

    out: dict[str, float] = {}
    for text in values:
        name, sep, number = text.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not sep or not name or not (math.isfinite(value) and 0 < value <= 1):
            raise UsageError(f"--layer-density must be NAME=D with D in (0, 1], e.g. "
                             f"features.3.expand3x3=0.3; got {text!r}")
        out[name] = value
    return out


def compress(
    model: Path = typer.Argument(..., help="An autosq export: MODEL.pt or MODEL.onnx."),
    out: Path = typer.Option(..., "--out", "-o", help="The container to write (.dcz)."),
    density: float = density_option(
        "Share of weights kept overall (default 1/3, the paper's; 1.0 prunes nothing more). "
        "Spread by the default schedule: 1x1 convs denser, 3x3 and the classifier sparser."),
    bits: str = bits_option(str(DEFAULT_BITS), "Bits per shared-weight code (2^bits - 1 "
                            "shared values a layer)."),
    layer_density: list[str] = typer.Option([], "--layer-density", help="NAME=D: this "
                                            "layer's density instead (repeatable)."),
    data: str | None = typer.Option(None, "--data", help="Measure how compressing changes the "
                                    "model's answers on this data's validation split (default: "
                                    "the data on the model's card, else generated inputs)."),
    as_json: bool = json_option("the report as JSON"),
) -> None:
    """Prune, share weights (k-means), code sparse positions and Huffman-code a model, without
    retraining: how much its answers change is measured and shown (retrain with `autosq
    export --data D --compress`)."""
    from autosq.cli._paths import refuse_inputs_as_outputs
    from autosq.outputs.compression import compress_file
    from autosq.outputs.compression_check import retrain_hint

    check_output(out, ".dcz", "--out")
    refuse_inputs_as_outputs({"--out": out}, {"the model read": model, "the data (--data)": data})
    report = compress_file(model, out, density, int(bits), _densities(layer_density), data)
    info, change = report.info, report.change
    if change.harmful:
        import warnings

        warnings.warn(f"compressing without retraining changed the model's answers: "
                      f"{change.text()}; compress while retraining instead: "
                      f"{retrain_hint(report.card, data)}", stacklevel=1)
    if as_json:
        typer.echo(json.dumps({"out": str(out), "size_bytes": report.size_bytes,
                               "fp32_bytes": report.fp32_bytes, "ratio": report.ratio,
                               "bits": info["bits"], "density": info["density"],
                               "densities": info["densities"], "check": change.to_dict()},
                              indent=2))
        return
    typer.echo(f"{out}: {report.size_bytes:,} bytes ({report.size_bytes / 2**20:.3f} MiB), "
               f"{report.ratio:.1f}x smaller than the fp32 weights ({report.fp32_bytes:,} "
               f"bytes); {info['density']:.1%} of the weights kept, {info['bits']}-bit codes, "
               "not retrained")
    typer.echo(f"output change: {change.text()}")


def decompress(
    container: Path = typer.Argument(..., help="A .dcz container."),
    out: Path = typer.Option(..., "--out", "-o", help="model.onnx (checked) or model.pt; its "
                             "card is written beside it (OUT.json)."),
) -> None:
    """Decode a container exactly into an ONNX model or a .pt state_dict, with the source
    model's metadata and card."""
    from autosq.cli._paths import refuse_inputs_as_outputs
    from autosq.errors import UsageError
    from autosq.outputs.compression import decompress_file
    from autosq.outputs.model_files import card_path

    if out.suffix.lower() not in (".onnx", ".pt"):
        raise UsageError(f"--out must end with .onnx or .pt; got {out}")
    check_output(out, out.suffix.lower(), "--out")
    check_output(card_path(out), ".json", "--out (its card)")
    refuse_inputs_as_outputs({"--out": out, "--out (its card)": card_path(out)},
                             {"the container read": container})
    decompress_file(container, out)
    typer.echo(f"{out}: decoded from {container}, with its card {card_path(out)}")
