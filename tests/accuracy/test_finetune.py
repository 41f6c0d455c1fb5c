"""Fine-tuning from inherited weights and distilling from a teacher: what a training records,
what it refuses, and the search, refine and export paths that use them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from util import FAST

from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.distill import distill_loss, load_teacher
from autosq.accuracy.train import Recipe, finetune_recipe, fit
from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.arch.pretrained import load_pretrained
from autosq.arch.weights import IMAGENET
from autosq.errors import UsageError, WeightsError

Cli = Callable[..., tuple[int, str, str]]
DATA = "builtin:shapes:20"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A torchvision-layout squeezenet1_1 state_dict (10 classes: our data's) as a source."""
    path = tmp_path_factory.mktemp("src") / "v11.pth"
    torch.save(build(preset("squeezenet1_1", num_classes=10, input_size=32), seed=7)
               .state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An autosq .pt export of squeezenet1_0 for the data's 10 classes at 32 px."""
    config = preset("squeezenet1_0", num_classes=10, input_size=32)
    path = tmp_path_factory.mktemp("teacher") / "t.pt"
    torch.save({"config": config.to_dict(), "state_dict": build(config, seed=5).state_dict(),
                "autosq": {"input_normalisation": {"mean": [0.5] * 3, "std": [0.25] * 3}}},
               path)
    return str(path)


def test_a_fine_tune_records_its_source_and_its_start(source: str) -> None:
    init = load_pretrained(source)
    data = load_dataset(DATA, 32)
    with pytest.raises(UsageError, match=r"normalised with mean .* but .* expects"):
        fit(preset("squeezenet1_1", num_classes=10, input_size=32), data, seed=0, init=init)
    data = data.renormalised(init.normalisation)
    assert data.normalised_as(IMAGENET)
    recipe = Recipe(epochs=1.0, lr=finetune_recipe().lr)
    _, result = fit(preset("squeezenet1_1", num_classes=10, input_size=32), data, recipe,
                    seed=0, threads=1, init=init, evaluate_start=True)
    assert result.init is not None and result.init["exact"] and result.init["source"] == source
    assert result.start_top1 is not None and 0.0 <= result.start_top1 <= 1.0


def test_the_distillation_loss_is_the_documented_blend() -> None:
    s, t = torch.randn(4, 10), torch.randn(4, 10)
    y = torch.tensor([0, 1, 2, 3])
    ce = torch.nn.CrossEntropyLoss()
    p_t = torch.softmax(t / 4, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(s / 4, 1))).sum(1).mean()
    expected = 0.5 * ce(s, y) + 0.5 * 16 * kl
    assert torch.allclose(distill_loss(s, t, y, ce, 4.0, 0.5), expected, atol=1e-6)
    assert torch.allclose(distill_loss(s, s, y, ce, 4.0, 0.5), 0.5 * ce(s, y), atol=1e-6)


def test_a_teacher_is_fed_its_own_normalisation(teacher: str) -> None:
    t = load_teacher(teacher, 10, 32)
    assert t.kind == "autosq" and t.normalisation is not None
    data = load_dataset(DATA, 32)
    t.adapt(data.normalisation)
    raw = torch.rand(2, 3, 32, 32)  # pixels in [0, 1]
    student_x = (raw - torch.tensor(data.mean).view(1, 3, 1, 1)) / torch.tensor(
        data.std).view(1, 3, 1, 1)
    assert t._model is not None
    with torch.no_grad():
        expected = t._model((raw - 0.5) / 0.25)
    assert torch.allclose(t.logits(student_x), expected, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here: torch sees none (CPU "
                    "build or no driver)")
def test_a_torch_teacher_runs_beside_a_gpu_student(teacher: str) -> None:
    t = load_teacher(teacher, 10, 32)
    t.adapt(load_dataset(DATA, 32).normalisation)
    x = torch.randn(4, 3, 32, 32)
    on_cpu = t.logits(x)
    t.place(torch.device("cuda"))
    on_gpu = t.logits(x.cuda())
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    # cuDNN's convolutions may use TF32 on the GPU: agreement to its precision, not bit for bit
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize(("classes", "size", "needle"), [
    (7, 32, "gives 10 classes, the data have 7"),
    (10, 64, "takes 32px images, the data are 64px"),
])
def test_a_teacher_for_other_data_is_refused(teacher: str, classes: int, size: int,
                                             needle: str) -> None:
    with pytest.raises(WeightsError, match=needle):
        load_teacher(teacher, classes, size)


def test_an_onnx_teacher_runs_batched(tmp_path: Path) -> None:
    from autosq.measure.onnx import export_bytes

    model = build(preset("squeezenet1_1", num_classes=10, input_size=32), seed=3).eval()
    path = tmp_path / "t.onnx"
    path.write_bytes(export_bytes(model, 32))
    t = load_teacher(str(path), 10, 32)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(t.logits(x), model(x), atol=1e-4)


def test_search_refine_and_export_with_a_source_and_a_teacher(
        cli: Cli, source: str, teacher: str, tmp_path: Path) -> None:
    from autosq.searching.run import run_search

    url = f"sqlite:///{tmp_path / 's.db'}"
    space = tmp_path / "v11.toml"
    space.write_text('name = "v11"\n[fixed]\nmacro = "v1.1"\nbase_e = 128\nincr_e = 128\n'
                     'freq = 2\npct_3x3 = 0.5\n[params.sr]\ntype = "float"\nlow = 0.125\n'
                     'high = 0.25\nstep = 0.125\n')
    result = run_search(device="host", max_mb=6, max_ms=0, space=str(space), trials=1,
                        input_size=32, storage=url, protocol=FAST, retime=False, data=DATA,
                        epochs=0.5, pretrained=source, teacher=teacher, threads=1)
    assert result.study_name.endswith("-val_top1-pretrained-distilled")
    setting = result.settings.accuracy
    assert setting.pretrained is not None and setting.teacher is not None
    details = result.members[0].record.accuracy_details
    assert details["init"]["source"] == source and details["teacher"]["teacher"] == teacher
    out = tmp_path / "m.onnx"
    code, text, err = cli("export", "--study", result.study_name, "--storage", url, "--trial",
                          "0", "--out", str(out), "--epochs", "0.5", "--threads", "1")
    assert code == 0, err
    card = json.loads(out.with_name("m.onnx.json").read_text())
    assert card["lineage"]["pretrained"]["source"] == source
    assert card["lineage"]["teacher"]["teacher"] == teacher
    assert card["input_normalisation"]["name"] == "imagenet"
    assert "before_training" in card["accuracy"] and "weights: inherited " in text
