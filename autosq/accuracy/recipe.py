"""A training's recipe (budget and hyper-parameters) and its result: plain records, no torch.

The budget: ``epochs`` when given, exactly; by default :data:`DEFAULT_EPOCHS` epochs but at
least :data:`DEFAULT_MIN_STEPS` optimizer steps (a budget in epochs alone starves small data
sets); a fine-tune from inherited weights :data:`FINETUNE_MIN_STEPS` steps at
:data:`FINETUNE_LR`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from autosq.errors import UsageError

DEFAULT_EPOCHS = 2.0
# The floor of the default budget, in optimizer steps: see bench/learning_curves.py for the
# curves it was chosen from (a budget in epochs alone starves small data sets).
DEFAULT_MIN_STEPS = 500
# Fine-tuning from inherited weights (--pretrained): half the default budget, at the default
# learning rate (bench/pretrained_curves.py: a lower rate, or BatchNorms started as the identity
# of the inherited network, learnt less in 100 steps on the digits and the shapes).
FINETUNE_MIN_STEPS = 250
FINETUNE_EPOCHS = 1.0
FINETUNE_LR = 5e-3


def finetune_recipe(epochs: float | None = None, batch_size: int = 64) -> Recipe:
    """The recipe of a candidate fine-tuned from inherited weights: one epoch, but at least
    :data:`FINETUNE_MIN_STEPS` optimizer steps, at :data:`FINETUNE_LR` (``epochs`` when
    given). An export trains four times as long (:meth:`Recipe.longer`)."""
    return Recipe(epochs=epochs, batch_size=batch_size, min_steps=FINETUNE_MIN_STEPS,
                  default_epochs=FINETUNE_EPOCHS, lr=FINETUNE_LR)


@dataclass(frozen=True)
class Recipe:
    """The training budget and hyper-parameters (the defaults are the documented recipe).

    The budget: ``epochs`` when given, exactly; by default :data:`DEFAULT_EPOCHS` epochs but at
    least ``min_steps`` optimizer steps, so a small data set still gets a useful training.
    A batch never exceeds the training set."""

    epochs: float | None = None
    batch_size: int = 64
    min_steps: int = DEFAULT_MIN_STEPS
    default_epochs: float = DEFAULT_EPOCHS
    lr: float = 5e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    warmup: float = 0.1
    clip_norm: float = 5.0
    augment: bool = True

    def __post_init__(self) -> None:
        if self.epochs is not None and not (
                isinstance(self.epochs, (int, float)) and math.isfinite(self.epochs)
                and self.epochs > 0):
            raise UsageError(f"epochs must be a finite number > 0; got {self.epochs}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"batch_size must be an integer >= 1; got {self.batch_size}")
        if not isinstance(self.min_steps, int) or self.min_steps < 1:
            raise UsageError(f"min_steps must be an integer >= 1; got {self.min_steps}")

    def batch_for(self, n_train: int) -> int:
        """The batch size used on ``n_train`` training images."""
        return max(1, min(self.batch_size, n_train))

    def steps_for(self, n_train: int) -> int:
        """Optimizer steps on ``n_train`` training images."""
        per_epoch = max(1, math.ceil(n_train / self.batch_for(n_train)))
        if self.epochs is not None:
            return max(1, round(self.epochs * per_epoch))
        return max(self.min_steps, round(self.default_epochs * per_epoch))

    def longer(self, factor: float) -> Recipe:
        """The same recipe with ``factor`` times the budget (refining trains 4x longer)."""
        if self.epochs is not None:
            return replace(self, epochs=self.epochs * factor)
        return replace(self, min_steps=max(1, round(self.min_steps * factor)),
                       default_epochs=self.default_epochs * factor)

    def describe(self) -> str:
        """``2 epochs, at least 500 steps``, ``100 steps`` or ``5 epochs``."""
        if self.epochs is not None:
            return f"{self.epochs:g} epochs"
        if not self.default_epochs:
            return f"{self.min_steps} steps"
        return f"{self.default_epochs:g} epochs, at least {self.min_steps} steps"


@dataclass
class TrainResult:
    """What a training run gave: validation top-1 (0..1) and how it was obtained."""

    val_top1: float
    train_loss: float
    epochs: float
    steps: int
    images: int
    seconds: float
    images_per_s: float
    diverged: bool
    threads: int = 0
    seed: int = 0
    # Where the weights started (a pretrained source and what was inherited; None: seeded
    # random weights), the teacher that guided the training, and the accuracy before training
    # (when it was measured).
    init: dict[str, Any] | None = None
    teacher: dict[str, Any] | None = None
    start_top1: float | None = None
    # Where it ran (``cpu (float32)``, or the GPU and its precision), how its training images
    # were augmented and its validation images prepared, and the loader's worker processes.
    device: str = "cpu (float32)"
    augmentation: str = ""
    workers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def warmup_cosine(lr: float, step: int, steps: int, warm: int) -> float:
    """The learning rate at ``step`` of ``steps``: linear warm-up over ``warm`` steps, then a
    cosine decay to zero."""
    if step < warm:
        return lr * (step + 1) / warm
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
