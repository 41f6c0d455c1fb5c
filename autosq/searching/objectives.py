"""Which objectives a study optimises: accuracy and latency always, and at most one more.

Budgets are constraints whatever the objectives; an objective is what the front trades. The
default is accuracy and latency, size then being only a budget. Measured on the main job
(``autosq search --device rpi4 --max-mb 5``, 50 trials, 10 seeds; bench/objectives_bench.py):
the accuracy-latency hypervolume on a common clock was the same with and without size as a third
objective (median 0.743 against 0.737, paired differences centred on 0), while the third
objective doubled the front (28.5 members against 13.5) and made the search 1.7x as long (30 s
against 18 s: a larger near-front to re-time). ``size`` (MiB at the candidate's precision) or
``memory`` (peak activation MiB) may be added as the third when it matters beyond its budget;
with size the three-objective hypervolume was higher (0.670 against 0.644).

Pure Python: the front utilities (:mod:`autosq.searching.pareto`) work on a three-value
:data:`~autosq.searching.pareto.Point`, ``(accuracy, latency_ms, third)``, whose third value is the
third objective's, or 0 for every candidate when there is none (so it never decides anything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autosq.errors import UsageError
from autosq.searching.pareto import Point

REQUIRED = ("accuracy", "latency")
THIRD = {"size": "size_mb", "memory": "peak_mem_mb"}  # name -> the record's value
NAMES = (*REQUIRED, *THIRD)
DEFAULT = ("accuracy", "latency")
# What every study optimised before the choice existed (read from studies that do not say).
LEGACY = ("accuracy", "latency", "size")

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Objectives:
    """The objectives of a study, in canonical order: accuracy, latency, then the third (if
    any). Build one with :meth:`parse`."""

    names: tuple[str, ...] = DEFAULT

    def __post_init__(self) -> None:
        names = self.names
        if (tuple(names[:2]) != REQUIRED or len(names) > 3
                or (len(names) == 3 and names[2] not in THIRD)):
            raise UsageError(f"objectives must be accuracy,latency optionally followed by one "
                             f"of {', '.join(THIRD)}; got {','.join(map(str, names))!r}")

    @classmethod
    def parse(cls, text: str | Sequence[str], name: str = "objectives") -> Objectives:
        """From ``"accuracy,latency,size"`` (any order; spaces ignored) or a sequence of names.
        A :class:`~autosq.errors.UsageError` names the parameter ``name`` (the CLI passes its
        flag)."""
        items = text.split(",") if isinstance(text, str) else list(text)
        given = ",".join(map(str, items))
        given = given[:60] + ("..." if len(given) > 60 else "")
        names = [str(n).strip().lower() for n in items if str(n).strip()]
        unknown = [n for n in names if n not in NAMES]
        expected = (f"expected accuracy,latency, optionally with one of {', '.join(THIRD)} "
                    "(e.g. accuracy,latency,size)")
        if unknown:
            shown = unknown[0][:40] + ("..." if len(unknown[0]) > 40 else "")
            raise UsageError(f"{name}: unknown objective {shown!r}; {expected}")
        if len(set(names)) != len(names):
            raise UsageError(f"{name}: {given!r} names one twice; {expected}")
        missing = [n for n in REQUIRED if n not in names]
        if missing:
            raise UsageError(f"{name}: {' and '.join(missing)} cannot be left out (a front "
                             f"trades accuracy for latency); {expected}")
        extra = [n for n in names if n in THIRD]
        if len(extra) > 1:
            raise UsageError(f"{name}: at most one of {', '.join(THIRD)} besides accuracy "
                             f"and latency; got {given!r}")
        return cls((*REQUIRED, *extra))

    @property
    def third(self) -> str | None:
        """``size``, ``memory`` or None."""
        return self.names[2] if len(self.names) == 3 else None

    @property
    def directions(self) -> list[Direction]:
        """Optuna's study directions, in :attr:`names` order."""
        out: list[Direction] = ["maximize", "minimize"]
        return out + (["minimize"] if self.third else [])

    @property
    def value_names(self) -> list[str]:
        """The Optuna values' names: ``accuracy``, ``latency_ms`` and the third's record
        field."""
        return ["accuracy", "latency_ms", *([THIRD[self.third]] if self.third else [])]

    def point(self, accuracy: float, latency_ms: float, size_mb: float,
              peak_mem_mb: float) -> Point:
        """The candidate as the front utilities see it: ``(accuracy, latency_ms, third)``."""
        third = {"size": size_mb, "memory": peak_mem_mb}.get(self.third or "", 0.0)
        return float(accuracy), float(latency_ms), float(third)

    def values(self, point: Point) -> tuple[float, ...]:
        """What Optuna stores for a point: as many values as objectives."""
        return point[:len(self.names)]

    def describe(self) -> str:
        """``accuracy, latency`` or ``accuracy, latency, size``."""
        return ", ".join(self.names)

    def to_list(self) -> list[str]:
        """The stored form."""
        return list(self.names)


__all__ = ["DEFAULT", "LEGACY", "NAMES", "THIRD", "Objectives"]
