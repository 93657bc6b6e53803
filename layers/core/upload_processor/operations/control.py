"""Operator actions on jobs: retry a FAILED job, cancel a running one, redrive the ingest DLQ.

- `retry`: a new execution of the job's state machine with the original execution input
  (`DescribeExecution`) plus `"retry_of": <previous execution ARN>`, named
  `<job_id>-retry-<n>`; the same job record follows it (`attempts`, `execution_arn`,
  `previous_execution_arns`, `retry_of`, `last_error`). Work already done is not redone:
  Transfer batches whose results are recorded in the archive's work area
  (`_jobs/<job_id>/results/`, kept when a job fails) are skipped by `run_batch`. Ranges of
  chunked files whose multipart upload was aborted when the job failed are the exception:
  their results are dropped here, and the new execution's GatherMetadata opens a new upload.
- `cancel`: `StopExecution`, abort the job's multipart uploads, mark the job CANCELLED.
  Staged data is never touched. A Lambda already running when the execution stops finishes
  its invocation (Step Functions does not kill it); S3's lifecycle rule aborts any upload it
  opens after the cancel.
- `redrive`: move the ingest dead-letter queue's messages back to the ingest queue.

Refusals (wrong status, missing execution) raise `OperationRefusedError` with a message an
operator can act on; an unknown job raises `JobNotFoundError`.
"""

from __future__ import annotations

import json
from typing import Any

from upload_processor.adapters.jobs import ACTIVE, JobStatus, JobStore
from upload_processor.adapters.notify import RETRY_ADVICE
from upload_processor.errors import (
    JobNotFoundError,
    JobStateConflictError,
    OperationRefusedError,
    UploadProcessorError,
)
from upload_processor.pipeline.finalize import abort_job_uploads
from upload_processor.pipeline.transfer_batch import RESULTS

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
    for page in paginator.paginate(Bucket=archive, Prefix=f"_jobs/{job_id}/{RESULTS}/"):
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


def retry(*, store: JobStore, sfn: Any, s3: Any, job: str, force: bool = False) -> dict[str, Any]:
    """Start a new execution of a FAILED job; returns what was started. A job whose failure
    alert called a retry unsafe (RETRY_ADVICE "not ...") is refused unless `force`."""
    record = _job(store, job)
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
    previous = record.get("execution_arn")
    if not previous:
        raise OperationRefusedError(
            f"job {job_id} has no execution to retry; upload upload_job.json again instead"
        )
    described = sfn.describe_execution(executionArn=previous)
    if described["status"] == "RUNNING":
        raise OperationRefusedError(
            f"job {job_id}'s execution is still running (it is recording its failure); "
            "try again in a moment"
        )
    execution_input = json.loads(described.get("input") or "{}")
    execution_input["retry_of"] = previous
    work = prepare_work_area(s3, archive=record.get("archive_bucket"), job_id=job_id)
    attempts = int(record.get("attempts") or 1) + 1
    history = [*(record.get("previous_execution_arns") or []), previous]
    try:  # claim the job first: two operators retrying at once start one execution
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
    name = retry_name(job_id, attempts - 1)
    try:
        for _ in range(20):  # a name left by a crashed earlier retry: take the next one
            try:
                started = sfn.start_execution(
                    stateMachineArn=described["stateMachineArn"],
                    name=name,
                    input=json.dumps(execution_input),
                )
                break
            except sfn.exceptions.ExecutionAlreadyExists:
                attempts += 1
                name = retry_name(job_id, attempts - 1)
        else:
            raise OperationRefusedError(f"no free execution name for a retry of job {job_id}")
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
    return {
        "job_id": job_id,
        "status": str(JobStatus.CANCELLED),
        "execution_arn": arn,
        "execution_stopped": stopped,
        "execution_status": "ABORTED" if stopped else execution_status,
        "uploads_aborted": aborted,
    }


def redrive(
    sqs: Any,
    *,
    source_url: str,
    dest_url: str,
    limit: int | None = None,
    wait_seconds: int = 0,
) -> int:
    """Move messages from `source_url` (the DLQ) to `dest_url` (the ingest queue).

    Each message is sent (body and attributes unchanged) before it is deleted from the
    source, so a crash can duplicate a message but never lose one (ingest is idempotent).
    Stops when a receive comes back empty or after `limit` messages; returns the count moved.
    """
    moved = 0
    while limit is None or moved < limit:
        batch = min(10, limit - moved) if limit is not None else 10
        out = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=batch,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        )
        messages = out.get("Messages", [])
        if not messages:
            return moved
        entries = []
        for i, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=dest_url, Entries=entries)
        done = {s["Id"] for s in sent.get("Successful", [])}
        deletes = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(messages)
            if str(i) in done
        ]
        if deletes:
            sqs.delete_message_batch(QueueUrl=source_url, Entries=deletes)
        moved += len(deletes)
        if sent.get("Failed"):
            failure = sent["Failed"][0]
            raise UploadProcessorError(
                f"moved {moved} message(s), then {len(sent['Failed'])} could not be sent to "
                f"{dest_url} ({failure.get('Code')}: {failure.get('Message')}); they stay in "
                "the DLQ"
            )
    return moved
