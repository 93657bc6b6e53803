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


def _show_alerts(server: Any, stop: threading.Event) -> threading.Thread:
    """A thread printing every notification the local cloud publishes, until `stop`."""
    from upload_processor_tools.commands.tail import AlertFeed, alert_text

    def run() -> None:
        with AlertFeed(server.client, server.topic_arn) as feed:
            while not stop.is_set():
                try:
                    for item in feed.alerts(wait=1):
                        typer.echo(alert_text(item))
                        sys.stdout.flush()
                except Exception as exc:  # the server is stopping: say so, stop showing
                    if not stop.is_set():
                        err.print(f"alerts: stopped showing them: {exc}")
                    return

    thread = threading.Thread(target=run, name="alerts", daemon=True)
    thread.start()
    return thread


def env(
    port: int = typer.Option(
        DEFAULT_PORT, "--port", min=1, max=65535, metavar="PORT", help="`local serve`'s port."
    ),
) -> None:
    """Print the shell lines that point the AWS CLI and boto3 at `local serve`:
    eval "$(upload-processor local env)"."""
    from upload_processor_tools.local.seam import REGION

    for line in (
        f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}",
        f"export AWS_DEFAULT_REGION={REGION}",
        "export AWS_ACCESS_KEY_ID=testing",
        "export AWS_SECRET_ACCESS_KEY=testing",
        "unset AWS_PROFILE AWS_SESSION_TOKEN",
    ):
        typer.echo(line)


def serve(
    port: int = typer.Option(
        DEFAULT_PORT,
        "--port",
        min=0,
        max=65535,
        metavar="PORT",
        help="TCP port (0: any free port).",
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        metavar="ADDRESS",
        help="Address to bind: 127.0.0.1 (default) or 0.0.0.0 (e.g. for a sam local invoke "
        "container; no authentication, keep it off untrusted networks).",
    ),
    log_level: str = typer.Option(
        "WARNING",
        "--log-level",
        metavar="LEVEL",
        help="The functions' LOG_LEVEL (their logs go to stdout).",
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Log every request the server answers."),
    grace: float = typer.Option(
        10.0,
        "--grace",
        min=0,
        metavar="SECONDS",
        help="Seconds to let running executions finish on Ctrl-C.",
    ),
    alerts: bool = typer.Option(
        True, "--alerts/--no-alerts", help="Show each notification as it is published."
    ),
) -> None:
    """Run the stack from template.yaml on a moto server and print where it is, until Ctrl-C."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait any longer
            err.print("stopped (forced)")
            os._exit(130)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = _started(port, host, log_level=log_level, verbose=verbose)
        try:
            _serve_until_stopped(server, stop, alerts=alerts, grace=grace)
        finally:
            server.stop(grace=grace)
        err.print("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _started(port: int, host: str, *, log_level: str, verbose: bool) -> Any:
    """The LocalServer, deployed and listening (warned about when exposed); exit 2 if not."""
    from upload_processor.errors import LocalModeError
    from upload_processor_tools.local.server import LocalServer, exposure_warning

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
    return server


def _serve_until_stopped(server: Any, stop: threading.Event, *, alerts: bool, grace: float) -> None:
    """Print where everything is (the READY line last), show alerts, wait for Ctrl-C."""
    from upload_processor_tools.local.server import banner

    for line in banner(server):
        typer.echo(line)
    typer.echo(f"{READY} local cloud at {server.endpoint_url} (Ctrl-C stops it)")
    sys.stdout.flush()
    feed = _show_alerts(server, stop) if alerts else None
    while not stop.wait(0.5):
        pass
    if feed is not None:
        feed.join(5)
    running = server.running_executions()
    if running and grace:
        err.print(
            f"stopping: letting {len(running)} running execution(s) finish "
            f"(up to {grace:.0f}s; Ctrl-C again to stop now)"
        )


if __name__ == "__main__":  # pragma: no cover - `python -m upload_processor_tools.local.serve_cli`
    typer.run(serve)
