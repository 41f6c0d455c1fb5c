"""``autosq devices``: the device profiles, their budgets and how their latency is obtained."""

from __future__ import annotations

import json
from pathlib import Path

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
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in found], indent=2))
    else:
        print_devices(found)
