"""``autosq agent`` as the runbook (docs/agent.md) starts it: a process of its own, a token from the
environment, only the minimal install's modules, one log line per request."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from autosq._io import CACHE_ENV

Cli = Callable[..., tuple[int, str, str]]
TOKEN = "runbook-token-0123456789"
# What the agent's minimal install leaves out (docs/agent.md, running it on a Raspberry Pi).
NOT_INSTALLED = ("torch", "optuna", "pandas", "fvcore", "onnx", "sqlalchemy", "matplotlib",
                 "PIL", "rich")
START = ("import sys\n"
         f"for name in {NOT_INSTALLED!r}:\n"
         "    sys.modules[name] = None  # importing it raises ImportError\n"
         "from autosq.cli import run\n"
         "sys.argv = ['autosq', *sys.argv[1:]]\n"
         "run()\n")


@pytest.fixture
def agent_process(isolated_cache: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {**os.environ, CACHE_ENV: str(isolated_cache), "AUTOSQ_AGENT_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-c", START, "agent", "--host", "127.0.0.1",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.search(r"on (http://127\.0\.0\.1:\d+) ", first)
    assert match, (first, proc.stderr.read() if proc.stderr else "")
    try:
        yield proc, first
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)


def test_the_runbook_agent_serves_a_measurement(agent_process: tuple[subprocess.Popen[str], str],
                                                cli: Cli, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from autosq.arch.model import build
    from autosq.arch.presets import preset
    from autosq.measure.onnx import export_bytes

    proc, first = agent_process
    assert "auth: token from AUTOSQ_AGENT_TOKEN" in first and "limits:" in first
    url = re.search(r"on (http://\S+) ", first)
    assert url is not None
    (tmp_path / "pi.toml").write_text(f'name = "pi"\n[budget]\nmax_mb = 5\n[latency]\n'
                                      f'source = "agent"\nurl = "{url.group(1)}"\n')
    model = tmp_path / "m.onnx"
    model.write_bytes(export_bytes(build(preset("squeezenet1_1", input_size=32,
                                                num_classes=10), seed=0), 32))
    monkeypatch.setenv("AUTOSQ_AGENT_TOKEN", TOKEN)
    code, out, err = cli("measure", str(model), "--device", "pi", "--profiles", str(tmp_path),
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["latency_kind"] == "device" and result["protocol"]["cache"] == "miss"
    assert proc.stdout is not None
    # One line per request: the client's first check of the token, then the timing (client,
    # model hash, result, seconds).
    assert re.match(r"\d\d:\d\d:\d\d 127\.0\.0\.1 GET /info 200 ", proc.stdout.readline())
    line = proc.stdout.readline()
    assert re.match(r"\d\d:\d\d:\d\d 127\.0\.0\.1 POST [0-9a-f]{12} 200 [\d.]+ms \(cache miss\) "
                    r"[\d.]+s$", line.strip()), line
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err


def test_agent_flags_are_checked(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("agent", "--tls-cert", str(tmp_path / "cert.pem"))
    assert code == 2 and "--tls-cert and --tls-key go together" in err
    code, _, err = cli("agent", "--max-memory-mb", "10")
    assert code == 2 and "--max-memory-mb must be 0 (the default) or >= 256" in err
    code, _, err = cli("agent", "--max-seconds", "nan")
    assert code == 2 and "--max-seconds must be a number of seconds > 0" in err
