"""Every command's --help ends with an example whose flags the command has."""

from __future__ import annotations

import shlex
from collections.abc import Callable

import pytest
import typer

from autosq.cli import app
from autosq.cli._options import EXAMPLES, add_examples, tidy_help

Cli = Callable[..., tuple[int, str, str]]

GROUP = add_examples(tidy_help(typer.main.get_command(app)))
COMMANDS = sorted(GROUP.commands)  # type: ignore[attr-defined]


def test_every_command_has_an_example_and_every_example_a_command() -> None:
    assert sorted(EXAMPLES) == COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_help_ends_with_the_example(cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # the example on one line
    code, text, _ = cli(name, "--help")
    assert code == 0
    last = [line.strip() for line in text.strip().splitlines() if line.strip()][-2:]
    assert last[0].startswith("Example: "), last
    assert last[1] == EXAMPLES[name]["command"]


@pytest.mark.parametrize("name", COMMANDS)
def test_the_examples_flags_exist(name: str) -> None:
    words = shlex.split(EXAMPLES[name]["command"])
    assert words[:2] == ["autosq", name]
    command = GROUP.commands[name]  # type: ignore[attr-defined]
    known = {opt for param in command.params for opt in param.opts}
    flags = [w.split("=")[0] for w in words[2:] if w.startswith("-")]
    assert set(flags) <= known, set(flags) - known
