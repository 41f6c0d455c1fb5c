"""Device profiles: load, validate and list the TOML files that describe a target device.

Profiles are looked up, first match wins, in: the folders given with ``--profiles`` (or the
``profiles_dirs`` argument), the folders in the ``AUTOSQ_PROFILES`` environment variable
(separated by ``os.pathsep``), then the profiles shipped with autosq. So a user's profile of
the same name replaces a shipped one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq._io import (
    TomlTable,
    parse_toml,
    path_problem,
    read_text_file,
    shipped,
    shown_path,
)
from autosq.errors import ProfileError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ENV_VAR = "AUTOSQ_PROFILES"
LATENCY_SOURCES = ("measured", "agent", "estimated")
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class Calibration:
    """A reference model's published latency on the device, to scale this machine's timings."""

    reference: str
    reference_input_size: int
    device_ms: float
    device_threads: int
    source: str
    why: str = ""


@dataclass(frozen=True)
class DeviceProfile:
    """One target device: its budgets, ONNX Runtime settings and where its latency comes from."""

    name: str
    description: str
    cpu: str
    cores: int
    ram_mb: int
    max_mb: float
    max_ms: float | None
    max_ram_mb: float | None
    threads: int
    provider: str
    graph_optimization: str
    input_size: int
    latency_source: str
    agent_url: str | None = None
    agent_token_env: str = "AUTOSQ_AGENT_TOKEN"
    agent_ca_file: str | None = None
    calibration: Calibration | None = None
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``autosq devices --json``."""
        return {
            "name": self.name,
            "description": self.description,
            "cpu": self.cpu,
            "cores": self.cores,
            "ram_mb": self.ram_mb,
            "max_mb": self.max_mb,
            "max_ms": self.max_ms,
            "max_ram_mb": self.max_ram_mb,
            "threads": self.threads,
            "provider": self.provider,
            "graph_optimization": self.graph_optimization,
            "input_size": self.input_size,
            "latency_source": self.latency_source,
            "agent_url": self.agent_url,
            "agent_token_env": self.agent_token_env,
            "agent_ca_file": self.agent_ca_file,
            "calibration": None if self.calibration is None else vars(self.calibration),
            "path": self.path,
        }


def parse_profile(text: str, where: str) -> DeviceProfile:
    """Parse and validate one profile's TOML text; ``where`` names it in error messages."""
    top = TomlTable(where, parse_toml(text, where, ProfileError), ProfileError)
    top.check_known(
        ["name", "description", "cpu", "cores", "ram_mb", "budget", "runtime", "latency"]
    )
    budget = top.table("budget")
    # Every runtime key has a default, so the table itself may be left out.
    runtime = top.table("runtime", required=False) or TomlTable(where, {}, ProfileError,
                                                               "runtime.")
    latency = top.table("latency")
    assert budget is not None and runtime is not None and latency is not None
    budget.check_known(["max_mb", "max_ms", "max_ram_mb"])
    runtime.check_known(["threads", "provider", "graph_optimization", "input_size"])
    latency.check_known(["source", "url", "token_env", "ca_file", "calibration"])
    number = (int, float)
    source = latency.get("source", str, choices=LATENCY_SOURCES)
    calibration = None
    cal = latency.table("calibration", required=source == "estimated")
    if cal is not None:
        cal.check_known(
            ["reference", "reference_input_size", "device_ms", "device_threads", "source", "why"]
        )
        from autosq.arch.presets import load_presets

        presets = sorted(load_presets())
        calibration = Calibration(
            reference=cal.get("reference", str, choices=presets),
            reference_input_size=cal.get("reference_input_size", int, 224, positive=True),
            device_ms=float(cal.get("device_ms", number, positive=True)),
            device_threads=cal.get("device_threads", int, 1, positive=True),
            source=cal.get("source", str),
            why=cal.get("why", str, ""),
        )
    url = latency.get("url", str, None)
    if source == "agent" and not url:
        raise latency.fail("url", 'is required when source = "agent" (http://HOST:PORT)')
    if url is not None and not url.startswith(("http://", "https://")):
        raise latency.fail("url", "must start with http:// or https://", url)
    if url is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            parts = None
        if parts is None or not parts.hostname or any(c.isspace() for c in url):
            raise latency.fail("url", "must be a URL http://HOST:PORT with a host name or "
                               "address", url)
        if parts.username or parts.password:
            raise latency.fail("url", "must not hold credentials (the agent's token comes "
                               "from the environment variable token_env)", "<redacted>")
    token_env = latency.get("token_env", str, "AUTOSQ_AGENT_TOKEN")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env):
        raise latency.fail("token_env", "must be an environment variable's name", token_env)
    ca_file = latency.get("ca_file", str, None)
    if ca_file is not None:
        ca_path = Path(ca_file).expanduser()
        if not ca_path.is_absolute():  # relative to the profile's own folder
            ca_path = Path(where).parent / ca_path
        ca_file = str(ca_path)
    max_ms = budget.get("max_ms", number, None, positive=True)
    max_ram = budget.get("max_ram_mb", number, None, positive=True)
    name = top.get("name", str)
    if not name or len(name) > 100 or not name.isprintable() or any(c in name for c in "/\\ ,"):
        raise top.fail("name", "must be a non-empty name of at most 100 characters without "
                       "spaces, commas or slashes", name if len(name) <= 100 else name[:100])
    return DeviceProfile(
        name=name,
        description=top.get("description", str, ""),
        cpu=top.get("cpu", str, ""),
        cores=top.get("cores", int, 0),
        ram_mb=top.get("ram_mb", int, 0),
        max_mb=float(budget.get("max_mb", number, positive=True)),
        max_ms=None if max_ms is None else float(max_ms),
        max_ram_mb=None if max_ram is None else float(max_ram),
        threads=_threads(runtime),
        provider=runtime.get("provider", str, "CPUExecutionProvider"),
        graph_optimization=runtime.get(
            "graph_optimization", str, "all", choices=GRAPH_OPTIMIZATIONS
        ),
        input_size=_input_size(runtime),
        latency_source=source,
        agent_url=url,
        agent_token_env=token_env,
        agent_ca_file=ca_file,
        calibration=calibration,
        path=where,
    )


def _input_size(runtime: TomlTable) -> int:
    """The profile's input side: at least what the smaller SqueezeNet macro takes."""
    from autosq.arch.config import MACROS, min_input_size

    size = int(runtime.get("input_size", int, 224, positive=True))
    smallest = min(min_input_size(m) for m in MACROS)
    if size < smallest:
        raise runtime.fail("input_size", f"must be >= {smallest} (the smallest input a "
                           "SqueezeNet takes: 17 for macro v1.1, 21 for v1.0)", size)
    return size


MAX_THREADS = 256  # more than any edge device has cores; beyond it is a typo


def _threads(runtime: TomlTable) -> int:
    threads: int = runtime.get("threads", int, 1, positive=True)
    if threads > MAX_THREADS:
        raise runtime.fail("threads", f"must be at most {MAX_THREADS}", threads)
    return threads


def check_local_threads(profile: DeviceProfile) -> None:
    """A profile timed on this machine may not ask for more threads than it has CPUs (each
    thread is pinned to its own CPU; more only measures contention)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    if profile.threads > cpus:
        raise ProfileError(f"{profile.path}: key 'runtime.threads' asks for {profile.threads} "
                           f"threads, but this machine gives autosq {cpus} CPUs; a measured "
                           f"profile times here: ask for at most {cpus}")


def search_dirs(profiles_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """The user folders searched before the shipped profiles, in order."""
    dirs = [Path(d) for d in profiles_dirs]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d]
    for d in dirs:
        if not d.is_dir():
            what = "is a file" if d.exists() else "does not exist"
            raise ProfileError(f"profiles folder {shown_path(d)} {what} (from --profiles or "
                               f"{ENV_VAR}); "
                               "expected a folder of NAME.toml profiles")
    return dirs


def _candidates(profiles_dirs: Iterable[str | Path]) -> dict[str, tuple[str, Traversable]]:
    """name -> (where, file), earlier folders winning."""
    found: dict[str, tuple[str, Traversable]] = {}
    for d in search_dirs(profiles_dirs):
        for path in sorted(d.glob("*.toml")):
            found.setdefault(path.stem, (str(path), path))
    for name, item in shipped("device_profiles").items():
        found.setdefault(name, (f"device_profiles/{item.name}", item))
    return found


def load_profile(name: str, profiles_dirs: Iterable[str | Path] = ()) -> DeviceProfile:
    """The profile called ``name`` (a file ``NAME.toml``) or a path to a profile file."""
    if name.endswith(".toml"):
        path = Path(name)
        if (problem := path_problem(path)) is not None:
            raise ProfileError(f"profile file {shown_path(path)} {problem}")
        return parse_profile(read_text_file(path, "profile file", ProfileError), str(path))
    found = _candidates(profiles_dirs)
    if name not in found and ((len(name) > 100 and os.sep not in name)
                              or path_problem(name) is not None):
        raise ProfileError(f"unknown device {shown_path(name)}: a device is a profile name of "
                           f"at most 100 characters or a .toml file; known devices: "
                           f"{', '.join(sorted(found))}")
    if name not in found:
        path = Path(name)
        if os.sep in name or path.exists() or path.is_symlink():  # meant as a file
            return parse_profile(read_text_file(path, "profile file", ProfileError), name)
        raise ProfileError(f"unknown device {name!r}; known devices: {', '.join(sorted(found))}")
    where, f = found[name]
    text = (read_text_file(f, "profile file", ProfileError) if isinstance(f, Path)
            else f.read_text(encoding="utf-8"))
    profile = parse_profile(text, where)
    if profile.name != name:
        raise ProfileError(
            f"{where}: key 'name' must match the file name {name!r}; got {profile.name!r}"
        )
    return profile


def list_profiles(profiles_dirs: Iterable[str | Path] = ()) -> list[DeviceProfile]:
    """Every profile that :func:`load_profile` can find, by name."""
    return [load_profile(n, profiles_dirs) for n in sorted(_candidates(profiles_dirs))]
