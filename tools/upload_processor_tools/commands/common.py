"""What every command shares: how it finds the deployment, how it fails, how it prints JSON.

Exit codes: 1 not found (or invalid), 2 usage (bad options, nowhere to look), 3 AWS could not
be reached or refused. Problems are one line on stderr; `--json` output is the only thing on
stdout.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3

TableOption = typer.Option(
    None,
    "--table",
    envvar="UPLOAD_PROCESSOR_JOBS_TABLE",
    help="The jobs table (stack output JobsTableName).",
)
StackOption = typer.Option(
    None,
    "--stack",
    envvar="UPLOAD_PROCESSOR_STACK",
    help="A deployed stack: its outputs say where everything is.",
)
EndpointOption = typer.Option(
    None,
    "--endpoint-url",
    envvar="AWS_ENDPOINT_URL",
    help="A local cloud's endpoint (e.g. http://127.0.0.1:5050 of `local serve`).",
)
RegionOption = typer.Option(None, "--region", help="AWS region (default: your AWS config).")
JsonOption = typer.Option(False, "--json", help="JSON only, on stdout.")


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def aws_failure(exc: Exception, what: str) -> NoReturn:
    """AWS could not answer (no table, no credentials, endpoint down): exit 3."""
    text = " ".join(str(exc).split())
    fail(f"cannot {what}: {type(exc).__name__}: {text}", EXIT_UNAVAILABLE)


def locator(stack: str | None, endpoint_url: str | None, region: str | None) -> Any:
    """The Locator for these options."""
    from upload_processor_tools.commands.locate import Locator

    return Locator(endpoint_url=endpoint_url, region=region, stack=stack)


def job_store(where: Any, table: str | None) -> Any:
    """A JobStore on the located table (usage errors exit 2)."""
    from upload_processor.adapters.jobs import JobStore
    from upload_processor.errors import ConfigurationError

    try:
        name = where.jobs_table(table)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        aws_failure(exc, "find the jobs table")
    return JobStore(where.client("dynamodb"), name)


def print_json(data: Any) -> None:
    """JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
