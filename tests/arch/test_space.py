"""Search spaces: every shipped one loads and samples valid configs; bad ones say why."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from autosq.arch.space import list_spaces, load_space, make_config, parse_space, space_size
from autosq.errors import SpaceError

Cli = Callable[..., tuple[int, str, str]]
SHIPPED = sorted(p.stem for p in (Path(__file__).parents[2] / "search_spaces").glob("*.toml"))

GOOD = """
name = "mine"
[fixed]
macro = "v1.1"
[params.sr]
type = "float"
low = 0.125
high = 0.5
step = 0.125
[params.bypass]
type = "categorical"
choices = ["none", "simple"]
"""


def test_required_spaces_ship() -> None:
    assert {"default", "paper", "tiny"} <= set(SHIPPED) == set(list_spaces())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_space_samples_valid_configs(name: str) -> None:
    space = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        values = space.sample(trial)
        config = make_config(values, 224, 10)
        assert config.num_classes == 10
        study.tell(trial, 0.0)


def test_default_space_covers_the_paper() -> None:
    dims = {d.name: d for d in load_space("default").dims}
    assert set(dims) >= {"base_e", "incr_e", "freq", "pct_3x3", "sr", "macro", "bypass"}
    assert dims["base_e"].low <= 128 <= dims["base_e"].high  # type: ignore[operator]
    assert dims["sr"].low <= 0.125 and dims["sr"].high >= 1.0  # type: ignore[operator]
    assert set(dims["macro"].choices) == {"v1.0", "v1.1"}
    assert set(dims["bypass"].choices) == {"none", "simple", "complex"}


def test_paper_space_is_the_papers_sweep() -> None:
    paper = load_space("paper")
    assert paper.fixed == {
        "base_e": 128,
        "incr_e": 128,
        "freq": 2,
        "macro": "v1.0",
        "bypass": "none",
    }
    dims = {d.name: d for d in paper.dims}
    assert (dims["sr"].low, dims["sr"].high) == (0.125, 1.0)
    assert (dims["pct_3x3"].low, dims["pct_3x3"].high) == (0.01, 0.99)


def test_grid_and_size() -> None:
    space = parse_space(GOOD, "mine.toml")
    assert space_size(space) == 8
    grid = list(space.grid(10))
    assert len(grid) == 8 and all(g["macro"] == "v1.1" for g in grid)
    assert space_size(load_space("paper")) == float("inf")


def test_space_by_path(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(GOOD)
    assert load_space(str(f)).name == "mine"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("high = 0.5", "high = 1.5e-2", "key 'params.sr.high' must be >= low"),
        ("low = 0.125", "low = 0.0", "key 'params.sr.low': sr (squeeze ratio) must be > 0"),
        ("low = 0.125", "low = -1.0", "key 'params.sr.low' must be >= 0"),
        ('type = "float"', 'type = "complex"', "key 'params.sr.type' must be one of int, float"),
        ('"none", "simple"', '"none", "wide"', "key 'params.bypass.choices[1]': bypass must be"),
        ('macro = "v1.1"', 'macro = "v9"', "key 'fixed.macro': macro must be one of"),
        (
            'macro = "v1.1"',
            "input_size = 96",
            "key 'fixed.input_size' is not a metaparameter (set by the study",
        ),
        (
            "[params.sr]",
            '[params.colour]\ntype = "int"\nlow = 1\nhigh = 2\n[params.sr]',
            "key 'params.colour' is not a metaparameter",
        ),
        ("step = 0.125", "step = 0.125\nlog = true", "cannot be combined with step"),
        ("step = 0.125", "step = 0", "key 'params.sr.step' must be > 0"),
        ('choices = ["none", "simple"]', "choices = []", "must list at least one value"),
        (
            'name = "mine"',
            'name = "mine"\n[params.macro]\ntype = "categorical"\nchoices = ["v1.0"]',
            "'macro' is both in [params] and [fixed]",
        ),
        ("high = 0.5", "high = [", "not valid TOML"),
    ],
)
def test_bad_spaces(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(SpaceError) as info:
        parse_space(GOOD.replace(old, new, 1), "mine.toml")
    assert str(info.value).startswith("mine.toml") and message in str(info.value)


def test_unknown_space_lists_the_known_ones() -> None:
    with pytest.raises(SpaceError, match="unknown search space 'huge'; known spaces: default"):
        load_space("huge")
    with pytest.raises(SpaceError, match="does not exist"):
        load_space("/no/such/space.toml")


def test_spaces_cli(cli: Cli) -> None:
    code, out, _ = cli("spaces")
    assert code == 0 and "paper" in out and "tiny" in out
    code, out, _ = cli("spaces", "--json")
    assert {s["name"] for s in json.loads(out)} == set(SHIPPED)
