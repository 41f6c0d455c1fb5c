"""What every entry point of the search shares before it starts: its arguments checked (errors
name the Python parameters; the CLI names its flags before calling) and the study's settings
from a device profile and the user's overrides."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from autosq.errors import UsageError
from autosq.searching.objectives import Objectives
from autosq.searching.records import Budget, SearchSettings
from autosq.searching.samplers import MAX_SEED

if TYPE_CHECKING:
    from autosq.accuracy import AccuracySetting
    from autosq.arch.space import SearchSpace
    from autosq.measure.profiles import DeviceProfile


def settings_for(profile: DeviceProfile, space: SearchSpace, max_mb: float | None,
                 max_ms: float | None, max_ram_mb: float | None, input_size: int,
                 num_classes: int, accuracy: AccuracySetting,
                 objectives: Objectives | None = None) -> SearchSettings:
    """Settings from a profile and the user's overrides (None takes the profile's value;
    a latency or memory budget of 0 means none)."""
    ms = profile.max_ms if max_ms is None else (max_ms or None)
    ram = profile.max_ram_mb if max_ram_mb is None else (max_ram_mb or None)
    mb = profile.max_mb if max_mb is None else max_mb
    return SearchSettings(device=profile.name, budget=Budget(mb, ms, ram), space=space.name,
                          input_size=input_size, num_classes=num_classes, accuracy=accuracy,
                          objectives=objectives or Objectives())


DEFAULT_TRIALS = 50  # trials a search runs without a count or a time budget


def trial_count(trials: int | None, timeout: float | None,
                trials_timeout: float | None) -> int | None:
    """The count a search's study should reach: ``trials`` when given, else as many as the
    time allows (None) when a time budget is, else :data:`DEFAULT_TRIALS`."""
    if trials is not None:
        return trials
    return None if timeout is not None or trials_timeout is not None else DEFAULT_TRIALS


def check_args(trials: int | None, timeouts: dict[str, float | None], seed: int | None,
               refine: int, data: str | None, input_size: int | None, accuracy: str | None,
               epochs: float | None, worker: int) -> None:
    """The checks every entry point shares, naming the Python parameters."""
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise UsageError(f"trials must be an integer >= 1 (or None); got {trials!r}")
    for name, value in timeouts.items():  # timeout, trials_timeout
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{name} must be a finite number of seconds > 0; got {value!r}")
    if seed is not None and not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise UsageError(f"seed must be an integer in 0..{MAX_SEED}; got {seed!r}")
    if not isinstance(refine, int) or refine < 0:
        raise UsageError(f"refine must be an integer >= 0; got {refine!r}")
    if refine and (data is None or accuracy == "proxy"):
        raise UsageError("refine trains front members: it needs data (and accuracy from "
                         "training or the supernet, not a proxy)")
    if epochs is not None and accuracy in ("proxy", "supernet"):
        raise UsageError(f"epochs sets the training of each candidate (accuracy 'train'); "
                         f"accuracy {accuracy!r} does not use it")
    if input_size is not None and (not isinstance(input_size, int) or input_size < 1):
        raise UsageError(f"input_size must be an integer >= 1; got {input_size!r}")
    if not isinstance(worker, int) or worker < 0:
        raise UsageError(f"worker must be an integer >= 0; got {worker!r}")


__all__ = ["DEFAULT_TRIALS", "check_args", "settings_for", "trial_count"]
