"""SqueezeNet configurations and their per-layer plan, in pure Python (no torch).

A :class:`SqueezeNetConfig` holds the paper's metaparameters (section 5) plus the macro
architecture; :func:`plan` turns it into every layer with its channels, kernel, stride, output
size, parameters and multiply-accumulates. The torch model (:mod:`autosq.model`) and the cost
model (:mod:`autosq.cost`) are both built from this one plan, so they cannot disagree.

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
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from importlib import resources
from typing import Any, Literal

from autosq.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
            raise ConfigError(f"macro must be one of {', '.join(MACROS)}; got {self.macro!r}")
        if self.bypass not in BYPASSES:
            raise ConfigError(f"bypass must be one of {', '.join(BYPASSES)}; got {self.bypass!r}")
        for name in ("base_e", "incr_e", "freq", "num_classes", "input_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{name} must be an integer; got {value!r}")
        if self.base_e < 1:
            raise ConfigError(f"base_e must be >= 1; got {self.base_e}")
        if self.incr_e < 0:
            raise ConfigError(f"incr_e must be >= 0; got {self.incr_e}")
        if self.freq < 1:
            raise ConfigError(f"freq must be >= 1; got {self.freq}")
        if not 0.0 <= self.pct_3x3 <= 1.0:
            raise ConfigError(f"pct_3x3 must be in [0, 1]; got {self.pct_3x3}")
        if not self.sr > 0:
            raise ConfigError(f"sr (squeeze ratio) must be > 0; got {self.sr}")
        if self.conv1_filters is not None and (
            not isinstance(self.conv1_filters, int) or self.conv1_filters < 1
        ):
            raise ConfigError(f"conv1_filters must be an integer >= 1; got {self.conv1_filters!r}")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1; got {self.num_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {self.dropout}")
        if min(self.e(i) for i in range(N_FIRE)) < 2 and 0 < self.pct_3x3 < 1:
            raise ConfigError(
                "every Fire module needs e_i >= 2 to split into 1x1 and 3x3 expand filters "
                f"when 0 < pct_3x3 < 1; got base_e={self.base_e}"
            )
        smallest = min_input_size(self.macro)
        if self.input_size < smallest:
            raise ConfigError(
                f"input_size must be >= {smallest} for macro {self.macro}; got {self.input_size}"
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
                f"unknown config key(s) {', '.join(unknown)}; "
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


def load_presets() -> dict[str, dict[str, Any]]:
    """The named presets shipped in ``autosq/presets.toml``, name -> fields (with description)."""
    text = resources.files("autosq").joinpath("presets.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text))


def preset(name: str, **overrides: Any) -> SqueezeNetConfig:
    """The preset ``name`` (e.g. ``squeezenet1_0``) with optional field overrides."""
    presets = load_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(presets))}")
    data = {k: v for k, v in presets[name].items() if k != "description"}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return SqueezeNetConfig.from_dict(data)


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


# -- the plan -------------------------------------------------------------------------------------
LayerKind = Literal["conv", "maxpool", "concat", "add", "avgpool"]


@dataclass(frozen=True)
class Layer:
    """One operation of the network, in execution order.

    ``name`` also names the tensor it produces; ``inputs`` names the tensors it reads ("input"
    is the image). ``module`` is the torch module path (torchvision's names) or "" for ops
    that have no parameters. ReLUs are in place and folded into their conv (``relu``).
    """

    name: str
    kind: LayerKind
    inputs: tuple[str, ...]
    cin: int
    cout: int
    in_hw: int
    out_hw: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    relu: bool = False
    module: str = ""

    @property
    def params(self) -> int:
        """Weights plus biases (convs only)."""
        if self.kind != "conv":
            return 0
        return self.cin * self.cout * self.kernel * self.kernel + self.cout

    @property
    def macs(self) -> int:
        """Multiply-accumulates of a conv (bias adds not counted, as torchvision and fvcore)."""
        if self.kind != "conv":
            return 0
        return self.out_hw * self.out_hw * self.cin * self.cout * self.kernel * self.kernel

    @property
    def out_elems(self) -> int:
        """Elements of the tensor this op produces, batch 1."""
        return self.cout * self.out_hw * self.out_hw


@dataclass(frozen=True)
class FireSpec:
    """One Fire module: its index (0 is fire2), torchvision position and channels."""

    index: int
    position: int
    cin: int
    squeeze: int
    expand1x1: int
    expand3x3: int
    shortcut: Shortcut
    hw: int

    @property
    def cout(self) -> int:
        return self.expand1x1 + self.expand3x3

    @property
    def name(self) -> str:
        return f"fire{self.index + 2}"


@dataclass(frozen=True)
class Plan:
    """Every layer of one configuration, in execution order, plus the Fire modules' specs."""

    config: SqueezeNetConfig
    layers: tuple[Layer, ...]
    fires: tuple[FireSpec, ...] = field(repr=False)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def spatial_sizes(self) -> list[int]:
        """Output side after conv1 and after each max-pool (DESIGN.md's spatial sizes)."""
        return [lay.out_hw for lay in self.layers if lay.name == "conv1" or lay.kind == "maxpool"]


def plan(config: SqueezeNetConfig) -> Plan:
    """The per-layer plan of ``config`` (see the module docstring for the channel rule)."""
    spec = _MACRO[config.macro]
    k1 = spec.conv1_kernel
    pools_after = spec.pools_after
    layers: list[Layer] = []
    fires: list[FireSpec] = []

    hw = config.input_size
    out = conv_out(hw, k1, 2)
    c = config.conv1_out
    layers.append(Layer("conv1", "conv", ("input",), 3, c, hw, out, k1, 2, 0, True, "features.0"))
    hw = out
    position = 2

    def add_pool(src: str, name: str) -> str:
        nonlocal hw, position
        o = pool_out(hw)
        layers.append(Layer(name, "maxpool", (src,), c, c, hw, o, 3, 2))
        hw = o
        position += 1  # a pool takes one slot of torchvision's `features`
        return name

    last = add_pool("conv1", "pool1")
    for i in range(N_FIRE):
        s, e1, e3 = config.fire_channels(i)
        cout = e1 + e3
        shortcut: Shortcut
        if config.bypass != "none" and c == cout:
            shortcut = "identity"
        elif config.bypass == "complex":
            shortcut = "conv"
        else:
            shortcut = "none"
        f = FireSpec(i, position, c, s, e1, e3, shortcut, hw)
        fires.append(f)
        mod = f"features.{position}"
        position += 1
        fname = f.name
        layers.append(
            Layer(
                f"{fname}.squeeze", "conv", (last,), c, s, hw, hw, 1, 1, 0, True, f"{mod}.squeeze"
            )
        )
        branches = []
        if e1:
            layers.append(
                Layer(
                    f"{fname}.expand1x1",
                    "conv",
                    (f"{fname}.squeeze",),
                    s,
                    e1,
                    hw,
                    hw,
                    1,
                    1,
                    0,
                    True,
                    f"{mod}.expand1x1",
                )
            )
            branches.append(f"{fname}.expand1x1")
        if e3:
            layers.append(
                Layer(
                    f"{fname}.expand3x3",
                    "conv",
                    (f"{fname}.squeeze",),
                    s,
                    e3,
                    hw,
                    hw,
                    3,
                    1,
                    1,
                    True,
                    f"{mod}.expand3x3",
                )
            )
            branches.append(f"{fname}.expand3x3")
        if len(branches) == 2:
            layers.append(Layer(f"{fname}.concat", "concat", tuple(branches), cout, cout, hw, hw))
            result = f"{fname}.concat"
        else:
            result = branches[0]
        if shortcut == "conv":
            layers.append(
                Layer(
                    f"{fname}.shortcut",
                    "conv",
                    (last,),
                    c,
                    cout,
                    hw,
                    hw,
                    1,
                    1,
                    0,
                    False,
                    f"{mod}.shortcut",
                )
            )
            layers.append(
                Layer(f"{fname}.add", "add", (result, f"{fname}.shortcut"), cout, cout, hw, hw)
            )
            result = f"{fname}.add"
        elif shortcut == "identity":
            layers.append(Layer(f"{fname}.add", "add", (result, last), cout, cout, hw, hw))
            result = f"{fname}.add"
        last = result
        c = cout
        if i in pools_after:
            last = add_pool(last, f"pool{len([x for x in layers if x.kind == 'maxpool']) + 1}")
    layers.append(
        Layer(
            "conv10", "conv", (last,), c, config.num_classes, hw, hw, 1, 1, 0, True, "classifier.1"
        )
    )
    layers.append(
        Layer("avgpool", "avgpool", ("conv10",), config.num_classes, config.num_classes, hw, 1)
    )
    return Plan(config, tuple(layers), tuple(fires))
