"""The dataset records: what a loader returns (:class:`Dataset`, normalised float tensors) and
what the caches hold (:class:`RawDataset`, uint8 images), and the normalisation between them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from autosq.arch.weights import Normalisation

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
EXT_LIST = ", ".join(IMAGE_EXTENSIONS)
BUILTIN_SHAPES = "builtin:shapes"


@dataclass
class Dataset:
    """A train and a validation split of normalised images, ready for a training loop."""

    name: str
    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    input_size: int
    skipped: list[str]
    split: str
    # The per-channel statistics the images were normalised with (of [0, 1] pixel values).
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    norm_name: str = "the data's own"

    @property
    def num_classes(self) -> int:
        """How many classes (the width of a classifier's output)."""
        return len(self.classes)

    @property
    def normalisation(self) -> Normalisation:
        """The normalisation the images were given."""
        from autosq.arch.weights import Normalisation

        return Normalisation(tuple(self.mean), tuple(self.std), self.norm_name)  # type: ignore[arg-type]

    def normalised_as(self, norm: Normalisation) -> bool:
        """Whether the images were normalised with ``norm``'s mean and std."""
        return all(abs(a - b) < 1e-6 for a, b in zip((*self.mean, *self.std),
                                                     (*norm.mean, *norm.std), strict=True))

    def renormalised(self, norm: Normalisation) -> Dataset:
        """The same images normalised with ``norm`` (new tensors; a pretrained source's
        convention, say)."""
        import torch

        old_m, old_s = torch.tensor(self.mean), torch.tensor(self.std)
        new_m, new_s = torch.tensor(norm.mean), torch.tensor(norm.std)
        scale = (old_s / new_s).view(1, 3, 1, 1)
        shift = ((old_m - new_m) / new_s).view(1, 3, 1, 1)
        return replace(self, train_x=self.train_x * scale + shift,
                       val_x=self.val_x * scale + shift, mean=list(norm.mean),
                       std=list(norm.std), norm_name=norm.name)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: name, classes, split sizes, input size, skipped count, split."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "num_classes": self.num_classes,
            "n_train": int(self.train_y.shape[0]),
            "n_val": int(self.val_y.shape[0]),
            "input_size": self.input_size,
            "skipped": len(self.skipped),
            "split": self.split,
            "mean": [round(m, 6) for m in self.mean],
            "std": [round(s, 6) for s in self.std],
        }


@dataclass
class RawDataset:
    """What the caches hold: uint8 images (N, 3, S, S) and int64 labels, before normalising."""

    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    skipped: list[str]
    split: str


def normalise(raw: RawDataset, spec: str, input_size: int) -> Dataset:
    """Float tensors standardised per channel with the train split's mean and std."""
    train = raw.train_x.float().div_(255.0)
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3), correction=0)
    # A constant channel (a grey-scale set, say) has std 0: leave its scale alone.
    std = std.where(std > 1e-6, std.new_ones(()))
    scale = (1.0 / std)[None, :, None, None]
    shift = mean[None, :, None, None]
    train.sub_(shift).mul_(scale)
    val = raw.val_x.float().div_(255.0).sub_(shift).mul_(scale)
    return Dataset(
        name=spec,
        classes=list(raw.classes),
        train_x=train,
        train_y=raw.train_y,
        val_x=val,
        val_y=raw.val_y,
        input_size=input_size,
        skipped=list(raw.skipped),
        split=raw.split,
        mean=[float(m) for m in mean],
        std=[float(s) for s in std],
    )
