"""A configuration's per-layer plan, in pure Python (no torch).

:func:`plan` turns a :class:`~autosq.arch.config.SqueezeNetConfig` into every layer with its
channels, kernel, stride, output size, parameters and multiply-accumulates. The torch model
(:mod:`autosq.arch.model`) and the cost model (:mod:`autosq.arch.cost`) are both built from this
one plan, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from autosq.arch.config import (
    _MACRO,
    N_FIRE,
    Shortcut,
    SqueezeNetConfig,
    conv_out,
    pool_out,
)

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
        """Output side after conv1 and after each max-pool (v1.0 at 224: 109, 54, 27, 13)."""
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
