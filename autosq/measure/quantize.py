"""int8 quantization with ONNX Runtime: static, per-channel, QDQ, after its pre-processing.

Measured while planning autosq: dynamic quantization makes these CNNs 3.5x slower (ConvInteger);
static QDQ per-channel after ``quant_pre_process`` gives a quarter of the size and 25-40% lower
latency for SqueezeNet v1.1, and without the pre-processing step the static model is about 2x
slower. So this is the only path autosq uses.

Calibration needs inputs: :func:`quantize_bytes` takes real images when it has them (export
with data); for timing a candidate during the search, where only latency matters, a few seeded
random images serve, since activation ranges change the scales, not the graph that is timed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from autosq.errors import MeasurementError

if TYPE_CHECKING:
    import numpy as np


def quantize_bytes(onnx_bytes: bytes, input_size: int,
                   calibration: np.ndarray | None = None, preprocess: bool = True) -> bytes:
    """The int8 (QDQ, per-channel) version of an fp32 ONNX model.

    ``calibration`` is an (N, 3, S, S) float32 array of inputs; None uses 8 seeded random ones.
    ``preprocess=False`` skips ``quant_pre_process``: a graph written from the plan
    (:mod:`autosq.measure.graph`) has nothing for it to fold (no Identity nodes, shapes
    declared), and its int8 latency is the same without it (bench/export_bench.py).
    """
    import logging

    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration is None:
        calibration = np.random.default_rng(0).standard_normal(
            (8, 3, input_size, input_size)).astype(np.float32)
    images = calibration

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime has no stubs
        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= len(images):
                return None
            self.i += 1
            return {"input": images[self.i - 1:self.i]}

    logging.getLogger("root").setLevel(logging.ERROR)  # ORT's quantizer logs on the root logger
    with tempfile.TemporaryDirectory(prefix="autosq-q-") as tmp:
        src, pre, out = (os.path.join(tmp, n) for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        Path(src).write_bytes(onnx_bytes)
        try:
            if preprocess:
                quant_pre_process(src, pre, skip_symbolic_shape=True)
            quantize_static(pre if preprocess else src, out, Reader(),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        except Exception as exc:  # ORT's quantizer raises many types
            raise MeasurementError(f"int8 quantization failed: {exc}") from exc
        return Path(out).read_bytes()
