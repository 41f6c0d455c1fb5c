"""What a plan costs, computed analytically: parameters, size per precision, MACs, peak memory.

Pure Python: no torch, no onnxruntime. A size is what the deployed file holds in weights, in
MiB. fp32 follows the paper: parameters x 4 bytes (SqueezeNet v1.0 = 1,248,424 x 4 B = 4.76 MiB,
the paper's "4.8MB"); fp16 is parameters x 2. int8 is what ONNX Runtime's static per-channel
QDQ quantization writes (:mod:`autosq.measure.quantize`), counted exactly: each conv's int8
weights; per output channel a float32 weight scale, an int8 weight zero point, an int32 bias,
a float32 bias scale and an int32 bias zero point (17 bytes); and per quantized activation a
float32 scale and an int8 zero point (5 bytes). That is 5.1% more than parameters x 1 byte for
SqueezeNet v1.1, more for thin candidates, whose channels carry fewer weights each
(``tests/arch/test_cost.py`` checks the count against exported files, byte for byte).

Peak activation memory (batch 1) replays the plan in execution order: an op's output is
allocated while its inputs are alive; a tensor is freed after its last reader. The peak is the
largest sum of live tensors. Concat outputs and bypass additions are real allocations, in-place
ReLUs are not, and the input image counts until conv1 is done. Activations are fp32 (4 bytes)
whatever the weights' precision, since the ONNX Runtime graphs autosq times compute in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.plan import Layer, Plan, plan
from autosq.errors import ConfigError

MIB = 1024 * 1024
BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "int8": 1}
ACTIVATION_BYTES = 4
INT8_PER_CHANNEL_BYTES = 17  # weight scale f32, weight zero point i8, bias i32, bias scale f32,
#                              bias zero point i32
INT8_PER_TENSOR_BYTES = 5  # an activation's scale f32 and zero point i8


def peak_activation_elems(layers: tuple[Layer, ...] | list[Layer], input_elems: int) -> int:
    """Largest number of activation elements alive at once, replaying ``layers`` in order."""
    last_use: dict[str, int] = {}
    for idx, layer in enumerate(layers):
        for src in layer.inputs:
            last_use[src] = idx
    final = layers[-1].name
    live: dict[str, int] = {"input": input_elems}
    peak = input_elems
    for idx, layer in enumerate(layers):
        live[layer.name] = layer.out_elems
        peak = max(peak, sum(live.values()))
        for name in list(live):
            if name != final and last_use.get(name, -1) <= idx:
                del live[name]
    return peak


@dataclass(frozen=True)
class Cost:
    """Totals of one plan. ``peak_mem_mb`` is fp32 activations at batch 1, in MiB."""

    params: int
    macs: int
    peak_mem_bytes: int
    conv_channels: int = 0  # output channels summed over the convs (one bias each)
    tensors: int = 0  # quantized activation tensors: the input and the layers' outputs

    def size_bytes(self, precision: str = "fp32") -> int:
        """Bytes of weights the deployed file holds at ``precision`` (fp32, fp16 or int8; see
        the module docstring)."""
        if precision not in BYTES_PER_PARAM:
            raise ConfigError(
                f"precision must be one of {', '.join(BYTES_PER_PARAM)}; got {precision!r}"
            )
        if precision != "int8":
            return self.params * BYTES_PER_PARAM[precision]
        weights = self.params - self.conv_channels
        return (weights + INT8_PER_CHANNEL_BYTES * self.conv_channels
                + INT8_PER_TENSOR_BYTES * self.tensors)

    def size_mb(self, precision: str = "fp32") -> float:
        """:meth:`size_bytes` in MiB."""
        return self.size_bytes(precision) / MIB

    @property
    def peak_mem_mb(self) -> float:
        """Peak fp32 activation memory at batch 1, in MiB."""
        return self.peak_mem_bytes / MIB

    def to_dict(self) -> dict[str, Any]:
        """The totals as JSON-ready values (sizes at every precision)."""
        return {
            "params": self.params,
            "macs": self.macs,
            "size_mb": self.size_mb("fp32"),
            "size_mb_fp16": self.size_mb("fp16"),
            "size_mb_int8": self.size_mb("int8"),
            "peak_mem_mb": self.peak_mem_mb,
        }


def cost_of(p: Plan) -> Cost:
    """The totals of plan ``p``."""
    size = p.config.input_size
    elems = peak_activation_elems(p.layers, 3 * size * size)
    return Cost(params=p.params, macs=p.macs, peak_mem_bytes=elems * ACTIVATION_BYTES,
                conv_channels=sum(layer.cout for layer in p.layers if layer.kind == "conv"),
                # A max-pool's output keeps its input's scale: no parameters of its own.
                tensors=1 + sum(layer.kind != "maxpool" for layer in p.layers))


def cost(config: SqueezeNetConfig) -> Cost:
    """The totals of ``config`` (plans it first)."""
    return cost_of(plan(config))
