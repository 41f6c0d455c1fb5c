"""The plan against the paper's and torchvision's reference numbers, and config validation."""

from __future__ import annotations

import sys

import pytest

from autosq.arch.config import SqueezeNetConfig, min_input_size, pool_out, round_half_up
from autosq.arch.cost import cost
from autosq.arch.plan import plan
from autosq.arch.presets import load_presets, preset
from autosq.errors import ConfigError

# torchvision's reference numbers (224x224, 1000 classes).
REFERENCE = {
    "squeezenet1_0": {"params": 1_248_424, "macs": 818_924_576, "spatial": [109, 54, 27, 13]},
    "squeezenet1_1": {"params": 1_235_496, "macs": 349_151_936, "spatial": [111, 55, 27, 13]},
}
PAPER_FIRES = [
    (16, 64, 64),
    (16, 64, 64),
    (32, 128, 128),
    (32, 128, 128),
    (48, 192, 192),
    (48, 192, 192),
    (64, 256, 256),
    (64, 256, 256),
]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_presets_match_torchvision_numbers(name: str) -> None:
    p = plan(preset(name))
    ref = REFERENCE[name]
    assert p.params == ref["params"]
    assert p.macs == ref["macs"]
    assert p.spatial_sizes() == ref["spatial"]
    assert [(f.squeeze, f.expand1x1, f.expand3x3) for f in p.fires] == PAPER_FIRES


def test_fire_inputs_follow_the_previous_module() -> None:
    p = plan(preset("squeezenet1_0"))
    assert [f.cin for f in p.fires] == [96, 128, 128, 256, 256, 384, 384, 512]
    assert [f.hw for f in p.fires] == [54, 54, 54, 27, 27, 27, 27, 13]


@pytest.mark.parametrize("name", sorted(load_presets()))
def test_every_preset_builds(name: str) -> None:
    config = preset(name)
    assert config.to_dict()["conv1_filters"] == config.conv1_out


def test_min_input_sizes_match_torchvision() -> None:
    assert min_input_size("v1.0") == 21
    assert min_input_size("v1.1") == 17


def test_pool_follows_pytorch_ceil_mode() -> None:
    # (size, expected) from torch.nn.MaxPool2d(3, 2, ceil_mode=True)
    for size, expected in [(109, 54), (54, 27), (27, 13), (111, 55), (55, 27), (2, 1), (4, 2)]:
        assert pool_out(size) == expected


# Paper Figure 3 sizes at 32-bit. With SR in steps of 1/8 and pct_3x3 = 0.5 every
# channel count is an integer, so the SR sweep must match to the hundredth. In the pct_3x3 sweep
# 1% and 99% give fractional counts (e.g. 0.01 x 256 = 2.56 -> 3): the rounding rule moves those
# sizes by well under 0.01 MiB, so the same tolerance holds.
SR_SWEEP = {
    0.125: 4.76,
    0.25: 7.50,
    0.375: 10.25,
    0.5: 12.99,
    0.625: 15.73,
    0.75: 18.47,
    0.875: 21.21,
    1.0: 23.95,
}
PCT_SWEEP = {0.01: 5.64, 0.125: 7.36, 0.25: 9.24, 0.5: 12.99, 0.75: 16.74, 0.99: 20.33}


@pytest.mark.parametrize(("sr", "mib"), sorted(SR_SWEEP.items()))
def test_paper_sr_sweep(sr: float, mib: float) -> None:
    assert cost(preset("squeezenet1_0", sr=sr)).size_mb() == pytest.approx(mib, abs=0.005)


@pytest.mark.parametrize(("pct", "mib"), sorted(PCT_SWEEP.items()))
def test_paper_pct_3x3_sweep(pct: float, mib: float) -> None:
    size = cost(preset("squeezenet1_0", sr=0.5, pct_3x3=pct)).size_mb()
    assert size == pytest.approx(mib, abs=0.005)


def test_size_per_precision() -> None:
    c = cost(preset("squeezenet1_0"))
    assert c.size_mb("fp32") == pytest.approx(4.762, abs=1e-3)
    assert c.size_mb("fp16") == pytest.approx(c.size_mb("fp32") / 2)
    # int8 adds its scales, zero points and int32 biases (exact count: tests/arch/test_cost.py)
    assert c.size_mb("fp32") / 4 < c.size_mb("int8") < 1.1 * c.size_mb("fp32") / 4


def test_rounding_rule() -> None:
    assert round_half_up(2.5) == 3 and round_half_up(3.5) == 4 and round_half_up(2.49) == 2
    cfg = SqueezeNetConfig(base_e=10, incr_e=0, pct_3x3=0.25, sr=0.25)
    assert cfg.fire_channels(0) == (3, 7, 3)  # 2.5 -> 3 for both squeeze and 3x3
    # Tiny shares still leave one filter in each branch...
    assert SqueezeNetConfig(base_e=8, incr_e=0, pct_3x3=0.01).fire_channels(0)[2] == 1
    assert SqueezeNetConfig(base_e=8, incr_e=0, pct_3x3=0.99).fire_channels(0)[1] == 1
    # ...and only exactly 0 or 1 removes one.
    assert SqueezeNetConfig(pct_3x3=0.0).fire_channels(0) == (16, 128, 0)
    assert SqueezeNetConfig(pct_3x3=1.0).fire_channels(0) == (16, 0, 128)
    assert SqueezeNetConfig(base_e=4, incr_e=0, sr=0.01).fire_channels(0)[0] == 1


def test_bypass_placement_follows_channels() -> None:
    simple = plan(preset("squeezenet1_0_simple_bypass"))
    assert [f.name for f in simple.fires if f.shortcut == "identity"] == [
        "fire3",
        "fire5",
        "fire7",
        "fire9",
    ]
    complex_ = plan(preset("squeezenet1_0_complex_bypass"))
    assert [f.name for f in complex_.fires if f.shortcut == "conv"] == [
        "fire2",
        "fire4",
        "fire6",
        "fire8",
    ]
    # Simple bypass adds no parameters; complex adds the four 1x1 shortcut convs.
    assert simple.params == 1_248_424
    extra = (96 * 128 + 128) + (128 * 256 + 256) + (256 * 384 + 384) + (384 * 512 + 512)
    assert complex_.params == 1_248_424 + extra


def test_arch_id_recognises_equal_architectures() -> None:
    a = SqueezeNetConfig(pct_3x3=0.5)
    b = SqueezeNetConfig(pct_3x3=0.5001)  # rounds to the same channels
    c = SqueezeNetConfig(pct_3x3=0.6)
    assert a.arch_id == b.arch_id != c.arch_id
    assert a.arch_id == SqueezeNetConfig(input_size=96, dropout=0.1).arch_id
    assert len(a.arch_id) == 10


def test_plan_imports_no_torch() -> None:
    import subprocess

    code = (
        "import sys, autosq.arch.plan, autosq.arch.cost, autosq.arch.space; "
        "sys.exit(int(any(m in sys.modules for m in ('torch', 'onnxruntime'))))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pct_3x3": 1.5}, "pct_3x3 must be in [0, 1]; got 1.5"),
        ({"pct_3x3": -0.1}, "pct_3x3 must be in [0, 1]"),
        ({"sr": 0}, "sr (squeeze ratio) must be > 0; got 0"),
        ({"base_e": 0}, "base_e must be >= 1; got 0"),
        ({"incr_e": -1}, "incr_e must be >= 0"),
        ({"freq": 0}, "freq must be >= 1"),
        ({"macro": "v2"}, "macro must be one of v1.0, v1.1; got 'v2'"),
        ({"bypass": "full"}, "bypass must be one of none, simple, complex"),
        ({"input_size": 20}, "input_size must be >= 21 for macro v1.0; got 20"),
        ({"input_size": 16, "macro": "v1.1"}, "input_size must be >= 17 for macro v1.1; got 16"),
        ({"num_classes": 0}, "num_classes must be >= 1"),
        ({"base_e": 1, "incr_e": 0}, "needs e_i >= 2"),
        ({"base_e": 1.5}, "base_e must be an integer"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
    ],
)
def test_bad_configs_say_the_rule_and_the_value(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SqueezeNetConfig(**fields)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_unknown_keys_and_presets() -> None:
    with pytest.raises(ConfigError, match="unknown config key"):
        SqueezeNetConfig.from_dict({"base_e": 64, "squeeze": 3})
    with pytest.raises(ConfigError, match="known presets: squeezenet1_0"):
        preset("squeezenet2")
