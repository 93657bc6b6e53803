"""Finalize: close a job, whatever its outcome.

`complete`: verify every transferred object, write the asset's metadata (`metadata.nd.json`, the
core files, the staged originals under `original_metadata/`) and `manifest.json` last (its
presence marks the asset complete), mark the job COMPLETE, notify. `rejected`: mark the job
REJECTED and send the user the report's problems. `failed`: mark the job FAILED and notify.
"""

from __future__ import annotations

import json
from typing import Any

from upload_processor import notify
from upload_processor.gather import MANIFEST, work_key
from upload_processor.jobs import JobStatus, JobStore
from upload_processor.report import REPORT_FILENAME, Report
from upload_processor.s3io import join, put_json, read_bytes
from upload_processor.transfer import TransferResult, verify


def _staging_uri(event: dict[str, Any]) -> str:
    prefix = event.get("prefix") or ""
    return f"s3://{event['bucket']}/{prefix}/" if prefix else f"s3://{event['bucket']}/"


def flatten_transfers(transfers: list[Any]) -> list[dict[str, Any]]:
    """The Map returns one list of results per batch: flatten them."""
    out: list[dict[str, Any]] = []
    for batch in transfers or []:
        if isinstance(batch, dict) and "results" in batch:
            out.extend(batch["results"])
        elif isinstance(batch, list):
            out.extend(batch)
        elif isinstance(batch, dict):
            out.append(batch)
    return out


def complete(
    *, s3: Any, sns: Any, store: JobStore, topic_arn: str, event: dict[str, Any]
) -> dict[str, Any]:
    """Verify and seal the asset; the manifest is written last."""
    gather = event["gather"]
    name: str = gather["asset_name"]
    archive: str = gather["archive_bucket"]
    bucket, prefix = event["bucket"], event.get("prefix") or ""
    results = flatten_transfers(event.get("transfers") or [])
    for result in results:
        verify(s3, TransferResult.from_dict(result), dest_bucket=archive)

    versions: dict[str, str] = gather.get("metadata_versions") or {}
    assembly = json.loads(read_bytes(s3, archive, work_key(event["job_id"], "assembly.json")))
    written = []
    for core_type, document in sorted(assembly["core"].items()):
        put_json(s3, archive, f"{name}/{core_type}.json", document)
        written.append(f"{name}/{core_type}.json")
    if assembly.get("metadata") is not None:
        put_json(s3, archive, f"{name}/metadata.nd.json", assembly["metadata"])
        written.append(f"{name}/metadata.nd.json")
    for original, version in sorted(versions.items()):
        source: dict[str, str] = {"Bucket": bucket, "Key": join(prefix, original)}
        if version:
            source["VersionId"] = version
        s3.copy_object(
            CopySource=source, Bucket=archive, Key=f"{name}/original_metadata/{original}"
        )
        written.append(f"{name}/original_metadata/{original}")
    report_body = read_bytes(s3, bucket, gather["report_key"])
    s3.put_object(
        Bucket=archive,
        Key=f"{name}/{REPORT_FILENAME}",
        Body=report_body,
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )

    counts = {
        "files": len(results),
        "bytes_in": sum(int(r.get("bytes_in", 0)) for r in results),
        "bytes_out": sum(int(r.get("bytes_out", 0)) for r in results),
    }
    manifest = {
        "asset_name": name,
        "job_id": event["job_id"],
        "staging": _staging_uri(event),
        "counts": counts,
        "objects": results,
        "metadata": written,
    }
    put_json(s3, archive, f"{name}/{MANIFEST}", manifest)
    s3.delete_object(Bucket=archive, Key=work_key(event["job_id"], "assembly.json"))
    archive_uri = f"s3://{archive}/{name}/"
    store.update(
        event["job_id"],
        JobStatus.COMPLETE,
        asset_name=name,
        archive_uri=archive_uri,
        report_key=gather["report_key"],
        files=counts["files"],
        bytes_in=counts["bytes_in"],
        bytes_out=counts["bytes_out"],
    )
    job = event.get("job") or {}
    if notify.wants(job, "end"):
        notify.publish(
            sns,
            topic_arn,
            notify.completion(job=job, asset_name=name, archive_uri=archive_uri, counts=counts),
        )
    return {
        "status": str(JobStatus.COMPLETE),
        "asset_name": name,
        "archive_uri": archive_uri,
        **counts,
    }


def rejected(
    *, s3: Any, sns: Any, store: JobStore, topic_arn: str, event: dict[str, Any]
) -> dict[str, Any]:
    """Mark the job REJECTED and tell the user exactly what to fix."""
    gather = event["gather"]
    report = Report.model_validate_json(read_bytes(s3, event["bucket"], gather["report_key"]))
    store.update(
        event["job_id"],
        JobStatus.REJECTED,
        asset_name=gather.get("asset_name"),
        report_key=gather["report_key"],
        error=f"{len(report.errors)} problem(s) in the metadata",
    )
    message = notify.rejection(
        job=event.get("job") or {},
        report=report,
        staging_uri=_staging_uri(event),
        report_uri=f"s3://{event['bucket']}/{gather['report_key']}",
    )
    message_id = notify.publish(sns, topic_arn, message)
    return {
        "status": str(JobStatus.REJECTED),
        "message_id": message_id,
        "errors": len(report.errors),
    }


def failed(*, sns: Any, store: JobStore, topic_arn: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mark the job FAILED with its cause and notify (operators always get `fail`)."""
    error = event.get("error") or {}
    job = event.get("job") or {}
    record = store.get(event["job_id"]) or {}
    asset = record.get("asset_name")
    message = notify.failure(
        job=job,
        job_id=event["job_id"],
        asset_name=asset,
        staging_uri=_staging_uri(event),
        error=error,
    )
    store.update(
        event["job_id"],
        JobStatus.FAILED,
        error=f"{message.details['error']}: {message.details['cause']}",
    )
    notify.publish(sns, topic_arn, message)
    return {"status": str(JobStatus.FAILED), "error": message.details["error"]}
