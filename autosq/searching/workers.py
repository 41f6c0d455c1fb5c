"""Workers sharing a study: who ran a trial, and finding the trials whose worker is gone (by
heartbeat on server storages, by process on this machine), so their slots are freed."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from autosq.searching.records import FAIL_ATTR, WORKER_ATTR
from autosq.searching.storage import WORKER_STOPPED

if TYPE_CHECKING:
    import optuna

WAIT_SECONDS = 2.0  # between checks while other workers hold the last slots


def fail_silent_trials(study: optuna.Study) -> None:
    """On a storage with heartbeats: fail the running trials whose worker stopped beating."""
    import warnings

    import optuna

    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental" in Optuna since 2.9
        optuna.storages.fail_stale_trials(study)  # no-op without heartbeats


def can_outlive(study: optuna.Study) -> bool:
    """Whether a lost worker among those holding running trials would be noticed: by
    heartbeats (server storages), or by its process being gone (workers on this machine)."""
    import socket

    import optuna

    storage = study._storage
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    if interval:
        return True
    host = socket.gethostname()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return bool(running) and all(
        str(t.user_attrs.get(WORKER_ATTR, "")).rpartition(":")[0] == host for t in running)


def worker_id() -> str:
    """This worker, as recorded on its trials: host and process."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def recover_lost_trials(study: optuna.Study) -> int:
    """Fail the RUNNING trials whose worker was a process of this machine that is gone (killed,
    crashed): their slots are freed for new trials. Server storages also do this through
    heartbeats, for workers on any machine. Returns how many were failed."""
    import socket

    import optuna

    host = socket.gethostname()
    lost = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        who = str(t.user_attrs.get(WORKER_ATTR, ""))
        name, _, pid = who.rpartition(":")
        if name != host or not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(Exception):  # another worker got there first
            study._storage.set_trial_user_attr(t._trial_id, FAIL_ATTR,
                                               f"{WORKER_STOPPED} (process gone)")
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            lost += 1
    return lost


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs. A killed worker whose parent has not reaped it yet
    is a zombie: it still answers signal 0, but will never finish its trial."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): signal 0 is all there is
    return state not in (b"Z", b"X")
