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
from upload_processor.errors import AssetExistsError, UploadProcessorError
from upload_processor.merge import Assembly, JobFacts, assemble, metadata_type_of
from upload_processor.metadata_service import MetadataRequestError, MetadataService
from upload_processor.naming import asset_name as build_asset_name
from upload_processor.plan import PlanItem, needs_chunks, plan_item
from upload_processor.report import REPORT_FILENAME, Issue, Report
from upload_processor.s3io import exists, join, put_json
from upload_processor.session import Entry, S3Session, SessionSource
from upload_processor.transfer import start_chunked
from upload_processor.upload_job import JOB_FILENAME, parse_upload_job

BATCH_SIZE = 100
BATCH_BYTES = 2 * 1024**3  # one Map iteration moves at most this much (well inside 15 minutes)
MANIFEST = "manifest.json"
WORK_PREFIX = "_jobs"
INSTRUMENT_ID_FIELD = (
    "tasks.gather_preliminary_metadata.job_settings.instrument_settings.instrument_id"
)


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
                    field=INSTRUMENT_ID_FIELD,
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
        except MetadataRequestError as exc:  # refused (4xx): a problem to report, not to retry
            issues.append(
                _issue(
                    "service.refused",
                    f"the metadata service refused {kind} {key}: {exc}",
                    file=f"{kind}.json",
                )
            )
            continue
        if document is None:
            if kind not in supplied:
                issues.append(
                    _issue(
                        "service.not_found",
                        f"no {kind} for subject {key} in the metadata service and no {kind}.json in the "
                        f"session: register it (`upload-processor registry put {kind} FILE`) or add {kind}.json",
                        file=f"{kind}.json",
                    )
                )
            continue
        extra[f"{kind}@service:{key}"] = document
    if instrument_id:
        try:
            document = service.get_instrument(instrument_id)
        except MetadataRequestError as exc:
            issues.append(
                _issue(
                    "service.refused",
                    f"the metadata service refused instrument {instrument_id}: {exc}",
                    file=JOB_FILENAME,
                    field=INSTRUMENT_ID_FIELD,
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
                        field=INSTRUMENT_ID_FIELD,
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


class FilesMissingError(UploadProcessorError):
    """Files that upload_job.json lists never arrived in staging within the wait."""


def transformation(job: dict[str, Any], modality: str | None) -> dict[str, Any]:
    """The modality's resolved `modality_transformation_settings` task (skip_task, settings)."""
    per_modality = (job.get("tasks") or {}).get("modality_transformation_settings") or {}
    task = per_modality.get(modality or "") if isinstance(per_modality, dict) else None
    return task or {}


def compression_level(job: dict[str, Any], modality: str | None) -> int:
    """The zstd level the resolved job asks for this modality (default 3)."""
    settings = transformation(job, modality).get("job_settings") or {}
    return int(settings.get("level", 3))


def compresses(job: dict[str, Any], modality: str | None) -> bool:
    """False when the modality's transformation is skipped or its codec is none: copy as is."""
    task = transformation(job, modality)
    codec = (task.get("job_settings") or {}).get("codec", "zstd")
    return not task.get("skip_task") and codec not in (None, "none")


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
                compress=compresses(job, modality),
            )
        )
    return items


def batches(
    items: list[PlanItem], size: int = BATCH_SIZE, max_bytes: int = BATCH_BYTES
) -> list[list[dict[str, Any]]]:
    """The plan as batches of at most `size` objects and `max_bytes` bytes, one Map iteration
    each (moto's Map recurses per item: ~100 objects an iteration keeps it shallow). A range of
    a chunked file is a batch of its own, so the ranges run in parallel."""
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    weight = 0
    for item in items:
        dumped = item.model_dump(mode="json", exclude_none=True)
        cost = (item.range_end - item.range_start) if item.action == "compress_range" else item.size
        if item.action == "compress_range":
            out.append([dumped])
            continue
        if current and (len(current) >= size or weight + cost > max_bytes):
            out.append(current)
            current, weight = [], 0
        current.append(dumped)
        weight += cost
    if current:
        out.append(current)
    return out


def listed_files(
    s3: Any, bucket: str, job_key: str | None, version_id: str | None
) -> dict[str, int]:
    """The files (and sizes) upload_job.json lists, read from the job file's own version."""
    if not job_key:
        return {}
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": job_key}
    if version_id:
        kwargs["VersionId"] = version_id
    job, _ = parse_upload_job(s3.get_object(**kwargs)["Body"].read())
    return {f.path: f.size for f in job.files or []}


def wait_for_files(
    source: SessionSource, listed: dict[str, int], *, wait_seconds: float, poll_seconds: float = 5.0
) -> None:
    """Block (bounded) until every listed file is staged with its listed size."""
    import time

    deadline = time.monotonic() + wait_seconds
    while True:
        present = {e.relative: e.size for e in source.entries()}
        missing = sorted(p for p, size in listed.items() if present.get(p) != size)
        if not missing:
            return
        if time.monotonic() >= deadline:
            shown = ", ".join(
                f"{p} ({'missing' if p not in present else f'{present[p]} of {listed[p]} bytes'})"
                for p in missing[:20]
            )
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise FilesMissingError(
                f"{len(missing)} file(s) listed in upload_job.json are not in staging after "
                f"{wait_seconds:.0f}s: {shown}{more}; upload them, then upload upload_job.json again"
            )
        time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


def verify_mode(job: dict[str, Any]) -> str:
    """`quick` (size and S3 checksum of every object) or `full` (also decompress and compare
    with the source's SHA-256): tasks.gather_final_metadata.job_settings.verify."""
    task = (job.get("tasks") or {}).get("gather_final_metadata") or {}
    mode = (task.get("job_settings") or {}).get("verify", "quick")
    return "full" if mode == "full" else "quick"


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
    job_key: str | None = None,
    job_version_id: str | None = None,
    files_wait_seconds: float = 0.0,
    chunk_threshold: int | None = None,
    range_size: int | None = None,
) -> dict[str, Any]:
    """The GatherMetadata stage; returns the (small, JSON-able) summary the state machine routes.

    The plan goes to the archive's work area (`_jobs/<job_id>/plan.json`, a JSON array of
    batches) for the Map's ItemReader, so the state payload stays small whatever the file count.
    Files over `chunk_threshold` get their multipart upload here and one plan item per range.
    """
    acq = datetime.fromisoformat(job["acq_datetime"])
    name = build_asset_name(job["subject_id"], acq, job.get("platform"))
    if exists(s3, archive_bucket, f"{name}/{MANIFEST}"):
        raise AssetExistsError(
            f"the archive already holds a complete asset {name} (s3://{archive_bucket}/{name}/); "
            "it is never overwritten: if this is a different session, fix subject_id or acq_datetime"
        )
    source = S3Session(s3, bucket, prefix)
    listed = listed_files(s3, bucket, job_key, job_version_id)
    if listed:
        wait_for_files(source, listed, wait_seconds=files_wait_seconds)
    gathered = gather_session(
        source,
        job,
        job_notes=job_notes,
        service=service,
        location=f"s3://{archive_bucket}/{name}",
    )
    report = gathered.report
    report_key = join(prefix, REPORT_FILENAME)
    put_json(s3, bucket, report_key, report.model_dump(mode="json"))
    plan = [] if gathered.reject else build_plan(prefix, gathered.data, name, job)
    plan_key = None
    if not gathered.reject:
        expanded: list[PlanItem] = []
        for item in plan:
            if needs_chunks(item, threshold=chunk_threshold):
                expanded += start_chunked(
                    s3,
                    item,
                    dest_bucket=archive_bucket,
                    range_size=range_size,
                    source_bucket=bucket,
                )
            else:
                expanded.append(item)
        plan_key = work_key(job_id, "plan.json")
        s3.put_object(
            Bucket=archive_bucket,
            Key=plan_key,
            ContentType="application/json",
            Body=json.dumps(batches(expanded)).encode(),
            ChecksumAlgorithm="SHA256",
        )
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
        "plan_key": plan_key,
        "verify": verify_mode(job),
        "counts": {"files": len(plan), "bytes_in": sum(i.size for i in plan)},
    }
