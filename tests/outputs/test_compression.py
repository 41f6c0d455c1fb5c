"""``autosq compress`` / ``autosq decompress`` on model files: .pt and .onnx exports in, a
container out, an exact and checked model back; bad inputs in one line, nothing written."""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.measure.onnx import export_bytes

Cli = Callable[..., tuple[int, str, str]]
CONFIG = preset("squeezenet1_1", input_size=64, num_classes=10)


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    """An autosq .pt and an .onnx export of the same network (as `autosq export` writes)."""
    model = build(CONFIG, seed=2)
    pt = tmp_path / "m.pt"
    buf = io.BytesIO()
    torch.save({"config": CONFIG.to_dict(), "state_dict": model.state_dict()}, buf)
    pt.write_bytes(buf.getvalue())
    proto = onnx.load_from_string(export_bytes(model, 64))
    onnx.helper.set_model_props(proto, {"config": json.dumps(CONFIG.to_dict())})
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    return {"pt": pt, "onnx": path}


@pytest.mark.parametrize("source", ["pt", "onnx"])
def test_compress_then_decompress_is_exact(cli: Cli, models: dict[str, Path], tmp_path: Path,
                                           source: str) -> None:
    dcz = tmp_path / "m.dcz"
    code, out, err = cli("compress", str(models[source]), "--out", str(dcz), "--bits", "6",
                         "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["size_bytes"] == dcz.stat().st_size and report["ratio"] > 8
    assert report["density"] == pytest.approx(1 / 3, abs=1e-3)
    code, _, err = cli("decompress", str(dcz), "--out", str(tmp_path / "back.pt"))
    assert code == 0, err
    code, _, err = cli("decompress", str(dcz), "--out", str(tmp_path / "back.onnx"))
    assert code == 0, err
    state = torch.load(tmp_path / "back.pt", weights_only=True)["state_dict"]
    # The same tensors in both, and a network that runs like the decoded weights say.
    model = build(CONFIG)
    model.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(tmp_path / "back.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # Compressing the decoded model again without pruning: the same weights.
    code, _, err = cli("compress", str(tmp_path / "back.pt"), "--out", str(tmp_path / "2.dcz"),
                       "--density", "1.0")
    assert code == 0, err
    code, _, err = cli("decompress", str(tmp_path / "2.dcz"), "--out", str(tmp_path / "2.pt"))
    again = torch.load(tmp_path / "2.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(state[k], again[k]) for k in state)


def test_layer_densities(cli: Cli, models: dict[str, Path], tmp_path: Path) -> None:
    code, out, err = cli("compress", str(models["pt"]), "--out", str(tmp_path / "m.dcz"),
                         "--layer-density", "features.3.squeeze=0.1", "--json")
    assert code == 0, err
    assert json.loads(out)["densities"]["features.3.squeeze"] == 0.1


@functools.cache
def _container(pt: bytes) -> bytes:
    """The container of a .pt export (made once: the bad-input cases only need one)."""
    import tempfile

    from autosq.outputs.compression import compress_file

    with tempfile.TemporaryDirectory() as folder:
        src, out = Path(folder, "m.pt"), Path(folder, "m.dcz")
        src.write_bytes(pt)
        compress_file(src, out, bits=4)
        return out.read_bytes()


@pytest.mark.parametrize(("args", "needle"), [
    (["compress", "{pt}", "--out", "{tmp}/x.zip"], "expected a .dcz file name"),
    (["compress", "{pt}", "--out", "{tmp}/nodir/x.dcz"], "nodir does not exist"),
    (["decompress", "{tmp}/good.bin", "--out", "{tmp}/x.onnx"], "must end with .dcz"),
    (["decompress", "{bad}", "--out", "{tmp}/nodir/x.onnx"], "does not exist"),
    (["compress", "{tmp}/none.pt", "--out", "{tmp}/x.dcz"], "does not exist"),
    (["compress", "{junk}", "--out", "{tmp}/x.dcz"], "is not an autosq export"),
    (["compress", "{pt}", "--out", "{tmp}/x.dcz", "--density", "0"], "--density must be in"),
    (["compress", "{pt}", "--out", "{tmp}/x.dcz", "--bits", "7"], "--bits must be one of"),
    (["compress", "{pt}", "--out", "{tmp}/x.dcz", "--layer-density", "nosuch=0.5"],
     "no conv layer 'nosuch'"),
    (["compress", "{pt}", "--out", "{tmp}/x.dcz", "--layer-density", "a=2"],
     "--layer-density must be NAME=D"),
    (["decompress", "{bad}", "--out", "{tmp}/x.onnx"], "is not a readable .dcz container"),
    (["decompress", "{tmp}/none.dcz", "--out", "{tmp}/x.onnx"], "does not exist"),
    (["decompress", "{bad}", "--out", "{tmp}/x.tflite"], "out must end with .onnx or .pt"),
])
def test_bad_input(cli: Cli, models: dict[str, Path], tmp_path: Path, args: list[str],
                   needle: str) -> None:
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04not a torch file")
    dcz = tmp_path / "good.dcz"
    dcz.write_bytes(_container(models["pt"].read_bytes()))
    (tmp_path / "bad.dcz").write_bytes(dcz.read_bytes()[:-10])
    before = sorted(p.name for p in tmp_path.iterdir())
    fill = {"pt": str(models["pt"]), "tmp": str(tmp_path), "junk": str(tmp_path / "junk.pt"),
            "bad": str(tmp_path / "bad.dcz")}
    code, _, err = cli(*(a.format(**fill) for a in args))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
