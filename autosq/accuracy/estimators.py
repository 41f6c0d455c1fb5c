"""The accuracy estimators a search uses: a zero-cost proxy (kind ``proxy``) or a short
training run on the user's data (kind ``val_top1``), and :func:`make_accuracy` to pick one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autosq.accuracy import AccuracyEstimator, AccuracySetting
from autosq.accuracy.proxies import DEFAULT_PROXY, PROXIES
from autosq.arch.config import SqueezeNetConfig
from autosq.errors import UsageError

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.accuracy.device import TrainDevice
    from autosq.accuracy.distill import Teacher
    from autosq.accuracy.train import OnStep, Recipe
    from autosq.arch.pretrained import Pretrained
    from autosq.arch.space import SearchSpace




class ProxyAccuracy:
    """Scores candidates with a zero-cost proxy (see :mod:`autosq.accuracy.proxies`)."""

    kind = "proxy"
    expensive = False

    def __init__(self, name: str = DEFAULT_PROXY) -> None:
        if name not in PROXIES:
            raise UsageError(f"unknown proxy {name!r}; known proxies: {', '.join(PROXIES)}")
        self.name = name

    def score(self, config: SqueezeNetConfig, seed: int) -> tuple[float, dict[str, Any]]:
        """The proxy's score of the seeded, untrained network."""
        from autosq.accuracy.proxies import proxy_score

        return proxy_score(self.name, config, seed=seed), {"proxy": self.name}

    def describe(self) -> AccuracySetting:
        """``proxy`` and which one."""
        return AccuracySetting(kind=self.kind, proxy=self.name)


class TrainedAccuracy:
    """Accuracy objective from a short training run (kind ``val_top1``)."""

    kind = "val_top1"
    expensive = True

    def __init__(self, data: Dataset, recipe: Recipe, on_step: OnStep | None = None,
                 threads: int | None = None, init: Pretrained | None = None,
                 teacher: Teacher | None = None, device: TrainDevice | None = None) -> None:
        from autosq.accuracy.threads import resolve_threads

        self.data = data
        self.recipe = recipe
        self.on_step = on_step
        self.threads = resolve_threads(threads)
        self.init = init
        self.teacher = teacher
        self.device = device

    def score(self, config: SqueezeNetConfig, seed: int) -> tuple[float, dict[str, Any]]:
        """Validation top-1 after training with the recipe, and how it was obtained."""
        from autosq.accuracy.train import train

        result = train(config, self.data, self.recipe, seed=seed, on_step=self.on_step,
                       threads=self.threads, init=self.init, teacher=self.teacher,
                       device=self.device)
        return result.val_top1, {"data": self.data.name, "n_train": len(self.data.train),
                                 "n_val": len(self.data.val), **result.to_dict()}

    def describe(self) -> AccuracySetting:
        """``val_top1``, on which data, for how long."""
        r = self.recipe
        default = r.epochs is None
        from autosq.accuracy.train import Recipe

        return AccuracySetting(kind=self.kind, data=self.data.name, epochs=r.epochs,
                               batch_size=r.batch_size,
                               min_steps=r.min_steps if default else None,
                               default_epochs=r.default_epochs if default else None,
                               lr=None if r.lr == Recipe.lr else r.lr,
                               pretrained=None if self.init is None else self.init.describe(),
                               teacher=None if self.teacher is None
                               else self.teacher.describe(),
                               data_fingerprint=self.data.fingerprint)


def recipe_of(setting: AccuracySetting) -> Recipe:
    """The training recipe a study's accuracy setting records."""
    from autosq.accuracy.train import DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, Recipe

    return Recipe(epochs=setting.epochs, batch_size=setting.batch_size or 64,
                  min_steps=setting.min_steps or DEFAULT_MIN_STEPS,
                  default_epochs=(DEFAULT_EPOCHS if setting.default_epochs is None
                                  else setting.default_epochs),
                  lr=setting.lr or Recipe.lr)


ACCURACY_CHOICES = ("proxy", "train", "supernet")
# With data, the estimator used when none is asked for (see the measurements in docs/accuracy.md).
DEFAULT_WITH_DATA = "train"


def make_accuracy(kind: str | None, proxy: str, data: str | None, epochs: float | None,
                  batch_size: int, input_size: int, num_classes: int | None,
                  space: SearchSpace | None = None, seed: int = 0,
                  on_train: OnStep | None = None,
                  threads: int | None = None, pretrained: str | None = None,
                  teacher: str | None = None,
                  train_device: str | None = None) -> tuple[AccuracyEstimator, int]:
    """(accuracy estimator, number of classes) for a search.

    ``kind`` is ``proxy``, ``train`` or ``supernet`` (None: the proxy without data,
    :data:`DEFAULT_WITH_DATA` with). Trained and supernet accuracy need ``data``, whose classes
    the search follows; a proxy scores 1000 classes unless told otherwise. ``threads``: how many
    threads a training uses (default :func:`autosq.accuracy.threads.default_threads`).
    ``pretrained`` (a SOURCE, :mod:`autosq.arch.pretrained`) starts every candidate from the
    weights it inherits and fine-tunes it (:func:`~autosq.accuracy.train.finetune_recipe`), on
    the data normalised as the source expects; ``teacher`` (a model file) distils into every
    candidate's training. Both need trained accuracy. ``train_device`` (``auto``, ``cpu`` or
    ``cuda``: :mod:`autosq.accuracy.device`) is where candidates train (the supernet trains on
    the CPU).
    """
    if kind is None:
        kind = "proxy" if data is None else DEFAULT_WITH_DATA
    if kind not in ACCURACY_CHOICES:
        raise UsageError(f"accuracy must be one of {', '.join(ACCURACY_CHOICES)}; got {kind!r}")
    if (pretrained is not None or teacher is not None) and kind != "train":
        what = "pretrained" if pretrained is not None else "teacher"
        raise UsageError(f"{what} sets how each candidate is trained: it needs data and "
                         f"accuracy 'train' (got {kind!r})")
    if data is None:
        if kind != "proxy":
            raise UsageError(f"accuracy {kind!r} trains on images: it needs data (a folder, "
                             "or builtin:shapes)")
        classes = 1000 if num_classes is None else num_classes
        if classes < 1:
            raise UsageError(f"num_classes must be >= 1; got {classes}")
        return ProxyAccuracy(proxy), classes
    from pathlib import Path

    from autosq.accuracy.datasets import check_spec, load_dataset

    check_spec(data)  # before it is resolved: "" would be the current folder
    if not data.startswith("builtin:"):
        # Recorded with the study: refine and export must find it from any working folder.
        data = str(Path(data).expanduser().resolve())
    init = None
    if pretrained is not None and kind not in ("proxy", "supernet"):
        # Read before the data: a bad weights file is one line, not one after a long decode.
        from autosq.arch.pretrained import load_pretrained

        macros = tuple(sorted({str(v) for v in space.values_of("macro", "v1.0")})) if space \
            else ("v1.0", "v1.1")
        init = load_pretrained(pretrained, macros)
    ds = load_dataset(data, input_size)
    if num_classes is not None and num_classes != ds.num_classes:
        raise UsageError(f"num_classes={num_classes} does not match the data: {data} has "
                         f"{ds.num_classes} classes (leave num_classes out to follow the data)")
    if kind == "proxy":
        return ProxyAccuracy(proxy), ds.num_classes
    if kind == "supernet":
        from autosq.accuracy.oneshot import SupernetAccuracy, SupernetRecipe

        if space is None:
            raise UsageError("accuracy 'supernet' needs the search space")
        return SupernetAccuracy(ds, space, SupernetRecipe(batch_size=batch_size), seed=seed,
                                on_step=on_train, threads=threads), ds.num_classes
    from autosq.accuracy.train import Recipe, finetune_recipe

    if init is not None:
        ds = ds.renormalised(init.normalisation)
    guide = None
    if teacher is not None:
        from autosq.accuracy.distill import load_teacher

        guide = load_teacher(teacher, ds.num_classes, input_size)
    recipe = (Recipe(epochs=epochs, batch_size=batch_size) if init is None
              else finetune_recipe(epochs, batch_size))
    from autosq.accuracy.device import resolve_device

    return TrainedAccuracy(ds, recipe, on_train, threads, init, guide,
                           resolve_device(train_device)), ds.num_classes


def init_of(setting: AccuracySetting, override: str | None = None) -> Pretrained | None:
    """The pretrained source a study's candidates started from (``override``: another one),
    read again and checked to be the very file the study recorded (its SHA-256)."""
    from autosq.arch.pretrained import load_pretrained
    from autosq.errors import WeightsError

    if override is not None:
        return load_pretrained(override)
    if not setting.pretrained:
        return None
    spec = str(setting.pretrained.get("spec", ""))
    init = load_pretrained(spec)
    recorded = {m: f.get("sha256") for m, f in setting.pretrained.get("files", {}).items()}
    for macro, sha in recorded.items():
        got = init.for_macro(macro if macro != "*" else "v1.0").sha256
        if got != sha:
            raise WeightsError(f"the pretrained source {spec} has changed since the study was "
                               f"searched (SHA-256 {got[:12]}..., recorded {str(sha)[:12]}...)"
                               "; give the study's file again or another source explicitly")
    return init


def teacher_of(setting: AccuracySetting, num_classes: int, input_size: int,
               override: str | None = None) -> Teacher | None:
    """The teacher a study's candidates were distilled from (``override``: another one),
    checked to be the very file the study recorded."""
    from autosq.accuracy.distill import load_teacher
    from autosq.errors import WeightsError

    if override is not None:
        return load_teacher(override, num_classes, input_size)
    if not setting.teacher:
        return None
    spec = str(setting.teacher.get("teacher", ""))
    teacher = load_teacher(spec, num_classes, input_size)
    if teacher.sha256 != setting.teacher.get("sha256"):
        raise WeightsError(f"the teacher {spec} has changed since the study was searched; give "
                           "it again or another teacher explicitly")
    return teacher
