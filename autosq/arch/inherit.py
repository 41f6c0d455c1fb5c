"""Which weights a candidate inherits from a pretrained SqueezeNet: the map, in pure Python.

A network is described by the shapes of its convolutions (:class:`NetShape`), read from a plan
(a candidate) or from a state_dict's tensor shapes (a source, checked to be a SqueezeNet in
torchvision's layout). :func:`inheritance_map` then says, for every conv of the candidate,
which conv of the source it takes its weights from and, for each of its filters and input
channels, which of the source's:

- Fire module i inherits from the source's Fire module i; conv1 when the kernels match (the
  same macro; else conv1 starts fresh and fire2 reads its channels in place); the classifier
  when the classes match, else it starts fresh.
- A narrower layer keeps the source's most important filters (the caller ranks them, e.g. by
  the L1 norm of each filter), in their original order; the next layer keeps the matching
  input channels, across the expand concat (expand1x1's channels first, then expand3x3's).
- A wider layer keeps every source filter and adds new ones (``-1``): their own weights start
  as the candidate's seeded initialisation, and every weight that reads them downstream starts
  at zero, so the network computes the source's function until training moves them.
- A 1x1-conv shortcut the source lacks starts at zero (the Fire module's plain output); an
  identity shortcut has no weights and adds its input from the start.

A candidate with the source's shapes maps every index to itself: it inherits the source
exactly. Pure Python: no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from autosq.arch.config import _MACRO, N_FIRE
from autosq.arch.plan import Plan
from autosq.errors import WeightsError

NEW = -1
"""A filter or input channel the source does not have."""


@dataclass(frozen=True)
class ConvShape:
    """One convolution: its module path (torchvision's names), filters, inputs and kernel."""

    name: str
    cout: int
    cin: int
    kernel: int


@dataclass(frozen=True)
class FireShape:
    """One Fire module's convolutions (a branch the module lacks is None)."""

    squeeze: ConvShape
    expand1x1: ConvShape | None
    expand3x3: ConvShape | None
    shortcut: ConvShape | None
    identity: bool = False

    @property
    def cout(self) -> int:
        return sum(c.cout for c in (self.expand1x1, self.expand3x3) if c is not None)


@dataclass(frozen=True)
class NetShape:
    """Every convolution of a SqueezeNet, in torchvision's layout."""

    macro: str
    conv1: ConvShape
    fires: tuple[FireShape, ...]
    classifier: ConvShape

    @property
    def num_classes(self) -> int:
        return self.classifier.cout

    def convs(self) -> list[ConvShape]:
        """Every conv, in execution order."""
        out = [self.conv1]
        for f in self.fires:
            out += [c for c in (f.squeeze, f.expand1x1, f.expand3x3, f.shortcut)
                    if c is not None]
        return [*out, self.classifier]


def shape_of_plan(p: Plan) -> NetShape:
    """The conv shapes of a candidate's plan."""
    convs = {layer.module: ConvShape(layer.module, layer.cout, layer.cin, layer.kernel)
             for layer in p.layers if layer.kind == "conv"}
    fires = []
    for f in p.fires:
        mod = f"features.{f.position}"
        fires.append(FireShape(convs[f"{mod}.squeeze"], convs.get(f"{mod}.expand1x1"),
                               convs.get(f"{mod}.expand3x3"), convs.get(f"{mod}.shortcut"),
                               f.shortcut == "identity"))
    return NetShape(p.config.macro, convs["features.0"], tuple(fires), convs["classifier.1"])


_KEY = re.compile(r"features\.(\d+)\.(squeeze|expand1x1|expand3x3|shortcut)\.(weight|bias)")
_EXPECTED = ("a SqueezeNet state_dict in torchvision's layout (features.0.weight, "
             "features.N.squeeze/expand1x1/expand3x3.weight, classifier.1.weight, and biases)")


def shape_of_state(shapes: Mapping[str, Sequence[int]], where: str) -> NetShape:
    """The conv shapes of a state_dict, from its tensors' shapes (name -> shape), checked to be
    a SqueezeNet in torchvision's layout; :class:`WeightsError` naming ``where`` otherwise."""
    def bad(what: str) -> WeightsError:
        return WeightsError(f"{where} is not a SqueezeNet state_dict: {what}; expected {_EXPECTED}")

    def conv(name: str, kernel: int | None = None) -> ConvShape:
        w, b = shapes.get(f"{name}.weight"), shapes.get(f"{name}.bias")
        if w is None or b is None:
            raise bad(f"it has no {name}.weight and {name}.bias")
        if len(w) != 4 or w[2] != w[3] or any(d < 1 for d in w) or tuple(b) != (w[0],):
            raise bad(f"{name}.weight has shape {tuple(w)} and {name}.bias {tuple(b)}, not a "
                      "conv's (filters, inputs, k, k) and (filters,)")
        if kernel is not None and w[2] != kernel:
            raise bad(f"{name}.weight has {w[2]}x{w[3]} kernels, expected {kernel}x{kernel}")
        return ConvShape(name, int(w[0]), int(w[1]), int(w[2]))

    first = conv("features.0")
    macro = next((m for m, s in _MACRO.items() if s.conv1_kernel == first.kernel), None)
    if macro is None or first.cin != 3:
        raise bad(f"features.0.weight has shape ({first.cout}, {first.cin}, {first.kernel}, "
                  f"{first.kernel}); conv1 takes 3 channels with 7x7 (v1.0) or 3x3 (v1.1) "
                  "kernels")
    found: dict[int, set[str]] = {}
    for key in shapes:
        m = _KEY.fullmatch(key)
        if m:
            found.setdefault(int(m.group(1)), set()).add(m.group(2))
    expected = _fire_positions(macro)
    if sorted(found) != list(expected):
        raise bad(f"its Fire modules sit at features {sorted(found) or 'nowhere'}, "
                  f"{macro}'s (conv1 {first.kernel}x{first.kernel}) at {list(expected)}")
    fires = []
    previous = first.cout
    for position in expected:
        mod = f"features.{position}"
        sq = conv(f"{mod}.squeeze", 1)
        e1 = conv(f"{mod}.expand1x1", 1) if "expand1x1" in found[position] else None
        e3 = conv(f"{mod}.expand3x3", 3) if "expand3x3" in found[position] else None
        sc = conv(f"{mod}.shortcut", 1) if "shortcut" in found[position] else None
        if e1 is None and e3 is None:
            raise bad(f"{mod} has no expand layer")
        fire = FireShape(sq, e1, e3, sc)
        chained = [(sq, previous)] + [(e, sq.cout) for e in (e1, e3) if e is not None]
        if sc is not None:
            chained.append((sc, previous))
            if sc.cout != fire.cout:
                raise bad(f"{sc.name} gives {sc.cout} channels, its Fire module {fire.cout}")
        for c, cin in chained:
            if c.cin != cin:
                raise bad(f"{c.name}.weight takes {c.cin} input channels, but the layer before "
                          f"gives {cin}")
        fires.append(fire)
        previous = fire.cout
    cls = conv("classifier.1", 1)
    if cls.cin != previous:
        raise bad(f"classifier.1.weight takes {cls.cin} input channels, but fire9 gives "
                  f"{previous}")
    return NetShape(macro, first, tuple(fires), cls)


def _fire_positions(macro: str) -> tuple[int, ...]:
    """Where torchvision's `features` holds the Fire modules of a macro (a pool after conv1 and
    after the Fire modules the macro says)."""
    positions, position = [], 3
    for i in range(N_FIRE):
        positions.append(position)
        position += 2 if i in _MACRO[macro].pools_after else 1
    return tuple(positions)


@dataclass(frozen=True)
class LayerMap:
    """One conv of the candidate: the source conv it inherits from (None: none), and for each
    of its filters (``rows``) and input channels (``cols``) the source's index, or :data:`NEW`.
    ``zero``: the layer starts at zero (a shortcut the source lacks)."""

    target: str
    source: str | None
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    zero: bool = False

    @property
    def inherited(self) -> bool:
        """Whether any weight comes from the source."""
        return self.source is not None


@dataclass(frozen=True)
class InheritanceMap:
    """The map of every conv of a candidate (see :func:`inheritance_map`)."""

    layers: tuple[LayerMap, ...]
    exact: bool

    def share_inherited(self, target: NetShape) -> float:
        """The share of the candidate's conv weights that come from the source."""
        kernels = {c.name: c.kernel * c.kernel for c in target.convs()}
        kept = sum(sum(r >= 0 for r in m.rows) * sum(c >= 0 for c in m.cols) * kernels[m.target]
                   for m in self.layers if m.source is not None)
        total = sum(c.cout * c.cin * c.kernel * c.kernel for c in target.convs())
        return kept / max(1, total)


def _select(source: ConvShape | None, count: int, order: Mapping[str, Sequence[int]]
            ) -> tuple[int, ...]:
    """The source filters a layer of ``count`` filters keeps: the most important ones in their
    original order when narrower, all of them and new ones when wider."""
    if source is None:
        return (NEW,) * count
    if count >= source.cout:
        return tuple(range(source.cout)) + (NEW,) * (count - source.cout)
    ranked = list(order.get(source.name, range(source.cout)))
    if sorted(ranked) != list(range(source.cout)):
        raise ValueError(f"the importance order of {source.name} is not a permutation of its "
                         f"{source.cout} filters")
    return tuple(sorted(ranked[:count]))


def _concat(fire: FireShape, e1: tuple[int, ...], e3: tuple[int, ...]) -> tuple[int, ...]:
    """A Fire module's output channels as source indices: expand1x1's, then expand3x3's (which
    follow the source's expand1x1 channels in its concat)."""
    offset = fire.expand1x1.cout if fire.expand1x1 is not None else 0
    return e1 + tuple(r + offset if r >= 0 else NEW for r in e3)


def inheritance_map(source: NetShape, target: NetShape,
                    order: Mapping[str, Sequence[int]]) -> InheritanceMap:
    """The map from ``source`` to ``target`` (see the module docstring); ``order`` ranks each
    source conv's filters, most important first (name -> filter indices; a conv left out keeps
    its first filters)."""
    layers: list[LayerMap] = []

    def add(t: ConvShape, s: ConvShape | None, rows: tuple[int, ...], cols: tuple[int, ...],
            zero: bool = False) -> None:
        layers.append(LayerMap(t.name, s.name if s is not None else None, rows, cols, zero))

    same_stem = source.conv1.kernel == target.conv1.kernel
    if same_stem:
        channels = _select(source.conv1, target.conv1.cout, order)  # what the next layer reads
        add(target.conv1, source.conv1, channels, (0, 1, 2))
    else:
        # A fresh conv1 (another kernel): fire2 reads its channels in place, so the signal
        # flows through the inherited Fire modules from the first step.
        add(target.conv1, None, (NEW,) * target.conv1.cout, (0, 1, 2))
        channels = tuple(i if i < source.conv1.cout else NEW for i in range(target.conv1.cout))
    for sf, tf in zip(source.fires, target.fires, strict=True):
        s_rows = _select(sf.squeeze, tf.squeeze.cout, order)
        add(tf.squeeze, sf.squeeze, s_rows, channels)
        outs: dict[str, tuple[int, ...]] = {}
        for branch in ("expand1x1", "expand3x3"):
            t_conv, s_conv = getattr(tf, branch), getattr(sf, branch)
            if t_conv is None:
                outs[branch] = ()
                continue
            rows = _select(s_conv, t_conv.cout, order)
            add(t_conv, s_conv, rows, s_rows if s_conv is not None else (NEW,) * len(s_rows))
            outs[branch] = rows
        out = _concat(sf, outs["expand1x1"], outs["expand3x3"])
        if tf.shortcut is not None:
            if sf.shortcut is not None:
                add(tf.shortcut, sf.shortcut, out, channels)
            else:
                add(tf.shortcut, None, (NEW,) * tf.shortcut.cout, (NEW,) * tf.shortcut.cin,
                    zero=True)
        channels = out
    if source.num_classes == target.num_classes:
        add(target.classifier, source.classifier, tuple(range(target.num_classes)), channels)
    else:
        add(target.classifier, None, (NEW,) * target.num_classes, channels)
    # Equal shapes select every filter and channel in place: the source itself.
    exact = (source.convs() == target.convs()
             and [f.identity for f in source.fires] == [f.identity for f in target.fires])
    return InheritanceMap(tuple(layers), exact)
