"""``autosq report``: a study as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from autosq.cli._options import check_output, device_names, profiles_option, storage_option


def report(
    study: str = typer.Option(..., "--study", help="Study name."),
    out: Path = typer.Option(..., "--out", "-o", help="The page to write (.html)."),
    storage: str = storage_option(),
    devices: str | None = typer.Option(None, "--devices", help="Comma-separated devices to "
                                       "compare on the same budget (times on each)."),
    profiles: list[Path] = profiles_option(),
) -> None:
    """Write one HTML page (no network, works offline): the front, the recommended member and
    why, every trial, the devices, the settings and provenance."""
    from autosq.cli._paths import refuse_inputs_as_outputs
    from autosq.outputs.page import write_report

    check_output(out, ".html", "--out")
    refuse_inputs_as_outputs({"--out": out}, {}, storage)
    names = device_names(devices, "--devices") if devices is not None else []
    size = write_report(study=study, out=out, storage=storage, devices=names,
                        profiles=profiles)
    typer.echo(f"wrote {out} ({size:,} bytes)")
