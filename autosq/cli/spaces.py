"""``autosq spaces``: the shipped search spaces."""

from __future__ import annotations

import json

from autosq.cli._options import json_option


def spaces(as_json: bool = json_option("a JSON list")) -> None:
    """List the shipped search spaces (use your own with --space FILE.toml)."""
    from autosq.arch.space import list_spaces, load_space
    from autosq.cli.render import print_spaces

    found = [load_space(n) for n in list_spaces()]
    if as_json:
        import typer

        typer.echo(json.dumps([s.to_dict() for s in found], indent=2))
    else:
        print_spaces(found)
