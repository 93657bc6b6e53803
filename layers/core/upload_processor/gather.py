"""GatherMetadata: read the session, assemble and validate its metadata, plan the transfer.

`gather_session` is the exact code that both the Lambda (on the staging bucket) and
`upload-processor validate` (on a local folder) run. An invalid session is a result
(`reject: true` when the job's `raise_if_invalid` says so), which the state machine's Choice
routes; only faults raise. The report is saved beside the staged data: the one object the
pipeline ever adds to a staging prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from upload_processor import data_description
from upload_processor.errors import AssetExistsError
from upload_processor.merge import Assembly, JobFacts, assemble, metadata_type_of
from upload_processor.metadata_service import MetadataService, MetadataServiceError
from upload_processor.naming import asset_name as build_asset_name
from upload_processor.plan import PlanItem, plan_item
from upload_processor.report import REPORT_FILENAME, Issue, Report
from upload_processor.s3io import exists, join, put_json
from upload_processor.session import Entry, S3Session, SessionSource
from upload_processor.upload_job import JOB_FILENAME

BATCH_SIZE = 100
MANIFEST = "manifest.json"
WORK_PREFIX = "_jobs"


def work_key(job_id: str, name: str) -> str:
    """Where a job keeps its intermediate state in the archive bucket (never inside an asset)."""
    return f"{WORK_PREFIX}/{job_id}/{name}"


def gather_settings(job: dict[str, Any]) -> dict[str, Any]:
    """tasks.gather_preliminary_metadata.job_settings of the resolved job."""
    task = (job.get("tasks") or {}).get("gather_preliminary_metadata") or {}
    return dict(task.get("job_settings") or {})


@dataclass
class Gathered:
    """What gathering a session found."""

    asset_name: str
    report: Report
    assembly: Assembly
    metadata_files: list[str]
    versions: dict[str, str]
    data: list[Entry] = field(default_factory=list)

    @property
    def reject(self) -> bool:
        """Invalid, and the job asks to reject invalid sessions (default)."""
        return self.report.status == "invalid" and self.raise_if_invalid

    raise_if_invalid: bool = True


def _issue(
    rule: str,
    message: str,
    *,
    file: str | None = None,
    field: str | None = None,
    severity: str = "error",
) -> Issue:
    return Issue(severity=severity, file=file, field=field, rule=rule, message=message)


def _from_service(
    service: MetadataService | None,
    job: dict[str, Any],
    settings: dict[str, Any],
    supplied: set[str],
    issues: list[Issue],
) -> dict[str, dict[str, Any]]:
    """Core documents fetched for the session: subject, procedures, a registered instrument."""
    extra: dict[str, dict[str, Any]] = {}
    subject_id = job["subject_id"]
    instrument_id = (settings.get("instrument_settings") or {}).get("instrument_id")
    if service is None:
        if instrument_id:
            issues.append(
                _issue(
                    "service.unavailable",
                    f"instrument_settings.instrument_id is {instrument_id!r} but no metadata service is "
                    "configured; add the instrument file to the session or configure the service",
                    file=JOB_FILENAME,
                    field="tasks.gather_preliminary_metadata.job_settings.instrument_settings.instrument_id",
                )
            )
        return extra
    wanted = [
        ("subject", service.get_subject, subject_id),
        ("procedures", service.get_procedures, subject_id),
    ]
    for kind, fetch, key in wanted:
        if kind == "subject" and "subject" in supplied:
            continue
        try:
            document = fetch(key)
        except MetadataServiceError as exc:
            issues.append(
                _issue("service.error", f"the metadata service failed for {kind} {key}: {exc}")
            )
            continue
        if document is None:
            if kind not in supplied:
                issues.append(
                    _issue(
                        "service.not_found",
                        f"no {kind} for subject {key} in the metadata service and no {kind}.json in the "
                        f"session: register it (`upload-processor registry put {kind} FILE`) or add {kind}.json",
                    )
                )
            continue
        extra[f"{kind}@service:{key}"] = document
    if instrument_id:
        try:
            document = service.get_instrument(instrument_id)
        except MetadataServiceError as exc:
            issues.append(
                _issue(
                    "service.error",
                    f"the metadata service failed for instrument {instrument_id}: {exc}",
                )
            )
            document = None
        else:
            if document is None:
                issues.append(
                    _issue(
                        "service.not_found",
                        f"instrument {instrument_id!r} is not registered: register it with "
                        "`upload-processor registry put instrument FILE`, or fix instrument_settings.instrument_id",
                        file=JOB_FILENAME,
                        field="tasks.gather_preliminary_metadata.job_settings.instrument_settings.instrument_id",
                    )
                )
        if document is not None:
            extra[f"instrument@registry:{instrument_id}"] = document
    return extra


def gather_session(
    source: SessionSource,
    job: dict[str, Any],
    *,
    job_notes: list[dict[str, Any]] | None = None,
    service: MetadataService | None = None,
    location: str | None = None,
) -> Gathered:
    """Assemble and validate a session's metadata into a report (no side effects)."""
    acq = datetime.fromisoformat(job["acq_datetime"])
    name = build_asset_name(job["subject_id"], acq, job.get("platform"))
    settings = gather_settings(job)
    issues = [Issue.model_validate(n) for n in (job_notes or [])]

    entries = [e for e in source.entries() if e.relative not in (JOB_FILENAME, REPORT_FILENAME)]
    metadata_names = [e.relative for e in entries if metadata_type_of(e.relative)]
    data = [e for e in entries if not metadata_type_of(e.relative)]
    files: dict[str, bytes] = {}
    versions: dict[str, str] = {}
    for rel in metadata_names:
        files[rel], versions[rel] = source.read(rel)
    supplied = {metadata_type_of(n) or "" for n in metadata_names}

    extra = _from_service(service, job, settings, supplied, issues)
    if "data_description" not in supplied:
        try:
            extra["data_description@job"] = data_description.build(
                job, name, settings.get("data_description_settings")
            )
        except (data_description.DataDescriptionError, ValueError) as exc:
            issues.append(
                _issue(
                    "data_description.incomplete",
                    str(exc).split("\n")[0],
                    file=JOB_FILENAME,
                    field="tasks.gather_preliminary_metadata.job_settings.data_description_settings",
                )
            )
    facts = JobFacts(
        subject_id=job["subject_id"], modalities=tuple(job["modalities"]), acq_datetime=acq
    )
    assembly = assemble(files, asset_name=name, location=location, job=facts, extra=extra)
    issues += assembly.issues
    if not data:
        issues.append(
            _issue(
                "session.no_data",
                "the session folder holds no data files; upload the data before upload_job.json",
            )
        )
    report = Report.from_issues(issues, asset_name=name, merged_from=assembly.merged_from)
    return Gathered(
        asset_name=name,
        report=report,
        assembly=assembly,
        metadata_files=metadata_names,
        versions=versions,
        data=data,
        raise_if_invalid=bool(settings.get("raise_if_invalid", True)),
    )


def compression_level(job: dict[str, Any], modality: str | None) -> int:
    """The zstd level the resolved job asks for this modality (default 3)."""
    per_modality = job.get("tasks", {}).get("modality_transformation_settings", {})
    task = per_modality.get(modality or "", {}) if isinstance(per_modality, dict) else {}
    settings = (task or {}).get("job_settings") or {}
    return int(settings.get("level", 3))


def build_plan(prefix: str, data: list[Entry], name: str, job: dict[str, Any]) -> list[PlanItem]:
    """One plan item per data object, sorted by key for a stable plan."""
    items = []
    for entry in sorted(data, key=lambda e: e.relative):
        modality = entry.relative.split("/", 1)[0] if "/" in entry.relative else None
        items.append(
            plan_item(
                prefix=prefix,
                key=join(prefix, entry.relative),
                size=entry.size,
                etag=entry.etag,
                asset_name=name,
                level=compression_level(job, modality),
            )
        )
    return items


def batches(items: list[PlanItem], size: int = BATCH_SIZE) -> list[list[dict[str, Any]]]:
    """The plan as batches: moto's Map recurses per item, so each iteration moves ~100 objects."""
    dumped = [i.model_dump(mode="json", exclude_none=True) for i in items]
    return [dumped[i : i + size] for i in range(0, len(dumped), size)]


def gather(
    s3: Any,
    *,
    bucket: str,
    prefix: str,
    job: dict[str, Any],
    archive_bucket: str,
    job_id: str,
    job_notes: list[dict[str, Any]] | None = None,
    service: MetadataService | None = None,
) -> dict[str, Any]:
    """The GatherMetadata stage; returns the (small, JSON-able) summary the state machine routes."""
    acq = datetime.fromisoformat(job["acq_datetime"])
    name = build_asset_name(job["subject_id"], acq, job.get("platform"))
    if exists(s3, archive_bucket, f"{name}/{MANIFEST}"):
        raise AssetExistsError(
            f"the archive already holds a complete asset {name} (s3://{archive_bucket}/{name}/); "
            "it is never overwritten: if this is a different session, fix subject_id or acq_datetime"
        )
    gathered = gather_session(
        S3Session(s3, bucket, prefix),
        job,
        job_notes=job_notes,
        service=service,
        location=f"s3://{archive_bucket}/{name}",
    )
    report = gathered.report
    report_key = join(prefix, REPORT_FILENAME)
    put_json(s3, bucket, report_key, report.model_dump(mode="json"))
    plan = [] if gathered.reject else build_plan(prefix, gathered.data, name, job)
    if not gathered.reject:
        assembly = gathered.assembly
        s3.put_object(
            Bucket=archive_bucket,
            Key=work_key(job_id, "assembly.json"),
            ContentType="application/json",
            Body=json.dumps({"core": assembly.core, "metadata": assembly.metadata}).encode(),
            ChecksumAlgorithm="SHA256",
        )
    return {
        "status": report.status,
        "asset_name": name,
        "reject": gathered.reject,
        "report_key": report_key,
        "summary": report.summary(),
        "error_count": len(report.errors),
        "warning_count": len(report.warnings),
        "archive_bucket": archive_bucket,
        "metadata_versions": gathered.versions,
        "plan": batches(plan),
        "counts": {"files": len(plan), "bytes_in": sum(i.size for i in plan)},
    }
