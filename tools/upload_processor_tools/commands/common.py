"""What every command shares: how it finds the deployment, how it fails, how it prints JSON.

Exit codes: 1 not found (or invalid), 2 usage (bad options, nowhere to look), 3 AWS could not
be reached or refused. Problems are one line on stderr; `--json` output is the only thing on
stdout.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

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


def topic_arn_option(help: str) -> Any:
    """`--topic-arn ARN` (or UPLOAD_PROCESSOR_TOPIC_ARN), with the command's own help."""
    return typer.Option(
        None, "--topic-arn", metavar="ARN", envvar="UPLOAD_PROCESSOR_TOPIC_ARN", help=help
    )


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def aws_failure(exc: Exception, what: str) -> NoReturn:
    """AWS could not answer (no table, no credentials, endpoint down): exit 3."""
    text = " ".join(str(exc).split())
    fail(f"cannot {what}: {type(exc).__name__}: {text}", EXIT_UNAVAILABLE)


_DEPLOYMENT_OPTIONS = {
    "stack": StackOption,
    "endpoint_url": EndpointOption,
    "region": RegionOption,
    "profile": ProfileOption,
}


@dataclass(frozen=True)
class DeploymentOptions:
    """The deployment a command was told about (its --stack, --endpoint-url, --region and
    --profile), located only when the command asks: its own usage checks come first."""

    stack: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None

    def locate(self) -> Any:
        """The Locator for these options (and the saved defaults of `upload-processor
        configure`); a broken saved default exits 2."""
        from upload_processor.errors import ConfigurationError
        from upload_processor_tools.commands.locate import Locator

        try:
            return Locator(
                endpoint_url=self.endpoint_url,
                region=self.region,
                stack=self.stack,
                profile=self.profile,
            )
        except ConfigurationError as exc:
            fail(str(exc), EXIT_USAGE)


@dataclass(frozen=True)
class _Declared:
    """The default that marks a command's DeploymentOptions parameter for `takes_deployment`,
    and which of the options it stands for."""

    names: tuple[str, ...]


DEPLOYMENT = _Declared(tuple(_DEPLOYMENT_OPTIONS))
# `redrive` has never taken --profile: its options stay as they are
DEPLOYMENT_WITHOUT_PROFILE = _Declared(("stack", "endpoint_url", "region"))

Command = TypeVar("Command", bound=Callable[..., Any])


def takes_deployment(command: Command) -> Command:
    """The command, its parameter `deployment: DeploymentOptions = DEPLOYMENT` shown to typer
    as the deployment options, in that parameter's place (so `--help` lists them where they
    were always listed), and handed to the command as one DeploymentOptions.

    Every command that finds the deployment declares it so, in one line: the options are
    defined once, here.
    """
    signature = inspect.signature(command)
    [marked] = [p for p in signature.parameters.values() if isinstance(p.default, _Declared)]
    names = marked.default.names
    options = [
        inspect.Parameter(
            name, marked.kind, default=_DEPLOYMENT_OPTIONS[name], annotation=str | None
        )
        for name in names
    ]
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        parameters += options if parameter is marked else [parameter]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        given = DeploymentOptions(**{name: kwargs.pop(name, None) for name in names})
        return command(*args, **kwargs, **{marked.name: given})

    annotations = {k: v for k, v in command.__annotations__.items() if k != marked.name}
    run.__annotations__ = annotations | {name: str | None for name in names}
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


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
