"""Operator commands: `upload-processor retry JOB`, `cancel JOB`, `redrive`.

    upload-processor retry rig-7-session-1-0123abcd...    # a new execution of a FAILED job
    upload-processor cancel JOB --reason "wrong subject"  # stop it, abort its uploads
    upload-processor redrive                              # ingest DLQ → ingest queue

`retry` and `cancel` accept a job id or an asset name (its newest job). `retry` starts a new
execution with the original input (plus `retry_of`), named `<job_id>-retry-<n>`, on the same
job record; transfer batches already recorded in the archive's work area are not redone.
`cancel` stops the execution, aborts the job's multipart uploads and marks it CANCELLED;
staged data is never touched. `redrive` moves the messages of the ingest dead-letter queue
back to the ingest queue, each at most once per run, within `--max` messages and
`--max-seconds`, and prints what it moved, what came back and what it left.

Where things are: as for `status` (`--table`, `--stack`, `--endpoint-url`; see
upload_processor_tools.commands.locate); `redrive` takes `--queue-url` / `--dlq-url` (or
UPLOAD_PROCESSOR_INGEST_QUEUE_URL / UPLOAD_PROCESSOR_INGEST_DLQ_URL, or the stack's
`IngestQueueUrl` / `IngestDeadLetterQueueUrl` outputs). `--json` prints the result as JSON
only. Exit 0 done; 1 the job is not found or the operation is refused (e.g. retrying a job
that is not FAILED: the message says why); 2 usage errors; 3 AWS cannot be reached or refuses.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import typer

from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    DEPLOYMENT_WITHOUT_PROFILE,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    DeploymentOptions,
    JsonOption,
    TableOption,
    aws_failure,
    fail,
    job_store,
    print_json,
    resolve_job_ref,
    takes_deployment,
)

app = typer.Typer(help="Operator commands.", no_args_is_help=True)

JobArgument = typer.Argument(
    ...,
    metavar="JOB",
    help="A job id (or a unique prefix of it or of its hash), or an asset name (its newest job).",
)


def _operate(
    action: str, job: str, table: str | None, deployment: DeploymentOptions, **options: Any
) -> tuple[dict[str, Any], Any]:
    """`retry` or `cancel` (upload_processor.operations.control) on a job named as users name
    it: (its result, the Locator). Not found or refused exits 1, AWS failing exits 3."""
    from upload_processor.errors import JobNotFoundError, OperationRefusedError
    from upload_processor.operations import control

    where = deployment.locate()
    store = job_store(where, table)
    job = resolve_job_ref(store, where.client("dynamodb"), job)
    try:
        result = getattr(control, action)(
            store=store,
            sfn=where.client("stepfunctions"),
            s3=where.client("s3"),
            job=job,
            **options,
        )
    except (JobNotFoundError, OperationRefusedError) as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except Exception as exc:
        aws_failure(exc, f"{action} job {job}")
    return result, where


@app.callback()
def _group() -> None:
    """Operator commands (mounted as `upload-processor retry|cancel|redrive`)."""


@app.command("retry")
@takes_deployment
def retry(
    job: str = JobArgument,
    force: bool = typer.Option(
        False, "--force", help="Retry even when the failure's alert calls a retry unsafe."
    ),
    as_json: bool = JsonOption,
    table: str | None = TableOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Start a new execution of a FAILED job; work already in the archive is not redone."""
    result, _ = _operate("retry", job, table, deployment, force=force)
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"job {result['job_id']}: attempt {result['attempts']} started as "
        f"{result['execution_name']} ({result['kept_batches']} transfer batch(es) already "
        f"done are kept, {result['dropped_batches']} redone)\n"
        f"follow it with: upload-processor status {result['job_id']}"
    )


def _ended(sfn: Any, result: dict[str, Any], wait: float) -> tuple[str, datetime | None]:
    """The stopped execution's status and stop time once it has ended, or (RUNNING, None)
    after `wait` seconds: a stop is a request, and `cancel` says whether it has taken effect."""
    deadline = time.monotonic() + wait
    while True:
        try:
            described = sfn.describe_execution(executionArn=result["execution_arn"])
        except Exception:
            return str(result["execution_status"]), None
        status = str(described["status"])
        if status != "RUNNING":
            return status, described.get("stopDate")
        if time.monotonic() >= deadline:
            return status, None
        time.sleep(0.5)


def _stopped_phrase(result: dict[str, Any], wait: float) -> str:
    """What became of the execution, in the words `cancel` prints."""
    if not result["execution_stopped"]:
        return "no running execution"
    if result["execution_status"] == "RUNNING":
        return (
            f"execution still stopping after {wait:g}s (state RUNNING; see "
            f"`upload-processor status {result['job_id']}`)"
        )
    at = result.get("stopped_at")
    when = f" at {at}" if at else ""
    return f"execution stopped{when}, state {result['execution_status']}"


@app.command("cancel")
@takes_deployment
def cancel(
    job: str = JobArgument,
    reason: str | None = typer.Option(
        None, "--reason", metavar="TEXT", help="Recorded on the job."
    ),
    wait: float = typer.Option(
        10,
        "--wait",
        min=0,
        metavar="SECONDS",
        help="How long to wait for the execution to end, to say whether it has.",
    ),
    as_json: bool = JsonOption,
    table: str | None = TableOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Stop a RECEIVED or PROCESSING job, abort its uploads, mark it CANCELLED (staged data untouched)."""
    result, where = _operate("cancel", job, table, deployment, reason=reason)
    result["stopped_at"] = None
    if result["execution_stopped"]:
        status, stop = _ended(where.client("stepfunctions"), result, wait)
        result["execution_status"] = status
        if stop is not None:
            stop = stop if stop.tzinfo else stop.replace(tzinfo=UTC)
            result["stopped_at"] = f"{stop.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"job {result['job_id']} CANCELLED: {_stopped_phrase(result, wait)}; "
        f"{result['uploads_aborted']} multipart upload(s) aborted; staged data untouched"
    )


@app.command("redrive")
@takes_deployment
def redrive(
    queue_url: str | None = typer.Option(
        None, "--queue-url", envvar="UPLOAD_PROCESSOR_INGEST_QUEUE_URL", help="The ingest queue."
    ),
    dlq_url: str | None = typer.Option(
        None,
        "--dlq-url",
        envvar="UPLOAD_PROCESSOR_INGEST_DLQ_URL",
        help="The ingest dead-letter queue.",
    ),
    max_messages: int | None = typer.Option(
        None, "--max", min=1, help="Move at most this many messages (default 1000)."
    ),
    max_seconds: float | None = typer.Option(
        None,
        "--max-seconds",
        min=0,
        help="Stop moving after this many seconds (default 300; a message that fails ingest "
        "again comes back to the DLQ, and is not moved twice in one run).",
    ),
    wait: int = typer.Option(
        1, "--wait", min=0, max=20, help="Seconds each receive waits for a message."
    ),
    as_json: bool = JsonOption,
    deployment: DeploymentOptions = DEPLOYMENT_WITHOUT_PROFILE,
) -> None:
    """Move the ingest dead-letter queue's messages back to the ingest queue; print the count."""
    from upload_processor.errors import ConfigurationError
    from upload_processor.operations import control as operations

    where = deployment.locate()
    try:
        queue, dlq = where.ingest_queues(queue_url, dlq_url)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        aws_failure(exc, "find the ingest queues")
    try:
        result = operations.redrive(
            where.client("sqs"),
            source_url=dlq,
            dest_url=queue,
            wait_seconds=wait,
            **{"limit": max_messages} if max_messages else {},
            **{"time_limit": max_seconds} if max_seconds is not None else {},
        )
    except Exception as exc:
        aws_failure(exc, f"move messages from {dlq} to {queue}")
    if as_json:
        print_json({**result.to_dict(), "from": dlq, "to": queue})
        return
    _print_redriven(result, dlq, queue)


def _print_redriven(result: Any, dlq: str, queue: str) -> None:
    """What was moved, why it stopped, what came back and what is left."""
    why = {
        "empty": "nothing else to move",
        "max": "the --max count of messages was moved",
        "time": "the --max-seconds time limit was reached",
    }[result.stopped]
    typer.echo(f"moved {result.moved} message(s) from {dlq} to {queue}; stopped: {why}")
    if result.returned:
        typer.echo(
            f"{result.returned} of them came back to the DLQ during this run (ingest fails them "
            "again): they were left there; look at them before redriving again"
        )
    typer.echo(f"left {result.left} message(s) in {dlq}")


__all__ = ["app", "cancel", "redrive", "retry"]
