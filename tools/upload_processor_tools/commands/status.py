"""`upload-processor status`: recent jobs as a table, or one job in detail.

    upload-processor status                                # the 50 newest jobs
    upload-processor status --state FAILED --since 7d      # by status (an index query)
    upload-processor status --user scientist@example.org --job-type ecephys --limit 20
    upload-processor status --next-token TOKEN             # the next page (same filters)
    upload-processor status JOB_ID_OR_ASSET_NAME           # record, execution steps, report
    upload-processor status ... --json                     # JSON only on stdout

`--since` takes an ISO date or date-time (naive = UTC) or an age: 30m, 24h, 7d, 2w. An asset
name shows the newest job for that asset.

A job is named by its id, any unique prefix of it, or a unique prefix of its hash (the 8 hex
digits tables print, like git's short commits). Tables fit the terminal (80 columns: job,
status, asset, created, data files and bytes in; from 120 also user, job type and the year;
from 160 whole job ids) and never fold nor cut an id; one job's fields are one line each, so ids and URIs stay whole.

Where the jobs are (the first that answers; see upload_processor_tools.commands.locate):
`--table NAME` or UPLOAD_PROCESSOR_JOBS_TABLE; else the `JobsTableName` output of `--stack
NAME` or UPLOAD_PROCESSOR_STACK; else, with `--endpoint-url URL` or AWS_ENDPOINT_URL (a local
cloud, e.g. `upload-processor local serve`), local mode's table `upload-local-JobsTable`;
else the default `upload-processor configure` saved. The execution and the report are found
from the job record itself. `--profile` and `--region` choose the AWS credentials and region.

Problems are one line on stderr: exit 1 when the job is not found, 2 for usage errors (bad
filters or token, nowhere to look), 3 when AWS cannot be reached or refuses.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    DeploymentOptions,
    JsonOption,
    TableOption,
    aws_failure,
    fail,
    human_size,
    job_store,
    print_json,
    resolve_job_ref,
    short_id,
    takes_deployment,
)

app = typer.Typer(help="Job status.", no_args_is_help=True)

_STYLE = {
    "RECEIVED": "cyan",
    "PROCESSING": "blue",
    "COMPLETE": "green",
    "REJECTED": "yellow",
    "FAILED": "red",
    "CANCELLED": "magenta",
    "succeeded": "green",
    "failed": "red",
    "running": "blue",
    "aborted": "magenta",
}


def _when(value: Any) -> str:
    return str(value).replace("T", " ").replace("Z", "")[:16] if value else "-"


def _styled(value: Any) -> str:
    text = str(value or "-")
    style = _STYLE.get(text)
    return f"[{style}]{text}[/]" if style else text


def _counts(record: dict[str, Any]) -> str:
    if record.get("files") is None:
        return "-"
    return f"{record['files']} · {human_size(record.get('bytes_in'))}"


def _plain(value: Any) -> str:
    """A record value as text: JSON for structures (never a Python repr)."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)


def render_list(console: Console, page: dict[str, Any]) -> None:
    """The listing as a table, then how to get the next page."""
    items = page["items"]
    if not items:
        console.print("no jobs match")
    else:
        wide = console.width >= 120  # room for the user, the job type and the year too
        full = console.width >= 160  # and for whole job ids
        table = Table(
            box=box.SIMPLE_HEAD,
            header_style="bold",
            pad_edge=False,
            show_edge=False,
            collapse_padding=True,
        )
        # ids (job, asset) are never folded nor cut: they are what a user copies
        table.add_column("Job", no_wrap=True, min_width=8)
        table.add_column("Status", no_wrap=True, min_width=9)
        table.add_column("Asset", no_wrap=True)
        table.add_column("Created (UTC)" if wide else "Created UTC", no_wrap=True)
        table.add_column("Files · in", justify="right", overflow="fold")
        if wide:
            table.add_column("User", overflow="fold")
            table.add_column("Job type", no_wrap=True)
        for r in items:
            created = _when(r.get("created_at"))
            row = [
                r.get("job_id", "-") if full else short_id(r.get("job_id", "-")),
                _styled(r.get("status")),
                r.get("asset_name") or "-",
                created if wide or created == "-" else created[5:],
                _counts(r),
            ]
            if wide:
                row += [r.get("user_email") or "-", r.get("job_type") or "-"]
            table.add_row(*row)
        console.print(table)
    if page.get("next_token"):
        console.print(f"more: --next-token {page['next_token']}", soft_wrap=True)


_RECORD_ORDER = (
    "job_id",
    "status",
    "asset_name",
    "user_email",
    "job_type",
    "subject_id",
    "staging_bucket",
    "staging_prefix",
    "report_key",
    "execution_arn",
    "archive_bucket",
    "archive_uri",
    "files",
    "bytes_in",
    "bytes_out",
    "attempts",
    "retry_of",
    "error",
    "last_error",
)


def _execution_meaning(record: dict[str, Any], execution: dict[str, Any]) -> str:
    """Why an execution's status may differ from the job's (a rejection is a run that
    succeeded in rejecting): said in words, so the two never read as a contradiction."""
    job, run = record.get("status"), execution.get("status")
    if run == "SUCCEEDED" and job == "REJECTED":
        return "it ran to the end and rejected the upload (see the report)"
    if run == "SUCCEEDED":
        return f"it ran to the end; the job is {job}"
    if run == "RUNNING":
        return "still running"
    return f"it ended {run}; the job is {job}"


def render_detail(console: Console, detail: dict[str, Any]) -> None:
    """One job: its record, its execution's steps, its report's summary."""
    record = detail["job"]
    _render_record(console, record)
    console.print()
    _render_execution(console, record, detail.get("execution"))
    console.print()
    _render_report(console, detail.get("report"))
    if detail.get("registration"):
        console.print()
        _render_registration(console, detail["registration"])


def _render_registration(console: Console, registration: dict[str, Any]) -> None:
    """The registration steps after Finalize: the summary, then one line per step with what
    it made (ids, links) or why it failed or was skipped."""
    summary = registration["summary"]
    style = "green" if summary == "OK" else "red" if summary.startswith("FAILED") else "yellow"
    console.print(f"[bold]Registration[/] [{style}]{escape(summary)}[/]", soft_wrap=True)
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("Step", "Outcome", "At (UTC)"):
        table.add_column(column, no_wrap=True)
    table.add_column("Reason / details", overflow="fold", ratio=1)
    for step in registration["steps"]:
        said = step.get("reason") or ", ".join(
            f"{k}={v}" for k, v in (step.get("details") or {}).items()
        )
        status = step["status"]
        colour = {"OK": "green", "FAILED": "red", "SKIPPED": "yellow"}.get(status, "white")
        table.add_row(
            step["step"],
            f"[{colour}]{status}[/]",
            str(step.get("at") or "")[11:19] or "-",
            escape(said or "-"),
        )
    console.print(table)


def _render_record(console: Console, record: dict[str, Any]) -> None:
    """The job record, one line per field (the known ones first), never folded by us: an id
    or a URI stays whole, copyable."""
    console.print(
        f"[bold]Job {short_id(record['job_id'])}[/] {_styled(record.get('status'))}",
        soft_wrap=True,
    )
    keys = [k for k in _RECORD_ORDER if k in record]
    keys += sorted(k for k in record if k.endswith("_at"))
    # the registration steps have their own section (_render_registration)
    keys += sorted(k for k in record if k not in keys and k != "registration")
    width = max(map(len, keys))
    for key in keys:
        value = record[key]
        if key == "files":
            value = f"{value} data files archived (metadata files apart)"
        if key in ("bytes_in", "bytes_out"):
            value = f"{value} ({human_size(value)})"
        if isinstance(value, dict):  # e.g. functions: one line per entry
            console.print(f"[bold]{key}[/]")
            for name, item in value.items():
                console.print(f"  {name:<{width - 2}} {escape(_plain(item))}", soft_wrap=True)
            continue
        text = _styled(value) if key == "status" else escape(_plain(value))
        console.print(f"[bold]{key:<{width}}[/] {text}", soft_wrap=True)


def _render_execution(
    console: Console, record: dict[str, Any], execution: dict[str, Any] | None
) -> None:
    """The workflow run: its status in words, its ARN, its steps."""
    if not execution:
        console.print("[bold]Execution[/]: none (the job never started one)")
        return
    console.print(
        f"[bold]Execution[/] (the workflow run) {_styled(execution.get('status'))}: "
        f"{_execution_meaning(record, execution)}",
        soft_wrap=True,
    )
    console.print(execution["arn"], soft_wrap=True, markup=False)
    if execution.get("history_error"):
        console.print(f"history unavailable: {execution['history_error']}", soft_wrap=True)
    if execution.get("steps"):
        console.print(_steps_table(execution["steps"]))


def _steps_table(steps: list[dict[str, Any]]) -> Table:
    """One row a step: name, type, start, seconds, outcome, and its error and retries."""
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("Step", "Type", "Started (UTC)", "Seconds", "Outcome"):
        table.add_column(column, no_wrap=True, justify="right" if column == "Seconds" else "left")
    table.add_column("Error", overflow="fold", ratio=1)
    for s in steps:
        error = ""
        if s.get("error"):
            error = f"{s['error']}: {s.get('cause') or ''}".strip(": ")
        if s.get("retries"):
            error = f"{s['retries']} retr{'y' if s['retries'] == 1 else 'ies'}. {error}"
        table.add_row(
            s.get("name") or "-",
            s.get("type") or "-",
            str(s.get("started_at") or "")[11:19] or "-",
            "-" if s.get("duration_s") is None else f"{s['duration_s']:.1f}",
            _styled(s.get("outcome")),
            error,
        )
    return table


def _render_report(console: Console, report: dict[str, Any] | None) -> None:
    """The report's verdict, its URI and its first 20 issues."""
    if not report:
        console.print("[bold]Report[/]: none")
        return
    if report.get("error"):
        console.print(f"[bold]Report[/] {report['uri']}: {report['error']}", soft_wrap=True)
        return
    console.print(
        f"[bold]Report[/] {report['status']}: {report['errors']} error(s), "
        f"{report['warnings']} warning(s)"
    )
    console.print(report["uri"], soft_wrap=True, markup=False)
    for issue in report.get("issues", [])[:20]:
        where = issue.get("file") or "-"
        if issue.get("field"):
            where += f" [{issue['field']}]"
        console.print(
            f"  {issue['severity'].upper()} {where}: {issue['message']} ({issue['rule']})",
            soft_wrap=True,
            markup=False,
        )
    shown = min(20, len(report.get("issues", [])))
    if report["errors"] + report["warnings"] > shown:
        console.print("  ... see the full report for the other issues", soft_wrap=True)


@app.callback()
def _group() -> None:
    """Job status (mounted as `upload-processor status`)."""


@app.command("status")
@takes_deployment
def status(
    job_or_asset: str | None = typer.Argument(
        None,
        metavar="[JOB]",
        help="A job id (or a unique prefix of it or of its hash, as tables print it), or an "
        "asset name (its newest job).",
    ),
    state: str | None = typer.Option(
        None, "--state", help="RECEIVED, PROCESSING, COMPLETE, REJECTED, FAILED or CANCELLED."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Created since: 2025-06-12, 2025-06-12T15:00Z, 30m, 24h, 7d."
    ),
    user: str | None = typer.Option(None, "--user", help="The user's email, exactly."),
    job_type: str | None = typer.Option(None, "--job-type", help="The job type, exactly."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="Jobs per page."),
    next_token: str | None = typer.Option(
        None, "--next-token", help="The token a previous page printed (repeat its filters)."
    ),
    as_json: bool = JsonOption,
    table: str | None = TableOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """List recent jobs (newest first), or show one job: record, execution steps, report."""
    filters = {"state": state, "since": since, "user": user, "job_type": job_type}
    if job_or_asset is not None:
        given = [
            f"--{k.replace('_', '-')}"
            for k, v in {**filters, "next_token": next_token}.items()
            if v
        ]
        if given:
            fail(f"{', '.join(given)} filter the listing; not with a JOB_OR_ASSET", EXIT_USAGE)
    where = deployment.locate()
    store = job_store(where, table)
    out = Console(soft_wrap=False, highlight=False)
    if job_or_asset is None:
        page = _list_jobs(store, filters, limit=limit, next_token=next_token)
        render, data = render_list, page
    else:
        render, data = render_detail, _job_detail(store, where, job_or_asset)
    if as_json:
        print_json(data)
    else:
        render(out, data)


def _list_jobs(
    store: Any, filters: dict[str, str | None], *, limit: int, next_token: str | None
) -> dict[str, Any]:
    """One page of the listing; a bad filter or token exits 2, AWS failing exits 3."""
    from upload_processor.errors import InvalidQueryError
    from upload_processor.operations.status import list_page

    try:
        return list_page(store, **filters, limit=limit, next_token=next_token)
    except InvalidQueryError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        aws_failure(exc, f"list the jobs in table {store.table_name}")


def _job_detail(store: Any, where: Any, job_or_asset: str) -> dict[str, Any]:
    """One job (by id, prefix or asset name): record, execution, report; not found exits 1."""
    from upload_processor.operations.status import job_detail

    job_or_asset = resolve_job_ref(store, where.client("dynamodb"), job_or_asset)
    try:
        detail = job_detail(
            store,
            sfn=where.client("stepfunctions"),
            s3=where.client("s3"),
            job_or_asset=job_or_asset,
        )
    except Exception as exc:
        aws_failure(exc, f"read job {job_or_asset!r} from table {store.table_name}")
    if detail is None:
        fail(
            f"no job {job_or_asset!r} in table {store.table_name} "
            "(neither a job id nor an asset name)",
            EXIT_NOT_FOUND,
        )
    return detail
