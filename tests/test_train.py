"""Training on real images: the recipe learns, the deployed model is the plain SqueezeNet,
and a search with --data gives val_top1 and refines its front."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from util import FAST

from autosq.arch import preset
from autosq.data import load_dataset
from autosq.errors import StudyError, UsageError
from autosq.model import build
from autosq.study import run_search
from autosq.train import Recipe, deployed_form, fit, training_form

Cli = Callable[..., tuple[int, str, str]]


def test_folding_batchnorm_is_exact() -> None:
    config = preset("squeezenet1_0_complex_bypass", input_size=48, num_classes=5)
    model = training_form(build(config, seed=1))
    model.train()
    with torch.no_grad():  # give the BatchNorms non-trivial statistics and affine parameters
        for _ in range(3):
            model(torch.randn(8, 3, 48, 48))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.randn(4, 3, 48, 48)
    model.classifier[2] = torch.nn.ReLU()  # compare with the deployed head
    with torch.no_grad():
        expected = model(x)
        folded = deployed_form(model)
        got = folded(x)
    assert torch.allclose(expected, got, atol=1e-5)
    plain = build(config)
    plain.load_state_dict(folded.state_dict())  # the same names and shapes as the plain model


@pytest.mark.slow
def test_training_squeezenet1_1_beats_chance_clearly() -> None:
    data = load_dataset("builtin:shapes", 32)
    model, result = fit(preset("squeezenet1_1", input_size=32, num_classes=10), data,
                        Recipe(epochs=5), seed=0)
    assert result.val_top1 > 0.35, result  # chance is 0.10
    assert result.images_per_s > 0 and not result.diverged
    assert not model.training and isinstance(model.classifier[2], torch.nn.ReLU)


def test_recipe_and_data_mismatch_errors() -> None:
    data = load_dataset("builtin:shapes:20", 32)
    with pytest.raises(UsageError, match="--epochs must be > 0"):
        Recipe(epochs=0)
    with pytest.raises(UsageError, match="has 10"):
        fit(preset("squeezenet1_1", input_size=32, num_classes=7), data)
    with pytest.raises(UsageError, match="loaded at 32px"):
        fit(preset("squeezenet1_1", input_size=64, num_classes=10), data)


def _search(url: str, **kw: Any) -> Any:
    args: dict[str, Any] = {"device": "host", "max_mb": 0.5, "max_ms": 50.0, "space": "tiny",
                            "trials": 3, "input_size": 32, "storage": url,
                            "protocol": FAST, "seed": 0, "data": "builtin:shapes:100",
                            "epochs": 1.0, "sampler": "random"}
    args.update(kw)
    return run_search(**args)


@pytest.mark.slow
def test_search_with_data_gives_val_top1_and_refine_recomputes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = _search(url)
    assert result.rows and all(r["accuracy_kind"] == "val_top1" for r in result.rows)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in result.rows)
    assert result.settings["num_classes"] == 10  # follows the data
    before = {r["trial"]: r["accuracy"] for r in result.rows}
    refined = _search(url, refine=2, refine_epochs=5.0)
    study = optuna.load_study(study_name=refined.study_name, storage=url)
    stored = study.user_attrs["autosq_refined"]
    assert len(stored) == min(2, len(before)) and set(map(int, stored)) <= set(before)
    # longer training changed the accuracy, and the front was recomputed with it
    assert all(abs(v["accuracy"] - before[int(k)]) > 1e-9 for k, v in stored.items())
    for r in refined.rows:
        if str(r["trial"]) in stored:
            assert r["refined"] and r["train_epochs"] == 5.0
            assert r["accuracy"] == stored[str(r["trial"])]["accuracy"]


def test_refine_needs_data_and_a_trained_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(UsageError, match="--refine trains front members: it needs --data"):
        _search(url, data=None, refine=1)
    with pytest.raises(UsageError, match="does not match the data"):
        _search(url, num_classes=3)
    proxy = _search(url, data=None, trials=2)
    from autosq.refine import refine_front

    study = optuna.load_study(study_name=proxy.study_name, storage=url)
    with pytest.raises(StudyError, match="nothing to refine"):
        refine_front(study, url, 1, 1.0)


def test_proxy_check_cli(cli: Cli) -> None:
    code, out, err = cli("proxy-check", "--data", "builtin:shapes:20", "--archs", "4",
                         "--epochs", "0.5", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert len(d["archs"]) == 4 and {r["proxy"] for r in d["table"]} == {
        "synflow", "naswot", "params", "macs"}
    for row in d["table"]:
        assert -1.0 <= row["kendall"] <= 1.0 or row["kendall"] != row["kendall"]
    code, _, err = cli("proxy-check", "--archs", "2")
    assert code == 2 and "--archs must be >= 3" in err


def test_refine_cli_bad_input(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = cli("refine", "--study", "nope", "--storage", url)
    assert code == 2 and "no study 'nope'" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("refine", "--study", "nope", "--top", "0", "--storage", url)
    assert code == 2 and "--top must be >= 1" in err
