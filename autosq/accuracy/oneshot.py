"""One-shot accuracy (kind ``supernet``): train one weight-sharing supernet per macro of a space,
then score each candidate from its slice in well under a second.

Training follows the sandwich rule with in-place distillation (Yu et al., slimmable and
universally slimmable networks): every step trains the largest subnet on the labels, and the
smallest and one random subnet of the space on the largest one's predictions. A supernet is
trained once per (data, space, macro, input size, seed, recipe) and cached on disk, written
atomically; a cache file that cannot be read, or holds weights that are not finite numbers,
is trained again, with a one-line warning saying so.

Scoring a candidate: inherit its slice, recalibrate BatchNorm statistics on training batches
(the shared statistics of a supernet fit no single subnet), fold them into the candidate's plain
network -- the one that is exported and timed -- and measure validation top-1 on it.

Bypass is not shared by default (``SupernetRecipe.bypass``): subnets are trained and scored
without shortcuts, so a candidate with bypass is scored as its plain twin. Measured on the
digits study's 24 architectures: with shared shortcuts, subnets whose every Fire has an identity
shortcut scored at chance (0.10) where they train stand-alone to 0.51-0.92, and Kendall tau
was 0.50-0.59; scoring plain twins from a plain-trained supernet, 0.64-0.66. Shortcuts change
a subnet's function too much for one set of weights to serve both (see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from autosq._io import cache_dir, write_file
from autosq.accuracy import AccuracySetting
from autosq.accuracy.datasets.stream import train_batches
from autosq.accuracy.supernet import (
    MAX_SUPERNET_PARAMS,
    SubnetSpec,
    SuperNet,
    complex_possible,
    space_widths,
    supernet_params,
)
from autosq.accuracy.threads import resolve_threads
from autosq.accuracy.train import (
    OnStep,
    evaluate,
    seeded,
    warmup_cosine,
)
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.space import make_config
from autosq.errors import ConfigError, UsageError, shown

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.arch.space import SearchSpace

_CACHE_VERSION = 2  # 2: the classifier has a BatchNorm and the ReLU head (as deployed)


@dataclass(frozen=True)
class SupernetRecipe:
    """How a supernet is trained and a candidate scored from it."""

    steps: int = 800
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    warmup: float = 0.05
    clip_norm: float = 5.0
    random_subnets: int = 1
    calib_batches: int = 8
    calib_batch_size: int = 128
    bypass: bool = False  # share shortcuts between subnets (measured to rank worse)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "calib_batches", "calib_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be an integer >= 1; got {value!r}")


def sample_values(space: SearchSpace, rng: random.Random) -> dict[str, Any]:
    """A random point of the space (every dimension drawn independently)."""
    values = dict(space.fixed)
    for d in space.dims:
        if d.kind == "categorical" or d.step:
            values[d.name] = rng.choice(d.grid(1_000_000))
        else:
            assert d.low is not None and d.high is not None
            if d.log:
                x = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
            else:
                x = rng.uniform(d.low, d.high)
            values[d.name] = round(x) if d.kind == "int" else x
    return values


def _sample_spec(space: SearchSpace, macro: str, rng: random.Random, input_size: int,
                 num_classes: int, bypass: bool) -> SubnetSpec:
    for _ in range(1000):
        values = sample_values(space, rng)
        if not bypass:
            values["bypass"] = "none"
        if values.get("macro", "v1.0") != macro:
            continue
        try:
            return SubnetSpec.of(make_config(values, input_size, num_classes))
        except ConfigError:
            continue
    raise UsageError(f"space {space.name!r}: no valid {macro} candidate in 1000 draws")


def plain(spec: SubnetSpec) -> SubnetSpec:
    """``spec`` without shortcuts."""
    return replace(spec, fires=tuple(replace(f, shortcut="none") for f in spec.fires))


def data_digest(data: Dataset) -> str:
    """What a dataset's images are, as a hash (part of a supernet's cache key): the key of its
    pixels (a folder's files' fingerprint, or the generated set), its splits and normalisation."""
    h = hashlib.sha1(data.key.encode())
    for t in (data.train.rows, data.val.rows):
        h.update(t.tobytes())
    h.update(repr((data.mean, data.std)).encode())
    return h.hexdigest()


def check_space(space: SearchSpace, input_size: int, num_classes: int) -> None:
    """Refuse, before anything is allocated, a space whose supernets would be too large."""
    macros = {str(v) for d in space.dims if d.name == "macro" for v in d.choices} or \
        {str(space.fixed.get("macro", "v1.0"))}
    for macro in sorted(macros):
        largest, _ = space_widths(space, macro, input_size, num_classes)
        n = supernet_params(largest, num_classes, complex_possible(space))
        if n > MAX_SUPERNET_PARAMS:
            raise UsageError(
                f"space {space.name!r} is too wide to share one supernet: its largest {macro} "
                f"network has {n:,} parameters (limit {MAX_SUPERNET_PARAMS:,}); use a "
                "narrower space, or accuracy 'train'")


def train_supernet(space: SearchSpace, data: Dataset, macro: str, recipe: SupernetRecipe,
                   seed: int, on_step: OnStep | None = None) -> SuperNet:
    """Train the supernet of ``space``'s ``macro`` candidates on ``data`` (seeded)."""
    check_space(space, data.input_size, data.num_classes)
    largest, smallest = space_widths(space, macro, data.input_size, data.num_classes)
    if not recipe.bypass:
        largest = plain(largest)
    net = SuperNet(macro, largest, data.num_classes, recipe.bypass and complex_possible(space))
    rng = random.Random(seed)
    decay = [p for p in net.parameters() if p.dim() == 4]
    rest = [p for p in net.parameters() if p.dim() != 4]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=recipe.lr)
    net.train()
    t0 = time.perf_counter()
    for step, (xb, yb) in enumerate(train_batches(data, recipe.batch_size, recipe.steps, seed)):
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(recipe.lr, step, recipe.steps,
                                        max(1, round(recipe.warmup * recipe.steps)))
        opt.zero_grad(set_to_none=True)
        logits = net(xb, largest)
        loss = F.cross_entropy(logits, yb, label_smoothing=recipe.label_smoothing)
        torch.autograd.backward(loss)
        teacher = F.softmax(logits.detach(), 1)
        students = [smallest] + [_sample_spec(space, macro, rng, data.input_size,
                                              data.num_classes, recipe.bypass)
                                 for _ in range(recipe.random_subnets)]
        for spec in students:
            kd = F.kl_div(F.log_softmax(net(xb, spec), 1), teacher, reduction="batchmean")
            torch.autograd.backward(kd)
        torch.nn.utils.clip_grad_norm_(net.parameters(), recipe.clip_norm)
        opt.step()
        if on_step is not None and (step % 10 == 0 or step == recipe.steps - 1):
            seen = (step + 1) * len(yb) * (1 + len(students))
            on_step(step + 1, recipe.steps, float(loss.detach()),
                    seen / (time.perf_counter() - t0))
    return net.eval()


class SupernetAccuracy:
    """Accuracy objective from a trained supernet (kind ``supernet``)."""

    kind = "supernet"
    expensive = False

    def __init__(self, data: Dataset, space: SearchSpace, recipe: SupernetRecipe | None = None,
                 seed: int = 0, on_step: OnStep | None = None,
                 threads: int | None = None) -> None:
        self.data = data
        self.space = space
        self.recipe = recipe or SupernetRecipe()
        self.seed = seed
        self.on_step = on_step
        self.threads = resolve_threads(threads)
        self._nets: dict[str, tuple[SuperNet, str]] = {}
        check_space(space, data.input_size, data.num_classes)

    def _key(self, macro: str) -> str:
        key = [_CACHE_VERSION, data_digest(self.data), self.space.to_dict(), macro,
               self.data.input_size, self.data.num_classes, self.seed, asdict(self.recipe),
               torch.__version__, self.threads]
        return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    def supernet(self, macro: str) -> tuple[SuperNet, str]:
        """The trained supernet of ``macro`` and its cache key (trained now when not cached)."""
        if macro in self._nets:
            return self._nets[macro]
        key = self._key(macro)
        try:
            path = cache_dir("supernets") / f"{key}.pt"
        except UsageError:
            path = None  # no usable cache folder: train, without the disk cache
        net = None
        if path is not None and path.is_file():
            net = self._load(path, macro)
        if net is None:
            with seeded(self.seed, self.threads):
                net = train_supernet(self.space, self.data, macro, self.recipe, self.seed,
                                     self.on_step)
            if path is not None:
                state = net.state_dict()
                with contextlib.suppress(OSError):  # the cache only saves time
                    write_file(path, lambda tmp: torch.save(state, tmp), mode=None)
        self._nets[macro] = (net, key)
        return net, key

    def _load(self, path: Path, macro: str) -> SuperNet | None:
        largest, _ = space_widths(self.space, macro, self.data.input_size,
                                  self.data.num_classes)
        bypass = self.recipe.bypass
        net = SuperNet(macro, largest if bypass else plain(largest), self.data.num_classes,
                       bypass and complex_possible(self.space))
        import warnings

        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # truncated, corrupt, or another layout: train it again
            why = f"it cannot be read ({shown(str(exc).splitlines()[0] if str(exc) else exc)})"
        else:
            bad = [name for name, t in net.state_dict().items()
                   if t.is_floating_point() and not torch.isfinite(t).all()]
            if not bad:
                return net.eval()
            why = f"it holds values that are not finite numbers ({bad[0]})"
        warnings.warn(f"the cached supernet {path} is damaged: {why}; training it again",
                      stacklevel=2)
        return None

    def score(self, config: SqueezeNetConfig, seed: int) -> tuple[float, dict[str, Any]]:
        """Validation top-1 of the candidate's slice, BatchNorm recalibrated, deployed form."""
        net, key = self.supernet(config.macro)
        t0 = time.perf_counter()
        r = self.recipe
        if not r.bypass:
            config = replace(config, bypass="none")
        spec = SubnetSpec.of(config)
        stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name, rows, _ in net.layout(spec):
            stats[name] = (torch.zeros(len(rows)), torch.ones(len(rows)))
        with seeded(self.seed, self.threads), torch.no_grad():
            net.train()  # BatchNorm in training mode: it updates the running statistics
            calibration = train_batches(self.data, r.calib_batch_size, r.calib_batches,
                                        self.seed, augment=False)
            for k, (xb, _) in enumerate(calibration):
                net(xb, spec, stats, momentum=1.0 / (k + 1))
            net.eval()
            model = net.deployed(config, stats)
            top1 = evaluate(model, self.data, workers=0)
        return top1, {"data": self.data.name, "supernet": key[:12],
                      "supernet_steps": r.steps, "calib_batches": r.calib_batches,
                      "seconds": time.perf_counter() - t0, "seed": seed}

    def describe(self) -> AccuracySetting:
        """``supernet``, on which data, trained how long."""
        return AccuracySetting(kind=self.kind, data=self.data.name, epochs=None,
                               batch_size=self.recipe.batch_size,
                               supernet_steps=self.recipe.steps,
                               data_fingerprint=self.data.fingerprint)
