"""The inheritance map, in pure Python: which source filter and input channel each conv of a
candidate takes, and which state_dicts are SqueezeNets at all."""

from __future__ import annotations

import pytest

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.inherit import NEW, inheritance_map, shape_of_plan, shape_of_state
from autosq.arch.plan import plan
from autosq.arch.presets import preset
from autosq.errors import WeightsError


def shapes(config: SqueezeNetConfig) -> dict[str, tuple[int, ...]]:
    """A state_dict's tensor shapes for a config, as torchvision would name them."""
    out: dict[str, tuple[int, ...]] = {}
    for layer in plan(config).layers:
        if layer.kind == "conv":
            out[f"{layer.module}.weight"] = (layer.cout, layer.cin, layer.kernel, layer.kernel)
            out[f"{layer.module}.bias"] = (layer.cout,)
    return out


V10 = preset("squeezenet1_0")
SOURCE = shape_of_state(shapes(V10), "v10.pth")


def test_a_state_dict_reads_as_the_plan_of_its_config() -> None:
    for name in ("squeezenet1_0", "squeezenet1_1", "squeezenet1_0_complex_bypass"):
        config = preset(name)
        # (a state_dict cannot show identity shortcuts: they have no weights)
        assert shape_of_state(shapes(config), "x").convs() == shape_of_plan(plan(config)).convs()


def test_the_source_itself_is_inherited_exactly() -> None:
    m = inheritance_map(SOURCE, shape_of_plan(plan(V10)), {})
    assert m.exact and all(m.rows == tuple(range(len(m.rows))) for m in m.layers)
    assert all(layer.cols == tuple(range(len(layer.cols))) for layer in m.layers)


def test_a_narrower_layer_keeps_the_most_important_filters_and_the_next_follows() -> None:
    target = shape_of_plan(plan(V10.with_(base_e=64, incr_e=64)))  # half the expands
    fire2 = SOURCE.fires[0]
    order = {fire2.expand1x1.name: list(range(63, -1, -1)),  # last filters most important
             fire2.expand3x3.name: list(range(64))}
    m = {layer.target: layer for layer in inheritance_map(SOURCE, target, order).layers}
    e1, e3 = m["features.3.expand1x1"], m["features.3.expand3x3"]
    assert e1.rows == tuple(range(32, 64)) and e3.rows == tuple(range(32))
    # fire3's squeeze reads fire2's concat: expand1x1's kept channels, then expand3x3's
    # (which sit after the source's 64 expand1x1 channels)
    assert m["features.4.squeeze"].cols == (*range(32, 64), *range(64, 96))


def test_a_wider_layer_adds_new_filters_that_nothing_downstream_reads_yet() -> None:
    target = shape_of_plan(plan(V10.with_(sr=0.25)))  # twice the squeeze filters
    m = {layer.target: layer for layer in inheritance_map(SOURCE, target, {}).layers}
    sq = m["features.3.squeeze"]
    assert sq.rows == (*range(16), *[NEW] * 16)
    assert m["features.3.expand1x1"].cols == (*range(16), *[NEW] * 16)


def test_another_macro_keeps_the_fire_modules_and_starts_conv1_fresh() -> None:
    target = shape_of_plan(plan(preset("squeezenet1_1")))
    m = inheritance_map(SOURCE, target, {})
    first = m.layers[0]
    assert first.target == "features.0" and first.source is None and not m.exact
    fire2 = m.layers[1]  # its squeeze reads conv1's 64 fresh channels
    assert fire2.source == "features.3.squeeze" and fire2.cols == tuple(range(64))


def test_other_classes_start_the_classifier_fresh_and_a_new_shortcut_at_zero() -> None:
    target = shape_of_plan(plan(V10.with_(num_classes=10, bypass="complex")))
    m = {layer.target: layer for layer in inheritance_map(SOURCE, target, {}).layers}
    assert m["classifier.1"].source is None
    assert m["features.3.shortcut"].zero and m["features.3.shortcut"].source is None
    assert 0.5 < inheritance_map(SOURCE, target, {}).share_inherited(target) < 1.0


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda s: s.pop("features.0.weight"), "it has no features.0.weight"),
    (lambda s: s.update({"features.0.weight": (96, 3, 5, 5)}), "conv1 takes 3 channels with"),
    (lambda s: s.update({"features.0.weight": (96, 3, 7)}), "not a conv's"),
    (lambda s: s.update({"features.4.squeeze.weight": (16, 99, 1, 1)}),
     "features.4.squeeze.weight takes 99 input channels, but the layer before gives 128"),
    (lambda s: s.update({"features.3.expand3x3.weight": (64, 16, 1, 1)}),
     "expected 3x3"),
    (lambda s: s.update({"features.99.squeeze.weight": (1, 1, 1, 1)}), "Fire modules sit at"),
    (lambda s: s.update({"classifier.1.weight": (1000, 7, 1, 1)}),
     "classifier.1.weight takes 7 input channels"),
    (lambda s: s.clear(), "it has no features.0.weight"),
])
def test_what_is_not_a_squeezenet_is_named(edit: object, needle: str) -> None:
    state = shapes(V10)
    edit(state)  # type: ignore[operator]
    with pytest.raises(WeightsError, match=r"x.pth is not a SqueezeNet state_dict: .*"):
        shape_of_state(state, "x.pth")
    with pytest.raises(WeightsError) as info:
        shape_of_state(state, "x.pth")
    assert needle in str(info.value)
