"""One Map iteration: transfer a batch of planned objects and record what was done.

Results go to the archive's work area (`_jobs/<job_id>/results/<batch>.json`) rather than
into the state, so the Map's output stays small whatever the file count. A batch whose results
are already recorded (a retried iteration, a resumed job) is not redone. An item GatherMetadata
marked `resume` (its destination was left by an earlier, failed job for the asset) is not
transferred again when the object there is verified to hold the planned source version
(`archive_guard.reuse_verified`).

A permanent refusal to read or write an object (403 AccessDenied, an archived source) becomes a
TransferError naming both keys: the state machine does not retry it, and the job's failure
says which object to fix. Throttling and 5xx propagate unchanged, for the Map's Retry; each is
recorded too, so that when the retries run out Finalize names the cause (SlowDown, ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.domain.contracts import TransferBatchInput, TransferBatchResult
from upload_processor.domain.plan import PlanItem
from upload_processor.errors import TransferError, error_code
from upload_processor.pipeline.archive_guard import reuse_verified
from upload_processor.pipeline.transfer import TransferResult, transfer, verify

RESULTS = "results"
# Why a batch failed for good, for Finalize to name when results are missing (a Distributed
# Map that tolerates failed iterations, as moto's does, carries on without the error).
FAILURES = "failures"
# S3 answers that no retry fixes: the object's permissions (or KMS key), or its storage class.
REFUSED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "InvalidObjectState"})


def batch_id(batch: list[dict[str, Any]]) -> str:
    """A stable id for a batch: a hash of its items (the same plan gives the same ids).

    The `resume` mark is left out: a retried job's re-planned batches, marked because its
    first attempt left objects in the asset, keep the ids their recorded results have.
    """
    items = [{k: v for k, v in item.items() if k != "resume"} for item in batch]
    digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
    return digest[:24]


def results_key(job_id: str, batch: str) -> str:
    """Where a batch's results are recorded."""
    return f"_jobs/{job_id}/{RESULTS}/{batch}.json"


def failure_key(job_id: str, batch: str) -> str:
    """Where a batch's permanent failure is recorded."""
    return f"_jobs/{job_id}/{FAILURES}/{batch}.json"


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
    """
    batch, job_id = request.batch, request.job_id
    source_bucket, dest_bucket = request.source_bucket, request.dest_bucket
    ident = batch_id(batch)
    key = results_key(job_id, ident)
    results = _recorded(s3, dest_bucket, key)
    resumed = results is not None
    reused = 0
    if results is None:
        results = []
        for raw in batch:
            item = PlanItem.model_validate(raw)
            result = None
            if raw.get("resume"):
                result = reuse_verified(
                    s3, item, source_bucket=source_bucket, dest_bucket=dest_bucket
                )
                reused += result is not None
            if result is None:
                options = {"copy_threshold": copy_threshold} if copy_threshold else {}
                try:
                    result = _transfer(
                        s3, item, source_bucket=source_bucket, dest_bucket=dest_bucket, **options
                    )
                except (TransferError, ClientError) as exc:
                    # a transient ClientError is retried by the Map; if its retries run out,
                    # the record is how Finalize names the cause (results of a later attempt
                    # that succeeded make collect_failures skip it)
                    _record_failure(s3, dest_bucket, failure_key(job_id, ident), exc, item)
                    raise
            if request.verify == "full" and item.action != "compress_range":
                verify(s3, result, dest_bucket=dest_bucket)
            results.append(result.to_dict())
        s3.put_object(
            Bucket=dest_bucket,
            Key=key,
            Body=json.dumps(results).encode(),
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
        )
    return TransferBatchResult(
        batch=ident,
        objects=len(results),
        bytes_in=sum(int(r.get("bytes_in", 0)) for r in results),
        bytes_out=sum(int(r.get("bytes_out", 0)) for r in results),
        resumed=resumed,
        reused=reused,
    )


def _transfer(
    s3: Any, item: PlanItem, *, source_bucket: str, dest_bucket: str, **options: Any
) -> TransferResult:
    """`transfer`, with a permanent refusal turned into a TransferError naming the object."""
    try:
        return transfer(s3, item, source_bucket=source_bucket, dest_bucket=dest_bucket, **options)
    except ClientError as exc:
        code = error_code(exc)
        if code not in REFUSED_CODES:
            raise
        raise TransferError(
            f"S3 refused the transfer ({code}: {exc.response.get('Error', {}).get('Message', '')}); "
            f"give the pipeline read access to the staged object {item.source_key!r} and write "
            "access to the archive (ACL, bucket policy, KMS key; restore an archived object), "
            "then upload upload_job.json again",
            source=f"s3://{source_bucket}/{item.source_key}",
            dest=f"s3://{dest_bucket}/{item.dest_key}",
        ) from exc


def _record_failure(
    s3: Any, bucket: str, key: str, exc: TransferError | ClientError, item: PlanItem | None = None
) -> None:
    """Keep the failure's message beside the results (best effort: the error itself is what
    the state machine sees). A TransferError names its objects; a ClientError is given them."""
    named = isinstance(exc, TransferError) or item is None
    message = str(exc) if named else f"{item.dest_key}: {exc}"
    with contextlib.suppress(ClientError):
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps({"error": type(exc).__name__, "message": message}).encode(),
            ContentType="application/json",
        )


def collect_failures(s3: Any, bucket: str, job_id: str) -> list[str]:
    """The recorded permanent failures of the job's batches ("<error>: <message>"), in key order."""
    out: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    done = {
        obj["Key"].rsplit("/", 1)[1]
        for page in paginator.paginate(Bucket=bucket, Prefix=f"_jobs/{job_id}/{RESULTS}/")
        for obj in page.get("Contents", [])
    }
    for page in paginator.paginate(Bucket=bucket, Prefix=f"_jobs/{job_id}/{FAILURES}/"):
        for obj in page.get("Contents", []):
            if obj["Key"].rsplit("/", 1)[1] in done:  # a later attempt of the batch succeeded
                continue
            body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            out.append(f"{body.get('error')}: {body.get('message')}")
    return out


def collect_results(s3: Any, bucket: str, job_id: str) -> list[TransferResult]:
    """Every result recorded for the job, in key order."""
    out: list[TransferResult] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"_jobs/{job_id}/{RESULTS}/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out += [TransferResult.from_dict(r) for r in json.loads(body)]
    return sorted(out, key=lambda r: (r.dest_key, r.part_number or 0))
