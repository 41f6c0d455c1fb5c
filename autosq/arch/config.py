"""A point of the SqueezeNet design space: the paper's metaparameters plus the macro
architecture, validated, with the channel rule and the spatial arithmetic. Pure Python.

Channel rule (paper section 5), for Fire modules i = 0..7 (fire2..fire9)::

    e_i      = base_e + incr_e * floor(i / freq)
    e_i,3x3  = round_half_up(e_i * pct_3x3), clamped to [1, e_i - 1] when 0 < pct_3x3 < 1
    e_i,1x1  = e_i - e_i,3x3
    s_i,1x1  = max(1, round_half_up(sr * e_i))

Round half up (not Python's banker's rounding) so 2.5 -> 3 everywhere, and the clamp keeps both
expand branches alive unless pct_3x3 is exactly 0 or 1, where one branch does not exist.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from typing import Any, Literal

from autosq.errors import ConfigError, shown

Macro = Literal["v1.0", "v1.1"]
Bypass = Literal["none", "simple", "complex"]
Shortcut = Literal["none", "identity", "conv"]
MACROS: tuple[str, ...] = ("v1.0", "v1.1")
BYPASSES: tuple[str, ...] = ("none", "simple", "complex")
N_FIRE = 8


@dataclass(frozen=True)
class _MacroSpec:
    """conv1's kernel and default filters, and the Fire indices (0..7) a max-pool follows;
    conv1 is always followed by one (torchvision's layout)."""

    conv1_kernel: int
    conv1_filters: int
    pools_after: tuple[int, ...]


_MACRO = {
    "v1.0": _MacroSpec(conv1_kernel=7, conv1_filters=96, pools_after=(2, 6)),
    "v1.1": _MacroSpec(conv1_kernel=3, conv1_filters=64, pools_after=(1, 3)),
}


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves away from zero (2.5 -> 3), for channel counts."""
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class SqueezeNetConfig:
    """A point of the SqueezeNet design space: metaparameters plus the macro architecture.

    ``conv1_filters=None`` takes the macro's own (96 for v1.0, 64 for v1.1).
    """

    base_e: int = 128
    incr_e: int = 128
    freq: int = 2
    pct_3x3: float = 0.5
    sr: float = 0.125
    macro: Macro = "v1.0"
    conv1_filters: int | None = None
    bypass: Bypass = "none"
    num_classes: int = 1000
    input_size: int = 224
    dropout: float = 0.5

    def __post_init__(self) -> None:
        self.validate()

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the rule broken and the value seen."""
        if self.macro not in MACROS:
            raise ConfigError(f"macro must be one of {', '.join(MACROS)}; got "
                              f"{shown(self.macro)}")
        if self.bypass not in BYPASSES:
            raise ConfigError(f"bypass must be one of {', '.join(BYPASSES)}; got "
                              f"{shown(self.bypass)}")
        for name in ("base_e", "incr_e", "freq", "num_classes", "input_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{name} must be an integer; got {shown(value)}")
        for name in ("pct_3x3", "sr", "dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{name} must be a number; got {shown(value)}")
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number; got {shown(value)}")
        if self.base_e < 1:
            raise ConfigError(f"base_e must be >= 1; got {shown(self.base_e)}")
        if self.incr_e < 0:
            raise ConfigError(f"incr_e must be >= 0; got {shown(self.incr_e)}")
        if self.freq < 1:
            raise ConfigError(f"freq must be >= 1; got {shown(self.freq)}")
        if not 0.0 <= self.pct_3x3 <= 1.0:
            raise ConfigError(f"pct_3x3 must be in [0, 1]; got {shown(self.pct_3x3)}")
        if not self.sr > 0:
            raise ConfigError(f"sr (squeeze ratio) must be > 0; got {shown(self.sr)}")
        if self.conv1_filters is not None and (
            not isinstance(self.conv1_filters, int) or self.conv1_filters < 1
        ):
            raise ConfigError(f"conv1_filters must be an integer >= 1; got "
                              f"{shown(self.conv1_filters)}")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1; got {shown(self.num_classes)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {shown(self.dropout)}")
        if min(self.e(i) for i in range(N_FIRE)) < 2 and 0 < self.pct_3x3 < 1:
            raise ConfigError(
                "every Fire module needs e_i >= 2 to split into 1x1 and 3x3 expand filters "
                f"when 0 < pct_3x3 < 1; got base_e={self.base_e}"
            )
        smallest = min_input_size(self.macro)
        if self.input_size < smallest:
            raise ConfigError(
                f"input_size must be >= {smallest} for macro {self.macro}; got "
                f"{shown(self.input_size)}"
            )

    # -- channels -----------------------------------------------------------------------------
    @property
    def conv1_out(self) -> int:
        """Filters of conv1: the explicit value, or the macro's own."""
        return self.conv1_filters or _MACRO[self.macro].conv1_filters

    def e(self, i: int) -> int:
        """Expand filters of Fire module i (0-based: 0 is fire2)."""
        return self.base_e + self.incr_e * (i // self.freq)

    def fire_channels(self, i: int) -> tuple[int, int, int]:
        """(squeeze, expand1x1, expand3x3) filters of Fire module i, by the documented rule."""
        e = self.e(i)
        if self.pct_3x3 <= 0.0:
            e3 = 0
        elif self.pct_3x3 >= 1.0:
            e3 = e
        else:
            e3 = min(max(round_half_up(e * self.pct_3x3), 1), e - 1)
        s = max(1, round_half_up(self.sr * e))
        return s, e - e3, e3

    # -- identity -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field, with conv1_filters resolved, as plain JSON-ready values."""
        d = asdict(self)
        d["conv1_filters"] = self.conv1_out
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SqueezeNetConfig:
        """Build from a mapping; unknown keys are an error that lists the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(shown(k) for k in unknown[:5])}; "
                f"expected some of {', '.join(sorted(known))}"
            )
        return cls(**data)

    def with_(self, **changes: Any) -> SqueezeNetConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @cached_property
    def arch_id(self) -> str:
        """A short stable hash of the architecture: equal layer plans give equal ids.

        It covers what shapes the network (macro, conv1, every Fire's channels, bypass, classes),
        not the metaparameters that produced it nor the input size or dropout.
        """
        key = {
            "macro": self.macro,
            "conv1": self.conv1_out,
            "fires": [self.fire_channels(i) for i in range(N_FIRE)],
            "bypass": self.bypass,
            "num_classes": self.num_classes,
        }
        blob = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


# -- spatial arithmetic ---------------------------------------------------------------------------
def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output side of a convolution (floor), as PyTorch and ONNX compute it."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_out(size: int, kernel: int = 3, stride: int = 2) -> int:
    """Output side of a max-pool with ceil_mode=True and no padding, PyTorch's rule included:
    the last window must start inside the input."""
    out = -((size - kernel) // -stride) + 1  # ceil division
    if (out - 1) * stride >= size:
        out -= 1
    return out


def _spatial_ok(macro: str, size: int) -> bool:
    spec = _MACRO[macro]
    k = spec.conv1_kernel
    if size < k:
        return False
    s = conv_out(size, k, 2)
    for _ in range(3):
        s = pool_out(s)
        if s < 1:
            return False
    return True


def min_input_size(macro: str) -> int:
    """The smallest input side the macro accepts (21 for v1.0, 17 for v1.1, as torchvision)."""
    size = 1
    while not _spatial_ok(macro, size):
        size += 1
    return size


