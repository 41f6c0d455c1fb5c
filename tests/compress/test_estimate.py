"""Compressed sizes predicted from the plan against real containers, and compressed precisions
in a search: a budget only Deep Compression meets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.model import build
from autosq.arch.plan import plan
from autosq.arch.presets import load_presets, preset
from autosq.arch.space import load_space, make_config
from autosq.compress.container import to_bytes
from autosq.compress.estimate import compressed_bytes
from autosq.compress.network import compress_network
from autosq.errors import ConfigError
from autosq.outputs.calibrate import random_values


def configs() -> list[SqueezeNetConfig]:
    out = [preset(n, num_classes=100) for n in sorted(load_presets())]
    rng = random.Random(3)
    while len(out) < 7:
        try:
            out.append(make_config(random_values(load_space("default"), rng), 224, 100))
        except ConfigError:
            continue
    return out


@pytest.mark.parametrize("config", configs(), ids=lambda c: c.arch_id[:10])
@pytest.mark.parametrize("bits", [8, 4])
def test_the_prediction_never_admits_a_container_over_it(config: SqueezeNetConfig,
                                                         bits: int) -> None:
    state = {k: v.numpy() for k, v in build(config, seed=1).state_dict().items()}
    real = len(to_bytes(compress_network(config, state, bits=bits)))
    predicted = compressed_bytes(plan(config), bits)
    assert real <= predicted <= 1.5 * real, (real, predicted)


def test_a_budget_only_deep_compression_meets(tmp_path: Path) -> None:
    """--max-mb 0.5 in a space whose every fp32 and int8 candidate is larger (int8 from
    0.74 MiB): only compressed candidates fit."""
    from autosq.searching.run import run_search

    space = tmp_path / "dc.toml"
    space.write_text(
        'name = "dc"\n[fixed]\nmacro = "v1.1"\nbypass = "none"\nfreq = 2\nsr = 0.125\n'
        'pct_3x3 = 0.5\n[params.base_e]\ntype = "int"\nlow = 128\nhigh = 256\nstep = 64\n'
        '[params.incr_e]\ntype = "int"\nlow = 128\nhigh = 256\nstep = 64\n'
        '[params.precision]\ntype = "categorical"\nchoices = ["fp32", "int8", "{}"]\n')
    from util import FAST

    common = {"device": "host", "max_mb": 0.5, "max_ms": 0, "trials": 8, "input_size": 32,
              "num_classes": 10, "protocol": FAST, "retime": False, "sampler": "random",
              "seed": 0}
    text = space.read_text()
    space.write_text(text.replace(', "{}"', ""))
    plain = run_search(space=str(space), storage=f"sqlite:///{tmp_path}/a.db", **common)
    assert plain.to_json() == [] and "nothing fits" in str(plain.nearest_miss)
    space.write_text(text.replace("{}", "dc6"))
    both = run_search(space=str(space), storage=f"sqlite:///{tmp_path}/b.db", **common)
    rows = both.to_json()
    assert rows and all(r["config"]["precision"] == "dc6" for r in rows)
    for r in rows:
        assert r["size_mb"] <= 0.5 and r["size_kind"] == "predicted"
        assert r["compressed"]["bits"] == 6 and "uncompressed" in r["compressed"]["note"]
