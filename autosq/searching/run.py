"""The search: sample a config with Optuna, evaluate it, record objectives and constraints,
resume; then refine and build the result.

A study is multi-objective: accuracy up, latency down, and optionally size or peak memory down
(:mod:`autosq.searching.objectives`). Budgets are Optuna constraints (``trial.set_constraint``,
feasible when <= 0), so every sampler learns where the boundary is, also from candidates skipped
untimed. A trial stores a :class:`~autosq.searching.records.TrialRecord`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq._signals import SignalHold, signals_held
from autosq.accuracy.proxies import DEFAULT_PROXY
from autosq.errors import AutosqError, ConfigError, ProfileError, TimingUnavailable, UsageError
from autosq.measure.protocol import TimingProtocol
from autosq.searching.arguments import check_args, settings_for, trial_count
from autosq.searching.evaluate import Evaluator, import_trial_extensions
from autosq.searching.failures import storage_errors, storage_failure
from autosq.searching.objectives import Objectives
from autosq.searching.records import (
    FAIL_ATTR,
    WORKER_ATTR,
    TrialRecord,
    load_records,
    read_settings,
    write_record,
)
from autosq.searching.samplers import MAX_SEED, make_sampler
from autosq.searching.screening import LatencyScreen
from autosq.searching.second_look import write_look
from autosq.searching.storage import (
    DEFAULT_STORAGE,
    ENVIRONMENT,
    INTERRUPTED,
    finished_count,
    open_study,
    slot_of,
    tally,
)
from autosq.searching.workers import (
    WAIT_SECONDS,
    can_outlive,
    fail_silent_trials,
    recover_lost_trials,
    worker_id,
)

if TYPE_CHECKING:
    import optuna

    from autosq.accuracy.train import OnStep
    from autosq.arch.space import SearchSpace
    from autosq.searching.result import SearchResult

# A trial's seed is seed * TRIAL_SEED_STRIDE + trial number: distinct for every trial of every
# study seed, and within torch's 64-bit range.
TRIAL_SEED_STRIDE = 1_000_000
WORKER_SEED_STRIDE = 7_919  # workers' sampler seeds are this far apart
# Lost and silent workers are looked for at most this often: each look reads the running trials
# (about 6 ms a trial on SQLite, of 150-200 ms); a lost worker's trial can wait a second.
CHECK_WORKERS_S = 1.0
UNLIMITED = sys.maxsize  # a search's count when the time alone decides


@dataclass
class Progress:
    """What the progress display shows after each trial."""

    done: int = 0
    total: int | None = 0  # trials this run is to add; None: as many as the time allows
    feasible: int = 0
    failed: int = 0
    skipped: int = 0
    best: TrialRecord | None = None
    last: str = ""


OnProgress = Callable[[Progress], None]
# (the study, the trials this run is to add; None: as many as the time allows)
OnStart = Callable[["optuna.Study", int | None], None]


class Search:
    """Runs (or resumes) one study: samples configs, evaluates them, records the results."""

    def __init__(self, study: optuna.Study, space: SearchSpace, evaluator: Evaluator,
                 seed: int | None = None, objectives: Objectives | None = None) -> None:
        self.study = study
        self.objectives = objectives or read_settings(study).objectives
        self.space = space
        self.evaluator = evaluator
        self.seed = seed or 0
        self.progress = Progress()
        self.target = 0
        self.surplus = False
        self.fatal: Exception | None = None  # what stopped the search (not a candidate)
        self._seen: dict[str, TrialRecord] = {}
        self._written: dict[int, TrialRecord] = {}  # for the progress display only
        # Ctrl-C and SIGTERM wait from a trial's result to Optuna storing it.
        self._hold = SignalHold()
        for rec in load_records(study):
            self._seen.setdefault(rec.key, rec)
            if evaluator.screen is not None and not rec.duplicate:
                evaluator.screen.add(rec)

    def worth_a_trial(self, params: dict[str, Any]) -> bool:
        """Whether sampled ``params`` are a new architecture within the size and memory
        budgets (analysed, not built): what the front's mutants must be."""
        try:
            record = self.evaluator.analyse({**self.space.fixed, **params})
        except AutosqError:
            return False
        return record.feasible and record.key not in self._seen

    def trial_seed(self, number: int) -> int:
        """The seed of trial ``number``'s initial weights and training."""
        return self.seed * TRIAL_SEED_STRIDE + number

    def objective(self, trial: optuna.Trial) -> tuple[float, ...]:
        """Take a slot (or stop: the study has its count), sample, evaluate (or reuse an equal
        architecture's measurements), record."""
        import optuna

        try:
            # Inside the try: a Ctrl-C or SIGTERM at any point of the trial marks it. A trial's
            # place is at most its number + 1, so the study is read only near the count.
            trial.set_user_attr(WORKER_ATTR, worker_id())
            if trial.number >= self.target and slot_of(self.study, trial.number) > self.target:
                self.surplus = True
                raise optuna.TrialPruned("the study already has its trials (finished or running)")
            if (look := self.evaluator.second_look()) is not None:  # an earlier candidate
                write_look(trial, *look)
            values = self.space.sample(trial)
            record = self.evaluator.analyse(values)
            seen = self._seen.get(record.key)
            if seen is not None:
                # The same architecture again: reuse its measurements instead of paying again.
                record = seen.reused_as(values)
                self._written[trial.number] = record
                return write_record(trial, record, self.objectives)
            record = self.evaluator.evaluate(values, seed=self.trial_seed(trial.number),
                                             analysed=record)
            record.trial = trial.number
            if record.skipped is None:
                self._seen[record.key] = record
            if self.evaluator.screen is not None:
                self.evaluator.screen.add(record)
            self._written[trial.number] = record
            point = write_record(trial, record, self.objectives)
            # From here until Optuna has stored the result, a Ctrl-C or SIGTERM waits (it is
            # delivered right after): a trial is then either measured and kept, or marked
            # interrupted, never failed without a reason.
            self._hold.hold()
            return point
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            if isinstance(exc, TimingUnavailable) or storage_failure(exc) is not None:
                # This machine, not the candidate: the trial is not counted, the search stops.
                self.fatal = exc
                with contextlib.suppress(Exception):
                    trial.set_user_attr(FAIL_ATTR, f"{ENVIRONMENT}: {exc}")
                raise
            # A candidate that breaks torch, export or ORT: record, go on.
            trial.set_user_attr(FAIL_ATTR, str(exc) if isinstance(exc, AutosqError)
                                else f"{type(exc).__name__}: {exc}")
            raise
        except BaseException:  # Ctrl-C or SIGTERM: this trial is not counted, its slot freed
            with contextlib.suppress(Exception):
                trial.set_user_attr(FAIL_ATTR, INTERRUPTED)
            raise

    def _after_trial(self, trial: optuna.trial.FrozenTrial,
                     on_progress: OnProgress | None) -> None:
        self._hold.release()  # the result is stored: a waiting Ctrl-C or SIGTERM may land
        p = self.progress
        rec = self._written.pop(trial.number, None)
        if trial.state.name == "PRUNED":  # surplus: not a trial of this run
            return
        p.done += 1
        if trial.state.name == "FAIL":
            p.failed += 1
            p.last = f"trial {trial.number} failed: {trial.user_attrs.get(FAIL_ATTR, '?')}"
        elif rec is not None:
            if rec.skipped:
                p.skipped += 1
            if rec.feasible:
                p.feasible += 1
                if p.best is None or (rec.accuracy or 0.0) > (p.best.accuracy or 0.0):
                    p.best = rec
            p.last = f"trial {trial.number}: {rec.describe()}"
        if on_progress is not None:
            on_progress(p)

    def run(self, trials: int | None, timeout: float | None = None,
            on_progress: OnProgress | None = None, stop: Callable[[], bool] | None = None) -> int:
        """Run trials until the study has ``trials`` finished ones in all, counting those other
        workers run at the same time (each trial takes a slot first), or ``stop()`` (``trials``
        None: until ``timeout`` or ``stop()`` alone); returns how many ran here."""
        self.target = UNLIMITED if trials is None else trials
        self.surplus = False
        missing = None if trials is None else max(0, trials - finished_count(self.study))
        self.progress.total = missing
        if missing == 0:
            return 0
        done_before = self.progress.done
        deadline = None if timeout is None else time.monotonic() + timeout
        checked = -math.inf
        while (not self.surplus and (deadline is None or time.monotonic() < deadline)
               and not (stop is not None and stop())):
            if time.monotonic() - checked >= CHECK_WORKERS_S:
                fail_silent_trials(self.study)  # workers anywhere whose heartbeat stopped
                recover_lost_trials(self.study)  # a worker on this machine that died meanwhile
                checked = time.monotonic()
            # Without a count there is nothing to reach: no read of the study per trial
            finished, taken = (0, 0) if trials is None else tally(self.study)
            if finished >= self.target:
                break
            if taken >= self.target:  # the rest are running elsewhere
                if not can_outlive(self.study):
                    break
                time.sleep(WAIT_SECONDS)  # until they finish, or their worker is found lost
                continue
            # One trial per call: each starts by failing trials whose worker stopped beating
            # (server storages), and holds a heartbeat while it runs. On Ctrl-C Optuna marks
            # the running trial FAIL and re-raises; finished trials are kept.
            try:
                self.study.optimize(
                    self.objective,
                    n_trials=1,
                    catch=(Exception,),
                    callbacks=[lambda _study, t: self._after_trial(t, on_progress)],
                    gc_after_trial=False,
                    show_progress_bar=False,
                )
            finally:
                self._hold.release()
            if self.fatal is not None:
                raise self.fatal
        return self.progress.done - done_before


def run_search(
    *,
    device: str = "host",
    max_mb: float | None = None,
    max_ms: float | None = None,
    max_ram_mb: float | None = None,
    space: str = "default",
    trials: int | None = None,
    timeout: float | None = None,
    trials_timeout: float | None = None,
    seed: int | None = 0,
    sampler: str = "tpe",
    storage: str = DEFAULT_STORAGE,
    study: str | None = None,
    input_size: int | None = None,
    num_classes: int | None = None,
    proxy: str = DEFAULT_PROXY,
    accuracy: str | None = None,
    objectives: str | Sequence[str] | Objectives | None = None,
    data: str | None = None,
    epochs: float | None = None,
    batch_size: int = 64,
    refine: int = 0,
    refine_epochs: float | None = None,
    profiles: Sequence[str | Path] = (),
    retime: bool = True,
    protocol: TimingProtocol | None = None,
    predict: bool = True,
    worker: int = 0,
    threads: int | None = None,
    train_device: str | None = None,
    pretrained: str | None = None,
    teacher: str | None = None,
    on_trials_done: Callable[[], None] | None = None,
    on_progress: OnProgress | None = None,
    on_start: OnStart | None = None,
    on_train: OnStep | None = None,
) -> SearchResult:
    """Search ``space`` for the models that fit ``device`` and return the feasible front.

    Budgets left as None take the device profile's; ``max_ms=0`` or ``max_ram_mb=0`` drops
    that budget. ``objectives`` (``"accuracy,latency"``, the default, or with ``size`` or
    ``memory`` as a third) are what the front trades; budgets are constraints either way, and a
    study keeps the objectives it was created with. ``accuracy`` picks the estimator:
    ``proxy`` (the default without data), ``train`` or ``supernet`` (see
    :func:`autosq.accuracy.estimators.make_accuracy`). With ``data`` (a folder or
    ``builtin:shapes``) every feasible candidate is trained (for ``epochs``, or by default 2
    epochs but at least 500 optimizer steps) and its validation top-1 is the accuracy;
    without, a zero-cost ``proxy`` scores it. ``refine=K`` then trains the K front members
    nearest the knee for ``refine_epochs`` (default: 4 times the search's budget) and
    recomputes the front. Every training uses ``threads`` threads (default:
    :func:`autosq.accuracy.threads.default_threads`) on ``train_device`` (``auto``: a GPU
    when torch sees one; timing is unchanged), recorded with each trial. ``pretrained``
    (a SOURCE: a weights file, ``torchvision:squeezenet1_0`` / ``_1``, or ``torchvision`` for
    each macro's own) starts every candidate from the weights it inherits and fine-tunes it
    briefly; ``teacher`` (a model file) distils into every candidate's training.
    ``timeout`` bounds the whole call
    (:class:`~autosq.searching.confirmation.TimeBudget`), ``trials_timeout`` only the trials.
    ``trials`` is the count the study should reach; None: 50, or with ``timeout`` or
    ``trials_timeout`` as many as the time allows.

    Running again with the same study resumes it and runs only the trials still missing to reach
    ``trials`` (with only a time budget, as many more as it allows). Several processes
    (``worker`` 0, 1, ...: it seeds each one's sampler apart) may run the same search on one
    study in a journal or database server storage: together they finish exactly ``trials``
    trials (or search until the time budget says). With a ``seed``, a fresh study samples the
    same first configurations every time (the random start-up trials; later TPE or NSGA-II
    suggestions also depend on the measured latencies, which vary a little between runs), and
    each trial trains from a seed derived from ``seed`` and its number, so the same
    configuration, data and thread count give the same accuracy.

    Latency: each candidate is timed briefly (:meth:`TimingProtocol.screen`), or, with
    ``predict``, left untimed when the search's own predictor rules it out
    (:mod:`autosq.searching.screening`); at the end every candidate that could be on the front
    (within the screen's error, as measured in the study) is timed again together
    (:meth:`TimingProtocol.confirm`), unless ``retime`` is false. A ``protocol`` replaces both.
    """
    from autosq._io import cache_dir
    from autosq.accuracy.estimators import make_accuracy
    from autosq.arch.space import load_space, make_config
    from autosq.measure import timer_for
    from autosq.measure.profiles import load_profile
    from autosq.searching.result import build_result
    from autosq.searching.retime import confirm_by, stopper, time_budget

    started = time.monotonic()
    check_args(trials, {"timeout": timeout, "trials_timeout": trials_timeout}, seed, refine,
                data, input_size, accuracy, epochs, worker)
    chosen = (objectives if isinstance(objectives, Objectives)
              else Objectives() if objectives is None else Objectives.parse(objectives))
    cache_dir()  # timings lock and cache there: a bad AUTOSQ_CACHE_DIR fails before the study
    profile = load_profile(device, profiles)
    sp = load_space(space)
    size = input_size or profile.input_size
    try:  # the input size fits the space
        make_config(next(sp.grid(2)), size, num_classes or 1000)
    except ConfigError as exc:
        if input_size is not None:
            raise
        raise ProfileError(f"{profile.path}: key 'runtime.input_size' ({size}) does not fit "
                           f"space {sp.name!r}: {exc}; set another input size in the profile "
                           "or give one") from None
    make_sampler(sampler, None)  # a bad name fails before anything is created
    estimator, classes = make_accuracy(accuracy, proxy, data, epochs, batch_size, size,
                                       num_classes, sp, seed or 0, on_train, threads,
                                       pretrained, teacher, train_device)
    settings = settings_for(profile, sp, max_mb, max_ms, max_ram_mb, size, classes,
                            estimator.describe(), chosen)
    timer = timer_for(profile, protocol or TimingProtocol.confirm())
    name = study if study is not None else settings.default_study_name()
    if not name.strip():
        raise UsageError("study must be a non-empty name")
    st = open_study(storage, name, settings)
    done = finished_count(st)
    screen = LatencyScreen(settings.budget, profile.name, chosen, enabled=predict)
    evaluator = Evaluator(timer if protocol else timer.with_protocol(TimingProtocol.screen()),
                          settings.budget, estimator, settings.input_size, classes, screen,
                          timing="full" if protocol else "screen")
    runner = Search(st, sp, evaluator, seed, chosen)
    st.sampler = make_sampler(
        sampler, None if seed is None else (seed + done + WORKER_SEED_STRIDE * worker)
        % (MAX_SEED + 1), fits=runner.worth_a_trial,
        promise=lambda params: evaluator.promise({**sp.fixed, **params}))
    with signals_held():
        import_trial_extensions(sp, estimator.describe())
    plan = time_budget(st, started, timeout, chosen, protocol, refine, retime or worker > 0)
    count = trial_count(trials, timeout, trials_timeout)
    if on_start is not None:
        on_start(st, None if count is None else max(0, count - done))
    with storage_errors(storage):  # a server gone or a disk full: one line, trials kept
        runner.run(count, trials_timeout, on_progress, stopper(plan, runner._seen.values))
        if on_trials_done is not None:  # e.g. wait for the other workers this process started
            on_trials_done()
        if refine:
            from autosq.searching.refine import refine_front

            refine_front(st, storage, refine, refine_epochs, on_train=on_train,
                         threads=threads, train_device=train_device)
        return build_result(st, storage, timer if retime else None, protocol, confirm_by(plan))


__all__ = ["Progress", "Search", "run_search"]
