"""`upload-processor job-types`: list, show, put and resolve job types.

    upload-processor job-types list
    upload-processor job-types show ecephys
    upload-processor job-types put my-rig preset.json
    upload-processor job-types resolve session/upload_job.json

Presets live in SSM Parameter Store under a prefix (the deployment's `JobTypesPrefix`, read
from its Ingest function as ingest reads it; `--prefix` or `UPLOAD_PROCESSOR_JOB_TYPES_PREFIX`
override it), one JSON document per job type, over the defaults shipped with the code: the
same job types `validate`, `submit` and ingest use (upload_processor_tools.deployment). `put`
stores complete presets only: a partial one names the type it overrides (`--based-on`). `resolve` prints what will
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

from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    DeploymentOptions,
    fail,
    takes_deployment,
)

job_types_app = typer.Typer(
    help="Manage and resolve job types (presets of tasks).", no_args_is_help=True
)
_err = Console(stderr=True, soft_wrap=True, highlight=False)

PREFIX = typer.Option(
    None,
    "--prefix",
    metavar="PATH",
    envvar="UPLOAD_PROCESSOR_JOB_TYPES_PREFIX",
    help="SSM prefix (default: the deployment's JobTypesPrefix, as ingest reads it).",
)
OFFLINE = typer.Option(False, "--offline", help="Only the presets shipped with the code (no SSM).")


def _presets(where: Any, prefix: str | None, offline: bool) -> dict[str, dict[str, Any]]:
    """The job types ingest resolves uploads with (upload_processor_tools.deployment)."""
    from upload_processor.domain.job_types import DEFAULT_JOB_TYPES
    from upload_processor_tools.deployment import job_types

    if offline:
        return DEFAULT_JOB_TYPES
    try:
        return job_types(where, prefix)
    except Exception as exc:  # no credentials, no network, a broken preset: say which
        fail(f"cannot read the deployment's job types: {exc}", EXIT_UNAVAILABLE)


@job_types_app.command("list")
@takes_deployment
def list_(
    prefix: str | None = PREFIX,
    offline: bool = OFFLINE,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """The job types this deployment defines (what validate, submit and ingest use)."""
    from upload_processor.domain.job_types import DEFAULT_JOB_TYPES

    presets = _presets(deployment.locate(), prefix, offline)
    table = Table()
    for column in ("job type", "source", "tasks"):
        table.add_column(column, overflow="fold")
    for name in sorted(presets):
        source = "shipped" if presets[name] == DEFAULT_JOB_TYPES.get(name) else "SSM"
        table.add_row(name, source, ", ".join(sorted(presets[name].get("tasks", {}))))
    Console().print(table)


@job_types_app.command("show")
@takes_deployment
def show(
    name: str = typer.Argument(..., metavar="NAME", help="The job type."),
    prefix: str | None = PREFIX,
    offline: bool = OFFLINE,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """One job type's preset, as JSON."""
    presets = _presets(deployment.locate(), prefix, offline)
    if name not in presets:
        _err.print(f"no job type {name!r}; defined: {', '.join(sorted(presets))}")
        raise typer.Exit(1)
    sys.stdout.write(json.dumps(presets[name], indent=2) + "\n")


def _complete(document: dict[str, Any], based_on: str | None, presets: dict[str, Any]):
    """The preset to store: complete as given, or `based_on` another type with these overrides.

    A preset that leaves a task out would reject every upload naming that task, so a partial
    one must say which type it overrides (`--based-on`); the stored document is the merge.
    """
    from upload_processor.domain.job_types import (
        DEFAULT_ON_TASKS,
        OPT_IN_TASKS,
        TASK_IDS,
        deep_merge,
    )

    if based_on:
        if based_on not in presets:
            fail(
                f"--based-on {based_on}: no such job type; defined: {', '.join(sorted(presets))}", 1
            )
        return deep_merge(presets[based_on], document)
    implied = {**OPT_IN_TASKS, **DEFAULT_ON_TASKS}  # present in every job type anyway
    missing = [t for t in TASK_IDS if t not in document.get("tasks", {}) and t not in implied]
    if missing:
        fail(
            f"the preset leaves out {', '.join(missing)}: uploads naming them would be "
            "rejected. Give every task, or --based-on TYPE to override another type field by "
            "field (e.g. --based-on default)",
            1,
        )
    return document


@job_types_app.command("put")
@takes_deployment
def put(
    name: str = typer.Argument(..., metavar="NAME", help="The job type to add or replace."),
    file: Path = typer.Argument(..., metavar="FILE", help='The preset: {"tasks": {...}}.'),
    based_on: str | None = typer.Option(
        None,
        "--based-on",
        metavar="TYPE",
        help="The FILE overrides this job type field by field (a partial preset).",
    ),
    prefix: str | None = PREFIX,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Add or replace a job type in SSM (validated and completed first); prints what is stored."""
    from upload_processor.domain.job_types import validate_preset
    from upload_processor_tools.deployment import job_types_prefix

    if "/" in name or not name.strip():
        fail(f"job type name {name!r} may not be empty or contain '/'", EXIT_USAGE)
    try:
        document = json.loads(file.read_text())
        validate_preset(document)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", EXIT_USAGE)
    except ValueError as exc:
        fail(f"{file} is not a job type preset: {exc}", 1)
    where = deployment.locate()
    document = _complete(document, based_on, _presets(where, prefix, False) if based_on else {})
    try:
        parameter = f"/{job_types_prefix(where, prefix).strip('/')}/{name}"
        where.client("ssm").put_parameter(
            Name=parameter, Value=json.dumps(document), Type="String", Overwrite=True
        )
    except Exception as exc:
        fail(f"cannot write job type {name}: {exc}", EXIT_UNAVAILABLE)
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    _err.print(
        f"job type {name} written to {parameter}: ingest uses a new type at once, a changed "
        "one within 5 minutes (its cache)"
    )


@job_types_app.command("resolve")
@takes_deployment
def resolve_cmd(
    job_file: Path = typer.Argument(..., metavar="FILE", help="An upload_job.json."),
    prefix: str | None = PREFIX,
    offline: bool = OFFLINE,
    deployment: DeploymentOptions = DEPLOYMENT,
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
    presets = _presets(deployment.locate(), prefix, offline)
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
