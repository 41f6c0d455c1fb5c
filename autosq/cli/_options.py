"""Option definitions shared by several commands, and the checks of ranges and choices.

The CLI checks what it can before any work, naming the flag (``--trials must be >= 1``); the
library checks again, naming the Python parameter, for callers of the API. Output paths are
checked here too, before a command does anything that takes time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from autosq.errors import UsageError
from autosq.searching.storage import DEFAULT_STORAGE

_ARGS: list[str] = []
_LAUNCHED: list[float] = []
FRESH_PROCESS_SECONDS = 10.0  # older at main(): autosq was called in a running process


def set_invoked_args(args: list[str]) -> None:
    """Record the command line main() was given (workers are started with the same), and
    when the command was launched."""
    _ARGS[:] = args
    age = _process_age()
    _LAUNCHED[:] = [time.monotonic() - (age if age < FRESH_PROCESS_SECONDS else 0.0)]


def _process_age() -> float:
    """Seconds since this process started (Linux; 0 where that cannot be read)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
        with open("/proc/uptime") as f:
            return max(0.0, float(f.read().split()[0]) - started)
    except (OSError, ValueError, IndexError):
        return 0.0


def seconds_since_launch() -> float:
    """Seconds since the command was launched: for a fresh process, the interpreter's start
    and the imports before main() count too."""
    return time.monotonic() - _LAUNCHED[0] if _LAUNCHED else 0.0


def invoked_args() -> list[str]:
    """The command line autosq was given (without the program name)."""
    return list(_ARGS)


PROFILES_HELP = "Extra folder of device profiles (*.toml); wins over shipped ones. Repeatable."

T = TypeVar("T")


def _check(rule: Callable[[Any], bool], text: str) -> Callable[[typer.CallbackParam, T], T]:
    def callback(param: typer.CallbackParam, value: T) -> T:
        if value is not None and not rule(value):
            flag = max(param.opts, key=len) if param.opts else str(param.name)
            raise UsageError(f"{flag} must be {text}; got {value!r}")
        return value

    return callback


Check = Callable[[typer.CallbackParam, T], T]


def at_least(low: float) -> Check[T]:
    """A callback accepting None or a number >= ``low``."""
    return _check(lambda v: math.isfinite(v) and v >= low, f">= {low:g}")


def positive() -> Check[T]:
    """A callback accepting None or a finite number > 0."""
    return _check(lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def non_negative() -> Check[T]:
    """A callback accepting None or a finite number >= 0 (0 often means 'none')."""
    return _check(lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def between(low: int, high: int) -> Check[T]:
    """A callback accepting None or an integer in ``low..high``."""
    return _check(lambda v: low <= v <= high, f"in {low}..{high}")


def one_of(choices: Sequence[str]) -> Check[T]:
    """A callback accepting None or one of ``choices``."""
    return _check(lambda v: v in choices, f"one of {', '.join(choices)}")


def non_empty() -> Check[T]:
    """A callback accepting None or a string with something in it."""
    return _check(lambda v: bool(str(v).strip()), "a non-empty name")


def storage_option() -> Any:
    """``--storage URL``."""
    return typer.Option(DEFAULT_STORAGE, "--storage",
                        help="Optuna storage URL (sqlite:///file.db, journal:///file.log, or a "
                        "database server URL).")


def profiles_option() -> Any:
    """``--profiles DIR`` (repeatable)."""
    return typer.Option([], "--profiles", help=PROFILES_HELP)


def threads_option() -> Any:
    """``--threads N``: the threads a training uses."""
    return typer.Option(None, "--threads", help="Threads each training uses (default: "
                        "OMP_NUM_THREADS if set, else half the CPUs autosq may use).")


def pretrained_option() -> Any:
    """``--pretrained SOURCE``: the weights candidates start from."""
    return typer.Option(None, "--pretrained", metavar="SOURCE", callback=_named("--pretrained"),
                        help="Start each candidate from "
                        "the weights it inherits from SOURCE: a .pth state_dict in "
                        "torchvision's SqueezeNet layout, an autosq export (.pt/.onnx), "
                        "torchvision:squeezenet1_0 / torchvision:squeezenet1_1, or torchvision "
                        "(each macro's own); then fine-tune it.")


def _named(flag: str) -> Any:
    """A callback refusing an empty or blank value of ``flag`` (the library would name its
    parameter instead of the flag)."""
    def check(value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise typer.BadParameter("must name a file or a source; got an empty value",
                                     param_hint=flag)
        return value
    return check


def teacher_option() -> Any:
    """``--teacher MODEL``: distil from this model while training."""
    return typer.Option(None, "--teacher", metavar="MODEL", callback=_named("--teacher"),
                        help="Distil from this model while "
                        "training: an autosq export (.onnx/.pt) or an ONNX model with the "
                        "data's classes and input.")


def train_device_option() -> Any:
    """``--train-device auto|cpu|cuda``."""
    return typer.Option("auto", "--train-device", help="Where candidates train: auto (a GPU "
                        "when torch sees one, else the CPU), cpu or cuda. Timing is unchanged.")


def check_train_device(device: str) -> None:
    """Refuse an unknown --train-device, or cuda where torch sees no GPU, before any work."""
    from autosq.accuracy.device import resolve_device

    if device == "auto":  # always valid; resolving it imports torch (1.2-1.4 s measured)
        return
    resolve_device(device, "--train-device")


def check_threads(threads: int | None) -> None:
    """Refuse a --threads value no CPU set allows, before any work."""
    from autosq.accuracy.threads import resolve_threads

    if threads is not None:
        resolve_threads(threads, "--threads")


def density_option(help_text: str) -> Any:
    """``--density``: the share of weights Deep Compression keeps, in (0, 1]."""
    return typer.Option(1 / 3, "--density", show_default="1/3", callback=_check(
        lambda v: math.isfinite(v) and 0 < v <= 1, "in (0, 1]"), help=help_text)


def bits_option(default: str, help_text: str) -> Any:
    """``--bits``: bits per shared-weight code of Deep Compression."""
    from autosq.compress.schedule import BITS  # pure Python, a few constants

    return typer.Option(default, "--bits", callback=one_of([str(b) for b in BITS]),
                        help=help_text)


def device_names(text: str, flag: str) -> list[str]:
    """Device names from a comma-separated flag value; at least one."""
    names = [d.strip() for d in text.split(",") if d.strip()]
    if not names:
        raise UsageError(f"{flag} needs at least one device name; got {text!r}")
    return names


def all_option() -> Any:
    """``--all``: the whole front, not only the members shown first."""
    return typer.Option(False, "--all", help="Show every member of the front (table and "
                        "--json; by default at most 15 of the accuracy-latency front, spread "
                        "over its range, with the recommended one and both ends).")


def json_option(what: str = "JSON") -> Any:
    """``--json``."""
    return typer.Option(False, "--json", help=f"Print {what} instead of tables.")


def csv_option(what: str) -> Any:
    """``--csv FILE``."""
    return typer.Option(None, "--csv", help=f"Write {what} to this CSV file.")


def plot_option(what: str) -> Any:
    """``--plot FILE.png``."""
    return typer.Option(None, "--plot", help=f"Draw {what} to this PNG file.")


def check_output(path: Path | None, suffix: str, flag: str) -> None:
    """Fail before any work when an output file cannot be written where asked."""
    if path is None:
        return
    path = Path(path)
    from autosq._io import path_problem, shown_path

    if (problem := path_problem(path)) is not None:
        raise UsageError(f"{flag}: cannot write {shown_path(path)}: the name {problem}")
    if path.suffix.lower() != suffix:
        raise UsageError(f"{flag}: cannot write {path}: expected a {suffix} file name")
    if path.is_dir():
        raise UsageError(f"{flag}: cannot write {path}: it is a folder")
    if not path.parent.is_dir():
        raise UsageError(f"{flag}: cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"{flag}: cannot write {path}: permission denied")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag}: cannot replace {path}: it is read-only or immutable "
                         "(permission denied); choose another file name or make it writable")
    # Permissions do not tell everything (/proc, a read-only mount, root): try it, and leave
    # nothing behind.
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise UsageError(f"{flag}: cannot write {path}: {exc.strerror or exc}") from None


def check_outputs(csv: Path | None, plot: Path | None) -> None:
    """Check the --csv and --plot destinations before a command does any work."""
    check_output(csv, ".csv", "--csv")
    check_output(plot, ".png", "--plot")


def max_model_mb_option() -> Any:
    """``--max-model-mb``: the largest model file timed."""
    return typer.Option(512.0, "--max-model-mb", callback=positive(),
                        help="Refuse model files larger than this (MB).")


def max_seconds_option() -> Any:
    """``--max-seconds``: the wall-clock cap on timing one model (at most a day)."""
    from autosq.measure.limits import MAX_SECONDS  # a leaf module: standard library only

    return typer.Option(120.0, "--max-seconds", callback=_check(
        lambda v: math.isfinite(v) and 0 < v <= MAX_SECONDS,
        f"a number of seconds > 0 and at most {MAX_SECONDS:g} (a day)"),
                        help="Stop timing a model after this many seconds (a model that never "
                        "finishes is killed).")


def _memory_limit(param: typer.CallbackParam, value: float) -> float:
    from autosq.measure.limits import MIN_MEMORY_MB, ceiling_text, memory_ceiling_mb

    if not (math.isfinite(value) and (value == 0 or value >= MIN_MEMORY_MB)):
        raise UsageError(f"--max-memory-mb must be 0 (the default) or >= {MIN_MEMORY_MB:g}; "
                         f"got {value!r}")
    if value > memory_ceiling_mb():
        raise UsageError(f"--max-memory-mb must be at most {ceiling_text()}; got {value:g}")
    return value


def max_memory_mb_option() -> Any:
    """``--max-memory-mb``: the timing process's memory limit."""
    return typer.Option(0.0, "--max-memory-mb", callback=_memory_limit,
        help="Memory the timing process may use (MB; 0: half this machine's, at most 8192). "
        "A model's declared input may take a quarter of it.")


# -- one architecture, as flags (autosq arch, autosq measure) -----------------------------------

def base_e_option() -> Any:
    """``--base-e``."""
    return typer.Option(None, "--base-e", help="Expand filters of fire2.")


def incr_e_option() -> Any:
    """``--incr-e``."""
    return typer.Option(None, "--incr-e", help="Expand filters added every freq modules.")


def freq_option() -> Any:
    """``--freq``."""
    return typer.Option(None, "--freq", help="Fire modules between increments.")


def pct_3x3_option() -> Any:
    """``--pct-3x3``."""
    return typer.Option(None, "--pct-3x3", help="Share of 3x3 expand filters, 0..1.")


def sr_option() -> Any:
    """``--sr``."""
    return typer.Option(None, "--sr", help="Squeeze ratio: squeeze = sr x expand.")


def macro_option() -> Any:
    """``--macro``."""
    return typer.Option(None, "--macro", help="Macro architecture: v1.0 or v1.1.")


def bypass_option() -> Any:
    """``--bypass``."""
    return typer.Option(None, "--bypass", help="none, simple or complex.")


def conv1_option() -> Any:
    """``--conv1``."""
    return typer.Option(None, "--conv1", help="Filters of conv1.")


def arch_config(preset: str | None, flags: dict[str, Any]) -> Any:
    """The configuration a preset and architecture flags describe (flags override the preset;
    without a preset, defaults fill what the flags leave out). Returns a SqueezeNetConfig."""
    from autosq.arch.config import SqueezeNetConfig
    from autosq.arch.presets import preset as get_preset

    if preset is not None:
        return get_preset(preset, **flags)
    return SqueezeNetConfig.from_dict({k: v for k, v in flags.items() if v is not None})


def tidy_help(command: Any) -> Any:
    """Clean placeholders in every command's help: a switch (``--json``) shows none (it takes
    no value), a repeatable option shows its element's (``<path>``, not ``<list[Path]>``).
    Returns ``command``."""
    import re

    from typer._click.core import Context  # the help option exists once a context asks for it

    helper = command.get_help_option(Context(command)) if hasattr(command,
                                                                   "get_help_option") else None
    if helper is not None:
        helper.metavar = ""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        elif getattr(param, "metavar", None) is None and hasattr(param, "display_type"):
            try:
                shown = param.display_type(None)
            except Exception:  # a type Typer describes otherwise: leave it
                continue
            inner = re.fullmatch(r"<list\[(\w+)\]>", str(shown))
            if inner:
                param.metavar = f"<{inner.group(1).lower()}>"
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
    return command


def add_examples(group: Any) -> Any:
    """End every subcommand's ``--help`` with its example from ``examples.toml`` (a command
    without one is a packaging bug: the test of the help pages names it). Returns ``group``."""
    for name, sub in getattr(group, "commands", {}).items():
        example = EXAMPLES.get(name)
        if example is not None:
            # Typer renders the epilog as Markdown-free rich text: keep the command on its own
            # line so it can be copied whole.
            sub.epilog = f"Example: {example['text']}:\n\n  {example['command']}"
    return group


def _examples() -> dict[str, dict[str, str]]:
    from importlib import resources

    import tomllib

    text = resources.files("autosq.cli").joinpath("examples.toml").read_text(encoding="utf-8")
    return {k: {"text": str(v["text"]), "command": str(v["command"])}
            for k, v in tomllib.loads(text).items()}


EXAMPLES = _examples()
