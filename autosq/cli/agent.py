"""``autosq agent``: serve timings on this device for a search running elsewhere."""

from __future__ import annotations

import typer

from autosq.cli._options import between


def agent(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for "
                             "every interface; only on a network you trust)."),
    port: int = typer.Option(8765, "--port", callback=between(0, 65535),
                             help="Port to listen on (0: any free port)."),
) -> None:
    """Run the on-device agent: profiles with `source = "agent"` time their models here."""
    from autosq.errors import UsageError
    from autosq.measure.agent_server import info, make_server

    try:
        server = make_server(host, port)
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None
    d = info()
    typer.echo(f"autosq agent on http://{host}:{server.server_port} ({d['cpu']}, {d['cores']} "
               f"cores, onnxruntime {d['onnxruntime']}); Ctrl-C stops it")
    try:
        server.serve_forever()
    finally:
        server.server_close()
