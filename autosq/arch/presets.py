"""The named SqueezeNet presets (``presets.toml``: the paper's v1.0 and v1.1, with and without
bypass)."""

from __future__ import annotations

import sys
from importlib import resources
from typing import Any

from autosq.arch.config import SqueezeNetConfig
from autosq.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_presets() -> dict[str, dict[str, Any]]:
    """The presets shipped in ``autosq/arch/presets.toml``: name -> fields (and description)."""
    text = resources.files("autosq.arch").joinpath("presets.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text))


def preset(name: str, **overrides: Any) -> SqueezeNetConfig:
    """The preset ``name`` (e.g. ``squeezenet1_0``) with optional field overrides."""
    presets = load_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(presets))}")
    data = {k: v for k, v in presets[name].items() if k != "description"}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return SqueezeNetConfig.from_dict(data)


