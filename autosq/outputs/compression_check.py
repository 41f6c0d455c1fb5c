"""How much Deep Compression without retraining (``autosq compress``) changed a model's answers,
measured on the data it can get, so that a ruined model is never written silently.

The data, in order: ``--data``; else the data the model's card says it was trained on, when it
is there to read; else a stated proxy: the share of generated inputs (seeded standard-normal
images, the scale of normalised ones) whose top-1 class is unchanged. With labels the check
reports validation top-1 before and after, and the same agreement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autosq.arch.config import SqueezeNetConfig
from autosq.errors import AutosqError, DataError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from autosq.arch.weights import Normalisation

PROXY_INPUTS = 128
PROXY_SEED = 0
# A change worth a warning: a point of top-1 lost, or one answer in twenty changed.
WARN_DROP = 0.01
WARN_AGREEMENT = 0.95


@dataclass(frozen=True)
class OutputChange:
    """Answers of the compressed model against the uncompressed one, and how it was measured:
    ``kind`` ``val_top1`` (labelled data) or ``agreement`` (generated inputs, a proxy)."""

    kind: str
    measured_on: str
    images: int
    agreement: float
    top1_before: float | None = None
    top1_after: float | None = None
    data: str | None = None

    @property
    def harmful(self) -> bool:
        """Whether the change is large enough to warn about."""
        if self.top1_before is not None and self.top1_after is not None \
                and self.top1_before - self.top1_after > WARN_DROP:
            return True
        return self.agreement < WARN_AGREEMENT

    def text(self) -> str:
        """The numbers, in one clause."""
        if self.top1_before is not None and self.top1_after is not None:
            return (f"val_top1 {self.top1_before:.3f} -> {self.top1_after:.3f} on "
                    f"{self.measured_on}; top-1 unchanged on {self.agreement:.0%} of them")
        return f"top-1 unchanged on {self.agreement:.0%} of {self.measured_on}"

    def to_dict(self) -> dict[str, Any]:
        """As stored in the container and the card."""
        return asdict(self)


def data_for_check(data: str | None, card: dict[str, Any] | None) -> tuple[str | None, str]:
    """(the data spec to measure on, where it came from): ``--data``, else the card's data when
    it can be read here, else (None, why not)."""
    from autosq._io import path_problem, shown_path

    if data is not None:
        return data, "--data"
    spec = _accuracy(card).get("data")
    if not isinstance(spec, str) or not spec:
        return None, "no data (none given, none on the model's card)"
    if spec.startswith("builtin:") or (path_problem(spec) is None
                                       and Path(spec).expanduser().is_dir()):
        return spec, "the model's card"
    return None, f"the card's data {shown_path(spec)} is not here"


def _accuracy(card: dict[str, Any] | None) -> dict[str, Any]:
    """The card's ``accuracy`` entry (a card is the file's: anything else is no entry)."""
    entry = (card or {}).get("accuracy")
    return entry if isinstance(entry, dict) else {}


def _answers(config: SqueezeNetConfig, state: dict[str, np.ndarray], batches: Iterable[Any],
             threads: int) -> np.ndarray:
    import torch

    from autosq.accuracy.train import seeded
    from autosq.arch.model import build

    model = build(config).eval()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in
                           state.items()})
    out = []
    with seeded(PROXY_SEED, threads), torch.no_grad():
        for x in batches:
            out.append(model(x).argmax(1).numpy())
    return np.concatenate(out)


def measure_change(config: SqueezeNetConfig, before: dict[str, np.ndarray],
                   after: dict[str, np.ndarray], data: str | None,
                   card: dict[str, Any] | None, threads: int | None = None) -> OutputChange:
    """Compare the two networks' answers (see the module docstring). ``data`` from the user
    must fit the model (a bad one is a usage error); the card's is used only when it does.
    The validation images are streamed, normalised as the card says the model expects."""
    import torch

    from autosq.accuracy.threads import default_threads

    threads = threads or default_threads()
    spec, source = data_for_check(data, card)
    if spec is not None:
        from autosq.accuracy.datasets import load_dataset

        try:
            dataset = load_dataset(spec, config.input_size)
            if dataset.num_classes != config.num_classes:
                raise DataError(f"{spec} has {dataset.num_classes} classes; the model has "
                                f"{config.num_classes}")
        except DataError:
            if data is not None:
                raise
            spec = None  # the card's data has changed since: fall back to the proxy
    if spec is not None:
        norm = _card_normalisation(card)
        if norm is not None:
            dataset = dataset.renormalised(norm)
        y = dataset.val_y.numpy()

        def images() -> Iterator[Any]:
            return (x for x, _ in dataset.batches("val", 256, workers=0))

        old = _answers(config, before, images(), threads)
        new = _answers(config, after, images(), threads)
        return OutputChange("val_top1", f"{spec} ({len(y)} validation images, from {source})",
                            len(y), float((old == new).mean()), float((old == y).mean()),
                            float((new == y).mean()), spec)
    gen = torch.Generator().manual_seed(PROXY_SEED)
    x = torch.randn((PROXY_INPUTS, 3, config.input_size, config.input_size), generator=gen)
    chunks = [x[i:i + 256] for i in range(0, PROXY_INPUTS, 256)]
    old, new = _answers(config, before, chunks, threads), _answers(config, after, chunks, threads)
    return OutputChange("agreement", f"{PROXY_INPUTS} generated inputs (a proxy: {source})",
                        PROXY_INPUTS, float((old == new).mean()))


def _card_normalisation(card: dict[str, Any] | None) -> Normalisation | None:
    """The input normalisation the card records, when it records a sane one."""
    from autosq.arch.weights import Normalisation

    entry = (card or {}).get("input_normalisation")
    if entry is None:
        return None
    try:
        return Normalisation.from_dict(entry, "the card's input_normalisation")
    except AutosqError:
        return None


def retrain_hint(card: dict[str, Any] | None, data: str | None) -> str:
    """The command that compresses with retraining, filled in from the card where it can be."""
    import shlex

    def plain(value: Any, default: str) -> str:  # the card is the file's: shown only if sane
        ok = isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable()
        return shlex.quote(value) if ok else default

    card = card or {}
    accuracy = _accuracy(card)
    trial = card.get("trial")
    storage = plain(card.get("storage"), "")
    where = f" --storage {storage}" if storage and "***" not in storage else ""
    return (f"autosq export --study {plain(card.get('study'), 'STUDY')} --trial "
            f"{trial if isinstance(trial, int) and not isinstance(trial, bool) else 'N'}{where} "
            f"--data {plain(data or accuracy.get('data'), 'DATA')} --compress --out MODEL.onnx")


__all__ = ["OutputChange", "data_for_check", "measure_change", "retrain_hint"]
