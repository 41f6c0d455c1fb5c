"""Search spaces: load and validate the TOML files, and sample a configuration from a trial.

A space has ``[params.NAME]`` dimensions (``type`` int, float or categorical; ``low``/``high``
with an optional ``step`` or ``log``, or ``choices``) and ``[fixed]`` values. NAME is a
:class:`~autosq.arch.config.SqueezeNetConfig` field, or ``precision`` (fp32 or int8). Input size and
number of classes are not dimensions: they belong to the study (device and data).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq._io import TomlTable, parse_toml, read_text_file, shipped
from autosq.arch.config import SqueezeNetConfig
from autosq.errors import ConfigError, SpaceError

if TYPE_CHECKING:
    import optuna

MAX_STEPS = 1_000_000  # values of one stepped dimension; more is a typo (and hangs samplers)
# dc8..dc4: Deep Compression at that many bits (autosq.compress.estimate sizes them)
PRECISIONS = ("fp32", "int8", "dc8", "dc6", "dc5", "dc4")
_STUDY_FIELDS = ("num_classes", "input_size")
ALLOWED = (
    *tuple(f.name for f in fields(SqueezeNetConfig) if f.name not in _STUDY_FIELDS),
    "precision",
)


@dataclass(frozen=True)
class Dimension:
    """One sampled metaparameter."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask Optuna for a value of this dimension."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self, points: int) -> list[Any]:
        """Evenly spread values (all of them for categorical and stepped dimensions that fit)."""
        if self.kind == "categorical":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.step:
            count = round((self.high - self.low) / self.step) + 1
            values = [self.low + i * self.step for i in range(count)]
            if count > points:
                values = [values[round(i * (count - 1) / (points - 1))] for i in range(points)]
        elif self.log:
            ratio = self.high / self.low
            values = [self.low * ratio ** (i / (points - 1)) for i in range(points)]
        else:
            values = [self.low + (self.high - self.low) * i / (points - 1) for i in range(points)]
        if self.kind == "int":
            return sorted({round(v) for v in values})
        return [round(v, 10) for v in values]


@dataclass(frozen=True)
class SearchSpace:
    """A named set of dimensions and fixed values."""

    name: str
    description: str
    dims: tuple[Dimension, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """The fixed values plus one suggested value per dimension."""
        values = dict(self.fixed)
        for dim in self.dims:
            values[dim.name] = dim.suggest(trial)
        return values

    def values_of(self, name: str, default: Any = None) -> tuple[Any, ...]:
        """The values a categorical or fixed parameter takes (``(default,)`` when the space
        leaves it out)."""
        for dim in self.dims:
            if dim.name == name:
                return tuple(dim.choices) if dim.kind == "categorical" else ()
        return (self.fixed.get(name, default),)

    @property
    def precisions(self) -> tuple[str, ...]:
        """The weight precisions this space may produce."""
        for dim in self.dims:
            if dim.name == "precision":
                return tuple(dim.choices)
        return (self.fixed.get("precision", "fp32"),)

    def grid(self, points: int = 5) -> Iterator[dict[str, Any]]:
        """Every combination of each dimension's :meth:`Dimension.grid` (a dense sweep)."""
        names = [d.name for d in self.dims]
        for combo in itertools.product(*(d.grid(points) for d in self.dims)):
            yield {**self.fixed, **dict(zip(names, combo, strict=True))}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "fixed": self.fixed,
            "params": {
                d.name: {
                    k: v for k, v in vars(d).items() if k != "name" and v not in (None, (), False)
                }
                for d in self.dims
            },
        }


def split_values(values: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(config fields, precision) from a sampled or fixed set of values."""
    fields_ = {k: v for k, v in values.items() if k != "precision"}
    return fields_, str(values.get("precision", "fp32"))


def make_config(values: dict[str, Any], input_size: int, num_classes: int) -> SqueezeNetConfig:
    """The configuration of sampled values at the study's input size and classes."""
    fields_, _ = split_values(values)
    return SqueezeNetConfig.from_dict(
        {**fields_, "input_size": input_size, "num_classes": num_classes}
    )


def _check_value(where: str, key: str, name: str, value: Any) -> None:
    """Reuse the config's own validation for one value, naming the space key."""
    if name == "precision":
        if value not in PRECISIONS:
            raise SpaceError(
                f"{where}: key '{key}' must be one of {', '.join(PRECISIONS)}; got {value!r}"
            )
        return
    try:
        SqueezeNetConfig(**{name: value, **({"input_size": 224})})
    except ConfigError as exc:
        raise SpaceError(f"{where}: key '{key}': {exc}") from None
    except TypeError:
        raise SpaceError(f"{where}: key '{key}' has a value of the wrong type: {value!r}") from None


def _dimension(table: TomlTable, name: str) -> Dimension:
    where = table.where
    kind = table.get("type", str, choices=("int", "float", "categorical"))
    if kind == "categorical":
        table.check_known(["type", "choices"])
        choices = table.get("choices", list)
        if not choices:
            raise table.fail("choices", "must list at least one value")
        for i, c in enumerate(choices):
            _check_value(where, f"{table.prefix}choices[{i}]", name, c)
        return Dimension(name, kind, choices=tuple(choices))
    table.check_known(["type", "low", "high", "step", "log"])
    number = int if kind == "int" else (int, float)
    low = table.get("low", number)
    high = table.get("high", number)
    step = table.get("step", number, None, positive=True)
    log = table.get("log", bool, False)
    if low > high:
        raise table.fail("high", f"must be >= low ({low})", high)
    if log and step is not None:
        raise table.fail("log", "cannot be combined with step")
    if step is not None and (high - low) / step > MAX_STEPS:
        raise table.fail("step", f"must leave at most {MAX_STEPS:,} values between low and "
                         f"high ({low} and {high})", step)
    if step is not None:
        count = (high - low) / step
        if abs(count - round(count)) > 1e-6 * max(1.0, count):
            raise table.fail("step", f"must divide high - low ({high} - {low}) into whole "
                             "steps", step)
    if log and low <= 0:
        raise table.fail("low", "must be > 0 with log = true", low)
    if name == "precision":
        raise table.fail("type", "must be categorical for precision", kind)
    for key, value in (("low", low), ("high", high)):
        _check_value(where, f"{table.prefix}{key}", name, value)
    return Dimension(
        name, kind, float(low), float(high), None if step is None else float(step), log
    )


def parse_space(text: str, where: str) -> SearchSpace:
    """Parse and validate one space's TOML text; ``where`` names it in error messages."""
    top = TomlTable(where, parse_toml(text, where, SpaceError), SpaceError)
    top.check_known(["name", "description", "params", "fixed"])
    params = top.table("params")
    assert params is not None
    fixed_table = top.table("fixed", required=False)
    fixed = dict(fixed_table.data) if fixed_table is not None else {}
    for key in list(params.data) + list(fixed):
        if key not in ALLOWED:
            section = "params" if key in params.data else "fixed"
            hint = (
                " (set by the study: --input-size, --num-classes)" if key in _STUDY_FIELDS else ""
            )
            raise SpaceError(
                f"{where}: key '{section}.{key}' is not a metaparameter{hint}; "
                f"expected some of {', '.join(ALLOWED)}"
            )
    both = sorted(set(params.data) & set(fixed))
    if both:
        raise SpaceError(f"{where}: key '{both[0]}' is both in [params] and [fixed]")
    for key, value in fixed.items():
        _check_value(where, f"fixed.{key}", key, value)
    dims = []
    for name in params.data:
        sub = params.table(name)
        assert sub is not None
        dims.append(_dimension(sub, name))
    if not dims:
        raise SpaceError(f"{where}: key 'params' must define at least one dimension")
    name = top.get("name", str)
    if not name or len(name) > 100 or not name.isprintable() or any(c in name for c in "/\\ ,"):
        raise top.fail("name", "must be a name of at most 100 characters without spaces, "
                       "commas or slashes", name[:100])
    space = SearchSpace(name, top.get("description", str, ""), tuple(dims), fixed, where)
    # The whole space must be able to produce a valid config: try its corners.
    lows = {d.name: d.grid(2)[0] for d in dims}
    try:
        make_config({**fixed, **lows}, 224, 1000)
    except ConfigError as exc:
        raise SpaceError(
            f"{where}: its smallest values do not make a valid network: {exc}"
        ) from None
    return space


def list_spaces() -> list[str]:
    """Names of the shipped search spaces."""
    return sorted(shipped("search_spaces"))


def load_space(name_or_path: str) -> SearchSpace:
    """A shipped space by name, or a space file by path (``*.toml``)."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.parent != Path("."):
        return parse_space(read_text_file(path, "search space file", SpaceError), str(path))
    found = shipped("search_spaces")
    if name_or_path not in found:
        raise SpaceError(
            f"unknown search space {name_or_path!r}; known spaces: "
            f"{', '.join(sorted(found))} (or a path to a .toml file)"
        )
    item = found[name_or_path]
    return parse_space(item.read_text(encoding="utf-8"), f"search_spaces/{item.name}")


def space_size(space: SearchSpace) -> float:
    """Number of distinct points (inf when a float dimension has no step)."""
    total = 1.0
    for d in space.dims:
        if d.kind == "categorical":
            total *= len(d.choices)
        elif d.step:
            assert d.low is not None and d.high is not None
            total *= math.floor((d.high - d.low) / d.step + 1e-9) + 1
        elif d.kind == "int":
            assert d.low is not None and d.high is not None
            total *= d.high - d.low + 1
        else:
            return math.inf
    return total
