"""GatherMetadata: read the staged session, assemble and validate its metadata, plan the transfer.

An invalid session is a result (`reject: true` when the job's `raise_if_invalid` says so), which
the state machine's Choice routes; only faults raise. The report is saved beside the staged
data: the one object the pipeline ever adds to a staging prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from upload_processor.errors import AssetExistsError
from upload_processor.merge import assemble, metadata_type_of
from upload_processor.naming import asset_name as build_asset_name
from upload_processor.plan import PlanItem, plan_item
from upload_processor.report import REPORT_FILENAME, Issue, Report
from upload_processor.s3io import exists, join, list_objects, put_json
from upload_processor.upload_job import JOB_FILENAME

BATCH_SIZE = 100
MANIFEST = "manifest.json"


@dataclass
class StagedSession:
    """The objects under a staging prefix, split into metadata files and data."""

    metadata: dict[str, dict[str, Any]]  # relative name -> listing entry
    data: list[dict[str, Any]]


def relative(prefix: str, key: str) -> str:
    """The key relative to the session folder."""
    return key[len(prefix) + 1 :] if prefix else key


def scan(s3: Any, bucket: str, prefix: str) -> StagedSession:
    """List the session folder; the job file and our report are neither metadata nor data."""
    metadata: dict[str, dict[str, Any]] = {}
    data: list[dict[str, Any]] = []
    for obj in list_objects(s3, bucket, f"{prefix}/" if prefix else ""):
        rel = relative(prefix, obj["Key"])
        if rel in (JOB_FILENAME, REPORT_FILENAME) or rel.endswith("/"):
            continue
        if metadata_type_of(rel):
            metadata[rel] = obj
        else:
            data.append(obj)
    return StagedSession(metadata=metadata, data=data)


def read_metadata(
    s3: Any, bucket: str, prefix: str, names: list[str], versions: dict[str, str] | None = None
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Read the metadata files (at pinned versions when given); returns bytes and version ids."""
    files: dict[str, bytes] = {}
    seen: dict[str, str] = {}
    for name in names:
        key = join(prefix, name)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if versions and versions.get(name):
            kwargs["VersionId"] = versions[name]
        out = s3.get_object(**kwargs)
        files[name] = out["Body"].read()
        seen[name] = out.get("VersionId") or ""
    return files, seen


def compression_level(job: dict[str, Any], modality: str | None) -> int:
    """The zstd level the resolved job asks for this modality (default 3)."""
    per_modality = job.get("tasks", {}).get("modality_transformation_settings", {})
    task = per_modality.get(modality or "", {}) if isinstance(per_modality, dict) else {}
    settings = (task or {}).get("job_settings") or {}
    return int(settings.get("level", 3))


def build_plan(
    prefix: str, data: list[dict[str, Any]], name: str, job: dict[str, Any]
) -> list[PlanItem]:
    """One plan item per data object, sorted by key for a stable plan."""
    items = []
    for obj in sorted(data, key=lambda o: o["Key"]):
        rel = relative(prefix, obj["Key"])
        modality = rel.split("/", 1)[0] if "/" in rel else None
        items.append(
            plan_item(
                prefix=prefix,
                key=obj["Key"],
                size=int(obj["Size"]),
                etag=obj.get("ETag", ""),
                asset_name=name,
                level=compression_level(job, modality),
            )
        )
    return items


def batches(items: list[PlanItem], size: int = BATCH_SIZE) -> list[list[dict[str, Any]]]:
    """The plan as batches: moto's Map recurses per item, so each iteration moves ~100 objects."""
    dumped = [i.model_dump(mode="json") for i in items]
    return [dumped[i : i + size] for i in range(0, len(dumped), size)]


def gather(
    s3: Any,
    *,
    bucket: str,
    prefix: str,
    job: dict[str, Any],
    archive_bucket: str,
    job_notes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The GatherMetadata stage; returns the (small, JSON-able) summary the state machine routes."""
    acq = datetime.fromisoformat(job["acq_datetime"])
    name = build_asset_name(job["subject_id"], acq, job.get("platform"))
    if exists(s3, archive_bucket, f"{name}/{MANIFEST}"):
        raise AssetExistsError(
            f"the archive already holds a complete asset {name} (s3://{archive_bucket}/{name}/); "
            "it is never overwritten: if this is a different session, fix subject_id or acq_datetime"
        )
    session = scan(s3, bucket, prefix)
    files, versions = read_metadata(s3, bucket, prefix, sorted(session.metadata))
    assembly = assemble(files, asset_name=name)
    issues = [Issue.model_validate(n) for n in (job_notes or [])] + list(assembly.issues)
    if not session.data:
        issues.append(
            Issue(
                severity="error",
                file=None,
                field=None,
                rule="session.no_data",
                message="the session folder holds no data files; upload the data before upload_job.json",
            )
        )
    report = Report.from_issues(issues, asset_name=name, merged_from=assembly.merged_from)
    report_key = join(prefix, REPORT_FILENAME)
    put_json(s3, bucket, report_key, report.model_dump(mode="json"))

    settings = (job.get("tasks", {}).get("gather_preliminary_metadata") or {}).get(
        "job_settings"
    ) or {}
    raise_if_invalid = bool(settings.get("raise_if_invalid", True))
    invalid = report.status == "invalid"
    plan = build_plan(prefix, session.data, name, job)
    return {
        "status": report.status,
        "asset_name": name,
        "reject": invalid and raise_if_invalid,
        "report_key": report_key,
        "summary": report.summary(),
        "error_count": len(report.errors),
        "warning_count": len(report.warnings),
        "archive_bucket": archive_bucket,
        "metadata_versions": versions,
        "plan": batches(plan) if not (invalid and raise_if_invalid) else [],
        "counts": {"files": len(plan), "bytes_in": sum(i.size for i in plan)},
    }
