"""``autosq devices``: the device profiles, their budgets and how their latency is obtained."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autosq.cli import app

PROFILES_HELP = "Extra folder of device profiles (*.toml); wins over shipped ones. Repeatable."


@app.command()
def devices(
    profiles: list[Path] = typer.Option([], "--profiles", help=PROFILES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List the device profiles (shipped, from --profiles and from $AUTOSQ_PROFILES)."""
    from autosq.profiles import list_profiles
    from autosq.report import print_devices

    found = list_profiles(profiles)
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in found], indent=2))
    else:
        print_devices(found)
