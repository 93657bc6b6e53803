"""Finalize: close a job, whatever its outcome.

`complete`: verify every transferred object, write the asset's metadata (`metadata.nd.json`, the
core files, the staged originals under `original_metadata/`) and `manifest.json` last (its
presence marks the asset complete), mark the job COMPLETE (the registration states after it
catalog and announce the asset and send the `end` notification: pipeline.registration).
`rejected`: mark the job REJECTED, send the user the report's problems and put `Upload Job
Rejected` on EventBridge. `failed`: mark the job FAILED, notify, put `Upload Job Failed`.

The archive is never overwritten (upload_processor.pipeline.archive_guard): `complete` writes only while
the job holds the asset's lease and no manifest exists, and writes the manifest itself with
`IfNoneMatch="*"`; objects a failed earlier job left under the asset that this job's plan does
not account for are removed before the manifest seals it. A no-op job (GatherMetadata found the
complete asset identical to the staged session) writes nothing into the asset: the job is
COMPLETE with a `note`. Every outcome releases the job's lease (never another job's).

Staging is read-only here, with one opt-in exception: a `complete` job whose resolved task
`remove_source_folders` is not skipped removes, once its manifest is written, the staged
objects the manifest records that still have the ETag it archived
(upload_processor.pipeline.staging_cleanup). The job record's `staging_cleanup` says what was removed
and kept; a cleanup problem is logged and recorded, and never fails or undoes the job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters import notify
from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.adapters.s3 import (
    is_conflict,
    join,
    put_json,
    read_bytes,
)
from upload_processor.domain.archive import MANIFEST, work_key
from upload_processor.domain.contracts import (
    CompleteInput,
    FailedInput,
    FinalizeInput,
    RejectedInput,
)
from upload_processor.domain.report import REPORT_FILENAME, Report
from upload_processor.errors import (
    AssetExistsError,
    AssetLockedError,
    TransferError,
    VerificationError,
    error_code,
    is_transient,
    transient_as_retryable,
)
from upload_processor.pipeline import staging_cleanup
from upload_processor.pipeline.announce import failed_event, rejected_event
from upload_processor.pipeline.archive_guard import (
    asset_objects,
    holds_asset_lock,
    read_manifest,
    release_quietly,
)
from upload_processor.pipeline.failures import (
    missing_objects_error,
    recorded_cause,
    with_batch_failures,
)
from upload_processor.pipeline.transfer import (
    TransferResult,
    abort_chunked,
    complete_chunked,
    verify,
)
from upload_processor.pipeline.transfer.batch import (
    collect_results,
)
from upload_processor.settings import Settings

logger = logging.getLogger(__name__)


def seal_transfers(
    s3: Any, *, archive: str, job_id: str, plan: list[list[dict[str, Any]]], verify_mode: str
) -> list[TransferResult]:
    """Complete the chunked uploads and check every planned object is in the archive.

    Quick verification (the default) checks each object's size and S3 checksum against what
    its transfer recorded; `full` also decompresses every compressed object and compares it
    with the source's SHA-256 (the Transfer iterations already did that for whole files).
    """
    recorded = collect_results(s3, archive, job_id)
    planned = {item["dest_key"] for batch in plan for item in batch}
    whole = [r for r in recorded if r.action != "compress_range"]
    parts: dict[str, list[TransferResult]] = {}
    for result in recorded:
        if result.action == "compress_range":
            parts.setdefault(result.upload_id or "", []).append(result)
    for upload_parts in parts.values():
        try:
            completed = complete_chunked(s3, upload_parts, dest_bucket=archive)
        except TransferError as exc:
            dest_key = upload_parts[0].dest_key
            raise recorded_cause(s3, archive, job_id, exc, dest_key) from exc
        if verify_mode == "full":
            verify(s3, completed, dest_bucket=archive)
        whole.append(completed)
    done = {r.dest_key for r in whole}
    missing = sorted(planned - done)
    if missing:
        raise missing_objects_error(s3, archive, job_id, missing)
    for result in whole:
        check_stored(s3, result, dest_bucket=archive)
    return sorted(whole, key=lambda r: r.dest_key)


def check_stored(s3: Any, result: TransferResult, *, dest_bucket: str) -> None:
    """The object exists with the size (and S3 checksum, when recorded) its transfer reported."""
    dest = f"s3://{dest_bucket}/{result.dest_key}"
    try:
        head = s3.head_object(Bucket=dest_bucket, Key=result.dest_key, ChecksumMode="ENABLED")
    except s3.exceptions.ClientError as exc:
        raise VerificationError(f"not found: {exc}", source=result.source_key, dest=dest) from exc
    if int(head["ContentLength"]) != result.bytes_out:
        raise VerificationError(
            f"holds {head['ContentLength']} bytes, its transfer wrote {result.bytes_out}",
            source=result.source_key,
            dest=dest,
        )
    stored = (head.get("ChecksumSHA256") or "").split("-")[0]
    expected = (result.checksum_sha256 or "").split("-")[0]
    if stored and expected and stored != expected:
        raise VerificationError(
            f"S3 checksum {stored} differs from the transfer's {expected}",
            source=result.source_key,
            dest=dest,
        )


def abort_job_uploads(s3: Any, *, archive: str, job_id: str) -> int:
    """Abort the multipart uploads of a job's chunked files (none is left dangling)."""
    try:
        plan = json.loads(read_bytes(s3, archive, work_key(job_id, "plan.json")))
    except s3.exceptions.NoSuchKey:
        return 0
    uploads = {
        (item["dest_key"], item["upload_id"])
        for batch in plan
        for item in batch
        if item.get("upload_id")
    }
    for dest_key, upload_id in sorted(uploads):
        abort_chunked(s3, dest_bucket=archive, dest_key=dest_key, upload_id=upload_id)
    return len(uploads)


def clear_work_area(s3: Any, *, archive: str, job_id: str) -> None:
    """Remove the job's plan, results and assembled metadata once the asset is sealed."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=archive, Prefix=f"_jobs/{job_id}/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=archive, Delete={"Objects": keys, "Quiet": True})


def _put_manifest(s3: Any, archive: str, name: str, manifest: dict[str, Any]) -> None:
    """Seal the asset: the manifest is created, never replaced."""
    try:
        s3.put_object(
            Bucket=archive,
            Key=f"{name}/{MANIFEST}",
            Body=json.dumps(manifest, indent=2, default=str).encode(),
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if is_conflict(exc):
            raise AssetExistsError(
                f"s3://{archive}/{name}/{MANIFEST} appeared while this job was finishing; the "
                "asset is never overwritten"
            ) from exc
        raise


def _staged_source(s3: Any, bucket: str, key: str, version_id: str | None) -> dict[str, str]:
    """A staged file the asset was made from: its key, version and ETag (for the manifest,
    and for the opt-in cleanup, which removes it only while it still has this ETag)."""
    kwargs: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        head = s3.head_object(**kwargs)
    except ClientError as exc:
        if is_transient(exc):
            raise
        # gone since (or not readable): recorded without an ETag, so never cleaned up
        logger.warning("no ETag for staged s3://%s/%s: %s", bucket, key, error_code(exc))
        return {"source_key": key, "source_version_id": version_id or "", "source_etag": ""}
    return {
        "source_key": key,
        "source_version_id": version_id or str(head.get("VersionId") or ""),
        "source_etag": str(head.get("ETag") or "").strip('"'),
    }


def _nothing_removed(**why: str) -> dict[str, Any]:
    """A `staging_cleanup` summary of a cleanup that removed nothing, and why."""
    return {**staging_cleanup.CleanupResult().summary(), **why}


def _cleanup_staging(
    s3: Any, event: CompleteInput, manifest: dict[str, Any]
) -> dict[str, Any] | None:
    """The opt-in cleanup of staging, run only once this job sealed the asset with `manifest`;
    None when the job did not ask for it. Never raises: a problem is logged and recorded as
    `error`."""
    if not staging_cleanup.cleanup_requested(event.job):
        return None
    try:
        objects = staging_cleanup.staged_objects(
            manifest, prefix=event.prefix, exclude={event.gather.report_key}
        )
        summary = staging_cleanup.remove_staged(s3, event.bucket, objects).summary()
    except Exception as exc:  # the job is COMPLETE whatever happens here
        logger.exception("staging cleanup of %s failed", event.staging_uri)
        return _nothing_removed(error=f"{type(exc).__name__}: {exc}")
    if summary["kept_count"]:
        logger.warning(
            "staging cleanup of %s kept %d object(s)", event.staging_uri, summary["kept_count"]
        )
    return summary


def _remove_leftovers(s3: Any, archive: str, name: str, keep: set[str]) -> list[str]:
    """Delete what a failed earlier job left under the (not yet sealed) asset that this job's
    plan and metadata do not account for; returns the keys removed."""
    stray = sorted(k for k in asset_objects(s3, archive, name) if k not in keep)
    for start in range(0, len(stray), 1000):
        chunk = [{"Key": k} for k in stray[start : start + 1000]]
        s3.delete_objects(Bucket=archive, Delete={"Objects": chunk, "Quiet": True})
    return stray


def complete(
    *, s3: Any, sns: Any, store: JobStore, topic_arn: str, event: CompleteInput
) -> dict[str, Any]:
    """Verify and seal the asset; the manifest is written last (a no-op job writes nothing)."""
    gather = event.gather
    with transient_as_retryable(f"sealing {gather.asset_name}"):
        if gather.noop:
            return _complete_noop(s3=s3, sns=sns, store=store, topic_arn=topic_arn, event=event)
        return _complete(s3=s3, sns=sns, store=store, topic_arn=topic_arn, event=event)


def _complete_noop(
    *, s3: Any, sns: Any, store: JobStore, topic_arn: str, event: CompleteInput
) -> dict[str, Any]:
    """The staged session is already archived, identical: close the job, touch no asset."""
    name, archive = event.gather.asset_name, event.gather.archive_bucket
    clear_work_area(s3, archive=archive, job_id=event.job_id)
    release_quietly(s3, archive, name, event.job_id)  # GatherMetadata released it already
    counts = {"files": 0, "bytes_in": 0, "bytes_out": 0}
    cleanup = None
    if staging_cleanup.cleanup_requested(event.job):
        # this job verified no copy of its own: the staged session stays
        cleanup = _nothing_removed(
            skipped="the job archived nothing (the archive already holds this exact session), "
            "so it removes nothing from staging"
        )
    return _mark_complete(
        sns=sns,
        store=store,
        topic_arn=topic_arn,
        event=event,
        counts=counts,
        cleanup=cleanup,
        note=event.gather.note or "the archive already holds this exact session",
    )


def _complete(
    *, s3: Any, sns: Any, store: JobStore, topic_arn: str, event: CompleteInput
) -> dict[str, Any]:
    name, archive = event.gather.asset_name, event.gather.archive_bucket
    job_id = event.job_id
    sealed = read_manifest(s3, archive, name)
    if sealed is None or sealed.get("job_id") != job_id:  # else: a retried Finalize
        if sealed is not None:
            raise AssetExistsError(
                f"the archive already holds a complete asset {name} (s3://{archive}/{name}/, "
                f"sealed by job {sealed.get('job_id')}); it is never overwritten, and nothing was "
                "written into it"
            )
        if not holds_asset_lock(s3, archive, name, job_id):
            raise AssetLockedError(
                f"job {job_id} no longer holds the lease of asset {name} (another job took it "
                "over, or it was released); nothing was written into the asset"
            )
        sealed = _seal(s3, event)
    clear_work_area(s3, archive=archive, job_id=job_id)
    release_quietly(s3, archive, name, job_id)
    # only now: the manifest is written (the asset sealed, every transfer verified)
    cleanup = _cleanup_staging(s3, event, sealed)
    return _mark_complete(
        sns=sns,
        store=store,
        topic_arn=topic_arn,
        event=event,
        counts=dict(sealed["counts"]),
        cleanup=cleanup,
    )


def _mark_complete(
    *,
    sns: Any,
    store: JobStore,
    topic_arn: str,
    event: CompleteInput,
    counts: dict[str, int],
    cleanup: dict[str, Any] | None,
    note: str | None = None,
) -> dict[str, Any]:
    """The job is COMPLETE: its record and Finalize's result (`noop` when a note says why
    nothing was archived). The `end` notification is Announce's (pipeline.announce), sent once
    the registration steps after Finalize have run, so it can say their outcome."""
    name = event.gather.asset_name
    archive_uri = f"s3://{event.gather.archive_bucket}/{name}/"
    extra: dict[str, Any] = {"note": note} if note else {}
    store.update(
        event.job_id,
        JobStatus.COMPLETE,
        asset_name=name,
        archive_uri=archive_uri,
        report_key=event.gather.report_key,
        staging_cleanup=cleanup,
        **counts,
        **extra,
    )
    result: dict[str, Any] = {
        "status": str(JobStatus.COMPLETE),
        "asset_name": name,
        "archive_uri": archive_uri,
        **({"noop": True} if note else {}),
        **counts,
    }
    if cleanup is not None:
        result["staging_cleanup"] = cleanup
    return result


def _seal(s3: Any, event: CompleteInput) -> dict[str, Any]:
    """Verify the transfers, write the metadata, remove a failed job's leftovers, write the
    manifest last; returns the manifest."""
    name, archive = event.gather.asset_name, event.gather.archive_bucket
    results = _sealed_results(s3, event)
    written = _write_core_metadata(s3, event)
    originals, staged_metadata = _copy_original_metadata(s3, event)
    written += originals
    if event.job_key:
        staged_metadata.append(
            _staged_source(s3, event.bucket, event.job_key, event.job_version_id)
        )
    _archive_report(s3, event)
    keep = {r["dest_key"] for r in results} | set(written) | {f"{name}/{REPORT_FILENAME}"}
    removed = _remove_leftovers(s3, archive, name, keep)
    manifest: dict[str, Any] = {
        "asset_name": name,
        "job_id": event.job_id,
        "staging": event.staging_uri,
        "counts": _counts(results),
        "objects": results,
        "metadata": written,
        "staged_metadata": staged_metadata,
    }
    if removed:
        manifest["removed_leftovers"] = removed
    _put_manifest(s3, archive, name, manifest)
    return manifest


def _sealed_results(s3: Any, event: CompleteInput) -> list[dict[str, Any]]:
    """Seal and verify every planned transfer; each result carries the source ETag it was
    planned from, which a later job compares staged files with."""
    gather = event.gather
    plan = json.loads(read_bytes(s3, gather.archive_bucket, str(gather.plan_key)))
    sealed = seal_transfers(
        s3, archive=gather.archive_bucket, job_id=event.job_id, plan=plan, verify_mode=gather.verify
    )
    etags = {item["dest_key"]: item.get("etag") for batch in plan for item in batch}
    return [{**r.to_dict(), "source_etag": etags.get(r.dest_key) or ""} for r in sealed]


def _write_core_metadata(s3: Any, event: CompleteInput) -> list[str]:
    """Write the assembled core documents (and metadata.nd.json) into the asset; their keys."""
    name, archive = event.gather.asset_name, event.gather.archive_bucket
    assembly = json.loads(read_bytes(s3, archive, work_key(event.job_id, "assembly.json")))
    written = []
    for core_type, document in sorted(assembly["core"].items()):
        put_json(s3, archive, f"{name}/{core_type}.json", document)
        written.append(f"{name}/{core_type}.json")
    if assembly.get("metadata") is not None:
        put_json(s3, archive, f"{name}/metadata.nd.json", assembly["metadata"])
        written.append(f"{name}/metadata.nd.json")
    return written


def _copy_original_metadata(
    s3: Any, event: CompleteInput
) -> tuple[list[str], list[dict[str, str]]]:
    """Copy the staged metadata files, at the versions gather read, under original_metadata/.

    Returns the keys written and the staged originals with their ETags (for the manifest).
    """
    name, archive = event.gather.asset_name, event.gather.archive_bucket
    written, staged = [], []
    for original, version in sorted(event.gather.metadata_versions.items()):
        source: dict[str, str] = {"Bucket": event.bucket, "Key": join(event.prefix, original)}
        if version:
            source["VersionId"] = version
        s3.copy_object(
            CopySource=source, Bucket=archive, Key=f"{name}/original_metadata/{original}"
        )
        written.append(f"{name}/original_metadata/{original}")
        staged.append(_staged_source(s3, event.bucket, source["Key"], version))
    return written, staged


def _archive_report(s3: Any, event: CompleteInput) -> None:
    """Copy gather's report from beside the staged data into the asset."""
    gather = event.gather
    s3.put_object(
        Bucket=gather.archive_bucket,
        Key=f"{gather.asset_name}/{REPORT_FILENAME}",
        Body=read_bytes(s3, event.bucket, gather.report_key),
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )


def _counts(results: list[dict[str, Any]]) -> dict[str, int]:
    """The manifest's totals: files, bytes read and bytes stored."""
    return {
        "files": len(results),
        "bytes_in": sum(int(r.get("bytes_in", 0)) for r in results),
        "bytes_out": sum(int(r.get("bytes_out", 0)) for r in results),
    }


def rejected(
    *,
    s3: Any,
    sns: Any,
    store: JobStore,
    topic_arn: str,
    event: RejectedInput,
    events: Any = None,
    event_source: str = "upload-processor",
) -> dict[str, Any]:
    """Mark the job REJECTED and tell the user exactly what to fix."""
    gather = event.gather
    release_quietly(s3, gather.archive_bucket, gather.asset_name, event.job_id)
    report = Report.model_validate_json(read_bytes(s3, event.bucket, gather.report_key))
    store.update(
        event.job_id,
        JobStatus.REJECTED,
        asset_name=gather.asset_name,
        report_key=gather.report_key,
        error=f"{len(report.errors)} problem(s) in the metadata",
    )
    message = notify.rejection(
        job=event.job,
        report=report,
        staging_uri=event.staging_uri,
        report_uri=f"s3://{event.bucket}/{gather.report_key}",
    )
    message_id = notify.publish(sns, topic_arn, message)
    if events is not None:
        rejected_event(events, source=event_source, event=event, report=report)
    return {
        "status": str(JobStatus.REJECTED),
        "message_id": message_id,
        "errors": len(report.errors),
    }


def failed(
    *,
    sns: Any,
    store: JobStore,
    topic_arn: str,
    event: FailedInput,
    s3: Any = None,
    events: Any = None,
    event_source: str = "upload-processor",
) -> dict[str, Any]:
    """Mark the job FAILED with its cause and notify (operators always get `fail`).

    Safe to repeat (MarkFailed retries it): a transient AWS fault (throttling, 5xx) raises
    TransientError, the only application error the state machine retries; anything else
    (AccessDenied, a missing table) fails MarkFailed at once.
    """
    with transient_as_retryable(f"marking job {event.job_id} failed"):
        result = _failed(sns=sns, store=store, topic_arn=topic_arn, event=event, s3=s3)
    if events is not None:
        failed_event(events, source=event_source, event=event, result=result)
    return result


def _failed(
    *, sns: Any, store: JobStore, topic_arn: str, event: FailedInput, s3: Any
) -> dict[str, Any]:
    error = event.error.model_dump(mode="json")
    record = store.get(event.job_id) or {}
    asset = record.get("asset_name")
    if record.get("archive_bucket") and s3 is not None:
        if event.step == "TransferFiles":
            error = with_batch_failures(s3, record["archive_bucket"], event.job_id, error)
        abort_job_uploads(s3, archive=record["archive_bucket"], job_id=event.job_id)
        release_quietly(s3, record["archive_bucket"], asset, event.job_id)
    message = notify.failure(
        job=event.job,
        job_id=event.job_id,
        asset_name=asset,
        staging_uri=event.staging_uri,
        error=error,
        step=event.step,
    )
    store.update(
        event.job_id,
        JobStatus.FAILED,
        error=f"{message.details['error']}: {message.details['cause']}",
        failed_step=event.step,
    )
    notify.publish(sns, topic_arn, message)
    return {
        "status": str(JobStatus.FAILED),
        "error": message.details["error"],
        "cause": message.details["cause"],
    }


def run(
    request: FinalizeInput, *, settings: Settings, client: Callable[[str], Any]
) -> dict[str, Any]:
    """The Finalize Lambda (Finalize, Reject and MarkFailed): close the job as `outcome` says.
    `client(name)` makes the boto3 clients (adapters.aws.client)."""
    store = JobStore(client("dynamodb"), settings.require("jobs_table"))
    topic = settings.require("topic_arn")
    s3, sns = client("s3"), client("sns")
    if isinstance(request, CompleteInput):
        return complete(s3=s3, sns=sns, store=store, topic_arn=topic, event=request)
    source = settings.event_source
    if isinstance(request, RejectedInput):
        return rejected(
            s3=s3,
            sns=sns,
            store=store,
            topic_arn=topic,
            event=request,
            events=client("events"),
            event_source=source,
        )
    return failed(
        sns=sns,
        store=store,
        topic_arn=topic,
        event=request,
        s3=s3,
        events=client("events"),
        event_source=source,
    )
