"""Zero-cost proxies: finite, deterministic, faithful to their definitions, RNG-neutral."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from autosq.accuracy.proxies import PROXIES, proxy_score
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.model import build
from autosq.arch.plan import plan
from autosq.arch.presets import preset
from autosq.errors import MeasurementError, UsageError


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_proxies_tuple() -> None:
    assert PROXIES == ("synflow", "naswot", "params", "macs")


@pytest.mark.parametrize("name", PROXIES)
@pytest.mark.parametrize(
    ("preset_name", "size", "classes"),
    [
        ("squeezenet1_0", 32, 10),
        ("squeezenet1_0", 64, 1000),
        ("squeezenet1_1", 32, 2),
        ("squeezenet1_1", 64, 100),
        ("squeezenet1_0_complex_bypass", 32, 10),
    ],
)
def test_every_proxy_is_a_finite_float(
    name: str, preset_name: str, size: int, classes: int
) -> None:
    score = proxy_score(name, preset(preset_name, input_size=size, num_classes=classes))
    assert isinstance(score, float)
    assert math.isfinite(score)


@pytest.mark.parametrize("name", PROXIES)
def test_same_seed_same_score(name: str) -> None:
    config = preset("squeezenet1_1", input_size=32, num_classes=10)
    assert proxy_score(name, config, seed=7) == proxy_score(name, config, seed=7)


@pytest.mark.parametrize("name", ["synflow", "naswot"])
def test_seed_changes_the_initialisation(name: str) -> None:
    config = preset("squeezenet1_1", input_size=32, num_classes=10)
    assert proxy_score(name, config, seed=0) != proxy_score(name, config, seed=1)


@pytest.mark.parametrize("preset_name", ["squeezenet1_0", "squeezenet1_1"])
@pytest.mark.parametrize("seed", [0, 1])
def test_synflow_grows_with_width(preset_name: str, seed: int) -> None:
    # Measured: base_e 32 -> 128 raises log synflow by about 4.8 at 32x32 and 64x64.
    narrow = preset(preset_name, input_size=32, num_classes=10, base_e=32)
    wide = preset(preset_name, input_size=32, num_classes=10, base_e=128)
    assert proxy_score("synflow", wide, seed=seed) > proxy_score("synflow", narrow, seed=seed) + 1


def _reference_synflow(config: SqueezeNetConfig, seed: int) -> float:
    """The definition on the model exactly as built: in-place ReLUs left as they are."""
    model = build(config, seed=seed).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    size = config.input_size
    model(torch.ones(1, 3, size, size, dtype=torch.float64)).sum().backward()
    total = 0.0
    for p in model.parameters():
        assert p.grad is not None
        total += float((p.detach() * p.grad).abs().sum())
    return math.log(total)


@pytest.mark.parametrize(
    "preset_name", ["squeezenet1_0", "squeezenet1_1", "squeezenet1_0_simple_bypass"]
)
def test_synflow_matches_definition_despite_inplace_relus(preset_name: str) -> None:
    config = preset(preset_name, input_size=32, num_classes=10)
    relus = [m for m in build(config).modules() if isinstance(m, nn.ReLU)]
    assert relus
    assert all(m.inplace for m in relus)  # the premise: the model's ReLUs are in place
    assert proxy_score("synflow", config, seed=3) == pytest.approx(
        _reference_synflow(config, 3), rel=1e-12, abs=1e-12
    )


def _reference_naswot(config: SqueezeNetConfig, images: torch.Tensor, seed: int) -> float:
    """Mellor et al.'s kernel from concatenated codes: K = C C^T + (1 - C)(1 - C)^T."""
    model = build(config, seed=seed).eval()
    codes: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        codes.append((out > 0).flatten(1).to(torch.float64))

    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(images)
    c = torch.cat(codes, 1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k)[1])


def test_naswot_matches_definition() -> None:
    config = preset("squeezenet1_1", input_size=32, num_classes=10)
    images = _images(8, 32, seed=5)
    expected = _reference_naswot(config, images, seed=2)
    assert proxy_score("naswot", config, images=images, seed=2) == pytest.approx(
        expected, rel=1e-12, abs=1e-9
    )


def test_naswot_depends_on_images_and_accepts_a_batch() -> None:
    config = preset("squeezenet1_0", input_size=64, num_classes=10)
    a = proxy_score("naswot", config, images=_images(32, 64, seed=1))
    b = proxy_score("naswot", config, images=_images(32, 64, seed=2))
    assert math.isfinite(a)
    assert math.isfinite(b)
    assert a != b
    # The default batch is 32 seeded images at input_size: equal to passing that batch.
    default_batch = _images(32, 64, seed=0)
    assert proxy_score("naswot", config, seed=0) == proxy_score(
        "naswot", config, images=default_batch, seed=0
    )


def test_naswot_rejects_bad_images() -> None:
    config = preset("squeezenet1_1", input_size=32, num_classes=10)
    with pytest.raises(UsageError, match=r"\(N, 3, H, W\)"):
        proxy_score("naswot", config, images=torch.zeros(4, 1, 32, 32))
    with pytest.raises(UsageError, match="at least 17x17"):
        proxy_score("naswot", config, images=torch.zeros(4, 3, 8, 8))
    with pytest.raises(UsageError, match="finite"):
        proxy_score("naswot", config, images=torch.full((4, 3, 32, 32), float("nan")))


def test_naswot_duplicate_images_are_a_measurement_error() -> None:
    config = preset("squeezenet1_1", input_size=32, num_classes=10)
    one = _images(1, 32, seed=0)
    with pytest.raises(MeasurementError, match="singular"):
        proxy_score("naswot", config, images=torch.cat([one, one, _images(2, 32, seed=1)]))


@pytest.mark.parametrize("preset_name", ["squeezenet1_0", "squeezenet1_1"])
def test_params_and_macs_are_logs_of_the_plan(preset_name: str) -> None:
    config = preset(preset_name, input_size=64, num_classes=10)
    p = plan(config)
    assert proxy_score("params", config) == math.log(p.params)
    assert proxy_score("macs", config) == math.log(p.macs)


def test_unknown_proxy_is_a_usage_error_listing_the_known_ones() -> None:
    config = preset("squeezenet1_1", input_size=32)
    with pytest.raises(UsageError) as info:
        proxy_score("zen", config)
    assert str(info.value) == "unknown proxy 'zen'; known proxies: synflow, naswot, params, macs"


@pytest.mark.parametrize("name", PROXIES)
def test_global_rng_state_is_untouched(name: str) -> None:
    config = preset("squeezenet1_1", input_size=32, num_classes=10)
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    proxy_score(name, config, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    proxy_score(name, config, seed=5)
    assert torch.equal(torch.rand(4), expected)


def test_proxies_leave_grad_mode_alone() -> None:
    config = preset("squeezenet1_1", input_size=32, num_classes=10)
    with torch.no_grad():
        inside = proxy_score("synflow", config)  # synflow needs autograd even here
    assert inside == proxy_score("synflow", config)
    assert torch.is_grad_enabled()
