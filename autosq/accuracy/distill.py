"""Knowledge distillation: a teacher network's softened outputs guide a candidate's training.

The loss (Hinton et al. 2015) blends the cross-entropy on the labels with the KL divergence
between the teacher's and the student's outputs at temperature ``T``, scaled by ``T**2``:
``(1 - weight) * CE + weight * T**2 * KL(teacher_T || student_T)``. The teacher sees the very
batch the student sees, augmentation included (Beyer et al. 2022), computed in the loop.

A teacher is an autosq export (``.pt``, or ``.onnx``), or any ONNX model that takes one
``(N, 3, S, S)`` float image and gives ``(N, classes)`` scores for the data's classes. It gets
its inputs normalised as it expects: an autosq export states its normalisation (metadata or
card); any other ONNX model is fed the student's inputs as they are (say so with a card). An
ONNX teacher is first run in the contained timing process (bounded memory and time), so a
hostile file fails there, not inside the training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.errors import MeasurementError, WeightsError

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch

    from autosq.arch.model import SqueezeNet
    from autosq.arch.weights import Normalisation

TEMPERATURE = 4.0
WEIGHT = 0.5
MAX_TEACHER_MB = 512


@dataclass
class Teacher:
    """A loaded teacher: how to get its logits for a batch of the student's inputs."""

    spec: str
    sha256: str
    kind: str  # "autosq" (a SqueezeNet export run by torch) or "onnx"
    num_classes: int
    input_size: int
    normalisation: Normalisation | None  # None: fed the student's inputs as they are
    temperature: float = TEMPERATURE
    weight: float = WEIGHT
    _model: SqueezeNet | None = field(default=None, repr=False)
    _session: ort.InferenceSession | None = field(default=None, repr=False)
    _shift: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        """The lineage a study or card records."""
        return {"teacher": self.spec, "sha256": self.sha256, "kind": self.kind,
                "temperature": self.temperature, "weight": self.weight,
                "normalisation": None if self.normalisation is None
                else self.normalisation.to_dict()}

    def adapt(self, student: Normalisation | None) -> None:
        """Feed the teacher its own normalisation from inputs normalised as ``student``."""
        import torch

        if self.normalisation is None or student is None or self.normalisation == student:
            self._shift = None
            return
        s_mean, s_std = torch.tensor(student.mean), torch.tensor(student.std)
        t_mean, t_std = torch.tensor(self.normalisation.mean), torch.tensor(self.normalisation.std)
        # x_t = (x_s * std_s + mean_s - mean_t) / std_t = x_s * a + b
        self._shift = ((s_std / t_std).view(1, 3, 1, 1), ((s_mean - t_mean) / t_std).view(
            1, 3, 1, 1))

    def place(self, device: torch.device) -> None:
        """Run an autosq ``.pt`` teacher (a torch model) where the student trains; an ONNX
        teacher runs on the CPU either way (ONNX Runtime's CPU provider): an autosq ONNX export
        as teacher, run image by image on one thread, made a training on an H200 6x slower or
        more (docs/data.md)."""
        if self._model is not None:
            self._model.to(device)
            if self._shift is not None:
                self._shift = (self._shift[0].to(device), self._shift[1].to(device))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's scores for a batch of the student's (augmented) inputs, on the
        teacher's device (:meth:`place`; the CPU for an ONNX teacher)."""
        import torch

        if self._model is not None:
            x = x.to(next(self._model.parameters()).device)
        else:
            x = x.float().cpu()
        if self._shift is not None:
            x = x * self._shift[0].to(x.device) + self._shift[1].to(x.device)
        # float32 wherever it runs: inside a GPU training's autocast a torch teacher would give
        # bfloat16 scores, unlike the CPU's and ONNX Runtime's
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            if self._model is not None:
                out: torch.Tensor = self._model(x.float())
                return out
            assert self._session is not None
            name = self._session.get_inputs()[0].name
            scores = self._session.run(None, {name: x.float().numpy()})[0]
            return torch.from_numpy(scores).float()


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                 ce: torch.nn.Module, temperature: float, weight: float) -> torch.Tensor:
    """``(1 - weight) * ce(student, labels) + weight * T**2 * KL(teacher_T || student_T)``."""
    import torch.nn.functional as F

    t = temperature
    soft = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                    reduction="batchmean", log_target=True)
    out: torch.Tensor = (1 - weight) * ce(student, labels) + weight * t * t * soft
    return out


def load_teacher(spec: str, num_classes: int, input_size: int,
                 temperature: float = TEMPERATURE, weight: float = WEIGHT) -> Teacher:
    """Read and check a teacher for data of ``num_classes`` classes at ``input_size`` px."""
    import hashlib

    if not 0.0 < weight <= 1.0 or not 0.0 < temperature <= 100.0:
        raise WeightsError(f"the distillation weight must be in (0, 1] and the temperature in "
                           f"(0, 100]; got {weight!r} and {temperature!r}")
    path = Path(spec).expanduser()
    if not path.is_file():
        raise WeightsError(f"teacher {spec} is not a file; expected an autosq export (.onnx or "
                           ".pt) or an ONNX model with the data's classes")
    if path.stat().st_size > MAX_TEACHER_MB << 20:
        raise WeightsError(f"teacher {spec} has more than {MAX_TEACHER_MB} MB")
    blob = path.read_bytes()
    sha = hashlib.sha256(blob).hexdigest()
    if path.suffix.lower() == ".onnx":
        teacher = _onnx_teacher(spec, blob, sha, input_size)
    else:
        teacher = _torch_teacher(spec, sha)
    teacher.temperature, teacher.weight = temperature, weight
    if teacher.num_classes != num_classes:
        raise WeightsError(f"teacher {spec} gives {teacher.num_classes} classes, the data have "
                           f"{num_classes}: a teacher must be trained on the same classes")
    if teacher.input_size not in (0, input_size):
        raise WeightsError(f"teacher {spec} takes {teacher.input_size}px images, the data are "
                           f"{input_size}px")
    return teacher


def _torch_teacher(spec: str, sha: str) -> Teacher:
    from autosq.arch.model import build
    from autosq.arch.weights import read_weights

    weights = read_weights(spec)
    if weights.config is None:
        raise WeightsError(f"teacher {spec} is a bare state_dict: give an autosq export (.pt or "
                           ".onnx, which say their architecture and normalisation) or an ONNX "
                           "model")
    model = build(weights.config).eval()
    model.load_state_dict(weights.state)
    return Teacher(spec, sha, "autosq", weights.config.num_classes, weights.config.input_size,
                   weights.normalisation, _model=model)


def _onnx_teacher(spec: str, blob: bytes, sha: str, input_size: int) -> Teacher:
    import onnxruntime as ort

    from autosq.arch.weights import onnx_metadata
    from autosq.measure.local import LocalTimer
    from autosq.measure.protocol import TimingProtocol

    _, _, norm = onnx_metadata(blob, f"teacher {spec}")
    # A hostile model (an endless loop, a huge allocation) fails here, contained.
    probe = TimingProtocol(warmup_runs=1, warmup_seconds=0.0, block_runs=1, block_seconds=0.0,
                           min_blocks=1, target_gap=1.0, max_seconds=5.0)
    try:
        LocalTimer(1, protocol=probe, input_size=input_size).time(blob)
    except MeasurementError as exc:
        raise WeightsError(f"teacher {spec} cannot be run: {exc}") from None
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape if len(inputs) == 1 else None
    if shape is None or len(shape) != 4 or shape[1] != 3 or inputs[0].type != "tensor(float)":
        raise WeightsError(f"teacher {spec} must take one (N, 3, S, S) float image")
    side = shape[2] if isinstance(shape[2], int) else 0
    out = outputs[0].shape
    if len(out) != 2 or not isinstance(out[1], int):
        raise WeightsError(f"teacher {spec} must give (N, classes) scores; its output has shape "
                           f"{out}")
    if isinstance(shape[0], int) and shape[0] != 1:
        raise WeightsError(f"teacher {spec} has a fixed batch of {shape[0]}; expected 1 or "
                           "dynamic")
    teacher = Teacher(spec, sha, "onnx", int(out[1]), side, norm,
                      _session=session if shape[0] != 1 else _per_image(session))
    _probe(teacher, side or input_size)
    return teacher


def _probe(teacher: Teacher, side: int) -> None:
    """Run the teacher on two seeded images: its scores must have the shape it declares and be
    finite (NaN scores would turn every student's loss into NaN, deep inside a search)."""
    import torch

    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    try:
        scores = teacher.logits(x)
    except Exception as exc:  # onnxruntime's errors have no common base: any means the same
        raise WeightsError(f"teacher {teacher.spec} cannot be run on a batch of 2 "
                           f"{side}px images ({type(exc).__name__}); expected a dynamic batch "
                           "or a batch of 1") from None
    if tuple(scores.shape) != (2, teacher.num_classes):
        raise WeightsError(f"teacher {teacher.spec} gives scores of shape {tuple(scores.shape)} "
                           f"for 2 images, not (2, {teacher.num_classes}) as it declares")
    if not bool(torch.isfinite(scores).all()):
        raise WeightsError(f"teacher {teacher.spec} gives NaN or infinite scores; expected a "
                           "trained model's finite scores")


def _per_image(session: ort.InferenceSession) -> ort.InferenceSession:
    """A batch-1 model is run one image at a time (the autosq exports are batch 1)."""
    return _Batched(session)


class _Batched:
    """Runs a batch-1 session image by image, with the session's interface."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session

    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def run(self, names: Any, feed: dict[str, Any]) -> list[Any]:
        import numpy as np

        (name, x), = feed.items()
        return [np.concatenate([self.session.run(names, {name: x[i:i + 1]})[0]
                                for i in range(len(x))])]
