"""The ``autosq`` command line: presentation only. One module per command, registered here
explicitly; heavy imports inside the commands, so ``autosq --help`` loads no torch.

:func:`main` runs the Typer app without Click's standalone mode so that every error, a usage
error from Click or an :class:`~autosq.errors.AutosqError` from the library, becomes one line on
stderr and an exit code (2 usage, 1 runtime, 130 interrupted); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys

import typer

# Typer >= 0.20 vendors Click as typer._click (no separate click package). Its exception classes
# are what non-standalone mode raises, so catching them needs this private import: pyproject.toml
# holds typer to the versions that have it (>= 0.20, < 0.30), and a test checks the names.
from typer._click import exceptions as click_exc
from typer._click.utils import echo

from autosq.cli import (
    agent,
    arch,
    calibrate,
    compare,
    compress,
    devices,
    export,
    front,
    measure,
    proxy_check,
    refine,
    repair,
    report,
    search,
    spaces,
)
from autosq.cli._options import add_examples, set_invoked_args, tidy_help
from autosq.cli._paths import guard_home
from autosq.errors import AutosqError

app = typer.Typer(
    name="autosq",
    help="Hardware-aware search of the SqueezeNet family: the best model that fits a device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from autosq._version import __version__

        echo(f"autosq {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                 help="Show autosq's version and exit."),
) -> None:
    """autosq: find the SqueezeNet that fits your device."""


app.command("search", help=search.HELP)(search.search)
app.command("front", help=front.HELP)(front.front)
app.command("refine")(refine.refine)
app.command("spaces")(spaces.spaces)
app.command("arch")(arch.arch)
app.command("devices")(devices.devices)
app.command("measure")(measure.measure)
app.command("calibrate")(calibrate.calibrate)
app.command("repair")(repair.repair)
app.command("compare")(compare.compare)
app.command("export")(export.export)
app.command("report")(report.report)
app.command("compress")(compress.compress)
app.command("decompress")(compress.decompress)
app.command("proxy-check")(proxy_check.proxy_check)
app.command("agent")(agent.agent)


def _error(message: str) -> None:
    # One line, whatever a library put in its message.
    echo(f"autosq: error: {' '.join(message.split())}", err=True)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    # A warning is a message to the user (skipped images, a fallback), not a source location.
    return f"autosq: warning: {' '.join(str(message).split())}\n"


_interrupted = False


def _on_sigint(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    import signal
    import threading

    global _interrupted
    _interrupted = False
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    # Remember a Ctrl-C: a library that catches it mid-import (numpy) raises ImportError.
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being handled
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)


def _main(argv: list[str] | None) -> int:
    import warnings

    args = list(sys.argv[1:] if argv is None else argv)
    set_invoked_args(args)
    guard_home()
    warnings.formatwarning = _one_line_warning
    debug = "--debug" in args
    if debug:  # accepted anywhere on the line, as users type it
        args = ["--debug", *(a for a in args if a != "--debug")]
    command = add_examples(tidy_help(typer.main.get_command(app)))
    from autosq.cli.decoding import decoding_lines

    try:
        # Before torch is imported: OpenMP would print its own lines about a bad value.
        from autosq.accuracy.threads import default_threads

        default_threads()
    except AutosqError as exc:
        _error(str(exc))
        return 2

    try:
        with decoding_lines():  # any command that loads data says how its decoding goes
            result = command.main(args=args, prog_name="autosq", standalone_mode=False)
    except click_exc.NoArgsIsHelpError:
        return 0  # Typer has printed the help already
    except click_exc.UsageError as exc:
        if debug:
            raise
        hint = f" (see 'autosq {exc.ctx.info_name} --help')" if exc.ctx and exc.ctx.parent else ""
        _error(f"{exc.format_message()}{hint}")
        return 2
    except (typer.Abort, KeyboardInterrupt):
        _error("interrupted")
        return 130
    except AutosqError as exc:
        if debug:
            raise
        _error(str(exc))
        return exc.exit_code
    except click_exc.ClickException as exc:
        if debug:
            raise
        _error(exc.format_message())
        return exc.exit_code
    except OSError as exc:
        if debug:
            raise
        from autosq._io import os_error_text

        _error(os_error_text(exc))
        return 1
    except Exception as exc:  # a bug: still one line, and the way to see more
        if _interrupted:
            _error("interrupted")
            return 130
        if debug:
            raise
        if type(exc).__name__ == "StorageInternalError":  # Optuna's wrapper: say the cause
            from autosq.searching.storage import first_line

            _error(f"the study storage failed: {first_line(exc)}")
            return 1
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
               "traceback, and please report it)")
        return 1
    if result == 130:  # Typer turns Ctrl-C into a silent exit code 130
        _error("interrupted")
    if isinstance(result, int):
        return result
    return 0


def run() -> None:
    """Console-script wrapper: exits with :func:`main`'s code (130 however many times Ctrl-C
    is pressed while a command stops)."""
    import signal

    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # nothing is left to interrupt
    sys.exit(code)
