"""The TOML data files autosq ships (device profiles, search spaces) and users add."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from autosq.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def shipped(folder: str) -> dict[str, Traversable]:
    """name -> file for the ``*.toml`` files of a folder shipped inside the package."""
    root = resources.files("autosq").joinpath(folder)
    return {
        f.name[:-5]: f
        for f in sorted(root.iterdir(), key=lambda t: t.name)
        if f.name.endswith(".toml")
    }


def parse_toml(text: str, where: str, error: type[UsageError]) -> dict[str, Any]:
    """Parse TOML text, turning a syntax error into ``error`` naming ``where``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML: {exc}") from None


_KIND_NAMES = {int: "an integer", str: "a string", float: "a number"}


class TomlTable:
    """Typed access to one TOML table; errors (of class ``error``) name the file and the key."""

    def __init__(
        self, where: str, data: Mapping[str, Any], error: type[UsageError], prefix: str = ""
    ) -> None:
        self.where, self.data, self.error, self.prefix = where, data, error, prefix

    def fail(self, key: str, rule: str, value: Any = None) -> UsageError:
        seen = "" if value is None else f"; got {value!r}"
        return self.error(f"{self.where}: key '{self.prefix}{key}' {rule}{seen}")

    def table(self, key: str, required: bool = True) -> TomlTable | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing (a [table])")
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "must be a [table]", value)
        return TomlTable(self.where, value, self.error, f"{self.prefix}{key}.")

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
        *,
        positive: bool = False,
        choices: Iterable[str] = (),
    ) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        value = self.data[key]
        wrong_bool = isinstance(value, bool) and kind is not bool
        if wrong_bool or not isinstance(value, kind):
            kinds = (kind,) if isinstance(kind, type) else kind
            names = "a number" if float in kinds else _KIND_NAMES.get(kinds[0], kinds[0].__name__)
            raise self.fail(key, f"must be {names}", value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if positive and value <= 0:
                raise self.fail(key, "must be > 0", value)
            if value < 0:
                raise self.fail(key, "must be >= 0", value)
        choices = tuple(choices)
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}", value)
        return value

    def check_known(self, known: Iterable[str]) -> None:
        unknown = sorted(set(self.data) - set(known))
        if unknown:
            raise self.fail(unknown[0], f"is not a known key (known: {', '.join(sorted(known))})")
