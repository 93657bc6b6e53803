"""`upload-processor job-types`: list, show, put and resolve job types.

    upload-processor job-types list
    upload-processor job-types show ecephys
    upload-processor job-types put my-rig preset.json
    upload-processor job-types resolve session/upload_job.json

Presets live in SSM Parameter Store under a prefix (the stack's `JobTypesPrefix` parameter,
default `/upload-processor/job-types`; `--prefix` or `UPLOAD_PROCESSOR_JOB_TYPES_PREFIX`), one
JSON document per job type, over the defaults shipped with the code. `resolve` prints what will
actually run for an upload_job.json, and where each value came from (default, job type, or the
upload's own override).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

DEFAULT_PREFIX = "/upload-processor/job-types"

job_types_app = typer.Typer(
    help="Manage and resolve job types (presets of tasks).", no_args_is_help=True
)
_err = Console(stderr=True, soft_wrap=True, highlight=False)

PREFIX = typer.Option(
    DEFAULT_PREFIX, "--prefix", envvar="UPLOAD_PROCESSOR_JOB_TYPES_PREFIX", help="SSM prefix."
)
OFFLINE = typer.Option(False, "--offline", help="Only the presets shipped with the code (no SSM).")
ENDPOINT = typer.Option(None, "--endpoint-url", help="A local cloud (local serve).")


def _presets(prefix: str, offline: bool, endpoint_url: str | None) -> dict[str, dict[str, Any]]:
    from upload_processor.domain.job_types import DEFAULT_JOB_TYPES, load_job_types

    if offline:
        return DEFAULT_JOB_TYPES
    import boto3

    try:
        return load_job_types(prefix, ssm=boto3.client("ssm", endpoint_url=endpoint_url), max_age=0)
    except Exception as exc:  # no credentials, no network, a broken preset: say which
        _err.print(f"cannot read job types under {prefix}: {exc}")
        raise typer.Exit(3) from exc


@job_types_app.command("list")
def list_(
    prefix: str = PREFIX, offline: bool = OFFLINE, endpoint_url: str | None = ENDPOINT
) -> None:
    """The job types this deployment defines."""
    from upload_processor.domain.job_types import DEFAULT_JOB_TYPES

    presets = _presets(prefix, offline, endpoint_url)
    table = Table()
    for column in ("job type", "source", "tasks"):
        table.add_column(column)
    for name in sorted(presets):
        source = (
            "shipped" if presets[name] == DEFAULT_JOB_TYPES.get(name) else f"SSM {prefix}/{name}"
        )
        table.add_row(name, source, ", ".join(sorted(presets[name].get("tasks", {}))))
    Console().print(table)


@job_types_app.command("show")
def show(
    name: str, prefix: str = PREFIX, offline: bool = OFFLINE, endpoint_url: str | None = ENDPOINT
) -> None:
    """One job type's preset, as JSON."""
    presets = _presets(prefix, offline, endpoint_url)
    if name not in presets:
        _err.print(f"no job type {name!r}; defined: {', '.join(sorted(presets))}")
        raise typer.Exit(1)
    sys.stdout.write(json.dumps(presets[name], indent=2) + "\n")


@job_types_app.command("put")
def put(
    name: str,
    file: Path,
    prefix: str = PREFIX,
    endpoint_url: str | None = ENDPOINT,
) -> None:
    """Add or replace a job type in SSM (validated first)."""
    import boto3

    from upload_processor.domain.job_types import validate_preset

    if "/" in name or not name.strip():
        _err.print(f"job type name {name!r} may not be empty or contain '/'")
        raise typer.Exit(2)
    try:
        document = json.loads(file.read_text())
        validate_preset(document)
    except OSError as exc:
        _err.print(f"cannot read {file}: {exc.strerror}")
        raise typer.Exit(2) from exc
    except ValueError as exc:
        _err.print(f"{file} is not a job type preset: {exc}")
        raise typer.Exit(1) from exc
    parameter = f"/{prefix.strip('/')}/{name}"
    boto3.client("ssm", endpoint_url=endpoint_url).put_parameter(
        Name=parameter, Value=json.dumps(document), Type="String", Overwrite=True
    )
    _err.print(f"job type {name} written to {parameter}")


@job_types_app.command("resolve")
def resolve_cmd(
    job_file: Path,
    prefix: str = PREFIX,
    offline: bool = OFFLINE,
    endpoint_url: str | None = ENDPOINT,
    as_json: bool = typer.Option(
        False, "--json", help="JSON on stdout: the resolved job and the sources."
    ),
) -> None:
    """What will actually run for this upload_job.json, and where each value came from."""
    from upload_processor.domain.job_types import resolve_job
    from upload_processor.domain.upload_job import parse_upload_job
    from upload_processor.errors import UploadJobError

    try:
        raw = job_file.read_bytes()
    except OSError as exc:
        _err.print(f"cannot read {job_file}: {exc.strerror}")
        raise typer.Exit(2) from exc
    presets = _presets(prefix, offline, endpoint_url)
    try:
        job, notes = parse_upload_job(raw, file=job_file.name)
        resolution = resolve_job(job, presets, file=job_file.name)
    except UploadJobError as exc:
        for issue in exc.issues or []:
            _err.print(f"{issue.file} [{issue.field or '-'}]: {issue.message} ({issue.rule})")
        if not exc.issues:
            _err.print(str(exc))
        raise typer.Exit(1) from exc
    warnings = [n.model_dump(mode="json") for n in notes + resolution.notes]
    if as_json:
        out = {"job": resolution.resolved, "sources": resolution.sources, "warnings": warnings}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    console = Console()
    table = Table(title=f"{job_file} (job type {job.job_type})")
    for column in ("setting", "value", "from"):
        table.add_column(column, overflow="fold")
    for path, source in resolution.sources.items():
        value: Any = resolution.resolved
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        table.add_row(path, json.dumps(value), source)
    console.print(table)
    for warning in warnings:
        console.print(f"[yellow]warning[/]: {warning['message']}")
