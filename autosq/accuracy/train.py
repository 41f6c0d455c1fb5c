"""Training a candidate: a short, fixed, seeded budget; validation top-1 out.

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

The recipe (:mod:`autosq.accuracy.recipe`): AdamW (lr 5e-3, weight decay 0.01 on conv weights
only), a linear warm-up over the first 10% of the steps then a cosine decay to zero, label
smoothing 0.1, batch 64, the images streamed and augmented as
:mod:`autosq.accuracy.datasets.stream` says, gradients clipped at norm 5, seeded; the thread
count of :func:`autosq.accuracy.threads.default_threads` unless told; on the device of
:mod:`autosq.accuracy.device`.

Reproducibility: every random draw of a training run (initial weights, batch order,
augmentation, dropout) comes from generators seeded from ``seed``, inside
``torch.random.fork_rng``, so the caller's global random state is left as it was, and the
thread count is restored afterwards. The same seed, data, thread count and device give the
same weights, loss and validation top-1, bit for bit on the CPU (tested); another thread count
may round differently.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from autosq.accuracy.device import (
    TrainDevice,
    autocast,
    deterministic,
    out_of_memory_is_one_line,
    scaler,
)
from autosq.accuracy.recipe import (
    DEFAULT_EPOCHS,
    DEFAULT_MIN_STEPS,
    FINETUNE_LR,
    FINETUNE_MIN_STEPS,
    Recipe,
    TrainResult,
    finetune_recipe,
    warmup_cosine,
)
from autosq.accuracy.threads import resolve_threads
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.model import build, deployed_form, training_form
from autosq.errors import TrainingError, UsageError

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.accuracy.distill import Teacher
    from autosq.arch.model import SqueezeNet
    from autosq.arch.pretrained import Pretrained

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_MIN_STEPS", "FINETUNE_LR", "FINETUNE_MIN_STEPS", "OnStep",
           "Recipe", "TrainResult", "evaluate", "evaluate_top1", "finetune_recipe", "fit",
           "seeded", "train", "warmup_cosine"]

OnStep = Callable[[int, int, float, float], None]
"""on_step(step, steps, loss, images_per_s), called every few steps while a candidate trains."""

GUARD_IMAGES = 256
# The deployed form must give the trained form's top-1 on (nearly) every probe image; folding is
# exact up to float rounding, so only near-ties may flip.
GUARD_AGREEMENT = 0.98


def evaluate_top1(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                  batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on the tensors (x, y), in eval mode."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


def evaluate(model: torch.nn.Module, data: Dataset, split: str = "val",
             device: TrainDevice | None = None, workers: int | None = None) -> float:
    """Top-1 accuracy of ``model`` on every image of a split, streamed, in eval mode."""
    model.eval()
    target = device.torch if device is not None else torch.device("cpu")
    correct = total = 0
    with torch.no_grad(), autocast(device or TrainDevice("cpu")):
        for x, y in data.batches(split, 256, workers=workers):
            x = x.to(target, non_blocking=True)
            if device is not None and device.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            correct += int((model(x).argmax(1).cpu() == y).sum())
            total += len(y)
    return correct / max(1, total)


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
        evaluate_start: bool = False, device: TrainDevice | None = None,
        workers: int | None = None) -> tuple[SqueezeNet, TrainResult]:
    """Train ``config`` on ``data`` from a seeded initialisation, or from the weights it
    inherits from ``init`` (:mod:`autosq.arch.pretrained`; the data must be normalised as the
    source expects), guided by ``teacher`` (:mod:`autosq.accuracy.distill`) when given, on
    ``device`` (default: the CPU) with ``workers`` loader processes (default:
    :func:`~autosq.accuracy.datasets.stream.choose_workers`).

    Returns the trained model in its deployed form (plain SqueezeNet, eval mode, on the CPU)
    and the result, whose ``val_top1`` is measured on that deployed model (``evaluate_start``:
    also before training, ``start_top1``). ``on_step(step, steps, loss, images_per_s)`` is
    called every few steps for progress. ``threads`` defaults to
    :func:`~autosq.accuracy.threads.default_threads`; the result is reproducible for a seed,
    data, start, teacher, thread count and device.
    """
    from autosq.accuracy.datasets.stream import choose_workers, eval_batch_size

    recipe = recipe or Recipe()
    device = device or TrainDevice("cpu")
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
    n_train = len(data.train)
    if device.kind == "cpu":
        check_training_memory(config, recipe.batch_for(n_train))
    threads = resolve_threads(threads)
    workers = choose_workers(data, threads, device.kind, workers)
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
            start_top1 = evaluate(plain, data, workers=workers)
        # Inherited or not, the training form is the same: an ordinary BatchNorm after every
        # conv. (BatchNorms started as the identity of the inherited network learnt less:
        # bench/pretrained_curves.py.)
        model = training_form(plain)
        t0 = time.perf_counter()
        with out_of_memory_is_one_line(device, recipe.batch_for(n_train)):
            steps, seen, loss_avg, diverged = _train_loop(model, data, recipe, seed, on_step,
                                                          teacher, device, workers)
        seconds = time.perf_counter() - t0
        probe = data.sample("val", max(64, min(GUARD_IMAGES, 4 * eval_batch_size(
            data.input_size))))[0]
        model = _deploy_checked(model.cpu(), probe, diverged)
        top1 = (1.0 / data.num_classes if diverged
                else evaluate(model, data, workers=workers))
    per_epoch = max(1, math.ceil(n_train / recipe.batch_for(n_train)))
    from autosq.accuracy.datasets import EVAL_TRANSFORM

    augmented = data.augmentation if recipe.augment else "none"
    return model, TrainResult(val_top1=top1, train_loss=loss_avg, epochs=steps / per_epoch,
                              steps=steps, images=seen, seconds=seconds,
                              images_per_s=seen / max(seconds, 1e-9), diverged=diverged,
                              threads=threads, seed=seed,
                              init=None if inherited is None else inherited.to_dict(),
                              teacher=None if teacher is None else teacher.describe(),
                              start_top1=start_top1, device=device.describe(),
                              augmentation=f"train: {augmented}; validation: {EVAL_TRANSFORM}",
                              workers=workers)


def _deploy_checked(model: SqueezeNet, probe: torch.Tensor, diverged: bool) -> SqueezeNet:
    """Fold ``model`` into its deployed form, checking on ``probe`` images that it still answers
    as the trained form did: a conversion that changes the answers fails the training with the
    numbers instead of scoring a network nobody trained."""
    from autosq.accuracy.datasets.stream import eval_batch_size

    step = eval_batch_size(probe.shape[-1])
    model = model.float().eval()
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:  # channels-last from a GPU training
            t.data = t.data.contiguous()
        before = torch.cat([model(probe[i:i + step]) for i in range(0, len(probe), step)])
    model = deployed_form(model)
    if diverged:
        return model
    with torch.no_grad():
        after = torch.cat([model(probe[i:i + step]) for i in range(0, len(probe), step)])
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
                on_step: OnStep | None, teacher: Teacher | None, device: TrainDevice,
                workers: int) -> tuple[int, int, float, bool]:
    """The optimizer steps of :func:`fit`: (steps, images seen, smoothed loss, diverged)."""
    from autosq.accuracy.datasets.stream import train_batches
    from autosq.accuracy.distill import distill_loss

    target = device.torch
    model.to(target)
    if device.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    decay = [p for p in model.parameters() if p.dim() == 4]  # conv weights only
    rest = [p for p in model.parameters() if p.dim() != 4]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=recipe.lr)
    grad_scaler = scaler(device)
    n = len(data.train)
    batch = recipe.batch_for(n)
    steps = recipe.steps_for(n)
    warm = max(1, round(recipe.warmup * steps))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    if teacher is not None:
        teacher.place(target)
    model.train()
    t0 = time.perf_counter()
    seen = 0
    loss_avg = float("nan")
    batches = train_batches(data, batch, steps, seed, workers, pin=device.kind == "cuda",
                            augment=recipe.augment)
    with deterministic(device):  # the same seed gives the same network on a GPU too
        for step, (xb, yb) in enumerate(batches):
            xb, yb = xb.to(target, non_blocking=True), yb.to(target, non_blocking=True)
            if device.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            for group in opt.param_groups:
                group["lr"] = warmup_cosine(recipe.lr, step, steps, warm)
            with autocast(device):
                out = model(xb)
                if teacher is None:
                    loss = loss_fn(out, yb)
                else:
                    guide = teacher.logits(xb).float().to(target)
                    loss = distill_loss(out.float(), guide, yb, loss_fn, teacher.temperature,
                                        teacher.weight)
            if not torch.isfinite(loss):
                return steps, seen, loss_avg, True  # scored at chance by the caller
            opt.zero_grad(set_to_none=True)
            if grad_scaler is not None:
                grad_scaler.scale(loss).backward()
                grad_scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_norm)
                grad_scaler.step(opt)
                grad_scaler.update()
            else:
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_norm)
                opt.step()
            seen += len(yb)
            value = float(loss.detach())
            loss_avg = value if math.isnan(loss_avg) else 0.9 * loss_avg + 0.1 * value
            if on_step is not None and (step % 10 == 0 or step == steps - 1):
                on_step(step + 1, steps, loss_avg, seen / (time.perf_counter() - t0))
        return steps, seen, loss_avg, False


def train(config: SqueezeNetConfig, data: Dataset, recipe: Recipe | None = None, seed: int = 0,
          on_step: OnStep | None = None, threads: int | None = None, *,
          init: Pretrained | None = None, teacher: Teacher | None = None,
          device: TrainDevice | None = None) -> TrainResult:
    """:func:`fit` without the model: validation top-1 and how it was obtained."""
    return fit(config, data, recipe, seed, on_step, threads, init=init, teacher=teacher,
               device=device)[1]
