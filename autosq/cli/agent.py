"""``autosq agent``: serve timings on this device for a search running elsewhere."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer

from autosq.cli._options import (
    between,
    max_memory_mb_option,
    max_model_mb_option,
    max_seconds_option,
)


def agent(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for "
                             "every interface: needs AUTOSQ_AGENT_TOKEN)."),
    port: int = typer.Option(8765, "--port", callback=between(0, 65535),
                             help="Port to listen on (0: any free port)."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Serve HTTPS with this "
                                         "certificate (PEM; with --tls-key)."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="The certificate's key (PEM)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Time every request again instead "
                                  "of answering repeated ones from the result cache."),
    max_model_mb: float = max_model_mb_option(),
    max_seconds: float = max_seconds_option(),
    max_memory_mb: float = max_memory_mb_option(),
) -> None:
    """Run the on-device agent: profiles with `source = "agent"` time their models here.

    The token is read from AUTOSQ_AGENT_TOKEN; without one the agent listens on loopback only.
    """
    from autosq.errors import UsageError
    from autosq.measure.agent_client import TOKEN_ENV
    from autosq.measure.agent_server import make_server
    from autosq.measure.limits import Limits

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together (a certificate and its key)")
    for flag, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path} is not a file (expected a PEM file)")
    token = os.environ.get(TOKEN_ENV)
    limits = Limits(max_model_mb=max_model_mb, max_seconds=max_seconds,
                    max_memory_mb=max_memory_mb)

    def log(line: str) -> None:
        typer.echo(f"{time.strftime('%H:%M:%S')} {line}")
        sys.stdout.flush()

    tls = None if tls_cert is None or tls_key is None else (str(tls_cert), str(tls_key))
    try:
        server = make_server(host, port, token=token, limits=limits, cache=not no_cache,
                             tls=tls, log=log)
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None
    d = server.facts
    scheme = "https" if tls else "http"
    auth = f"token from {TOKEN_ENV}" if token else "no token (loopback only)"
    typer.echo(f"autosq agent on {scheme}://{host}:{server.server_port} ({d['cpu']}, "
               f"{d['cores']} cores, onnxruntime {d['onnxruntime']}); auth: {auth}; limits: "
               f"{limits.max_model_mb:g} MB a model, {limits.max_seconds:g} s, "
               f"{limits.max_memory_mb:.0f} MB of memory; Ctrl-C stops it")
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
