"""How accurate a candidate is: datasets, CPU training, zero-cost proxies, and the estimators a
search uses. Kinds: ``val_top1`` (trained and validated on the user's data) and ``proxy`` (a
zero-cost score of the untrained network: only its ranking means something)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from autosq.arch.config import SqueezeNetConfig

ACCURACY_KINDS = ("val_top1", "supernet", "proxy")


@dataclass(frozen=True)
class AccuracySetting:
    """Where a study's accuracy objective comes from (stored with the study)."""

    kind: str
    proxy: str | None = None
    data: str | None = None
    epochs: float | None = None
    batch_size: int | None = None
    min_steps: int | None = None
    default_epochs: float | None = None
    supernet_steps: int | None = None
    lr: float | None = None  # when not the default recipe's (a fine-tune's)
    # Where each candidate's weights start (a pretrained source, its file and SHA-256), how its
    # inputs are normalised then, and the teacher that guides its training.
    pretrained: dict[str, Any] | None = None
    teacher: dict[str, Any] | None = None
    # Which images the data held (:attr:`Dataset.fingerprint`); None in studies older than it.
    data_fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the fields that apply to this kind."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccuracySetting:
        """Read the stored form (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def caveat(self) -> str | None:
        """What the accuracy column is when it is not a trained network's validation top-1,
        and how to get that instead (shown under the front's table and on the page)."""
        if self.kind == "proxy":
            return (f"Without data the accuracy column is a ranking guess: the {self.proxy} "
                    "score of each untrained network, not a percentage (only its order means "
                    "anything). For real accuracy, search with your images: --data FOLDER, "
                    "and --pretrained torchvision to start each candidate from ImageNet "
                    "weights.")
        if self.kind == "supernet":
            return ("The accuracy column is the shared supernet's estimate: it ranks "
                    "candidates, but a network trained alone reaches more. For accuracy you can "
                    "quote, refine the front (autosq refine) or export with --data.")
        return None


class AccuracyEstimator(Protocol):
    """Gives a candidate its accuracy objective: a proxy score, or validation top-1."""

    kind: str
    expensive: bool

    def score(self, config: SqueezeNetConfig, seed: int) -> tuple[float, dict[str, Any]]:
        """(accuracy, details of how it was obtained) of a configuration."""
        ...

    def describe(self) -> AccuracySetting:
        """What the study records about this estimator."""
        ...


__all__ = ["ACCURACY_KINDS", "AccuracyEstimator", "AccuracySetting"]
