"""Helpers shared by the tests (imported as ``from util import ...``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence

from autosq.measure.protocol import LatencyResult, TimingProtocol

# A timing protocol for tests: real ONNX Runtime runs, but few and short, so a tiny model
# times in tens of milliseconds. The default protocol is measured by bench/, not here.
FAST = TimingProtocol(warmup_runs=2, warmup_seconds=0.0, block_runs=3, block_seconds=0.005,
                      min_blocks=2, target_gap=0.5, max_seconds=0.3)


def timed(ms: float, kind: str = "measured", over_budget: bool = False,
          contention: float | None = None) -> LatencyResult:
    """A latency result of ``ms`` as a timer would answer it (for logic tests)."""
    return LatencyResult(latency_ms=ms, p90_ms=ms, min_ms=ms, mean_ms=ms, runs=9, blocks=3,
                         block_gap=0.0, spread=0.0, latency_kind=kind, threads=1,
                         stop="agreement", over_budget=over_budget, seconds=0.1,
                         run_seconds=0.05, contention=contention)


def synthetic_study(url: str, name: str, members: int, seed: int = 0,
                    int8_slower: bool = False, fail_reason: str | None = None,
                    contended: int = 0) -> None:
    """A real autosq study (real storage, real records) holding ``members`` distinct
    architectures whose stored measurements lie on one accuracy-latency front (accuracy and
    latency growing together), for tests of what is shown from a study; the search itself is
    tested elsewhere. With ``int8_slower``, the most accurate one also has an int8 form that
    timed slower than its fp32 and scored a little higher (a trained int8 can), so it is on the
    front; with ``fail_reason``, one failed trial says that; the first ``contended`` were timed
    while other processes kept the machine busy."""
    import random

    import optuna

    from autosq.accuracy import AccuracySetting
    from autosq.arch.cost import cost_of
    from autosq.arch.plan import plan
    from autosq.arch.space import load_space, make_config
    from autosq.measure.protocol import LatencyResult
    from autosq.searching.records import FAIL_ATTR, TRIAL_ATTR, Budget, SearchSettings, TrialRecord
    from autosq.searching.storage import open_study

    settings = SearchSettings("host", Budget(5.0, 100.0), "tiny", 32, 10,
                              AccuracySetting("proxy", "synflow"))
    study = open_study(url, name, settings)
    rng = random.Random(seed)
    combos = [dict(v) for v in load_space("tiny").grid(3)]
    rng.shuffle(combos)
    seen: set[str] = set()
    records: list[TrialRecord] = []
    for values in combos:
        if len(records) == members:
            break
        values["precision"] = "fp32"
        cfg = make_config(values, 32, 10)
        if cfg.arch_id in seen:
            continue
        seen.add(cfg.arch_id)
        c = cost_of(plan(cfg))
        i = len(records)
        ms = 0.3 * (1.08 ** i)
        lat = LatencyResult(ms, ms, ms, ms, 9, 3, 0.0, 0.0, "measured", 1, "agreement", False,
                            0.1, 0.05, contention=1.0 if i < contended else 0.0)
        records.append(TrialRecord(values, cfg, "fp32", c.params, c.macs, c.size_mb("fp32"),
                                   c.peak_mem_mb, {"size_mb": -1.0, "latency_ms": ms - 100},
                                   latency=lat, search_accuracy=0.5 + 0.01 * i,
                                   search_accuracy_kind="proxy", timing="screen"))
    if int8_slower:
        top = records[-1]
        c = cost_of(plan(top.config))
        ms = (top.latency_ms or 0.0) * 1.5
        lat = LatencyResult(ms, ms, ms, ms, 9, 3, 0.0, 0.0, "measured", 1, "agreement", False,
                            0.1, 0.05)
        records.append(TrialRecord({**top.values, "precision": "int8"}, top.config, "int8",
                                   c.params, c.macs, c.size_mb("int8"), c.peak_mem_mb,
                                   {"size_mb": -1.0, "latency_ms": ms - 100}, latency=lat,
                                   search_accuracy=(top.accuracy or 0.0) + 0.001,
                                   search_accuracy_kind="proxy", timing="screen"))
    for r in records:
        study.add_trial(optuna.trial.create_trial(
            values=[r.accuracy or 0.0, r.latency_ms or 0.0], user_attrs={TRIAL_ATTR: r.to_attrs()},
            system_attrs={"constraints": list(r.constraints.values())}))
    if fail_reason is not None:
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                                  user_attrs={FAIL_ATTR: fail_reason}))


def run_autosq(args: Sequence[str], env: Mapping[str, str],
               timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m autosq ARGS`` in a child process that sees this one's ``sys.path``. Past
    ``timeout`` seconds the child is aborted with Python's fault handler on, and the test fails
    with every thread's stack (a hang is diagnosed from CI's log, not guessed at)."""
    with subprocess.Popen(_command(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=_child_env(env)) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGABRT)
            out, err = proc.communicate()
            raise AssertionError(f"autosq {' '.join(args)} ran past {timeout:.0f} s; its "
                                 f"threads:\n{err}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_autosq_measured(args: Sequence[str], env: Mapping[str, str],
                        timeout: float) -> tuple[subprocess.CompletedProcess[str], int]:
    """:func:`run_autosq`, and the largest resident set (KiB) among the command's own processes
    (its loader workers and timing processes included). From ``wait4``: RUSAGE_CHILDREN would
    also count every child this test process reaped before, such as the loader workers an
    earlier in-process training forked."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out, \
            tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen(_command(args), stdout=out, stderr=err, env=_child_env(env))
        reaped = None
        try:
            deadline = time.monotonic() + timeout
            while reaped is None:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    reaped = status, usage
                elif time.monotonic() > deadline:
                    os.kill(proc.pid, signal.SIGABRT)  # its threads' stacks, for the log
                    time.sleep(5.0)
                    err.seek(0)
                    raise AssertionError(f"autosq {' '.join(args)} ran past {timeout:.0f} s; "
                                         f"its threads:\n{err.read()}")
                else:
                    time.sleep(0.2)
        finally:
            if reaped is None:  # timed out or interrupted: never leave it running
                os.kill(proc.pid, signal.SIGKILL)  # not proc.kill(): its poll() would reap it
                os.wait4(proc.pid, 0)
                proc.returncode = -signal.SIGKILL
        status, usage = reaped
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
    return done, usage.ru_maxrss


def _command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "autosq", *args]


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env``, and this process's ``sys.path`` and Python's fault handler for the child."""
    return {**env, "PYTHONPATH": ":".join(sys.path), "PYTHONFAULTHANDLER": "1"}
