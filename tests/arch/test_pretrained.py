"""Pretrained sources: read and checked (weights_only, shapes, hashes), torchvision's names
resolved offline and online, and inherited into candidates (exactly, when equal)."""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import torch

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.hub import TORCHVISION, URL_ENV
from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.arch.pretrained import inherited_model, load_pretrained
from autosq.arch.weights import IMAGENET, read_weights
from autosq.errors import WeightsError, WeightsUnavailable


@functools.cache
def source_state(name: str = "squeezenet1_0", seed: int = 3) -> dict[str, torch.Tensor]:
    """A torchvision-layout state_dict with non-trivial weights and biases (shared: do not
    edit it in place)."""
    model = build(preset(name), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.01)
    return model.state_dict()


@pytest.fixture(scope="module")
def source_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "squeezenet1_0-imagenet.pth"
    torch.save(source_state(), path)
    return path


def test_the_candidate_equal_to_its_source_inherits_it_exactly(source_file: Path) -> None:
    pre = load_pretrained(str(source_file))
    assert pre.normalisation == IMAGENET  # torchvision's layout, torchvision's convention
    model, inh = inherited_model(preset("squeezenet1_0"), pre, seed=0)
    reference = build(preset("squeezenet1_0"))
    reference.load_state_dict(torch.load(source_file, weights_only=True))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), reference.eval()(x))
    assert inh.exact and inh.share == 1.0 and inh.fresh == ()
    assert inh.sha256 == hashlib.sha256(source_file.read_bytes()).hexdigest()


def test_a_wider_candidate_starts_as_its_source_computes(source_file: Path) -> None:
    pre = load_pretrained(str(source_file))
    wider = SqueezeNetConfig(base_e=192, incr_e=160, sr=0.25, pct_3x3=0.5, macro="v1.0")
    model, inh = inherited_model(wider, pre, seed=0)
    reference = build(preset("squeezenet1_0"))
    reference.load_state_dict(pre.files["*"].state)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = reference.eval()(x), model.eval()(x)
    assert torch.allclose(got, expected, atol=1e-5 * float(expected.abs().max()))
    assert not inh.exact and inh.share < 1.0


def test_narrower_candidates_of_either_macro_and_other_classes_run(source_file: Path) -> None:
    pre = load_pretrained(str(source_file))
    for config in (SqueezeNetConfig(base_e=32, incr_e=32, pct_3x3=0.25, sr=0.125,
                                    macro="v1.1", bypass="complex", num_classes=10,
                                    input_size=64),
                   SqueezeNetConfig(base_e=48, incr_e=0, pct_3x3=0.0, sr=1.0, macro="v1.0",
                                    bypass="simple", num_classes=7, input_size=64)):
        model, inh = inherited_model(config, pre, seed=0)
        out = model.eval()(torch.randn(1, 3, 64, 64))
        assert out.shape == (1, config.num_classes) and "classifier.1" in inh.fresh


def _save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


@pytest.mark.parametrize(("make", "needle"), [
    (lambda p: _save(p, {"features.0.weight": torch.zeros(3)}), "not a SqueezeNet state_dict"),
    (lambda p: _save(p, {k: v[..., :1] if v.dim() == 4 else v
                         for k, v in source_state().items()}), "not a SqueezeNet state_dict"),
    (lambda p: _save(p, {"x": _Evil()}), "will not load safely"),
    (lambda p: p.write_bytes(pickle.dumps(_Evil())) and p, "will not load safely"),
    (lambda p: (p.write_bytes(_bytes(source_state())[:5000]), p)[1], "cannot be read"),
    (lambda p: _save(p, {k: v * float("nan") for k, v in source_state().items()}),
     "NaN or infinite"),
    (lambda p: _save(p, {k: v.to(torch.int8) for k, v in source_state().items()}),
     "a quantized model cannot be a starting point"),
    (lambda p: _save(p, [1, 2, 3]), "is not a state_dict"),
    (lambda p: _save(p, {"config": _laughs(), "state_dict": source_state()}),
     "not a SqueezeNet configuration"),
    (lambda p: _save(p, {"config": preset("squeezenet1_1").to_dict(),
                         "state_dict": source_state()}), "do not have the shapes its config"),
    (lambda p: p.parent, "is not a regular file"),
    (lambda p: p.with_name("missing.pth"), "does not exist"),
    (lambda p: (p.with_suffix(".onnx").write_bytes(b"\x08\x07garbage"), p.with_suffix(
        ".onnx"))[1], "is not an ONNX model"),
])
def test_bad_sources_are_one_clear_error(tmp_path: Path, make: object, needle: str) -> None:
    path = make(tmp_path / "bad.pth")  # type: ignore[operator]
    with pytest.raises(WeightsError) as info:
        read_weights(str(path))
    assert needle in str(info.value) and "\n" not in str(info.value)


def _bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _laughs() -> list[object]:
    """A 'billion laughs' config: ten references a level, forty levels deep (tiny on disk)."""
    level: list[object] = ["lol"]
    for _ in range(40):
        level = [level] * 10
    return level


def test_an_autosq_export_is_a_source_with_its_config_and_normalisation(tmp_path: Path) -> None:
    config = preset("squeezenet1_1", num_classes=10, input_size=64)
    model = build(config, seed=2)
    norm = {"mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 0.5], "name": "digits"}
    path = _save(tmp_path / "m.pt", {"config": config.to_dict(), "state_dict":
                                      model.state_dict(), "autosq": {"input_normalisation": norm}})
    w = read_weights(str(path))
    assert w.config == config and w.normalisation.mean == (0.1, 0.2, 0.3)
    from autosq.measure.onnx import export_bytes
    from autosq.outputs.export import _with_metadata

    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(_with_metadata(export_bytes(model, 64), {
        "config": config.to_dict(), "input_normalisation": norm}))
    o = read_weights(str(onnx_path))
    assert o.config == config and o.normalisation == w.normalisation
    for key, value in model.state_dict().items():
        assert torch.equal(o.state[key], value), key
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(export_bytes(model, 64))
    with pytest.raises(WeightsError, match="carries no autosq config in its metadata"):
        read_weights(str(bare))


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_torchvision_weights_offline_say_which_file_to_put_where(
        torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9/")  # nothing listens: as offline
    with pytest.raises(WeightsUnavailable) as info:
        read_weights("torchvision:squeezenet1_0")
    text = str(info.value)
    assert f"put {TORCHVISION['squeezenet1_0']} (from https://download.pytorch.org/models/" \
        in text and str(torch_home) in text
    assert not any(torch_home.iterdir())  # no partial download left


def test_torchvision_weights_from_the_hub_cache(torch_home: Path) -> None:
    torch_home.mkdir(parents=True)
    _save(torch_home / TORCHVISION["squeezenet1_1"], source_state("squeezenet1_1"))
    w = read_weights("torchvision:squeezenet1_1")
    assert w.shape.macro == "v1.1" and w.normalisation == IMAGENET
    with pytest.raises(WeightsError, match="unknown torchvision weights 'resnet50'"):
        read_weights("torchvision:resnet50")


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = _bytes(source_state())  # not the published file: its hash differs
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_download_whose_hash_differs_is_refused_and_removed(
        torch_home: Path, server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{server.server_port}/models/")
    with pytest.raises(WeightsUnavailable, match=r"not b66bff10\.\.\. as published: refused"):
        read_weights("torchvision:squeezenet1_0")
    assert not any(torch_home.iterdir())


def test_per_macro_torchvision_sources(torch_home: Path) -> None:
    torch_home.mkdir(parents=True)
    for name in TORCHVISION:
        _save(torch_home / TORCHVISION[name], source_state(name))
    pre = load_pretrained("torchvision")
    assert {m: f.shape.macro for m, f in pre.files.items()} == {"v1.0": "v1.0", "v1.1": "v1.1"}
    _, inh = inherited_model(preset("squeezenet1_1"), pre, seed=0)
    assert inh.exact and inh.source == "torchvision:squeezenet1_1"
