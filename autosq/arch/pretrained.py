"""Starting a candidate from pretrained weights: the sources of a run, filter importance, and
the inheritance map (:mod:`autosq.arch.inherit`) applied to a seeded network.

``--pretrained SOURCE`` names one weights file (:mod:`autosq.arch.weights`) for every
candidate, or ``torchvision`` for torchvision's published ImageNet SqueezeNet of each
candidate's own macro (squeezenet1_0 for v1.0, squeezenet1_1 for v1.1). A source of the other
macro still gives every Fire module and the classifier; only conv1 starts fresh (its kernel
differs). Filters are ranked by the L1 norm of their weights (AMC, OFA), most important first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autosq.arch.inherit import NEW, inheritance_map, shape_of_plan
from autosq.arch.weights import Normalisation, WeightsFile, read_weights
from autosq.errors import WeightsError

if TYPE_CHECKING:
    import torch

    from autosq.arch.config import SqueezeNetConfig
    from autosq.arch.model import SqueezeNet

PER_MACRO = "torchvision"
_TORCHVISION_OF = {"v1.0": "torchvision:squeezenet1_0", "v1.1": "torchvision:squeezenet1_1"}


@dataclass
class Pretrained:
    """The weights a run's candidates start from: one file, or one per macro."""

    spec: str
    files: dict[str, WeightsFile] = field(default_factory=dict)  # macro, or "*" for all

    def for_macro(self, macro: str) -> WeightsFile:
        """The source of a candidate of ``macro``."""
        if "*" in self.files:
            return self.files["*"]
        if macro not in self.files:
            self.files[macro] = read_weights(_TORCHVISION_OF[macro])
        return self.files[macro]

    @property
    def normalisation(self) -> Normalisation:
        """How every candidate's inputs are normalised (the sources agree; checked)."""
        norms = {f.normalisation for f in self.files.values()}
        if len(norms) > 1:
            raise WeightsError("the pretrained sources expect different input normalisations")
        return next(iter(norms))

    def describe(self) -> dict[str, Any]:
        """The lineage a study records: the spec and each file's hash."""
        return {"spec": self.spec, "files": {m: f.describe() for m, f in self.files.items()},
                "normalisation": self.normalisation.to_dict()}


def load_pretrained(spec: str, macros: tuple[str, ...] = ("v1.0", "v1.1")) -> Pretrained:
    """Read the source(s) of ``spec`` for candidates of ``macros`` (all read up front, so a bad
    file fails before any work)."""
    if not isinstance(spec, str) or not spec.strip():
        raise WeightsError("pretrained must name a weights file, torchvision:squeezenet1_0, "
                           "torchvision:squeezenet1_1 or torchvision")
    out = Pretrained(spec)
    if spec == PER_MACRO:
        for macro in macros:
            out.files[macro] = read_weights(_TORCHVISION_OF[macro])
    else:
        out.files["*"] = read_weights(spec)
    return out


def importance(state: dict[str, torch.Tensor], names: list[str]) -> dict[str, list[int]]:
    """Each conv's filters from most to least important (L1 norm of the filter's weights;
    ties keep index order)."""
    out = {}
    for name in names:
        norms = state[f"{name}.weight"].abs().flatten(1).sum(1).tolist()
        out[name] = sorted(range(len(norms)), key=lambda i: (-norms[i], i))
    return out


@dataclass(frozen=True)
class Inheritance:
    """What a candidate took from its source."""

    source: str
    sha256: str
    exact: bool
    share: float
    fresh: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The stored form (a trial's details, a card)."""
        return {"source": self.source, "sha256": self.sha256, "exact": self.exact,
                "share_inherited": round(self.share, 4), "fresh_layers": list(self.fresh)}


def inherit(model: SqueezeNet, source: WeightsFile) -> Inheritance:
    """Give ``model`` (a seeded, plain network) the source's weights along the inheritance map,
    in place: kept filters take the source's weights, input channels the source lacks read zero
    weights, a shortcut the source lacks starts at zero; the rest keeps its seeded values."""
    import torch

    target = shape_of_plan(model.plan)
    names = [c.name for c in source.shape.convs()]
    mapping = inheritance_map(source.shape, target, importance(source.state, names))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for m in mapping.layers:
            w, b = params[f"{m.target}.weight"], params[f"{m.target}.bias"]
            if m.zero:
                w.zero_()
                b.zero_()
                continue
            if m.source is None:
                continue
            sw, sb = source.state[f"{m.source}.weight"], source.state[f"{m.source}.bias"]
            rows = torch.tensor([i for i, r in enumerate(m.rows) if r != NEW], dtype=torch.long)
            src_rows = torch.tensor([r for r in m.rows if r != NEW], dtype=torch.long)
            cols = torch.tensor([j for j, c in enumerate(m.cols) if c != NEW], dtype=torch.long)
            src_cols = torch.tensor([c for c in m.cols if c != NEW], dtype=torch.long)
            new_cols = torch.tensor([j for j, c in enumerate(m.cols) if c == NEW],
                                    dtype=torch.long)
            if len(rows):
                w[rows[:, None], cols[None, :]] = sw[src_rows[:, None], src_cols[None, :]]
                # Channels the source lacks must not change what its filters compute.
                w[rows[:, None], new_cols[None, :]] = 0.0
                b[rows] = sb[src_rows]
    fresh = tuple(m.target for m in mapping.layers if m.source is None and not m.zero)
    return Inheritance(source.spec, source.sha256, mapping.exact,
                       mapping.share_inherited(target), fresh)


def inherited_model(config: SqueezeNetConfig, pretrained: Pretrained,
                    seed: int) -> tuple[SqueezeNet, Inheritance]:
    """The candidate's plain network, seeded, then given its source's weights."""
    from autosq.arch.model import build

    model = build(config, seed=seed)
    return model, inherit(model, pretrained.for_macro(config.macro))
