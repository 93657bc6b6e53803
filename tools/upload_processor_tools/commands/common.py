"""What every command shares: how it finds the deployment, how it fails, how it prints JSON.

Exit codes: 1 not found (or invalid), 2 usage (bad options, nowhere to look), 3 AWS could not
be reached or refused. Problems are one line on stderr; `--json` output is the only thing on
stdout.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

import typer

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3

TableOption = typer.Option(
    None,
    "--table",
    metavar="NAME",
    envvar="UPLOAD_PROCESSOR_JOBS_TABLE",
    help="The jobs table (stack output JobsTableName).",
)
StackOption = typer.Option(
    None,
    "--stack",
    metavar="NAME",
    envvar="UPLOAD_PROCESSOR_STACK",
    help="A deployed stack: its outputs say where everything is.",
)
EndpointOption = typer.Option(
    None,
    "--endpoint-url",
    metavar="URL",
    envvar="AWS_ENDPOINT_URL",
    help="A local cloud's endpoint (e.g. http://127.0.0.1:5050 of `local serve`).",
)
RegionOption = typer.Option(
    None, "--region", metavar="REGION", help="AWS region (default: your AWS config)."
)
ProfileOption = typer.Option(
    None, "--profile", metavar="NAME", help="AWS CLI profile (default: AWS_PROFILE, configure)."
)
JsonOption = typer.Option(False, "--json", help="JSON only, on stdout.")


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def aws_failure(exc: Exception, what: str) -> NoReturn:
    """AWS could not answer (no table, no credentials, endpoint down): exit 3."""
    text = " ".join(str(exc).split())
    fail(f"cannot {what}: {type(exc).__name__}: {text}", EXIT_UNAVAILABLE)


def locator(
    stack: str | None, endpoint_url: str | None, region: str | None, profile: str | None = None
) -> Any:
    """The Locator for these options (and the saved defaults of `upload-processor configure`)."""
    from upload_processor.errors import ConfigurationError
    from upload_processor_tools.commands.locate import Locator

    try:
        return Locator(endpoint_url=endpoint_url, region=region, stack=stack, profile=profile)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)


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


def human_size(value: Any) -> str:
    """Bytes in SI units, as the progress bars print them (kB, MB, GB: powers of 1000)."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(value)  # pragma: no cover


def plural(count: int, noun: str) -> str:
    """'1 file', '7 files': every count printed the same way."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


SHORT_HASH = 8  # hex digits of a job id's hash that `short_id` keeps
_HASH = re.compile(r"-([0-9a-f]{20})$")


def short_id(job_id: str) -> str:
    """A job id as tables print it: the hash's first 8 hex digits, like git's short commits."""
    match = _HASH.search(job_id)
    return match.group(1)[:SHORT_HASH] if match else job_id


def _matches(job_id: str, ref: str) -> bool:
    match = _HASH.search(job_id)
    return job_id.startswith(ref) or bool(match and match.group(1).startswith(ref))


def resolve_job_ref(store: Any, dynamodb: Any, ref: str) -> str:
    """A full job id, an asset name, or a unique prefix of a job id or of its hash (at least
    4 characters) → the reference the runtime's lookups take; an ambiguous prefix exits 2."""
    if len(ref) < 4:
        return ref
    try:
        if store.get(ref) is not None:
            return ref
        paginator = dynamodb.get_paginator("scan")
        candidates = {
            item["job_id"]["S"]
            for page in paginator.paginate(
                TableName=store.table_name, ProjectionExpression="job_id"
            )
            for item in page.get("Items", [])
            if _matches(item["job_id"]["S"], ref)
        }
    except Exception as exc:
        aws_failure(exc, f"look up job {ref!r} in table {store.table_name}")
    if len(candidates) > 1:
        shown = ", ".join(sorted(short_id(c) for c in candidates)[:5])
        fail(f"{ref!r} is ambiguous: it matches {len(candidates)} jobs ({shown})", EXIT_USAGE)
    return candidates.pop() if candidates else ref


def print_json(data: Any) -> None:
    """JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
