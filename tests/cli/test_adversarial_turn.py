"""Bad input found by an adversarial pass over --pretrained, --teacher, --data and
--train-device: each hostile file or value is one line with the right exit code, and nothing is
left behind. The tests build their own hostile files."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

Cli = Callable[..., tuple[int, str, str]]


def one_line(code: int, err: str, want_code: int, *needles: str) -> None:
    assert code == want_code, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not err.startswith("\n"), repr(err)
    assert "internal error" not in err, err
    for needle in needles:
        assert needle in err, err


def search(cli: Cli, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    """A tiny trained search that must fail on ``extra`` before any work (no study made)."""
    from autosq.accuracy.datasets import load_dataset

    # The search loads its data before its weights and teacher (its decoding progress would
    # come first on stderr): load them here, kept in this process, whichever test runs first.
    load_dataset("builtin:shapes:20", 32)
    code, out, err = cli("search", "--space", "tiny", "--input-size", "32", "--trials", "1",
                         "--no-retime", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--data",
                         "builtin:shapes:20", "--epochs", "1", *extra)
    assert not (tmp_path / "s.db").exists()
    return code, out, err


# -- torchvision downloads ------------------------------------------------------------------
ANSWERS = {
    "bad status line": b"GARBAGE\r\n\r\n",
    "truncated chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n",
}


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[int]:
    """A loopback server that answers every request with the raw bytes of ``request.param``."""
    answer = ANSWERS[request.param]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


@pytest.mark.parametrize("raw_server", list(ANSWERS), indirect=True)
def test_a_broken_download_is_one_line_and_leaves_no_partial_file(
        cli: Cli, tmp_path: Path, raw_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from autosq.arch.hub import URL_ENV

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{raw_server}/")
    code, _, err = search(cli, tmp_path, "--pretrained", "torchvision:squeezenet1_1")
    one_line(code, err, 1, "cannot download torchvision's weights (a broken answer")
    assert not list((tmp_path / "torch").rglob("*.pth*"))


def test_a_download_over_the_size_limit_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import autosq.arch.hub as hub
    import autosq.arch.weights as weights
    from autosq.errors import WeightsUnavailable

    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / hub.TORCHVISION["squeezenet1_1"]).write_bytes(b"x" * 100)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(hub.URL_ENV, (tmp_path / "mirror").as_uri())
    monkeypatch.setattr(hub, "MAX_FILE_MB", 0)  # any byte is too many
    with pytest.raises(WeightsUnavailable, match="sent more than 0 MB: refused"):
        weights.read_weights("torchvision:squeezenet1_1")
    assert not list((tmp_path / "torch").rglob("*.pth*"))


def test_a_mirror_that_is_not_a_url_is_one_line(cli: Cli, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from autosq.arch.hub import URL_ENV

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(URL_ENV, "not-a-url")
    code, _, err = search(cli, tmp_path, "--pretrained", "torchvision:squeezenet1_1")
    one_line(code, err, 1, f"{URL_ENV}='not-a-url' is not a URL")


# -- weights files ---------------------------------------------------------------------------
def test_a_weights_link_loop_or_overlong_name_says_so(cli: Cli, tmp_path: Path) -> None:
    loop = tmp_path / "loop.pth"
    loop.symlink_to(loop)
    code, _, err = search(cli, tmp_path, "--pretrained", str(loop))
    one_line(code, err, 2, str(loop), "link loop")
    long = tmp_path / ("w" * 300 + ".pth")
    code, _, err = search(cli, tmp_path, "--pretrained", str(long))
    one_line(code, err, 2, "file or folder name of 304 bytes")


def test_random_bytes_are_not_called_code(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "noise.pth"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)))
    code, _, err = search(cli, tmp_path, "--pretrained", str(path))
    one_line(code, err, 2, "is not a torch file", "another format, or a bare pickle")


def test_a_torch_zip_that_unpacks_too_large_is_refused_before_loading(
        cli: Cli, tmp_path: Path) -> None:
    import struct

    import torch

    path = tmp_path / "bomb.pth"
    torch.save({"w": torch.zeros(4)}, path)
    blob = bytearray(path.read_bytes())
    # The central directory says each record unpacks to 3.75 GiB: what torch would allocate.
    start = 0
    while (start := blob.find(b"PK\x01\x02", start)) >= 0:
        struct.pack_into("<I", blob, start + 24, 0xF0000000)
        start += 4
    path.write_bytes(bytes(blob))
    code, _, err = search(cli, tmp_path, "--pretrained", str(path))
    one_line(code, err, 2, str(path), "unpacks to", "refused")


# -- ONNX sources and teachers ---------------------------------------------------------------
def _plain_onnx(path: Path, classes: int = 10, meta: dict[str, str] | None = None,
                nan: bool = False, external: bool = False) -> Path:
    """A small image model: 1x1 conv, global pool, flatten (NaN scores, or its weight in an
    external file, on request)."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((classes, 3, 1, 1), np.float32), "W")
    if external:
        weight.ClearField("raw_data")
        weight.data_location = TensorProto.EXTERNAL
        entry = weight.external_data.add()
        entry.key, entry.value = "location", "weights.bin"
    zero = numpy_helper.from_array(np.zeros(1, np.float32), "z")
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Div" if nan else "Add", ["f", "z"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])], [weight, zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (meta or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("flag", ["--pretrained", "--teacher"])
@pytest.mark.parametrize(("make", "needle"), [
    (lambda p: (p.write_bytes(b""), p)[1], "is not an ONNX model (it holds no graph"),
    (lambda p: _plain_onnx(p, meta={"input_normalisation": '{"mean": [0, 0, 0], "std": '
                                                           '[0, 0, 0]}'}),
     "input_normalisation is not a normalisation"),
    (lambda p: _plain_onnx(p, external=True), "keeps weights in external data files"),
])
def test_bad_onnx_sources_and_teachers_are_one_line(cli: Cli, tmp_path: Path, flag: str,
                                                    make: Callable[[Path], Path],
                                                    needle: str) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0" * 120)  # what an external weight points at
    path = make(tmp_path / "m.onnx")
    code, _, err = search(cli, tmp_path, flag, str(path))
    one_line(code, err, 2, str(path), needle)


def test_a_teacher_with_nan_scores_is_refused_up_front(cli: Cli, tmp_path: Path) -> None:
    path = _plain_onnx(tmp_path / "nan.onnx", nan=True)
    code, _, err = search(cli, tmp_path, "--teacher", str(path))
    one_line(code, err, 2, str(path), "gives NaN or infinite scores")


def test_an_autosq_export_with_a_damaged_weight_is_one_line(cli: Cli, tmp_path: Path) -> None:
    import onnx

    from autosq.arch.model import build
    from autosq.arch.presets import preset
    from autosq.measure.onnx import export_bytes
    from autosq.outputs.export import _with_metadata

    config = preset("squeezenet1_1", num_classes=10, input_size=32)
    model = onnx.load_from_string(_with_metadata(export_bytes(build(config, seed=0), 32),
                                                 {"config": config.to_dict()}))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weight = next(t for t in model.graph.initializer if t.name == conv.input[1])
    weight.dims[0] = 10**6  # the declared shape no longer matches the data
    path = tmp_path / "damaged.onnx"
    path.write_bytes(model.SerializeToString())
    code, _, err = search(cli, tmp_path, "--pretrained", str(path))
    one_line(code, err, 2, str(path), "is damaged")


# -- images and the training device ----------------------------------------------------------
def test_an_image_over_the_pixel_limit_is_skipped_without_pillow_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from PIL import Image

    from autosq.accuracy.datasets.sources import decode_image

    path = tmp_path / "big.png"
    Image.new("RGB", (50, 50)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 2500 pixels: over, not 2x over
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would be raised
        assert decode_image(path, 16) is None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert decode_image(path, 16) is not None


def test_a_long_strip_is_resized_by_its_crop_alone(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from autosq.accuracy.datasets.sources import MAX_STRIP, decode_image

    path = tmp_path / "strip.png"
    Image.fromarray(np.full((1, 20_000, 3), 200, np.uint8)).save(path)  # a few hundred bytes
    sizes: list[tuple[int, int]] = []
    resize = Image.Image.resize

    def spy(self: Image.Image, size: tuple[int, int], *args: object,
            **kwargs: object) -> Image.Image:
        sizes.append(size)
        return resize(self, size, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "resize", spy)
    image = decode_image(path, 64)
    assert image is not None and image.shape == (3, 64, 64) and int(image.min()) == 200
    # Before: resized to 1,280,000 x 64 pixels (a 138-byte file, 250 MB decoded).
    assert sizes and all(w * h <= MAX_STRIP * 64 * 64 for w, h in sizes), sizes


def test_an_empty_train_device_is_refused(cli: Cli, tmp_path: Path) -> None:
    code, _, err = search(cli, tmp_path, "--train-device", "")
    one_line(code, err, 2, "--train-device must be one of auto, cpu, cuda; got ''")


def test_a_download_past_its_deadline_is_stopped_and_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server trickling its bytes (each read within the socket's timeout) cannot hold a
    download forever: the whole transfer has a deadline (here 0 s, so the first read passes
    it; no clock is waited on)."""
    import autosq.arch.hub as hub
    import autosq.arch.weights as weights
    from autosq.errors import WeightsUnavailable

    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / hub.TORCHVISION["squeezenet1_1"]).write_bytes(b"x" * 100)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(hub.URL_ENV, (tmp_path / "mirror").as_uri())
    monkeypatch.setattr(hub, "DOWNLOAD_SECONDS", -1)
    with pytest.raises(WeightsUnavailable, match="too slow, stopped"):
        weights.read_weights("torchvision:squeezenet1_1")
    assert not list((tmp_path / "torch").rglob("*.pth*"))
