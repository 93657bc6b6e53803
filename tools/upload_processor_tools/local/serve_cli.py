"""`upload-processor local serve`: the local cloud on a moto server, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from typing import Any

import typer
from rich.console import Console

from upload_processor_tools.local.server import DEFAULT_PORT

err = Console(stderr=True, soft_wrap=True, highlight=False)
READY = "ready:"


def serve(
    port: int = typer.Option(
        DEFAULT_PORT, "--port", min=0, max=65535, help="TCP port (0: any free port)."
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to bind: 127.0.0.1 (default) or 0.0.0.0 (e.g. for a sam local invoke "
        "container; no authentication, keep it off untrusted networks).",
    ),
    log_level: str = typer.Option(
        "WARNING", "--log-level", help="The functions' LOG_LEVEL (their logs go to stdout)."
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Log every request the server answers."),
    grace: float = typer.Option(
        10.0, "--grace", min=0, help="Seconds to let running executions finish on Ctrl-C."
    ),
) -> None:
    """Run the stack from template.yaml on a moto server and print where it is, until Ctrl-C."""
    from upload_processor.errors import LocalModeError
    from upload_processor_tools.local.server import LocalServer, banner, exposure_warning

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait any longer
            err.print("stopped (forced)")
            os._exit(130)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server = LocalServer(port, host, log_level=log_level, verbose=verbose)
            warning = exposure_warning(host)
            if warning:
                err.print(f"[bold red]{warning}[/bold red]", markup=True)
            err.print(f"deploying template.yaml from {server.root} into a moto server ...")
            server.start()
        except LocalModeError as exc:
            err.print(str(exc))
            raise typer.Exit(2) from exc
        try:
            for line in banner(server):
                typer.echo(line)
            typer.echo(f"{READY} local cloud at {server.endpoint_url} (Ctrl-C stops it)")
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
            running = server.running_executions()
            if running and grace:
                err.print(
                    f"stopping: letting {len(running)} running execution(s) finish "
                    f"(up to {grace:.0f}s; Ctrl-C again to stop now)"
                )
        finally:
            server.stop(grace=grace)
        err.print("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover - `python -m upload_processor_tools.local.serve_cli`
    typer.run(serve)
