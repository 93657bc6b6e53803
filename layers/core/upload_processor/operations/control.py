"""Operator actions on jobs: retry a FAILED job, cancel a running one, redrive the ingest DLQ.

- `retry`: a new execution of the job's state machine with the original execution input
  (`DescribeExecution`) plus `"retry_of": <previous execution ARN>`, named
  `<job_id>-retry-<n>`; the same job record follows it (`attempts`, `execution_arn`,
  `previous_execution_arns`, `retry_of`, `last_error`). Work already done is not redone:
  Transfer batches whose results are recorded in the archive's work area
  (`_jobs/<job_id>/results/`, kept when a job fails) are skipped by `run_batch`. Ranges of
  chunked files whose multipart upload was aborted when the job failed are the exception:
  their results are dropped here, and the new execution's GatherMetadata opens a new upload.
- `cancel`: `StopExecution`, abort the job's multipart uploads, mark the job CANCELLED (a
  conditional write: never over a finished job), release its asset lease.
  Staged data is never touched. A Lambda already running when the execution stops finishes
  its invocation (Step Functions does not kill it); S3's lifecycle rule aborts any upload it
  opens after the cancel.
- `redrive`: move the ingest dead-letter queue's messages back to the ingest queue, each at
  most once per run, within a count and a time limit; it reports what it moved and left.

Refusals (wrong status, missing execution) raise `OperationRefusedError` with a message an
operator can act on; an unknown job raises `JobNotFoundError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from upload_processor.adapters.jobs import ACTIVE, JobStatus, JobStore
from upload_processor.adapters.notify import RETRY_ADVICE
from upload_processor.domain.archive import RESULTS, work_key
from upload_processor.domain.contracts import ExecutionInput
from upload_processor.errors import (
    JobNotFoundError,
    JobStateConflictError,
    OperationRefusedError,
    UploadProcessorError,
)
from upload_processor.pipeline.archive_guard import release_quietly
from upload_processor.pipeline.finalize import abort_job_uploads

MAX_EXECUTION_NAME = 80


def _job(store: JobStore, job_or_asset: str) -> dict[str, Any]:
    record = store.find(job_or_asset)
    if record is None:
        raise JobNotFoundError(f"no job {job_or_asset!r} (neither a job id nor an asset name)")
    return record


def retry_name(job_id: str, n: int) -> str:
    """`<job_id>-retry-<n>`, within Step Functions' 80 characters (the id's tail is its hash)."""
    suffix = f"-retry-{n}"
    return job_id[-(MAX_EXECUTION_NAME - len(suffix)) :] + suffix


def _upload_open(s3: Any, bucket: str, key: str, upload_id: str) -> bool:
    try:
        s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=1)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404", "NotFound"):
            return False
        raise
    return True


def prepare_work_area(s3: Any, *, archive: str | None, job_id: str) -> dict[str, int]:
    """Keep the recorded batch results a retry can reuse; drop those it cannot.

    A `compress_range` result is a part of a multipart upload: once that upload is aborted
    (a failed job's uploads are), the part is gone and its batch must run again.
    """
    kept = dropped = 0
    if not archive:
        return {"kept_batches": 0, "dropped_batches": 0}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=archive, Prefix=work_key(job_id, f"{RESULTS}/")):
        for obj in page.get("Contents", []):
            results = json.loads(s3.get_object(Bucket=archive, Key=obj["Key"])["Body"].read())
            stale = any(
                r.get("action") == "compress_range"
                and not _upload_open(s3, archive, r["dest_key"], r.get("upload_id") or "")
                for r in results
            )
            if stale:
                s3.delete_object(Bucket=archive, Key=obj["Key"])
                dropped += 1
            else:
                kept += 1
    return {"kept_batches": kept, "dropped_batches": dropped}


def _original_input(raw: str, job_id: str) -> ExecutionInput:
    """The failed execution's input. One started before the deployment had the registration
    states names no `functions.registration`: re-running it would seal the asset and then
    fail, so it is refused with what to do instead."""
    functions = (json.loads(raw) or {}).get("functions") or {}
    if functions and "registration" not in functions:
        raise OperationRefusedError(
            f"job {job_id}'s execution was started by an earlier deployment (before the "
            "registration states after Finalize); retrying it would run states its input cannot "
            "feed. Upload its upload_job.json again (a new version starts a new job)"
        )
    return ExecutionInput.model_validate_json(raw)


def retry(*, store: JobStore, sfn: Any, s3: Any, job: str, force: bool = False) -> dict[str, Any]:
    """Start a new execution of a FAILED job; returns what was started. A job whose failure
    alert called a retry unsafe (RETRY_ADVICE "not ...") is refused unless `force`."""
    record = _job(store, job)
    job_id = record["job_id"]
    _check_retryable(record, force)
    previous = _previous_execution(record)
    described = _finished_execution(sfn, job_id, previous)
    original = _original_input(described.get("input") or "{}", job_id)
    execution_input = original.model_copy(update={"retry_of": previous})
    work = prepare_work_area(s3, archive=record.get("archive_bucket"), job_id=job_id)
    attempts = int(record.get("attempts") or 1) + 1
    _claim_for_retry(store, record, previous, attempts)
    try:
        started, name, attempts = _start_retry(
            sfn, described["stateMachineArn"], job_id, attempts, execution_input
        )
    except Exception as exc:
        store.update(
            job_id,
            JobStatus.FAILED,
            error=f"the retry could not start: {type(exc).__name__}: {exc}"[:2000],
        )
        raise
    store.update(job_id, execution_arn=started["executionArn"], attempts=attempts)
    return {
        "job_id": job_id,
        "status": str(JobStatus.PROCESSING),
        "execution_arn": started["executionArn"],
        "execution_name": name,
        "attempts": attempts,
        "retry_of": previous,
        **work,
    }


def _check_retryable(record: dict[str, Any], force: bool) -> None:
    """Refuse a job that is not FAILED, or whose failure a retry would only repeat (unless
    `force`): the operator gets the reason and what to do instead."""
    job_id, status = record["job_id"], record.get("status")
    if status != JobStatus.FAILED:
        hint = {
            JobStatus.REJECTED: "its metadata was rejected: fix the files named in its report "
            "and upload upload_job.json again",
            JobStatus.COMPLETE: "it is already archived",
            JobStatus.CANCELLED: "it was cancelled: upload upload_job.json again for a new job",
        }.get(status, "it has not finished")
        raise OperationRefusedError(
            f"job {job_id} is {status}, not FAILED; only a FAILED job can be retried ({hint})"
        )
    failed_with = str(record.get("error") or "").split(":", 1)[0]
    if RETRY_ADVICE.get(failed_with, "").startswith("not") and not force:
        raise OperationRefusedError(
            f"job {job_id} failed with {failed_with}; a retry would fail the same way: "
            f"{RETRY_ADVICE[failed_with]} (--force retries anyway)"
        )


def _previous_execution(record: dict[str, Any]) -> str:
    """The ARN of the execution that failed: a retry re-runs its input."""
    previous = record.get("execution_arn")
    if not previous:
        raise OperationRefusedError(
            f"job {record['job_id']} has no execution to retry; upload upload_job.json again instead"
        )
    return str(previous)


def _finished_execution(sfn: Any, job_id: str, previous: str) -> dict[str, Any]:
    """The failed execution, described; refused while it still runs (recording its failure),
    so that a retry never overlaps it."""
    described: dict[str, Any] = sfn.describe_execution(executionArn=previous)
    if described["status"] == "RUNNING":
        raise OperationRefusedError(
            f"job {job_id}'s execution is still running (it is recording its failure); "
            "try again in a moment"
        )
    return described


def _claim_for_retry(store: JobStore, record: dict[str, Any], previous: str, attempts: int) -> None:
    """Move the job FAILED -> PROCESSING before starting anything: of two operators retrying
    at once, only one claims it (the other is refused), so one execution starts."""
    job_id = record["job_id"]
    history = [*(record.get("previous_execution_arns") or []), previous]
    try:
        store.update(
            job_id,
            JobStatus.PROCESSING,
            expected=[JobStatus.FAILED],
            attempts=attempts,
            retry_of=previous,
            previous_execution_arns=history,
            last_error=record.get("error"),
            remove=["error", "failed_step"],  # the previous attempt's; kept in last_error
        )
    except JobStateConflictError as exc:
        raise OperationRefusedError(str(exc)) from None


def _start_retry(
    sfn: Any, state_machine_arn: str, job_id: str, attempts: int, execution_input: ExecutionInput
) -> tuple[dict[str, Any], str, int]:
    """Start the retry's execution as `<job_id>-retry-<n>`; returns (started, name, attempts).

    A name left by a crashed earlier retry is taken: the next number is tried (up to 20).
    """
    name = retry_name(job_id, attempts - 1)
    for _ in range(20):
        try:
            started = sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=execution_input.model_dump_json(),
            )
            return started, name, attempts
        except sfn.exceptions.ExecutionAlreadyExists:
            attempts += 1
            name = retry_name(job_id, attempts - 1)
    raise OperationRefusedError(f"no free execution name for a retry of job {job_id}")


def cancel(
    *, store: JobStore, sfn: Any, s3: Any, job: str, reason: str | None = None
) -> dict[str, Any]:
    """Stop a RECEIVED or PROCESSING job's execution, abort its uploads, mark it CANCELLED."""
    record = _job(store, job)
    job_id, status = record["job_id"], record.get("status")
    if status not in ACTIVE:
        raise OperationRefusedError(
            f"job {job_id} is {status}; only a RECEIVED or PROCESSING job can be cancelled"
        )
    arn = record.get("execution_arn")
    execution_status = None
    stopped = False
    if arn:
        try:
            execution_status = sfn.describe_execution(executionArn=arn)["status"]
        except sfn.exceptions.ExecutionDoesNotExist:
            execution_status = None
        if execution_status == "SUCCEEDED":
            raise OperationRefusedError(
                f"job {job_id}'s execution has already succeeded; its record is being closed"
            )
        if execution_status == "RUNNING":
            sfn.stop_execution(
                executionArn=arn,
                error="Cancelled",
                cause=(reason or "cancelled by an operator")[:32000],
            )
            stopped = True
    aborted = 0
    if record.get("archive_bucket"):
        aborted = abort_job_uploads(s3, archive=record["archive_bucket"], job_id=job_id)
    message = "cancelled by an operator" + (f": {reason}" if reason else "")
    try:
        store.update(
            job_id, JobStatus.CANCELLED, expected=ACTIVE, error=message, cancel_reason=reason
        )
    except JobStateConflictError as exc:
        raise OperationRefusedError(str(exc)) from None
    # a cancelled job's lease is stale anyway (archive_guard); releasing it now frees the asset
    release_quietly(s3, record.get("archive_bucket"), record.get("asset_name"), job_id)
    return {
        "job_id": job_id,
        "status": str(JobStatus.CANCELLED),
        "execution_arn": arn,
        "execution_stopped": stopped,
        "execution_status": "ABORTED" if stopped else execution_status,
        "uploads_aborted": aborted,
    }


DEFAULT_REDRIVE_MAX_MESSAGES = 1000
DEFAULT_REDRIVE_SECONDS = 300.0


@dataclass
class RedriveResult:
    """What one redrive run did: `moved` messages sent back to the ingest queue; `returned`:
    messages this run had moved that came back to the DLQ while it ran (ingest failed them
    again), left there for a look; `left`: what the DLQ holds at the end; `stopped`: why the
    run ended ("empty": no message left to move, "max": the count limit, "time": the time
    limit)."""

    moved: int = 0
    returned: int = 0
    left: int = 0
    stopped: str = "empty"

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready fields."""
        return asdict(self)


def redrive(
    sqs: Any,
    *,
    source_url: str,
    dest_url: str,
    limit: int | None = DEFAULT_REDRIVE_MAX_MESSAGES,
    time_limit: float = DEFAULT_REDRIVE_SECONDS,
    wait_seconds: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> RedriveResult:
    """Move messages from `source_url` (the DLQ) to `dest_url` (the ingest queue), bounded.

    Each message is sent (body and attributes unchanged) before it is deleted from the
    source, so a crash can duplicate a message but never lose one (ingest is idempotent).
    A message ingest cannot process comes back to the DLQ under the id it was sent with: such
    a message is not moved again in this run (it would cycle for ever), but kept invisible
    until the run ends, then left in the DLQ. The run ends when a receive comes back empty,
    after `limit` messages or after `time_limit` seconds, whichever is first.
    """
    result = RedriveResult()
    sent_ids: set[str] = set()
    returned: dict[str, str] = {}  # message id -> receipt handle, made visible again at the end
    deadline = clock() + time_limit
    try:
        while True:
            if limit is not None and result.moved >= limit:
                result.stopped = "max"
                break
            if clock() >= deadline:
                result.stopped = "time"
                break
            batch = min(10, limit - result.moved) if limit is not None else 10
            messages = sqs.receive_message(
                QueueUrl=source_url,
                MaxNumberOfMessages=batch,
                WaitTimeSeconds=wait_seconds,
                # nothing received comes back into view while this run lasts
                VisibilityTimeout=min(43200, int(time_limit) + 60),
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            fresh = []
            for message in messages:
                if message["MessageId"] in sent_ids:
                    returned[message["MessageId"]] = message["ReceiptHandle"]
                else:
                    fresh.append(message)
            if fresh:
                sent_ids |= _move(sqs, fresh, source_url, dest_url, result)
    finally:
        _make_visible(sqs, source_url, list(returned.values()))
    result.returned = len(returned)
    attributes = sqs.get_queue_attributes(
        QueueUrl=source_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    result.left = sum(int(v) for v in attributes.values())
    return result


def _move(
    sqs: Any, messages: list[dict[str, Any]], source_url: str, dest_url: str, result: RedriveResult
) -> set[str]:
    """Send a batch to `dest_url`, then delete what was sent; the ids the copies got."""
    entries = []
    for i, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(i), "MessageBody": message["Body"]}
        if message.get("MessageAttributes"):
            entry["MessageAttributes"] = message["MessageAttributes"]
        entries.append(entry)
    sent = sqs.send_message_batch(QueueUrl=dest_url, Entries=entries)
    done = {s["Id"]: s["MessageId"] for s in sent.get("Successful", [])}
    deletes = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
        for i, m in enumerate(messages)
        if str(i) in done
    ]
    if deletes:
        sqs.delete_message_batch(QueueUrl=source_url, Entries=deletes)
    result.moved += len(deletes)
    if sent.get("Failed"):
        failure = sent["Failed"][0]
        raise UploadProcessorError(
            f"moved {result.moved} message(s), then {len(sent['Failed'])} could not be sent to "
            f"{dest_url} ({failure.get('Code')}: {failure.get('Message')}); they stay in "
            "the DLQ"
        )
    return set(done.values())


def _make_visible(sqs: Any, queue_url: str, receipts: list[str]) -> None:
    """Show the given received messages again at once (ten per request)."""
    for start in range(0, len(receipts), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(receipts[start : start + 10])
            ],
        )
