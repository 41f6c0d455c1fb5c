"""Export: a checked, self-contained ONNX file that plain onnxruntime runs the same as torch,
its metadata and card, the PyTorch format, int8, and every bad input without partial files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import optuna
import pytest
import torch
from util import FAST

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.errors import StudyError, UsageError
from autosq.outputs.export import export_candidate
from autosq.searching.run import run_search

V11 = """
name = "v11"
[fixed]
macro = "v1.1"
base_e = 128
incr_e = 128
freq = 2
pct_3x3 = 0.5
{precision}
[params.sr]
type = "float"
low = 0.125
high = {high}
step = 0.125
"""


def _space(tmp_path: Path, precision: str = "", high: float = 0.125) -> str:
    f = tmp_path / f"v11{abs(hash(precision + str(high)))}.toml"
    f.write_text(V11.format(precision=precision, high=high))
    return str(f)


@pytest.fixture
def study(tmp_path: Path) -> tuple[str, str]:
    """A finished study whose only architecture is squeezenet1_1 (10 classes, 64px)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    r = run_search(device="host", max_mb=6, max_ms=0, space=_space(tmp_path), trials=2,
                   input_size=64, num_classes=10, storage=url, protocol=FAST, retime=False,
                   study="s")
    assert r.to_json()
    return "s", url


def test_onnx_export_runs_in_plain_onnxruntime_like_torch(study: tuple[str, str],
                                                          tmp_path: Path) -> None:
    name, url = study
    out = tmp_path / "model.onnx"
    report = export_candidate(study=name, storage=url, out=out, recommended=True)
    assert out.is_file() and report.card_path == tmp_path / "model.onnx.json"
    card = json.loads(report.card_path.read_text())
    trial = card["trial"]
    model = build(SqueezeNetConfig.from_dict(card["config"]), seed=trial).eval()
    x = np.random.default_rng(1).standard_normal((8, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy().argmax(1)
    code = ("import sys, numpy as np, onnxruntime as ort\n"
            "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
            "x = np.load(sys.argv[2])\n"
            "print(','.join(str(int(s.run(None, {'input': x[i:i+1]})[0].argmax())) "
            "for i in range(len(x))))")
    proc = subprocess.run([sys.executable, "-c", code, str(out), str(tmp_path / "x.npy")],
                          capture_output=True, text=True, check=True)
    assert [int(v) for v in proc.stdout.strip().split(",")] == expected.tolist()
    proto = onnx.load(str(out))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["config"]) == card["config"]
    assert meta["study"] == "s" and json.loads(meta["trial"]) == trial
    assert meta["latency_kind"] == "measured" and meta["device"] == "host"
    assert card["checks"]["onnx_checker"] == "full check passed"
    assert card["checks"]["max_abs_diff_vs_torch"] < 1e-4


def test_pt_export_loads_into_the_torchvision_layout(study: tuple[str, str],
                                                     tmp_path: Path) -> None:
    name, url = study
    out = tmp_path / "model.pt"
    export_candidate(study=name, storage=url, out=out, trial=0, fmt="pt")
    saved = torch.load(out, weights_only=True)
    config = SqueezeNetConfig.from_dict(saved["config"])
    model = build(config)
    model.load_state_dict(saved["state_dict"])
    reference = build(preset("squeezenet1_1", num_classes=10, input_size=64)).state_dict()
    assert {k: v.shape for k, v in saved["state_dict"].items()} == {
        k: v.shape for k, v in reference.items()}  # torchvision's names and shapes


@pytest.mark.slow
def test_int8_is_about_a_quarter_and_reports_before_after(study: tuple[str, str],
                                                          tmp_path: Path) -> None:
    name, url = study
    fp32 = export_candidate(study=name, storage=url, out=tmp_path / "a.onnx", trial=0)
    int8 = export_candidate(study=name, storage=url, out=tmp_path / "b.onnx", trial=0,
                            quantize="int8")
    ratio = (tmp_path / "b.onnx").stat().st_size / (tmp_path / "a.onnx").stat().st_size
    assert 0.2 < ratio < 0.35, ratio
    q = int8.card["quantization"]
    assert q["calibration"].startswith("builtin:shapes")
    assert set(q["latency_ms"]) >= {"fp32", "int8", "kind"} and set(q["accuracy"]) >= {"int8"}
    assert fp32.card["precision"] == "fp32" and int8.card["precision"] == "int8"
    # The card's weights are the exported file's (what the size budget counted).
    import onnx
    from onnx import numpy_helper

    for report, path in ((fp32, "a.onnx"), (int8, "b.onnx")):
        model = onnx.load(str(tmp_path / path))
        held = sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
        assert report.card["weights_bytes"] == held, path
        counted = report.card["weights_bytes_counted"]
        assert held <= counted <= 1.01 * held, (path, counted, held)
        assert report.card["size_bytes"] == (tmp_path / path).stat().st_size


def test_export_with_data_trains_and_reports_val_top1(study: tuple[str, str],
                                                      tmp_path: Path) -> None:
    name, url = study
    report = export_candidate(study=name, storage=url, out=tmp_path / "t.onnx", trial=0,
                              data="builtin:shapes:20", epochs=0.5)
    acc = report.card["accuracy"]
    assert acc["kind"] == "val_top1" and 0 <= acc["value"] <= 1 and acc["epochs"] == 0.5
    assert "input_normalisation" in report.card


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"trial": 42}, StudyError, "trial 42 does not exist"),
        ({}, UsageError, "give either trial or recommended=True"),
        ({"trial": 0, "recommended": True}, UsageError, "give either"),
        ({"trial": 0, "out": "/no/such/dir/m.onnx"}, UsageError, "folder /no/such/dir does "
                                                                   "not exist"),
        ({"trial": 0, "out": "m.txt"}, UsageError, "out must end with .onnx"),
        ({"trial": 0, "fmt": "tflite"}, UsageError, "fmt must be one of onnx, pt"),
        ({"trial": 0, "quantize": "int4"}, UsageError, "quantize must be one of int8"),
        ({"trial": 0, "data": "builtin:shapes:20", "out": "m.onnx"}, StudyError, None),
    ],
)
def test_bad_exports_leave_nothing(study: tuple[str, str], tmp_path: Path,
                                   kwargs: dict[str, Any], error: type[Exception],
                                   needle: str | None) -> None:
    name, url = study
    if kwargs.get("data"):
        # a trial the study never finished: mark a new one as failed
        st = optuna.load_study(study_name=name, storage=url)
        t = st.ask()
        st.tell(t, state=optuna.trial.TrialState.FAIL)
        kwargs = {**kwargs, "trial": t.number}
        needle = f"trial {t.number} is FAIL"
    out = kwargs.pop("out", "m.onnx")
    target = Path(out) if out.startswith("/") else tmp_path / out
    before = set(tmp_path.iterdir())
    with pytest.raises(error) as info:
        export_candidate(study=name, storage=url, out=target, **kwargs)
    assert needle in str(info.value)
    assert set(tmp_path.iterdir()) == before  # no partial or temporary file


def test_infeasible_trial_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_search(device="host", max_mb=0.5, max_ms=0, space=_space(tmp_path), trials=1,
               input_size=64, num_classes=10, storage=url, protocol=FAST, study="big")
    with pytest.raises(StudyError, match="does not fit the study's budget"):
        export_candidate(study="big", storage=url, out=tmp_path / "m.onnx", trial=0)
    assert not (tmp_path / "m.onnx").exists()


def test_int8_in_the_space_finds_what_fp32_cannot(tmp_path: Path) -> None:
    common: dict[str, Any] = {"device": "host", "max_mb": 2, "max_ms": 0, "trials": 4,
                              "input_size": 32, "num_classes": 10, "protocol": FAST,
                              "retime": False, "sampler": "random", "seed": 1}
    fp32 = run_search(space=_space(tmp_path, high=0.25), storage=f"sqlite:///{tmp_path}/a.db",
                      **common)
    mixed = _space(tmp_path, high=0.25,
                   precision='[params.precision]\ntype = "categorical"\n'
                             'choices = ["fp32", "int8"]\n[params.bypass]\ntype = "categorical"'
                             '\nchoices = ["none"]')
    both = run_search(space=mixed, storage=f"sqlite:///{tmp_path}/b.db", **{**common,
                                                                          "trials": 8})
    assert fp32.to_json() == [] and "nothing fits" in str(fp32.nearest_miss)
    assert both.to_json() and all(r["config"]["precision"] == "int8" for r in both.to_json())
    assert all(r["size_mb"] <= 2 for r in both.to_json())
    # An int8 trial ships as int8 without being told: what the search sized and timed.
    report = export_candidate(study=both.study_name, storage=f"sqlite:///{tmp_path}/b.db",
                              out=tmp_path / "q.onnx", trial=both.to_json()[0]["trial"])
    assert report.card["precision"] == "int8" and "quantization" in report.card
    assert isinstance(report.card["quantization"]["slower_than_fp32"], bool)


def test_export_cli(cli: Any, study: tuple[str, str], tmp_path: Path) -> None:
    name, url = study
    code, _, err = cli("export", "--study", name, "--storage", url, "--trial", "0",
                       "--out", str(tmp_path / "e.onnx"), "--epochs", "2")
    assert code == 2 and "--epochs sets the training before export: it needs --data (study " \
        f"'{name}' was searched without data)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.onnx").exists()
    code, out, err = cli("export", "--study", name, "--storage", url, "--recommended",
                         "--out", str(tmp_path / "m.onnx"))
    assert code == 0, err
    assert "full check passed" in out and (tmp_path / "m.onnx.json").is_file()
    code, _, err = cli("export", "--study", name, "--storage", url, "--trial", "7",
                       "--out", str(tmp_path / "x.onnx"))
    assert code == 2 and "trial 7 does not exist" in err and len(err.strip().splitlines()) == 1


def test_export_compress_reports_every_stage(cli: Any, study: tuple[str, str],
                                             tmp_path: Path) -> None:
    """The paper's pipeline on builtin:shapes: trained, pruned, retrained, clustered, centroids
    retrained; the container decodes to exactly the exported model's weights."""
    import onnx
    from onnx import numpy_helper

    from autosq.outputs.compression import read_container

    name, url = study
    out = tmp_path / "m.onnx"
    code, text, err = cli("export", "--study", name, "--storage", url, "--trial", "0",
                          "--out", str(out), "--data", "builtin:shapes:30", "--epochs", "1",
                          "--compress", "--bits", "6", "--compress-steps", "10")
    assert code == 0, err
    assert "Deep Compression (6 bits" in text and "vs AlexNet 240 MB" in text
    card = json.loads((tmp_path / "m.onnx.json").read_text())
    dc = card["deep_compression"]
    stages = [row["stage"] for row in dc["stages"]]
    assert stages[0] == "trained" and stages[-1].startswith("clustered + centroids retrained")
    assert len(stages) == 5 and all(0 <= row["val_top1"] <= 1 for row in dc["stages"])
    sizes = [row["size_bytes"] for row in dc["stages"]]
    assert sizes[-1] == (tmp_path / "m.dcz").stat().st_size < sizes[0] / 8
    assert card["accuracy"]["value"] == dc["stages"][-1]["val_top1"]
    decoded = read_container(tmp_path / "m.dcz").state_dict()
    model = onnx.load(str(out))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weights = [tensors[n.input[1]] for n in model.graph.node if n.op_type == "Conv"]
    convs = [k for k in decoded if k.endswith(".weight")]
    assert len(weights) == len(convs)
    for w, k in zip(weights, convs, strict=True):
        np.testing.assert_array_equal(w, decoded[k])
    for args, needle in ((["--compress"], "needs --data"),
                         (["--compress", "--data", "builtin:shapes:30", "--quantize", "int8"],
                          "does not combine with --quantize"),
                         (["--density", "2"], "--density must be in (0, 1]"),
                         (["--compress-steps", "0"], "--compress-steps must be in"),
                         (["--bits", "7"], "--bits must be one of 8, 6, 5, 4")):
        code, _, err = cli("export", "--study", name, "--storage", url, "--trial", "0",
                           "--out", str(tmp_path / "n.onnx"), *args)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "n.onnx").exists()


@pytest.fixture
def trained_study(tmp_path: Path) -> tuple[str, str]:
    """A study searched with data (builtin:shapes:20 at 32 px, 1 epoch a candidate)."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    run_search(device="host", max_mb=6, max_ms=0, space=_space(tmp_path), trials=1,
               input_size=32, storage=url, protocol=FAST, retime=False, study="d",
               data="builtin:shapes:20", epochs=1.0)
    return "d", url


def test_an_export_trains_on_the_study_data_and_scores_the_file_itself(
        cli: Any, trained_study: tuple[str, str], tmp_path: Path) -> None:
    name, url = trained_study
    # Fewer steps than the search gave each candidate: said plainly.
    with pytest.warns(UserWarning, match=r"0.5 epochs are \d+ steps on \d+ training images, "
                                         "fewer than the"):
        code, out, err = cli("export", "--study", name, "--storage", url, "--trial", "0",
                             "--out", str(tmp_path / "m.onnx"), "--epochs", "0.5",
                             "--threads", "1")
    assert code == 0, err
    assert "trained on the study's data builtin:shapes:20" in out
    acc = json.loads((tmp_path / "m.onnx.json").read_text())["accuracy"]
    assert acc["data"] == "builtin:shapes:20" and acc["threads"] == 1 and acc["epochs"] == 0.5
    # What ships is what was scored: ONNX Runtime on the file gives the trained accuracy.
    assert acc["onnx_val_top1"] == pytest.approx(acc["value"], abs=1.5 / acc["n_val"])
    assert acc["trial_accuracy_kind"] == "val_top1"


def test_an_untrained_export_is_asked_for(cli: Any, trained_study: tuple[str, str],
                                          tmp_path: Path) -> None:
    name, url = trained_study
    code, _, err = cli("export", "--study", name, "--storage", url, "--trial", "0",
                       "--out", str(tmp_path / "u.onnx"), "--untrained")
    assert code == 0, err
    card = json.loads((tmp_path / "u.onnx.json").read_text())
    assert card["accuracy"]["value"] is None and "untrained" in card["accuracy"]["note"]
    code, _, err = cli("export", "--study", name, "--storage", url, "--trial", "0",
                       "--out", str(tmp_path / "v.onnx"), "--untrained", "--epochs", "1")
    assert code == 2 and "--untrained exports the seeded initial weights" in err


def test_the_study_data_gone_is_one_line(trained_study: tuple[str, str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from autosq.errors import DataError
    from autosq.searching.records import STUDY_ATTR

    name, url = trained_study
    st = optuna.load_study(study_name=name, storage=url)
    stored = dict(st.user_attrs[STUDY_ATTR])
    stored["accuracy"] = {**stored["accuracy"], "data": str(tmp_path / "gone")}
    st.set_user_attr(STUDY_ATTR, stored)
    with pytest.raises(DataError, match=r"the study was searched on .*gone, which cannot be "
                                        r"loaded now"):
        export_candidate(study=name, storage=url, out=tmp_path / "g.onnx", trial=0)
    assert not (tmp_path / "g.onnx").exists()


def _photos(norm: dict[str, list[float]]) -> np.ndarray:
    """scikit-learn's two sample photos as a model with ``norm`` takes them: the shorter side
    resized to 256, the centre 224 cropped, RGB in [0, 1], minus mean, divided by std."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        im = Image.fromarray(img)
        scale = 256 / min(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
        left, top = (im.width - 224) // 2, (im.height - 224) // 2
        a = np.asarray(im.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
        out.append((a - norm["mean"]) / norm["std"])
    return np.stack(out).transpose(0, 3, 1, 2).astype(np.float32)


def test_a_pretrained_export_without_data_is_its_source(cli: Any, tmp_path: Path) -> None:
    """squeezenet1_0 with 1000 classes at 224 px, exported with --pretrained FILE.pth and no
    data: the ONNX file gives the source's outputs on real photos, prepared as its card says
    (ImageNet's normalisation), with the same top-5."""
    space = tmp_path / "v10.toml"
    space.write_text('name = "v10"\n[fixed]\nmacro = "v1.0"\nbase_e = 128\nincr_e = 128\n'
                     'freq = 2\npct_3x3 = 0.5\nsr = 0.125\n[params.bypass]\n'
                     'type = "categorical"\nchoices = ["none"]\n')
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_search(device="host", max_mb=6, max_ms=0, space=str(space), trials=1, input_size=224,
               storage=url, protocol=FAST, retime=False, study="v10")
    source = build(preset("squeezenet1_0"), seed=11)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.01)
    torch.save(source.state_dict(), tmp_path / "imagenet.pth")
    out = tmp_path / "m.onnx"
    code, text, err = cli("export", "--study", "v10", "--storage", url, "--trial", "0",
                          "--pretrained", str(tmp_path / "imagenet.pth"), "--out", str(out))
    assert code == 0, err
    assert "inherited exactly from" in text and "0.485, 0.456, 0.406" in text
    card = json.loads((tmp_path / "m.onnx.json").read_text())
    assert card["input_normalisation"]["mean"] == [0.485, 0.456, 0.406]
    assert card["lineage"]["pretrained"]["exact"]
    import onnxruntime as ort

    x = _photos(card["input_normalisation"])  # scikit-learn's two real photos
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(2)])
    with torch.no_grad():
        expected = source.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    assert (np.argsort(-got, 1)[:, :5] == np.argsort(-expected, 1)[:, :5]).all()
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["input_normalisation"])["std"] == [0.229, 0.224, 0.225]
