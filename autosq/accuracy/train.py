"""Training a candidate on the CPU: a short, fixed, seeded budget; validation top-1 out.

SqueezeNet as the paper and torchvision define it (no batch normalisation) barely trains from
random weights in a few hundred steps: its class outputs die (all negative before the last
ReLU, so every gradient is zero). Measured on builtin:shapes at 32px, 300 steps of AdamW:
chance accuracy (10%) with zero gradients from step 50 on. So candidates are trained in a
training form and evaluated in their deployed form:

- training form: a BatchNorm after every conv, the classifier's too; the ReLU head stays;
- deployed form: each BatchNorm folded exactly into its conv's weights and bias: the plain
  SqueezeNet (torchvision's names and shapes), the network that is exported and timed, and
  validation top-1 is measured on it. Both forms compute the same function in eval mode, and
  :func:`fit` checks it on up to 256 validation images (a TrainingError otherwise). An earlier
  training form ended in a LeakyReLU: it learnt negative class outputs that the deployed ReLU
  zeroed, and scored trained networks at chance (bench/head_bench.py).

The recipe: AdamW (lr 5e-3, weight decay 0.01 on conv weights only), a linear warm-up over
the first 10% of the steps then a cosine decay to zero, label smoothing 0.1, batch 64, light
augmentation (flips, shifts), gradients clipped at norm 5, seeded; the thread count of
:func:`autosq.accuracy.threads.default_threads` unless told (``torch.set_num_threads``).

Reproducibility: every random draw of a training run (initial weights, batch order,
augmentation, dropout) comes from generators seeded from ``seed``, inside
``torch.random.fork_rng``, so the caller's global random state is left as it was, and the
thread count is restored afterwards. The same seed, data and thread count give the same
weights, loss and validation top-1, bit for bit (tested); another thread count may round
differently.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from autosq.accuracy.threads import resolve_threads
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.model import build, deployed_form, training_form, training_form_from
from autosq.errors import TrainingError, UsageError

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.accuracy.distill import Teacher
    from autosq.arch.model import SqueezeNet
    from autosq.arch.pretrained import Pretrained

OnStep = Callable[[int, int, float, float], None]
"""on_step(step, steps, loss, images_per_s), called every few steps while a candidate trains."""


DEFAULT_EPOCHS = 2.0
# The floor of the default budget, in optimizer steps: see bench/learning_curves.py for the
# curves it was chosen from (a budget in epochs alone starves small data sets).
DEFAULT_MIN_STEPS = 500
# Fine-tuning from inherited weights (--pretrained): a shorter budget at a lower learning rate,
# chosen by bench/pretrained_curves.py.
FINETUNE_MIN_STEPS = 100
FINETUNE_LR = 1e-3


def finetune_recipe(epochs: float | None = None, batch_size: int = 64) -> Recipe:
    """The recipe of a candidate fine-tuned from inherited weights: :data:`FINETUNE_MIN_STEPS`
    optimizer steps at :data:`FINETUNE_LR` (``epochs`` when given)."""
    return Recipe(epochs=epochs, batch_size=batch_size, min_steps=FINETUNE_MIN_STEPS,
                  default_epochs=0.0, lr=FINETUNE_LR)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_top1(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                  batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on (x, y), in eval mode."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


def warmup_cosine(lr: float, step: int, steps: int, warm: int) -> float:
    """The learning rate at ``step`` of ``steps``: linear warm-up over ``warm`` steps, then a
    cosine decay to zero."""
    if step < warm:
        return lr * (step + 1) / warm
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


@contextlib.contextmanager
def seeded(seed: int, threads: int) -> Iterator[None]:
    """Seed torch's global generator (which dropout draws from) and set the thread count, both
    restored on exit: the caller's random state and threads are left as they were."""
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def fit(config: SqueezeNetConfig, data: Dataset, recipe: Recipe | None = None, seed: int = 0,
        on_step: OnStep | None = None, threads: int | None = None, *,
        init: Pretrained | None = None, teacher: Teacher | None = None,
        evaluate_start: bool = False) -> tuple[SqueezeNet, TrainResult]:
    """Train ``config`` on ``data`` from a seeded initialisation, or from the weights it
    inherits from ``init`` (:mod:`autosq.arch.pretrained`; the data must be normalised as the
    source expects), guided by ``teacher`` (:mod:`autosq.accuracy.distill`) when given.

    Returns the trained model in its deployed form (plain SqueezeNet, eval mode) and the
    result, whose ``val_top1`` is measured on that deployed model (``evaluate_start``: also
    before training, ``start_top1``). ``on_step(step, steps, loss, images_per_s)`` is called
    every few steps for progress. ``threads`` defaults to
    :func:`~autosq.accuracy.threads.default_threads`; the result is reproducible for a seed,
    data, start, teacher and thread count.
    """
    recipe = recipe or Recipe()
    if config.num_classes != data.num_classes:
        raise UsageError(f"the model has {config.num_classes} classes but {data.name} has "
                         f"{data.num_classes}")
    if config.input_size != data.input_size:
        raise UsageError(f"the model takes {config.input_size}px inputs but {data.name} was "
                         f"loaded at {data.input_size}px")
    if not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be an integer >= 0; got {seed!r}")
    if init is not None and not data.normalised_as(init.normalisation):
        raise UsageError(f"{data.name} was normalised with mean {data.mean} and std "
                         f"{data.std}, but {init.spec} expects {init.normalisation.to_dict()}: "
                         "load the data with the source's normalisation")
    check_training_memory(config, recipe.batch_for(len(data.train_x)))
    threads = resolve_threads(threads)
    inherited = None
    start_top1 = None
    if teacher is not None:
        teacher.adapt(data.normalisation)
    with seeded(seed, threads):
        if init is None:
            plain = build(config, seed=seed)
        else:
            from autosq.arch.pretrained import inherited_model

            plain, inherited = inherited_model(config, init, seed)
        if evaluate_start:
            start_top1 = evaluate_top1(plain, data.val_x, data.val_y)
        model = (training_form(plain) if init is None
                 else training_form_from(plain, data.train_x[:CALIBRATION_IMAGES]))
        t0 = time.perf_counter()
        steps, seen, loss_avg, diverged = _train_loop(model, data, recipe, seed, on_step,
                                                      teacher)
        seconds = time.perf_counter() - t0
        model = _deploy_checked(model, data.val_x[:GUARD_IMAGES], diverged)
        top1 = (1.0 / data.num_classes if diverged
                else evaluate_top1(model, data.val_x, data.val_y))
    per_epoch = max(1, math.ceil(len(data.train_x) / recipe.batch_for(len(data.train_x))))
    return model, TrainResult(val_top1=top1, train_loss=loss_avg, epochs=steps / per_epoch,
                              steps=steps, images=seen, seconds=seconds,
                              images_per_s=seen / max(seconds, 1e-9), diverged=diverged,
                              threads=threads, seed=seed,
                              init=None if inherited is None else inherited.to_dict(),
                              teacher=None if teacher is None else teacher.describe(),
                              start_top1=start_top1)


# Images whose statistics start an inherited network's BatchNorms as the identity.
CALIBRATION_IMAGES = 128
GUARD_IMAGES = 256
# The deployed form must give the trained form's top-1 on (nearly) every probe image; folding is
# exact up to float rounding, so only near-ties may flip.
GUARD_AGREEMENT = 0.98


def _deploy_checked(model: SqueezeNet, probe: torch.Tensor, diverged: bool) -> SqueezeNet:
    """Fold ``model`` into its deployed form, checking on ``probe`` images that it still answers
    as the trained form did: a conversion that changes the answers fails the training with the
    numbers instead of scoring a network nobody trained."""
    model.eval()
    with torch.no_grad():
        before = model(probe)
    model = deployed_form(model)
    if diverged:
        return model
    with torch.no_grad():
        after = model(probe)
    agree = float((before.argmax(1) == after.argmax(1)).float().mean())
    if agree < GUARD_AGREEMENT:
        raise TrainingError(
            f"the deployed network answers differently from the trained one on "
            f"{1 - agree:.0%} of {len(probe)} validation images (max logit difference "
            f"{float((before - after).abs().max()):.3g}): its accuracy would not be the trained "
            "network's; please report it")
    return model


def check_training_memory(config: SqueezeNetConfig, batch: int) -> None:
    """Refuse, with the numbers, a training step this machine cannot hold: every activation of
    a batch is kept for the backward pass (twice with BatchNorm, and once more for its
    gradient), beside the weights, their gradients and the optimizer's state."""
    from autosq.arch.plan import plan
    from autosq.memory import check_allocation

    p = plan(config)
    activations = sum(layer.out_elems for layer in p.layers) * batch * 4 * 3
    check_allocation(activations + 16.0 * p.params,
                     f"training a {config.input_size}px network in batches of {batch}",
                     "ask for a smaller input size or batch size")


def _train_loop(model: SqueezeNet, data: Dataset, recipe: Recipe, seed: int,
                on_step: OnStep | None, teacher: Teacher | None = None
                ) -> tuple[int, int, float, bool]:
    """The optimizer steps of :func:`fit`: (steps, images seen, smoothed loss, diverged)."""
    from autosq.accuracy.augment import augment
    from autosq.accuracy.distill import distill_loss

    decay = [p for p in model.parameters() if p.dim() == 4]  # conv weights only
    rest = [p for p in model.parameters() if p.dim() != 4]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=recipe.lr)
    n = len(data.train_x)
    batch = recipe.batch_for(n)
    steps = recipe.steps_for(n)
    warm = max(1, round(recipe.warmup * steps))

    def lr_at(step: int) -> float:
        return warmup_cosine(recipe.lr, step, steps, warm)

    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    t0 = time.perf_counter()
    seen = 0
    loss_avg = float("nan")
    order = torch.randperm(n, generator=gen)
    pos = 0
    for step in range(steps):
        if pos + batch > n and pos > 0:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + batch]
        pos += batch
        xb, yb = data.train_x[idx], data.train_y[idx]
        if recipe.augment:
            xb = augment(xb, gen)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        out = model(xb)
        if teacher is None:
            loss = loss_fn(out, yb)
        else:
            loss = distill_loss(out, teacher.logits(xb), yb, loss_fn, teacher.temperature,
                                teacher.weight)
        if not torch.isfinite(loss):
            return steps, seen, loss_avg, True  # scored at chance by the caller
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_norm)
        opt.step()
        seen += len(idx)
        value = float(loss.detach())
        loss_avg = value if math.isnan(loss_avg) else 0.9 * loss_avg + 0.1 * value
        if on_step is not None and (step % 10 == 0 or step == steps - 1):
            on_step(step + 1, steps, loss_avg, seen / (time.perf_counter() - t0))
    return steps, seen, loss_avg, False


def train(config: SqueezeNetConfig, data: Dataset, recipe: Recipe | None = None, seed: int = 0,
          on_step: OnStep | None = None, threads: int | None = None, *,
          init: Pretrained | None = None, teacher: Teacher | None = None) -> TrainResult:
    """:func:`fit` without the model: validation top-1 and how it was obtained."""
    return fit(config, data, recipe, seed, on_step, threads, init=init, teacher=teacher)[1]
