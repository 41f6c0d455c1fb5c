"""The one-shot supernet: a candidate's slice is its own network, scores repeat with the seed,
and bad inputs are one clear line."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.oneshot import SupernetAccuracy, SupernetRecipe, sample_values
from autosq.accuracy.supernet import SubnetSpec, SuperNet, complex_possible, space_widths
from autosq.arch.space import load_space, make_config, parse_space
from autosq.errors import UsageError

Cli = Callable[..., tuple[int, str, str]]
SMALL = "builtin:shapes:20"
BYPASS_SPACE = '''
name = "mixed"
[fixed]
macro = "v1.0"
conv1_filters = 12
[params.base_e]
type = "int"
low = 8
high = 24
step = 8
[params.incr_e]
type = "int"
low = 0
high = 16
step = 8
[params.pct_3x3]
type = "float"
low = 0.0
high = 1.0
step = 0.5
[params.sr]
type = "float"
low = 0.25
high = 0.5
step = 0.25
[params.bypass]
type = "categorical"
choices = ["none", "simple", "complex"]
'''


@pytest.mark.parametrize("space_text", ["tiny", BYPASS_SPACE])
def test_a_slice_computes_what_the_candidate_network_computes(space_text: str) -> None:
    space = (load_space(space_text) if space_text == "tiny"
             else parse_space(space_text, "mixed.toml"))
    macro = space.fixed["macro"]
    largest, smallest = space_widths(space, macro, 32, 10)
    torch.manual_seed(0)
    net = SuperNet(macro, largest, 10, complex_possible(space))
    with torch.no_grad():  # BatchNorm affine parameters away from 1 and 0, so folding matters
        for p in [*net.bn_w.values(), *net.bn_b.values()]:
            p.uniform_(0.5, 1.5)
    rng = random.Random(1)
    x = torch.randn(4, 3, 32, 32)
    for _ in range(6):
        config = make_config(sample_values(space, rng), 32, 10)
        spec = SubnetSpec.of(config)
        assert spec.fits(largest) and smallest.conv1 <= spec.conv1
        stats = {name: (torch.randn(len(rows)) * 0.1, torch.rand(len(rows)) + 0.5)
                 for name, rows, _ in net.layout(spec)}
        net.eval()
        with torch.no_grad():
            expected = net(x, spec, stats)
            model = net.deployed(config, stats)
            got = model(x)
        assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), config


def test_scores_repeat_with_the_seed_and_the_cache_is_used(tmp_path: Path) -> None:
    data = load_dataset(SMALL, 32)
    space = load_space("tiny")
    config = make_config(sample_values(space, random.Random(3)), 32, 10)
    recipe = SupernetRecipe(steps=4, calib_batches=2, calib_batch_size=32)
    a = SupernetAccuracy(data, space, recipe, seed=5, threads=1)
    score, details = a.score(config, 0)
    assert 0.0 <= score <= 1.0 and details["supernet_steps"] == 4
    assert a.score(config, 0)[0] == score
    fresh = SupernetAccuracy(data, space, recipe, seed=5, threads=1)  # from the disk cache
    assert fresh.score(config, 0)[0] == score
    other = SupernetAccuracy(data, space, recipe, seed=6, threads=1)
    assert other._key("v1.1") != a._key("v1.1")


@pytest.mark.parametrize("damage", ["garbage", "nan"])
def test_a_damaged_cache_file_is_trained_again_saying_so(isolated_cache: Path,
                                                         damage: str) -> None:
    # badinput-2 B-sn-cache-nan: a cache of the right layout with NaN weights scored every
    # candidate at chance; a damaged file was retrained silently. Both: one line, retrained.
    import warnings

    data = load_dataset(SMALL, 32)
    space = load_space("tiny")
    recipe = SupernetRecipe(steps=2, calib_batches=1, calib_batch_size=16)
    a = SupernetAccuracy(data, space, recipe, seed=0, threads=1)
    a.supernet("v1.1")
    (cached,) = (isolated_cache / "supernets").glob("*.pt")
    if damage == "garbage":
        cached.write_bytes(b"garbage")
    else:
        state = torch.load(cached, weights_only=True)
        torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                    for k, v in state.items()}, cached)
    before = cached.read_bytes()
    b = SupernetAccuracy(data, space, recipe, seed=0, threads=1, on_step=lambda *_: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net, _ = b.supernet("v1.1")
    said = [str(w.message) for w in caught]
    # B-sn-torch-warning: torch's "Converting a tensor with requires_grad=True" is gone.
    assert not [m for m in said if "requires_grad" in m], said
    assert len(said) == 1 and f"the cached supernet {cached} is damaged" in said[0], said
    assert ("cannot be read" if damage == "garbage" else "not finite numbers") in said[0]
    assert said[0].endswith("training it again") and "\n" not in said[0]
    assert isinstance(net, SuperNet) and cached.read_bytes() != before
    assert all(torch.isfinite(t).all() for t in net.state_dict().values()
               if t.is_floating_point())


def test_a_space_too_wide_for_one_supernet() -> None:
    data = load_dataset(SMALL, 32)
    with pytest.raises(UsageError, match="too wide to share one supernet"):
        SupernetAccuracy(data, load_space("default"), SupernetRecipe(steps=1)).supernet("v1.0")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--accuracy", "supernet"], "--accuracy supernet trains on images: it needs --data"),
        (["--accuracy", "train"], "--accuracy train trains on images: it needs --data"),
        (["--accuracy", "oracle"], "--accuracy must be one of proxy, train, supernet"),
        (["--accuracy", "supernet", "--data", SMALL, "--epochs", "3"],
         "--accuracy supernet does not use it"),
    ],
)
def test_accuracy_flag_bad_input(cli: Cli, tmp_path: Path, args: list[str],
                                 needle: str) -> None:
    code, _, err = cli("search", *args, "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("shared_bypass", [False, True])
def test_a_space_with_missing_branches_and_every_bypass_trains(shared_bypass: bool) -> None:
    # pct_3x3 reaches 0 and 1 (a Fire without one of its expand branches) and bypass takes all
    # three modes: the sandwich's smallest, largest and random subnets must all run.
    data = load_dataset(SMALL, 32)
    space = parse_space(BYPASS_SPACE, "mixed.toml")
    a = SupernetAccuracy(data, space, SupernetRecipe(steps=3, calib_batches=2,
                                                     calib_batch_size=300,
                                                     bypass=shared_bypass), seed=0, threads=1)
    rng = random.Random(2)
    for _ in range(3):
        config = make_config(sample_values(space, rng), 32, 10)
        assert 0.0 <= a.score(config, 0)[0] <= 1.0


def test_by_default_a_candidate_with_bypass_scores_as_its_plain_twin() -> None:
    from dataclasses import replace

    data = load_dataset(SMALL, 32)
    space = load_space("tiny")
    a = SupernetAccuracy(data, space, SupernetRecipe(steps=3, calib_batches=2,
                                                     calib_batch_size=64), seed=0, threads=1)
    config = make_config({**space.fixed, "base_e": 16, "incr_e": 0, "freq": 2, "pct_3x3": 0.5,
                          "sr": 0.25, "bypass": "simple"}, 32, 10)
    assert a.score(config, 0)[0] == a.score(replace(config, bypass="none"), 0)[0]
    net, _ = a.supernet("v1.1")
    assert not [k for k in net.w if k.endswith("_sc")]  # no shortcut weights to train
