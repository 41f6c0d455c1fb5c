"""``autosq search``: the main job. Sample SqueezeNets for a device, measure them, show the
feasible Pareto front with a recommended member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from autosq.accuracy.estimators import ACCURACY_CHOICES
from autosq.accuracy.proxies import DEFAULT_PROXY, PROXIES
from autosq.cli._options import (
    all_option,
    at_least,
    between,
    check_output,
    check_outputs,
    check_threads,
    check_train_device,
    csv_option,
    invoked_args,
    json_option,
    non_empty,
    non_negative,
    one_of,
    plot_option,
    positive,
    pretrained_option,
    profiles_option,
    seconds_since_launch,
    storage_option,
    teacher_option,
    threads_option,
    train_device_option,
)
from autosq.cli.front import KNEE_HELP, emit
from autosq.errors import Interrupted, Terminated
from autosq.searching.objectives import DEFAULT as DEFAULT_OBJECTIVES
from autosq.searching.processes import (
    interrupt_workers,
    start_workers,
    terminate_as_interrupt,
    wait_workers,
)
from autosq.searching.samplers import SAMPLERS

HELP = f"Search SqueezeNets that fit a device; print the feasible Pareto front. {KNEE_HELP}"


def interrupted(exc: BaseException, names: list[str], storage: str) -> Interrupted:
    """One line: what was kept and how to continue."""
    from autosq.searching.storage import redact

    code = 143 if isinstance(exc, Terminated) else 130
    if not names:
        return Interrupted("interrupted before the study was opened; nothing was written", code)
    return Interrupted(f"interrupted: study {names[0]!r} in {redact(storage)} keeps every "
                       "finished trial (the running one is marked interrupted and not "
                       "counted); run the same command again to continue", code)


def search(
    device: str = typer.Option("host", "--device", "-d", help="Device profile name or .toml."),
    max_mb: float | None = typer.Option(
        None, "--max-mb", callback=positive(), help="Size budget in MiB (default: the profile's)."
    ),
    max_ms: float | None = typer.Option(
        None, "--max-ms", callback=non_negative(),
        help="Latency budget in ms (default: the profile's; 0 for none)."
    ),
    max_ram_mb: float | None = typer.Option(
        None, "--max-ram-mb", callback=non_negative(),
        help="Peak activation memory budget in MiB (default: the profile's; 0 for none)."
    ),
    space: str = typer.Option("default", "--space", help="Search space name or .toml file."),
    trials: int | None = typer.Option(
        None, "--trials", "-n", callback=at_least(1),
        help="Trials the study should reach (default: 50; with --timeout or --trials-timeout, "
        "as many as the time allows)."),
    timeout: float | None = typer.Option(
        None, "--timeout", callback=positive(),
        help="Seconds for the whole run, from launch to the printed front (the confirmation "
        "included): sampling stops in time to confirm the front."),
    trials_timeout: float | None = typer.Option(
        None, "--trials-timeout", callback=positive(),
        help="Stop sampling after this many seconds; the confirmation follows, unbounded."),
    seed: int = typer.Option(0, "--seed", callback=between(0, 2**32 - 1), help="Sampler seed."),
    sampler: str = typer.Option("tpe", "--sampler", callback=one_of(SAMPLERS),
                                help="tpe (with mutants of the front), tpe-only, nsga2 or random."),
    storage: str = storage_option(),
    study: str | None = typer.Option(
        None, "--study", callback=non_empty(),
        help="Study name (default: from device, budget, space and input size)."
    ),
    input_size: int | None = typer.Option(
        None, "--input-size", callback=at_least(1),
        help="Input side in pixels (default: the profile's)."
    ),
    num_classes: int | None = typer.Option(None, "--num-classes", callback=at_least(1),
                                           help="Output classes (default: the data's, or 1000)."),
    proxy: str = typer.Option(DEFAULT_PROXY, "--proxy", callback=one_of(PROXIES),
                              help="Zero-cost accuracy proxy, used without --data: macs "
                              "(log multiply-accumulates), params, synflow, naswot."),
    accuracy: str | None = typer.Option(
        None, "--accuracy", callback=one_of(ACCURACY_CHOICES),
        help="How candidates' accuracy is obtained: proxy (zero-cost, the default without "
        "--data), train (each candidate trained; the default with --data) or supernet (one "
        "weight-sharing network trained once, each candidate scored from its slice)."),
    objectives: str = typer.Option(
        ",".join(DEFAULT_OBJECTIVES), "--objectives",
        help="What the front trades: accuracy,latency, optionally with size or memory (peak "
        "activations) as a third; budgets are limits either way. A study keeps its "
        "objectives."),
    data: str | None = typer.Option(None, "--data", help="Train candidates on this data: an "
                                    "ImageFolder folder or builtin:shapes. On a CPU a small "
                                    "--input-size (e.g. 64) is quicker; on a GPU 224 px is "
                                    "practical (--train-device)."),
    epochs: float | None = typer.Option(None, "--epochs", callback=positive(),
                                        help="Training epochs per candidate (default: 2 "
                                        "epochs, but at least 500 optimizer steps)."),
    batch_size: int = typer.Option(64, "--batch-size", callback=at_least(1),
                                   help="Training batch size."),
    threads: int | None = threads_option(),
    train_device: str = train_device_option(),
    pretrained: str | None = pretrained_option(),
    teacher: str | None = teacher_option(),
    refine: int = typer.Option(0, "--refine", callback=at_least(0),
                               help="Then train the K front members nearest the knee longer "
                               "and recompute the front."),
    refine_epochs: float | None = typer.Option(None, "--refine-epochs", callback=positive(),
                                               help="Epochs for --refine (default: 4 times "
                                               "the search's training budget)."),
    workers: int = typer.Option(1, "--workers", callback=between(1, 64),
                                help="Worker processes to start on this machine; they share "
                                "the study (journal or database server storage) and finish "
                                "--trials in all, or search until the time budget says. "
                                "Others may join from other machines."),
    worker: int = typer.Option(0, "--worker", hidden=True, callback=between(0, 10_000),
                               help="This process's index among the workers (seeds apart)."),
    profiles: list[Path] = profiles_option(),
    no_retime: bool = typer.Option(False, "--no-retime", help="Do not re-time the front's "
                                   "candidates together at the end (keep the search's own "
                                   "screen timings)."),
    no_predict: bool = typer.Option(False, "--no-predict", help="Time every candidate (no "
                                    "candidate is left untimed on its predicted latency)."),
    as_json: bool = json_option("the front as JSON"),
    csv: Path | None = csv_option("the front"),
    plot: Path | None = plot_option("the front"),
    show_all: bool = all_option(),
    report: Path | None = typer.Option(None, "--report", help="Also write the study's page "
                                       "(one self-contained .html file; see autosq report)."),
) -> None:
    from autosq.cli._paths import refuse_inputs_as_outputs
    from autosq.cli.progress import search_progress
    from autosq.errors import UsageError
    from autosq.searching.objectives import Objectives
    from autosq.searching.run import run_search

    check_outputs(csv, plot)
    check_output(report, ".html", "--report")
    refuse_inputs_as_outputs({"--csv": csv, "--plot": plot, "--report": report},
                             {"the data (--data)": data}, storage)
    chosen = Objectives.parse(objectives, "--objectives")
    if refine and data is None:
        raise UsageError("--refine trains front members: it needs --data")
    if accuracy in ("train", "supernet") and data is None:
        raise UsageError(f"--accuracy {accuracy} trains on images: it needs --data")
    if data is None and (epochs is not None or batch_size != 64 or threads is not None
                         or train_device != "auto"):
        raise UsageError("--epochs, --batch-size, --threads and --train-device set the "
                         "training of each candidate: they need --data")
    check_threads(threads)
    check_train_device(train_device)
    for flag, value in (("--pretrained", pretrained), ("--teacher", teacher)):
        if value is not None and (data is None or accuracy in ("proxy", "supernet")):
            raise UsageError(f"{flag} sets how each candidate is trained: it needs --data "
                             "(and --accuracy train, the default with data)")
    if epochs is not None and accuracy in ("proxy", "supernet"):
        raise UsageError(f"--epochs sets each candidate's training (--accuracy train); "
                         f"--accuracy {accuracy} does not use it")
    if workers > 1 and storage.startswith("sqlite"):
        raise UsageError("--workers needs a storage several processes can write at once: "
                         "journal:///PATH.log (this machine) or postgresql://... (any)")
    started: list[Any] = []
    names: list[str] = []

    with search_progress(enabled=not as_json) as shown, terminate_as_interrupt(started):
        try:
            def on_start_all(st: Any, missing: int | None) -> None:
                names.append(st.study_name)
                if workers > 1:  # the study exists, every argument is valid: start the others
                    started.extend(start_workers(invoked_args(), workers - 1,
                                                 _from_launch(timeout)))
                shown.on_start(st, missing)

            def trials_done() -> None:
                wait_workers(started)
                if worker == 0 and not no_retime:
                    shown.on_phase("sampling done; confirming the front")

            # Workers other than the first only search; the first waits for them, then refines
            # and re-times the whole study's front.
            result = run_search(
                device=device, max_mb=max_mb, max_ms=max_ms, max_ram_mb=max_ram_mb,
                space=space, trials=trials, timeout=_from_launch(timeout),
                trials_timeout=_trials_window(trials_timeout, worker), seed=seed,
                sampler=sampler,
                storage=storage, study=study, input_size=input_size, num_classes=num_classes,
                proxy=proxy, accuracy=accuracy, objectives=chosen, data=data, epochs=epochs,
                batch_size=batch_size, refine=refine if worker == 0 else 0,
                refine_epochs=refine_epochs, profiles=profiles,
                retime=not no_retime and worker == 0, predict=not no_predict, worker=worker,
                threads=threads, pretrained=pretrained, teacher=teacher,
                train_device=train_device,
                on_start=on_start_all, on_progress=shown.on_progress,
                on_train=shown.on_train, on_trials_done=trials_done)
        except KeyboardInterrupt as exc:
            interrupt_workers(started)
            raise interrupted(exc, names, storage) from None
        finally:
            wait_workers(started)
    if worker:
        return  # the first worker reports
    emit(result, as_json, csv, plot, show_all)
    if report is not None:
        from autosq.outputs.page import write_report

        write_report(study=result.study_name, out=report, storage=storage, result=result)
        if not as_json:
            typer.echo(f"page written to {report}")
    if not as_json and result.members:
        typer.echo(next_steps(result.study_name, result.storage, report is None))


def next_steps(study: str, storage: str, page: bool) -> str:
    """The commands a user runs next on this study's result."""
    from shlex import quote

    where = f"--study {quote(study)} --storage {quote(storage)}"
    text = f"next: autosq export {where} --recommended --out model.onnx"
    if page:
        text += f"; autosq report {where} --out report.html"
    return text


def _from_launch(timeout: float | None) -> float | None:
    """``--timeout`` counts from the command's launch (:func:`seconds_since_launch`)."""
    return None if timeout is None else max(1.0, timeout - seconds_since_launch())


def _trials_window(trials_timeout: float | None, worker: int) -> float | None:
    """``--trials-timeout`` counts from the first sampling of the first process; a worker it
    starts is launched just before that, and counts from its own launch, so that its setup
    (imports, the study's first read: seconds) does not keep it sampling after the first one
    has stopped and waits for it."""
    if trials_timeout is None or worker == 0:
        return trials_timeout
    return _from_launch(trials_timeout)
