"""Where studies live: Optuna storages from URLs (SQLite and other databases, journal files),
opening or creating an autosq study, and checking that a resumed study has the same settings.

A command that only reads a study (``front``, ``export``, ``compare --study``, ``refine``) never
creates a database or a journal file: a missing one is an error naming the path.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq._io import not_a_file, path_problem, shown_path
from autosq.errors import StorageError, StudyError, UsageError
from autosq.searching.objectives import LEGACY
from autosq.searching.records import (
    FAIL_ATTR,
    OBJECTIVES_ATTR,
    STUDY_ATTR,
    SearchSettings,
    read_settings,
)

if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE = "sqlite:///autosq.db"
JOURNAL_PREFIX = "journal://"
CONNECT_TIMEOUT = 10  # seconds to reach a database server
# A worker beats every HEARTBEAT_SECONDS while its trial runs; a trial whose worker has been
# silent for GRACE_SECONDS is failed (and retried) by any live worker or the next run.
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 20
# A worker frozen inside a transaction (a stopped process, a machine whose network stalled with
# its socket open) would hold its row locks forever, and every live worker would wait on them
# instead of failing its trial by heartbeat: the server ends such a session after this long.
# Optuna's transactions last milliseconds.
IDLE_IN_TRANSACTION_SECONDS = 10


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and records. The user part
    ends at the last ``@`` before any query (an unescaped ``@`` in a password stays hidden
    whole); file URLs (``sqlite:///``, ``journal:///``) carry no password and are left as
    they are."""
    scheme, sep, rest = url.partition("://")
    at = rest.split("?", 1)[0].rfind("@")
    if not sep or at < 0 or rest.startswith("/"):
        return url
    user, colon, _ = rest[:at].partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}{rest[at:]}"


def server_url(url: str) -> str:
    """A database server URL as its driver should read it: user and password percent-encoded
    (a password may hold ``@``, ``/`` or ``:``), the port checked (usage error naming it)."""
    from urllib.parse import quote, unquote, urlsplit

    scheme, _, rest = url.partition("://")
    at = rest.split("?", 1)[0].rfind("@")
    userinfo, hostpart = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    netloc = hostpart.split("/", 1)[0].split("?", 1)[0]
    try:
        port = urlsplit(f"//{netloc}").port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        shown = netloc.rpartition(":")[2]
        raise UsageError(f"cannot use storage {redact(url)}: port {shown!r} is not a number "
                         "in 1..65535")
    if at < 0:
        return url
    user, colon, password = userinfo.partition(":")
    encoded = quote(unquote(user), safe="") + (
        ":" + quote(unquote(password), safe="") if colon else "")
    return f"{scheme}://{encoded}@{hostpart}"


def quiet_optuna() -> None:
    """Optuna's own logging off: autosq reports what happened itself."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)


def _local_file(url: str) -> Path | None:
    """The file behind a SQLite or journal URL (None for a server database or in-memory)."""
    return storage_file(url)


def storage_file(url: str) -> Path | None:
    """The file a SQLite or journal storage URL names (None for a server database or an
    in-memory one): what a command must never write its outputs over."""
    if url.startswith(JOURNAL_PREFIX):
        rest = url[len(JOURNAL_PREFIX):]
    elif url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        # SQLAlchemy reads what follows '?' as options (sqlite:///s.db?timeout=5), not a name
        rest = url[len("sqlite:///"):].split("?", 1)[0]
    else:
        return None
    if not rest.strip():
        raise UsageError(f"storage {url!r} names no file; expected "
                         f"{url.split('://')[0]}:///PATH (e.g. journal:///studies.log)")
    return Path(rest)


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
    if url.startswith("sqlite") and (url.rstrip("/") in ("sqlite:", "sqlite:/")
                                     or ":memory:" in url):
        raise UsageError(f"storage {url!r} is in memory: the study would vanish when the "
                         f"command ends; give a file, e.g. {DEFAULT_STORAGE}")
    path = _local_file(url)
    if path is not None and (problem := path_problem(path)) is not None:
        raise UsageError(f"cannot use storage {shown_path(url)}: its file {problem}")
    if path is not None and not create and not path.exists():
        raise StudyError(f"no study storage at {path} (from {redact(url)}): it does not exist")
    if path is not None and (not path.parent.is_dir() or ((path.exists() or path.is_symlink())
                             and not path.is_file())):
        where = (f"folder {path.parent} does not exist" if not path.parent.is_dir()
                 else not_a_file(path))
        raise UsageError(f"cannot use storage {redact(url)}: {path} {where}")
    if url.startswith(JOURNAL_PREFIX):
        from optuna.storages import JournalStorage

        from autosq.searching.journal import JournalFile, check_journal

        assert path is not None
        check_journal(path)
        return JournalStorage(JournalFile(str(path)))
    import warnings

    engine_kwargs: dict[str, Any] = {}
    driver_url = url
    if path is None and not url.startswith("sqlite"):
        driver_url = server_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 (the driver autosq installs), not SQLAlchemy's default psycopg2.
        driver_url = "postgresql+psycopg://" + driver_url.split("://", 1)[1]
        engine_kwargs = {"connect_args": {
            "connect_timeout": CONNECT_TIMEOUT,
            "options": f"-c idle_in_transaction_session_timeout="
                       f"{IDLE_IN_TRANSACTION_SECONDS * 1000}"}}
    beats = path is None and not url.startswith("sqlite")
    if not create:
        _check_optuna_tables(url, driver_url, engine_kwargs)
    try:
        for attempt in range(5):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # heartbeats are "experimental" in Optuna
                    return optuna.storages.RDBStorage(
                        driver_url, engine_kwargs=engine_kwargs or None,
                        heartbeat_interval=HEARTBEAT_SECONDS if beats else None,
                        grace_period=GRACE_SECONDS if beats else None,
                        skip_table_creation=not create)
            except Exception as exc:
                # Two processes creating the same new database: the loser sees the winner's
                # tables half made ("already exists", "locked"); the next attempt finds them.
                text = str(exc).lower()
                if attempt == 4 or not any(w in text for w in (
                        "already exists", "locked", "duplicate", "unique constraint")):
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")
    except Exception as exc:  # SQLAlchemy raises many types for bad URLs and unreachable DBs
        if type(exc).__name__ == "OperationalError":  # reached for, not reached
            raise StorageError(f"cannot use storage {redact(url)}: {first_line(exc)}") \
                from None
        raise UsageError(f"cannot open storage {redact(url)}: {first_line(exc)}") from None


def _check_optuna_tables(url: str, driver_url: str, engine_kwargs: dict[str, Any]) -> None:
    """For readers: refuse a database without Optuna's tables before Optuna would create them
    (a mistyped database, another program's)."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(driver_url, **engine_kwargs)
        try:
            tables = set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except Exception as exc:
        if type(exc).__name__ == "OperationalError":
            raise StorageError(f"cannot use storage {redact(url)}: {first_line(exc)}") \
                from None
        raise UsageError(f"cannot open storage {redact(url)}: {first_line(exc)}") from None
    if not {"studies", "trials", "version_info"} <= tables:
        raise StudyError(f"no studies in {redact(url)}: that database has no Optuna tables "
                         "(another program's, or a mistyped name?)")


def first_line(exc: BaseException) -> str:
    """The cause of a driver's error, in one line (SQLAlchemy appends SQL and a help link)."""
    cause = exc.__cause__ or exc.__context__ or exc
    orig = getattr(exc, "orig", None) or cause
    text = " ".join(str(orig).split("\n")[0].split())
    return redact(text) or type(exc).__name__


def study_names(storage: Any) -> list[str]:
    """Names of the studies in a storage."""
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage)]


MAX_NAME = 200  # characters of a study name


def check_study_name(name: str) -> None:
    """A study name is printable and at most :data:`MAX_NAME` characters (it is shown in
    tables and messages, and some servers limit it)."""
    if not isinstance(name, str) or not name.strip():
        raise StudyError("study must be a non-empty name")
    if len(name) > MAX_NAME or not name.isprintable():
        shown = name[:60] + ("..." if len(name) > 60 else "")
        raise StudyError(f"study must be a printable name of at most {MAX_NAME} characters; "
                         f"got {shown!r} ({len(name)} characters)")


def load_study(storage: str, name: str,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """An existing autosq study, read only: nothing is created."""
    import optuna

    check_study_name(name)
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


def _shown(value: object) -> str:
    """A stored setting as a message shows it: lists comma-joined, dicts as given."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return repr(value)


def open_study(
    storage: str,
    name: str,
    settings: SearchSettings,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create the study, or load it and check it was made with the same settings."""
    import optuna

    check_study_name(name)
    quiet_optuna()
    storage_obj = storage_for(storage)
    exists = name in study_names(storage_obj)
    objectives = settings.objectives
    study = optuna.create_study(
        study_name=name,
        storage=storage_obj,
        sampler=sampler,
        directions=objectives.directions,
        load_if_exists=True,
    )
    stored = study.user_attrs.get(STUDY_ATTR)
    wanted = settings.to_dict()
    if stored is None:
        if exists and study.trials:
            raise StudyError(f"study {name!r} in {redact(storage)} was not created by autosq")
        if [d.name.lower() for d in study.directions] != objectives.directions:
            raise StudyError(f"study {name!r} in {redact(storage)} is not an autosq study (its "
                             f"directions are not those of {objectives.describe()})")
        study.set_user_attr(STUDY_ATTR, wanted)
        study.set_user_attr(OBJECTIVES_ATTR, objectives.value_names)
    elif stored != wanted:
        # Older studies stored no objectives: they had the three of LEGACY.
        stored = {**stored, "objectives": stored.get("objectives", list(LEGACY))}
        # Older studies recorded no data fingerprint: theirs is taken to be this data's.
        old_acc = stored.get("accuracy")
        new_acc = wanted.get("accuracy")
        if isinstance(old_acc, dict) and isinstance(new_acc, dict) \
                and "data_fingerprint" not in old_acc and "data_fingerprint" in new_acc:
            stored = {**stored, "accuracy": {**old_acc,
                                             "data_fingerprint": new_acc["data_fingerprint"]}}
        # Keys only the stored side has (a newer autosq's) differ too: never dropped silently.
        diff = _differences(stored, wanted)
        if diff:
            # A study's default name depends on its objectives, so the way back to one made
            # with other objectives is to name both.
            hint = (f" (for objectives: objectives {_shown(stored['objectives'])} and study "
                    f"{name!r})" if any(k == "objectives" for k, _, _ in diff) else
                    " (the data's images changed since the study was searched: resuming would "
                    "mix trials trained on other images)"
                    if any(k == "accuracy.data_fingerprint" for k, _, _ in diff) else "")
            raise StudyError(
                f"study {name!r} was created with other settings ("
                + "; ".join(f"{k} {_shown(a)}, asked {_shown(b)}" for k, a, b in diff)
                + f"); give the same settings to resume it{hint}, or a new study name"
            )
        study.set_user_attr(STUDY_ATTR, wanted)  # the same, now saying its objectives
    _name_metrics(study, objectives.value_names)
    return study


def _differences(stored: Any, wanted: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, stored, asked) for every setting that differs, nested settings by their
    own keys (``accuracy.pretrained.sha256``, not the whole accuracy record)."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out = []
        for k in (*wanted, *(k for k in stored if k not in wanted)):
            out += _differences(stored.get(k), wanted.get(k), f"{prefix}{k}.")
        return out
    return [] if stored == wanted else [(prefix.rstrip("."), stored, wanted)]


def _name_metrics(study: optuna.Study, names: list[str]) -> None:
    """Optuna's own names for the objectives (``study.metric_names``, which optuna-dashboard,
    ``optuna best-trials`` and optuna.visualization read), for new studies and for studies made
    before autosq set them."""
    import warnings

    if study.metric_names == names:
        return
    with warnings.catch_warnings():  # experimental in Optuna: a note for developers, not users
        warnings.simplefilter("ignore")
        study.set_metric_names(names)


# Why a trial failed when it does not count towards the number asked for: it was stopped, not
# evaluated (a failed trial with no reason at all lost its worker: killed, or its machine died).
INTERRUPTED = "interrupted"
WORKER_STOPPED = "its worker stopped"
ENVIRONMENT = "not counted: this machine could not evaluate it"  # a full disk, a server gone
# Recorded by earlier versions for what was the environment's failure (an inherited ulimit -v
# below the timing process's default cap): not the candidate's, so not counted either.
_LEGACY_ENVIRONMENT = ("the timing process cannot limit its memory",)
NOT_COUNTED = (INTERRUPTED, WORKER_STOPPED, ENVIRONMENT, *_LEGACY_ENVIRONMENT)


def counts(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial holds one of the study's slots: complete, running or waiting, or failed
    for a reason of its own (a candidate that breaks export, say)."""
    import optuna

    state = trial.state
    if state == optuna.trial.TrialState.FAIL:
        reason = str(trial.user_attrs.get(FAIL_ATTR, ""))
        return bool(reason) and not reason.startswith(NOT_COUNTED)
    return state != optuna.trial.TrialState.PRUNED


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards the number asked for: complete ones, and failed ones that
    failed on their own (not interrupted, not lost with their worker)."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return sum(counts(t) for t in study.get_trials(deepcopy=False, states=states))


def slot_of(study: optuna.Study, number: int) -> int:
    """Trial ``number``'s place among the trials that hold a slot (1-based): a trial whose
    place is over the number asked for is surplus. Trials are numbered in creation order by the
    storage, so workers that start trials at once still get distinct places."""
    return sum(t.number <= number and counts(t) for t in study.get_trials(deepcopy=False))


def tally(study: optuna.Study) -> tuple[int, int]:
    """(finished trials that count, slots taken: those plus the running and waiting ones),
    from one read of the study."""
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    held = [t for t in study.get_trials(deepcopy=False) if counts(t)]
    return sum(t.state in done for t in held), len(held)
