"""Deep Compression: Huffman streams, pruning, weight sharing, sparse gaps, the container, and
the paper's sizes for SqueezeNet v1.0 (a third of the weights kept)."""

from __future__ import annotations

import numpy as np
import pytest

from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.compress.codec import MAX_GAP, compress_layer, prune, share, sparse
from autosq.compress.container import ContainerError, from_bytes, to_bytes
from autosq.compress.huffman import CodingError, decode, encode, fixed_bits
from autosq.compress.network import compress_network
from autosq.compress.schedule import schedule

MIB = 2**20


@pytest.fixture(scope="module")
def v10() -> tuple[object, dict[str, np.ndarray]]:
    config = preset("squeezenet1_0")
    return config, {k: v.numpy() for k, v in build(config, seed=0).state_dict().items()}


@pytest.mark.parametrize(("alphabet", "n", "p"), [(256, 5000, 0.05), (16, 20000, 0.4),
                                                  (64, 1, 0.5), (4, 0, 0.5), (2, 300, 0.9)])
def test_streams_round_trip_and_never_exceed_fixed_codes(alphabet: int, n: int,
                                                         p: float) -> None:
    rng = np.random.default_rng(n)
    symbols = np.minimum(rng.geometric(p, n) - 1, alphabet - 1)
    coded = encode(symbols, alphabet)
    assert np.array_equal(decode(coded.data, n, alphabet), symbols)
    assert len(coded) <= 1 + (n * fixed_bits(alphabet) + 7) // 8


def test_corrupt_streams_are_refused() -> None:
    symbols = np.random.default_rng(0).geometric(0.3, 1000) % 16
    data = encode(symbols, 16).data
    with pytest.raises(CodingError):
        decode(data[: len(data) // 2], 1000, 16)
    with pytest.raises(CodingError):
        decode(b"\x07" + data[1:], 1000, 16)


def test_pruning_keeps_the_largest_magnitudes() -> None:
    w = np.array([0.1, -3.0, 0.5, 2.0, -0.2, 0.0], np.float32)
    assert prune(w, 0.5).tolist() == [0.0, -3.0, 0.5, 2.0, 0.0, 0.0]
    assert np.array_equal(prune(w, 1.0), w)


def test_sharing_is_exact_with_few_values_and_linear_kmeans_otherwise() -> None:
    few = np.array([0.5, -1.0, 0.5, 2.0], np.float32)
    centroids, codes = share(few, 4)
    assert np.array_equal(centroids[codes - 1], few)
    many = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    centroids, codes = share(many, 4)
    assert len(centroids) == 15 and codes.min() >= 1 and codes.max() <= 15
    nearest = np.abs(many[:, None] - centroids[None, :]).min(axis=1)
    assert np.allclose(np.abs(centroids[codes - 1] - many), nearest, atol=1e-6)  # nearest one
    assert np.abs(centroids[codes - 1] - many).mean() < 0.1


def test_long_gaps_are_bridged_with_fillers() -> None:
    codes = np.zeros(100, np.int64)
    codes[[3, 60, 99]] = [1, 2, 3]
    gaps, entries = sparse(codes)
    assert gaps.max() <= MAX_GAP
    assert np.array_equal(np.cumsum(gaps + 1)[entries > 0] - 1, [3, 60, 99])
    layer = compress_layer("x", np.arange(1, 201, dtype=np.float32).reshape(2, 100), np.zeros(2),
                           0.02, 8)
    assert np.count_nonzero(layer.weights()) == 4


def test_the_schedule_keeps_the_target_overall() -> None:
    sizes = {"features.0": (1000, "conv1"), "a": (20000, "1x1"), "b": (180000, "3x3"),
             "classifier.1": (50000, "classifier")}
    d = schedule(sizes, 1 / 3)
    kept = sum(n * d[k] for k, (n, _) in sizes.items())
    assert kept == pytest.approx(sum(n for n, _ in sizes.values()) / 3, rel=1e-6)
    assert d["a"] > d["b"] and d["features.0"] > d["b"] and all(0 < v <= 1 for v in d.values())


@pytest.mark.parametrize(("bits", "limit_mb"), [(8, 0.70), (6, 0.52)])
def test_squeezenet_v10_at_a_third_of_its_weights(v10: tuple[object, dict[str, np.ndarray]],
                                                  bits: int, limit_mb: float) -> None:
    """The paper: 0.66 MB at 8 bits, 0.47 MB at 6 bits (the file's bytes, MB as the paper's
    4.8MB for 4.99 million bytes: MiB)."""
    config, state = v10
    compressed = compress_network(config, state, 1 / 3, bits)  # type: ignore[arg-type]
    data = to_bytes(compressed)
    assert len(data) / MIB <= limit_mb
    assert compressed.info["density"] == pytest.approx(1 / 3, abs=1e-3)
    decoded = from_bytes(data).state_dict()
    for name, value in compressed.state_dict().items():
        assert np.array_equal(decoded[name], value), name  # decoding is exact
    assert np.array_equal(decoded["features.3.squeeze.bias"], state["features.3.squeeze.bias"])


def test_compressing_a_compressed_model_again_is_lossless_and_small(
        v10: tuple[object, dict[str, np.ndarray]]) -> None:
    config, state = v10
    first = from_bytes(to_bytes(compress_network(config, state, 1 / 3, 6))).state_dict()  # type: ignore[arg-type]
    again = compress_network(config, first, 1.0, 8)  # type: ignore[arg-type]
    data = to_bytes(again)
    second = from_bytes(data).state_dict()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    plain = sum((len(x.codes) * (8 + 4) + 7) // 8 + 4 * (len(x.codebook) + len(x.bias))
                for x in again.layers)  # 8-bit codes, 4-bit gaps, no Huffman, no header
    assert len(data) <= plain


def test_damaged_containers_are_refused_in_one_line(
        v10: tuple[object, dict[str, np.ndarray]]) -> None:
    config, state = v10
    data = to_bytes(compress_network(config, state, 1 / 3, 4))  # type: ignore[arg-type]
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for bad, why in ((data[:-100], "checksum"), (bytes(flipped), "checksum"),
                     (b"PK\x03\x04" + data[4:], "magic"), (b"", "magic"),
                     (data[:8] + b"\x09\x00" + data[10:], "version")):
        with pytest.raises(ContainerError, match=why) as info:
            from_bytes(bad, "m.dcz")
        assert "\n" not in str(info.value) and str(info.value).startswith("m.dcz is not")
