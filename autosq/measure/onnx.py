"""ONNX export: the fast in-memory path the search times with.

The legacy TorchScript exporter (``dynamo=False``) takes about 0.15 s for a SqueezeNet where
the dynamo exporter takes 1.4-2 s, and gives the same graph latency and outputs (max abs
difference below 1e-7, measured while planning autosq), so the timing loop uses it. It warns
that it is deprecated; that warning is silenced here and nowhere else.
"""

from __future__ import annotations

import io
import warnings

import torch

from autosq.measure.graph import INPUT_NAME, OPSET, OUTPUT_NAME  # one set of names for both


def export_bytes(model: torch.nn.Module, input_size: int, batch: int = 1) -> bytes:
    """The model as a self-contained ONNX file, in memory (fixed batch and input size)."""
    model = model.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(batch, 3, input_size, input_size),),
            buffer,  # type: ignore[arg-type]  # a file object works; the stub says path
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
        )
    return buffer.getvalue()
