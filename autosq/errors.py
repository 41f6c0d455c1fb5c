"""The one exception tree of autosq.

Every error a user can cause derives from :class:`AutosqError`. The CLI turns it into a single
line on stderr and the exit code carried by the class: 2 for usage (a bad flag, file, profile,
space or config), 1 for a runtime failure.
"""

from __future__ import annotations

import reprlib


class AutosqError(Exception):
    """Base of every autosq error. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class UsageError(AutosqError, ValueError):
    """The user asked for something invalid: the message says what, and what is expected."""

    exit_code = 2


class ConfigError(UsageError):
    """A SqueezeNet configuration breaks a rule (channel counts, input size, ...)."""


class ProfileError(UsageError):
    """A device profile is unknown or its file is invalid."""


class SpaceError(UsageError):
    """A search space is unknown or its file is invalid."""


class DataError(UsageError):
    """A dataset is missing, empty or malformed."""


class WeightsError(UsageError):
    """A weights file (a pretrained source, a teacher) is not what is expected: the message
    names the file, what is wrong and what is expected."""


class WeightsUnavailable(AutosqError):
    """Published weights that cannot be had here (offline, a failed download): the message says
    which file to put where."""


class StudyError(UsageError):
    """A study or trial does not exist or is not in the state asked for."""


class StorageError(AutosqError):
    """A study storage that cannot be reached or read (a server down, a damaged file)."""


class MeasurementError(AutosqError):
    """Exporting or timing a model failed at run time."""


class TrainingError(AutosqError):
    """Training gave a network that cannot be trusted (its deployed form disagrees with the
    trained one, a device ran out of memory): the message says what and what to do."""


class TimingUnavailable(MeasurementError):
    """This machine cannot time any model now (the timing process cannot start or cannot be
    contained): a failure of the environment, not of the candidate being timed. A search stops
    on it instead of recording every candidate as failed."""


class AgentError(AutosqError):
    """An on-device agent could not be reached or answered badly."""


class Interrupted(AutosqError):
    """The user stopped a command (Ctrl-C: exit 130; SIGTERM: 143), saying what was kept."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C, so the running trial is marked and the study kept."""


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict = 2, 4, 4, 4
_SHOWN.maxset = _SHOWN.maxfrozenset = _SHOWN.maxdeque = _SHOWN.maxarray = 4
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 60, 60, 40


def shown(value: object) -> str:
    """``repr(value)`` cut to a few dozen characters, for messages about values read from
    files: a "billion laughs" list or a megabyte string is shown as its start, in bounded time
    and memory (a plain repr of either would not end)."""
    return _SHOWN.repr(value)
