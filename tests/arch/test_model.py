"""The torch model against its plan: parameters, MACs (fvcore), names, peak memory (tracked)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.cost import ACTIVATION_BYTES, cost_of
from autosq.arch.model import build
from autosq.arch.plan import plan
from autosq.arch.presets import preset

ConfigMaker = Callable[[int, int], list[SqueezeNetConfig]]


@pytest.mark.slow
def test_param_count_equals_plan_for_random_configs(make_configs: ConfigMaker) -> None:
    for config in make_configs(300, 1):
        model = build(config)
        assert sum(p.numel() for p in model.parameters()) == plan(config).params, config


def _fvcore_flops(model: torch.nn.Module, size: int) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model.eval(), torch.zeros(1, 3, size, size))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


@pytest.mark.slow
def test_fvcore_agrees_with_plan_macs(make_configs: ConfigMaker) -> None:
    # fvcore counts one multiply-add as one flop, like the plan, but also counts the global
    # average pool (one flop per input element: num_classes x H x W); element-wise adds,
    # ReLUs and max-pools it does not count. That difference is the only one allowed. (60
    # random configurations: every macro, bypass and pct_3x3 edge case many times over.)
    for config in make_configs(60, 2):
        p = plan(config)
        avgpool = next(lay for lay in p.layers if lay.kind == "avgpool")
        expected = p.macs + avgpool.cin * avgpool.in_hw * avgpool.in_hw
        assert _fvcore_flops(build(p), config.input_size) == expected, config


def test_fvcore_reference_numbers() -> None:
    # fvcore reports 819,093,576 and 349,320,936 for torchvision's two models.
    assert _fvcore_flops(build(preset("squeezenet1_0")), 224) == 819_093_576
    assert _fvcore_flops(build(preset("squeezenet1_1")), 224) == 349_320_936


def _torchvision_shapes(macro: str) -> dict[str, tuple[int, ...]]:
    """torchvision's SqueezeNet state_dict shapes, written out from its squeezenet.py."""
    if macro == "v1.0":
        conv1, positions = (96, 3, 7, 7), [3, 4, 5, 7, 8, 9, 10, 12]
        fires = [
            (96, 16, 64),
            (128, 16, 64),
            (128, 32, 128),
            (256, 32, 128),
            (256, 48, 192),
            (384, 48, 192),
            (384, 64, 256),
            (512, 64, 256),
        ]
    else:
        conv1, positions = (64, 3, 3, 3), [3, 4, 6, 7, 9, 10, 11, 12]
        fires = [
            (64, 16, 64),
            (128, 16, 64),
            (128, 32, 128),
            (256, 32, 128),
            (256, 48, 192),
            (384, 48, 192),
            (384, 64, 256),
            (512, 64, 256),
        ]
    shapes: dict[str, tuple[int, ...]] = {"features.0.weight": conv1, "features.0.bias": conv1[:1]}
    for pos, (cin, s, e) in zip(positions, fires, strict=True):
        shapes[f"features.{pos}.squeeze.weight"] = (s, cin, 1, 1)
        shapes[f"features.{pos}.squeeze.bias"] = (s,)
        shapes[f"features.{pos}.expand1x1.weight"] = (e, s, 1, 1)
        shapes[f"features.{pos}.expand1x1.bias"] = (e,)
        shapes[f"features.{pos}.expand3x3.weight"] = (e, s, 3, 3)
        shapes[f"features.{pos}.expand3x3.bias"] = (e,)
    shapes["classifier.1.weight"] = (1000, 512, 1, 1)
    shapes["classifier.1.bias"] = (1000,)
    return shapes


@pytest.mark.parametrize(("name", "macro"), [("squeezenet1_0", "v1.0"), ("squeezenet1_1", "v1.1")])
def test_state_dict_has_torchvision_layout(name: str, macro: str) -> None:
    state = build(preset(name)).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == _torchvision_shapes(macro)


def test_bypass_keeps_torchvision_names() -> None:
    plain = set(build(preset("squeezenet1_0")).state_dict())
    complex_ = set(build(preset("squeezenet1_0_complex_bypass")).state_dict())
    assert plain < complex_
    assert complex_ - plain == {
        f"features.{i}.shortcut.{w}" for i in (3, 5, 8, 10) for w in ("weight", "bias")
    }


def test_initialisation_is_torchvision_s() -> None:
    model = build(preset("squeezenet1_1"), seed=0)
    final = model.classifier[1]
    assert float(final.weight.detach().std()) == pytest.approx(0.01, rel=0.05)
    assert all(
        float(m.bias.detach().abs().sum()) == 0
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
    )
    again = build(preset("squeezenet1_1"), seed=0)
    assert torch.equal(model.features[0].weight, again.features[0].weight)


def test_forward_shapes(make_configs: ConfigMaker) -> None:
    for config in make_configs(20, 3):
        out = build(config).eval()(torch.randn(2, 3, config.input_size, config.input_size))
        assert out.shape == (2, config.num_classes)


class _LiveTensorTracker(TorchDispatchMode):
    """Records every aten op's input and output storages during a forward pass.

    Outputs are kept referenced so storages are never reused and their addresses stay unique.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[list[int], list[tuple[int, int]]]] = []
        self._keep: list[torch.Tensor] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        ins = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        if func is torch.ops.aten.max_pool2d_with_indices.default:
            outs = outs[:1]  # eager's int64 indices: never read, and no ONNX MaxPool makes them
        self._keep += outs
        self.ops.append(
            (
                [t.untyped_storage().data_ptr() for t in ins],
                [(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()) for t in outs],
            )
        )
        return out


def measured_peak_bytes(model: torch.nn.Module, size: int) -> int:
    """Peak of live activation bytes, from the storages torch really allocated, freeing each
    after its last reader (weights excluded)."""
    x = torch.randn(1, 3, size, size)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    tracker = _LiveTensorTracker()
    with torch.no_grad(), tracker:
        model(x)
    last_read: dict[int, int] = {}
    for i, (ins, _) in enumerate(tracker.ops):
        for ptr in ins:
            last_read[ptr] = i
    live = {x.untyped_storage().data_ptr(): x.untyped_storage().nbytes()}
    peak = sum(live.values())
    final = tracker.ops[-1][1][0][0]
    for i, (_, outs) in enumerate(tracker.ops):
        for ptr, nbytes in outs:
            if ptr not in weights and ptr not in live:
                live[ptr] = nbytes  # a new storage; in-place ops and views return known ones
        peak = max(peak, sum(live.values()))
        for ptr in list(live):
            if ptr != final and last_read.get(ptr, -1) <= i:
                del live[ptr]
    return peak


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1", "squeezenet1_0_complex_bypass"])
def test_peak_memory_matches_tracked_tensors_for_presets(name: str) -> None:
    p = plan(preset(name))
    assert measured_peak_bytes(build(p).eval(), 224) == cost_of(p).peak_mem_bytes


def test_peak_memory_matches_tracked_tensors_for_random_configs(make_configs: ConfigMaker) -> None:
    for config in make_configs(25, 4):
        p = plan(config)
        measured = measured_peak_bytes(build(p).eval(), config.input_size)
        assert measured == cost_of(p).peak_mem_bytes, config
        assert measured % ACTIVATION_BYTES == 0
