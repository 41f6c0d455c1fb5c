"""``autosq agent``: serve timings on this device for a search running elsewhere."""

from __future__ import annotations

import typer

from autosq.cli import app


@app.command()
def agent(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for "
                             "every interface; only on a network you trust)."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
) -> None:
    """Run the on-device agent: profiles with `source = "agent"` time their models here."""
    from autosq.agent import info, make_server
    from autosq.errors import UsageError

    try:
        server = make_server(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    d = info()
    typer.echo(f"autosq agent on http://{host}:{server.server_port} ({d['cpu']}, {d['cores']} "
               f"cores, onnxruntime {d['onnxruntime']}); Ctrl-C stops it")
    try:
        server.serve_forever()
    finally:
        server.server_close()
