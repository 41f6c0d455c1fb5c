"""Where studies live: Optuna storages from URLs (SQLite and other databases, journal files),
opening or creating an autosq study, and checking that a resumed study has the same settings.

A command that only reads a study (``front``, ``export``, ``compare --study``, ``refine``) never
creates a database or a journal file: a missing one is an error naming the path.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.errors import StudyError, UsageError
from autosq.study.records import (
    DIRECTIONS,
    OBJECTIVES,
    OBJECTIVES_ATTR,
    STUDY_ATTR,
    SearchSettings,
    read_settings,
)

if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE = "sqlite:///autosq.db"
JOURNAL_PREFIX = "journal://"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and records."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def quiet_optuna() -> None:
    """Optuna's own logging off: autosq reports what happened itself."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)


def _local_file(url: str) -> Path | None:
    """The file behind a SQLite or journal URL (None for a server database or in-memory)."""
    if url.startswith(JOURNAL_PREFIX):
        return Path(url[len(JOURNAL_PREFIX):])
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):])
    return None


def storage_for(url: str, create: bool = True) -> Any:
    """An Optuna storage for ``url``; a bad URL is a usage error naming what is expected.

    ``create=False`` refuses to create a SQLite database or journal file that does not exist.
    """
    import optuna

    if "://" not in url:
        raise UsageError(
            f"storage must be a database URL such as {DEFAULT_STORAGE} "
            f"(or journal:///path.log); got {redact(url)!r}"
        )
    path = _local_file(url)
    if path is not None and not create and not path.is_file():
        raise StudyError(f"no study storage at {path} (from {redact(url)}): it does not exist")
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        where = "is a folder" if path.is_dir() else f"folder {path.parent} does not exist"
        raise UsageError(f"cannot use storage {redact(url)}: {path} {where}")
    if url.startswith(JOURNAL_PREFIX):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy raises many types for bad URLs and unreachable DBs
        raise UsageError(f"cannot open storage {redact(url)}: {exc}") from None


def study_names(storage: Any) -> list[str]:
    """Names of the studies in a storage."""
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage)]


def load_study(storage: str, name: str,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """An existing autosq study, read only: nothing is created."""
    import optuna

    quiet_optuna()
    storage_obj = storage_for(storage, create=False)
    names = study_names(storage_obj)
    if name not in names:
        raise StudyError(
            f"no study {name!r} in {redact(storage)}; studies there: {', '.join(names) or 'none'}"
        )
    study = optuna.load_study(study_name=name, storage=storage_obj, sampler=sampler)
    read_settings(study)  # an autosq study, or a clear error
    return study


def open_study(
    storage: str,
    name: str,
    settings: SearchSettings,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create the study, or load it and check it was made with the same settings."""
    import optuna

    quiet_optuna()
    storage_obj = storage_for(storage)
    exists = name in study_names(storage_obj)
    study = optuna.create_study(
        study_name=name,
        storage=storage_obj,
        sampler=sampler,
        directions=list(DIRECTIONS),
        load_if_exists=True,
    )
    if len(study.directions) != len(DIRECTIONS):
        raise StudyError(
            f"study {name!r} in {redact(storage)} is not an autosq study "
            "(it does not have autosq's three objectives)"
        )
    stored = study.user_attrs.get(STUDY_ATTR)
    wanted = settings.to_dict()
    if stored is None:
        if exists and study.trials:
            raise StudyError(f"study {name!r} in {redact(storage)} was not created by autosq")
        study.set_user_attr(STUDY_ATTR, wanted)
        study.set_user_attr(OBJECTIVES_ATTR, list(OBJECTIVES))
    elif stored != wanted:
        diff = [k for k in wanted if stored.get(k) != wanted[k]]
        raise StudyError(
            f"study {name!r} was created with other settings ({', '.join(diff)}: "
            f"{', '.join(f'{stored.get(k)!r}' for k in diff)}); give the same settings to "
            "resume it, or a new study name"
        )
    return study


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards the number asked for: complete or failed ones."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))
