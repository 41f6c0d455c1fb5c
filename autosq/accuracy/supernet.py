"""A weight-sharing SqueezeNet: one set of weights at a space's largest widths, from which every
candidate of one macro takes its slice.

Every Fire module's squeeze, expand1x1 and expand3x3 convolutions use their first ``k`` filters.
A Fire module's output keeps the concat layout of the largest network, ``[expand1x1 slots |
expand3x3 slots]``, so the next layer's input columns are the first ``e1`` of the first block and
the first ``e3`` of the second. Activations are computed compactly (sliced weights, no masks),
exactly as the candidate's own network computes them, so a subnet's forward pass is the
candidate's training form (BatchNorm after every conv, the classifier's too, and its ReLU head).
Bypasses follow the candidate's plan: an identity where its channels match, the shared 1x1
shortcut conv (sliced the same way) for ``complex``.

:func:`space_widths` finds the largest widths from the space's extreme values; channel counts
are monotone in every metaparameter, so the extremes bound every candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from autosq.arch.config import _MACRO, N_FIRE, SqueezeNetConfig
from autosq.arch.plan import plan
from autosq.arch.space import make_config
from autosq.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from autosq.arch.model import SqueezeNet
    from autosq.arch.space import SearchSpace

# A supernet larger than this many parameters is refused: training it on a CPU would take longer
# than training the candidates themselves.
MAX_SUPERNET_PARAMS = 20_000_000


@dataclass(frozen=True)
class FireWidths:
    """One Fire module's channels: squeeze, expand1x1, expand3x3, and its shortcut kind."""

    squeeze: int
    expand1x1: int
    expand3x3: int
    shortcut: str = "none"

    @property
    def out(self) -> int:
        return self.expand1x1 + self.expand3x3


@dataclass(frozen=True)
class SubnetSpec:
    """What a forward pass through the supernet computes: conv1's filters and each Fire's."""

    conv1: int
    fires: tuple[FireWidths, ...]

    @classmethod
    def of(cls, config: SqueezeNetConfig) -> SubnetSpec:
        """The subnet of a candidate configuration (from its plan)."""
        p = plan(config)
        return cls(config.conv1_out, tuple(FireWidths(f.squeeze, f.expand1x1, f.expand3x3,
                                                      f.shortcut) for f in p.fires))

    def fits(self, largest: SubnetSpec) -> bool:
        """True when every width is within ``largest``'s."""
        return self.conv1 <= largest.conv1 and all(
            f.squeeze <= g.squeeze and f.expand1x1 <= g.expand1x1 and f.expand3x3 <= g.expand3x3
            for f, g in zip(self.fires, largest.fires, strict=True))


def bypass_choices(space: SearchSpace) -> tuple[str, ...]:
    """The bypass modes the space's candidates can have."""
    for d in space.dims:
        if d.name == "bypass":
            return tuple(str(c) for c in d.choices)
    return (str(space.fixed.get("bypass", "none")),)


def complex_possible(space: SearchSpace) -> bool:
    """Whether any candidate of the space has a 1x1-conv shortcut."""
    return "complex" in bypass_choices(space)


def _shortcuts(conv1: int, fires: list[tuple[int, int, int]], bypass: str) -> SubnetSpec:
    """A spec whose shortcuts follow the plan's rule for ``bypass`` (identity where the channels
    match, else a 1x1 conv for complex)."""
    out, cin = [], conv1
    for s, e1, e3 in fires:
        cout = e1 + e3
        kind = ("identity" if bypass != "none" and cin == cout
                else "conv" if bypass == "complex" else "none")
        out.append(FireWidths(s, e1, e3, kind))
        cin = cout
    return SubnetSpec(conv1, tuple(out))


def space_widths(space: SearchSpace, macro: str, input_size: int,
                 num_classes: int) -> tuple[SubnetSpec, SubnetSpec]:
    """(largest, smallest) subnets of the space's candidates with ``macro``.

    Neither need be a candidate itself: the largest has every layer's widest width, with no
    bypass when the space has plain networks (else the space's own), the smallest every layer's
    narrowest, without bypass."""
    specs = []
    for values in space.grid(2):
        if values.get("macro", "v1.0") != macro:
            continue
        try:
            config = make_config(values, input_size, num_classes)
        except ConfigError:
            continue  # a corner outside the valid networks: other corners bound the space
        specs.append(SubnetSpec.of(config))
    if not specs:
        raise UsageError(f"space {space.name!r} has no valid {macro} candidate to build a "
                         "supernet from")

    fires = [(max(s.fires[i].squeeze for s in specs), max(s.fires[i].expand1x1 for s in specs),
              max(s.fires[i].expand3x3 for s in specs)) for i in range(N_FIRE)]
    modes = bypass_choices(space)
    largest = _shortcuts(max(s.conv1 for s in specs), fires,
                         "none" if "none" in modes else max(modes))  # complex > simple
    # The smallest: every layer's narrowest width (a Fire keeps at least one expand filter).
    small = []
    for i in range(N_FIRE):
        e1 = min(s.fires[i].expand1x1 for s in specs)
        e3 = min(s.fires[i].expand3x3 for s in specs)
        small.append(FireWidths(min(s.fires[i].squeeze for s in specs), e1,
                                e3 if e1 + e3 else 1))
    smallest = SubnetSpec(min(s.conv1 for s in specs), tuple(small))
    return largest, smallest


def supernet_params(largest: SubnetSpec, num_classes: int, complex_bypass: bool) -> int:
    """Parameters of the supernet at ``largest``'s widths (BatchNorm included), computed; an
    upper bound, conv1 counted at 7x7."""
    total, slots = 0, largest.conv1

    def conv(cout: int, cin: int, k: int, bn: bool = True) -> int:
        return cout * cin * k * k + cout + (2 * cout if bn else 0)

    total += conv(largest.conv1, 3, 7)
    for f in largest.fires:
        total += conv(f.squeeze, slots, 1) + conv(f.expand1x1, f.squeeze, 1)
        total += conv(f.expand3x3, f.squeeze, 3)
        if complex_bypass:
            total += conv(f.out, slots, 1)
        slots = f.out
    return total + conv(num_classes, slots, 1, bn=False)


def _kaiming(*shape: int) -> nn.Parameter:
    w = torch.empty(*shape)
    nn.init.kaiming_uniform_(w)
    return nn.Parameter(w)


class SuperNet(nn.Module):
    """The shared weights of one macro at the largest widths (training form)."""

    def __init__(self, macro: str, largest: SubnetSpec, num_classes: int,
                 complex_bypass: bool, dropout: float = 0.5) -> None:
        super().__init__()
        self.macro = macro
        self.largest = largest
        self.num_classes = num_classes
        self.dropout = dropout
        spec = _MACRO[macro]
        self.pools_after = spec.pools_after
        self.kernel1 = spec.conv1_kernel
        self.w = nn.ParameterDict()
        self.b = nn.ParameterDict()
        self.bn_w = nn.ParameterDict()
        self.bn_b = nn.ParameterDict()

        def conv(name: str, cout: int, cin: int, k: int, bn: bool = True) -> None:
            self.w[name] = _kaiming(cout, cin, k, k)
            self.b[name] = nn.Parameter(torch.zeros(cout))
            if bn:
                self.bn_w[name] = nn.Parameter(torch.ones(cout))
                self.bn_b[name] = nn.Parameter(torch.zeros(cout))

        conv("conv1", largest.conv1, 3, self.kernel1)
        slots = largest.conv1
        for i, f in enumerate(largest.fires):
            conv(f"f{i}_s", f.squeeze, slots, 1)
            if f.expand1x1:
                conv(f"f{i}_e1", f.expand1x1, f.squeeze, 1)
            if f.expand3x3:
                conv(f"f{i}_e3", f.expand3x3, f.squeeze, 3)
            if complex_bypass:
                conv(f"f{i}_sc", f.out, slots, 1)
            slots = f.out
        conv("conv10", num_classes, slots, 1)
        with torch.no_grad():
            nn.init.normal_(self.w["conv10"], 0.0, 0.01)

    # -- the slice of one subnet ---------------------------------------------------------------
    def layout(self, spec: SubnetSpec) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(parameter name, output rows, input columns) of every conv the subnet runs, in
        order; the columns index the largest network's channel slots."""
        if not spec.fits(self.largest):
            raise UsageError("a candidate is wider than the supernet of its space; was the "
                             "supernet built for another space?")
        out: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        ar = torch.arange
        slots = ar(spec.conv1)
        out.append(("conv1", ar(spec.conv1), ar(3)))
        for i, (f, big) in enumerate(zip(spec.fires, self.largest.fires, strict=True)):
            out.append((f"f{i}_s", ar(f.squeeze), slots))
            concat = torch.cat([ar(f.expand1x1), big.expand1x1 + ar(f.expand3x3)])
            if f.expand1x1:
                out.append((f"f{i}_e1", ar(f.expand1x1), ar(f.squeeze)))
            if f.expand3x3:
                out.append((f"f{i}_e3", ar(f.expand3x3), ar(f.squeeze)))
            if f.shortcut == "conv":
                out.append((f"f{i}_sc", concat, slots))
            slots = concat
        out.append(("conv10", ar(self.num_classes), slots))
        return out

    def forward(self, x: torch.Tensor, spec: SubnetSpec,
                bn_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                momentum: float = 0.1) -> torch.Tensor:
        """The subnet's logits. With ``bn_stats``, BatchNorm uses those running statistics
        (name -> (mean, var)): updated in place with ``momentum`` in training mode, used as
        they are in eval mode. Without, batch statistics."""
        rows = {name: (r, c) for name, r, c in self.layout(spec)}

        def conv(name: str, t: torch.Tensor, stride: int = 1, padding: int = 0) -> torch.Tensor:
            r, c = rows[name]
            y = F.conv2d(t, self.w[name][r][:, c], self.b[name][r], stride, padding)
            mean, var = (None, None) if bn_stats is None else bn_stats[name]
            return F.batch_norm(y, mean, var, self.bn_w[name][r], self.bn_b[name][r],
                                training=self.training or bn_stats is None, momentum=momentum)

        t = F.relu(conv("conv1", x, stride=2))
        t = F.max_pool2d(t, 3, 2, ceil_mode=True)
        for i, f in enumerate(spec.fires):
            s = F.relu(conv(f"f{i}_s", t))
            branches = []
            if f.expand1x1:
                branches.append(F.relu(conv(f"f{i}_e1", s)))
            if f.expand3x3:
                branches.append(F.relu(conv(f"f{i}_e3", s, padding=1)))
            y = torch.cat(branches, 1) if len(branches) == 2 else branches[0]
            if f.shortcut == "conv":
                y = y + conv(f"f{i}_sc", t)
            elif f.shortcut == "identity":
                y = y + t
            t = y
            if i in self.pools_after:
                t = F.max_pool2d(t, 3, 2, ceil_mode=True)
        t = F.dropout(t, self.dropout, self.training)
        t = F.relu(conv("conv10", t))
        return torch.flatten(F.adaptive_avg_pool2d(t, 1), 1)

    # -- the candidate's own network -------------------------------------------------------------
    def deployed(self, config: SqueezeNetConfig,
                 bn_stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> SqueezeNet:
        """The candidate's plain network (torchvision layout, BatchNorm folded with
        ``bn_stats``): what is exported and timed, scored the same way."""
        from autosq.arch.model import build

        model = build(config, seed=0).eval()
        modules = dict(model.named_modules())
        names = {f"f{i}_{k}": f"{fs.name}.{full}" for i, fs in enumerate(plan(config).fires)
                 for k, full in (("s", "squeeze"), ("e1", "expand1x1"), ("e3", "expand3x3"),
                                 ("sc", "shortcut"))}
        by_layer = {layer.name: layer.module for layer in plan(config).layers}
        with torch.no_grad():
            for name, r, c in self.layout(SubnetSpec.of(config)):
                module = modules[by_layer["conv1" if name == "conv1" else
                                          "conv10" if name == "conv10" else names[name]]]
                assert isinstance(module, nn.Conv2d) and module.bias is not None
                w, b = self.w[name][r][:, c], self.b[name][r]
                mean, var = bn_stats[name]
                scale = self.bn_w[name][r] / torch.sqrt(var + 1e-5)
                w = w * scale.view(-1, 1, 1, 1)
                b = (b - mean) * scale + self.bn_b[name][r]
                module.weight.copy_(w)
                module.bias.copy_(b)
        return model
