"""One Map iteration: transfer a batch of planned objects and record what was done.

Results go to the archive's work area (`domain.archive.results_key`) rather than into the
state, so the Map's output stays small whatever the file count. A batch whose results are
already recorded (a retried iteration, a resumed job) is not redone. An item GatherMetadata
marked `resume` (its destination was left by an earlier, failed job for the asset) is not
transferred again when the object there is verified to hold the planned source version
(`archive_guard.reuse_verified`).

A permanent refusal to read or write an object (403 AccessDenied, an archived source) becomes a
TransferError naming both keys: the state machine does not retry it, and the job's failure
says which object to fix. Throttling and 5xx leave as `TransientError`, for the Map's Retry;
each is recorded too (`failure_key`), so that when the retries run out Finalize names the
cause (SlowDown, ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import put_json
from upload_processor.domain.archive import (
    FAILURES,
    RESULTS,
    failure_key,
    results_key,
    work_key,
)
from upload_processor.domain.contracts import TransferBatchInput, TransferBatchResult
from upload_processor.domain.plan import PlanItem
from upload_processor.errors import (
    SourceChangedError,
    TransferError,
    TransientError,
    UploadProcessorError,
    VerificationError,
)
from upload_processor.pipeline.archive_guard import reuse_verified
from upload_processor.pipeline.transfer.faults import refused, transient_surfaced, url
from upload_processor.pipeline.transfer.result import TransferResult
from upload_processor.pipeline.transfer.route import transfer
from upload_processor.pipeline.transfer.verification import verify

RANGE_ACTIONS = ("compress_range", "encode_ecephys")


def batch_id(batch: list[dict[str, Any]]) -> str:
    """A stable id for a batch: a hash of its items (the same plan gives the same ids).

    The `resume` mark is left out: a retried job's re-planned batches, marked because its
    first attempt left objects in the asset, keep the ids their recorded results have.
    """
    items = [{k: v for k, v in item.items() if k != "resume"} for item in batch]
    digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
    return digest[:24]


def _recorded(s3: Any, bucket: str, key: str) -> list[dict[str, Any]] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def run_batch(
    s3: Any, request: TransferBatchInput, *, copy_threshold: int | None = None
) -> TransferBatchResult:
    """Transfer every item, verify what can be verified now, record the results.

    `copy_threshold`: objects above it are copied with UploadPartCopy (default: S3's 5 GiB).
    A transient S3 fault anywhere in the batch raises `TransientError`.
    """
    batch, job_id = request.batch, request.job_id
    source_bucket, dest_bucket = request.source_bucket, request.dest_bucket
    ident = batch_id(batch)
    key = results_key(job_id, ident)
    with transient_surfaced(f"transferring batch {ident} of job {job_id}"):
        results = _recorded(s3, dest_bucket, key)
        resumed = results is not None
        reused = 0
        if results is None:
            buckets = {"source_bucket": source_bucket, "dest_bucket": dest_bucket}
            results = []
            for raw in batch:
                item = PlanItem.model_validate(raw)
                result = reuse_verified(s3, item, **buckets) if raw.get("resume") else None
                reused += result is not None
                if result is None:
                    result = _transfer_recorded(
                        s3, item, job_id, ident, copy_threshold=copy_threshold, **buckets
                    )
                # a range is verified as it is written (a part by Finalize once completed,
                # an ecephys chunk by decoding it before its PUT)
                if request.verify == "full" and item.action not in RANGE_ACTIONS:
                    verify(s3, result, dest_bucket=dest_bucket)
                results.append(result.to_dict())
            put_json(s3, dest_bucket, key, results, indent=None)
    return TransferBatchResult(
        batch=ident,
        objects=len(results),
        bytes_in=sum(int(r.get("bytes_in", 0)) for r in results),
        bytes_out=sum(int(r.get("bytes_out", 0)) for r in results),
        resumed=resumed,
        reused=reused,
    )


def _transfer_recorded(
    s3: Any,
    item: PlanItem,
    job_id: str,
    batch: str,
    *,
    source_bucket: str,
    dest_bucket: str,
    copy_threshold: int | None,
) -> TransferResult:
    """`transfer`, with a permanent refusal turned into a TransferError naming the object,
    and any failure recorded before it is raised.

    A transient one is retried by the Map; if its retries run out, the record is how Finalize
    names the cause (results of a later attempt that succeeded make collect_failures skip it).
    """
    options = {"copy_threshold": copy_threshold} if copy_threshold else {}
    try:
        try:
            return transfer(
                s3, item, source_bucket=source_bucket, dest_bucket=dest_bucket, **options
            )
        except ClientError as exc:
            source, dest = url(source_bucket, item.source_key), url(dest_bucket, item.dest_key)
            refusal = refused(exc, item, source=source, dest=dest)
            if refusal is None:
                raise
            raise refusal from exc
    except (TransferError, TransientError, ClientError) as exc:
        _record_failure(s3, dest_bucket, failure_key(job_id, batch), exc, item)
        raise


def _record_failure(
    s3: Any, bucket: str, key: str, exc: Exception, item: PlanItem | None = None
) -> None:
    """Keep the failure's message beside the results (best effort: the error itself is what
    the state machine sees). The project's errors name their objects; a ClientError is given
    them. A TransferError keeps its parts, so that Finalize can raise it again
    (`RecordedFailure.as_error`) when the completion it made impossible fails."""
    named = isinstance(exc, UploadProcessorError) or item is None
    message = str(exc) if named else f"{item.dest_key}: {exc}"
    body: dict[str, Any] = {"error": type(exc).__name__, "message": message}
    if item is not None:
        body["dest_key"] = item.dest_key
    if isinstance(exc, TransferError):
        body.update(reason=exc.reason, source=exc.source, dest=exc.dest)
    with contextlib.suppress(ClientError):
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(body).encode(),
            ContentType="application/json",
        )


# The recorded errors Finalize can raise again, by name.
_TRANSFER_ERRORS = {
    cls.__name__: cls for cls in (TransferError, VerificationError, SourceChangedError)
}


@dataclass(frozen=True)
class RecordedFailure:
    """One batch's recorded failure: the error's class name and message, the planned object
    it concerns, and (for a TransferError) its reason, source and destination."""

    error: str
    message: str
    dest_key: str | None = None
    reason: str | None = None
    source: str | None = None
    dest: str | None = None

    def __str__(self) -> str:
        return f"{self.error}: {self.message}"

    def as_error(self) -> TransferError | None:
        """The recorded TransferError (of its own class) again; None for any other fault."""
        cls = _TRANSFER_ERRORS.get(self.error)
        if cls is None or self.reason is None or self.source is None or self.dest is None:
            return None
        return cls(self.reason, source=self.source, dest=self.dest)


def recorded_failures(s3: Any, bucket: str, job_id: str) -> list[RecordedFailure]:
    """The recorded permanent failures of the job's batches, in key order."""
    out: list[RecordedFailure] = []
    paginator = s3.get_paginator("list_objects_v2")
    done = {
        obj["Key"].rsplit("/", 1)[1]
        for page in paginator.paginate(Bucket=bucket, Prefix=work_key(job_id, f"{RESULTS}/"))
        for obj in page.get("Contents", [])
    }
    fields = ("dest_key", "reason", "source", "dest")
    for page in paginator.paginate(Bucket=bucket, Prefix=work_key(job_id, f"{FAILURES}/")):
        for obj in page.get("Contents", []):
            if obj["Key"].rsplit("/", 1)[1] in done:  # a later attempt of the batch succeeded
                continue
            body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            known = {name: str(body[name]) for name in fields if body.get(name) is not None}
            out.append(RecordedFailure(str(body.get("error")), str(body.get("message")), **known))
    return out


def collect_failures(s3: Any, bucket: str, job_id: str) -> list[str]:
    """The recorded permanent failures of the job's batches ("<error>: <message>"), in key order."""
    return [str(failure) for failure in recorded_failures(s3, bucket, job_id)]


def collect_results(s3: Any, bucket: str, job_id: str) -> list[TransferResult]:
    """Every result recorded for the job, in key order."""
    out: list[TransferResult] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=work_key(job_id, f"{RESULTS}/")):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out += [TransferResult.from_dict(r) for r in json.loads(body)]
    return sorted(out, key=lambda r: (r.dest_key, r.part_number or 0))
