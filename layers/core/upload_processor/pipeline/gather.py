"""GatherMetadata: read the session, assemble and validate its metadata, plan the transfer.

`gather_session` is the exact code that both the Lambda (on the staging bucket) and
`upload-processor validate` (on a local folder) run. An invalid session is a result
(`reject: true` when the job's `raise_if_invalid` says so), which the state machine's Choice
routes; only faults raise. The report is saved beside the staged data: the one object the
pipeline ever adds to a staging prefix.

`gather` also guards the archive (upload_processor.pipeline.archive_guard): it takes the asset's lease
first (a job racing for the same asset fails with AssetLockedError before writing anything),
then a complete asset (with its manifest.json) is either the staged session byte for byte (the
job completes as a no-op: `noop: true`, an empty plan) or AssetExistsError listing what
differs; an incomplete asset (a failed job's remains) is resumed: plan items whose destination
exists are marked `resume` and Transfer keeps what it verifies. Transient S3 faults raise
TransientError, which the state machine retries.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters.metadata_service import MetadataService
from upload_processor.adapters.s3 import join, put_json
from upload_processor.adapters.staging import Entry, S3Session, SessionSource
from upload_processor.domain.archive import work_key
from upload_processor.domain.naming import asset_name as build_asset_name
from upload_processor.domain.plan import PlanItem, collision_issues, needs_chunks, plan_item
from upload_processor.domain.report import REPORT_FILENAME, Issue, Report
from upload_processor.domain.upload_job import JOB_FILENAME, parse_listed_files
from upload_processor.errors import (
    AssetExistsError,
    FilesMissingError,
    MetadataRequestError,
    StagedObjectUnreadableError,
    as_transient,
    error_code,
    is_transient,
)
from upload_processor.metadata import (
    Assembly,
    JobFacts,
    assemble,
    data_description,
    metadata_type_of,
)
from upload_processor.pipeline.archive_guard import (
    acquire_asset_lock,
    asset_objects,
    compare_with_asset,
    describe_differences,
    read_manifest,
    release_asset_lock,
    release_quietly,
)
from upload_processor.pipeline.transfer import start_chunked

BATCH_SIZE = 100
BATCH_BYTES = 2 * 1024**3  # one Map iteration moves at most this much (well inside 15 minutes)
# A metadata file is read whole into memory (and validated): larger ones are refused from
# their listed size, before a byte is read. Real core files are kilobytes to a few MB.
MAX_METADATA_BYTES = 20 * 1024**2
# S3's key limit; every staged key becomes `<asset>/<relative>[.zst]` in the archive.
MAX_KEY_BYTES = 1024
# A path segment longer than this cannot be a file name on the usual file systems, so the
# asset could not be downloaded as it is archived.
MAX_SEGMENT_BYTES = 255
INSTRUMENT_ID_FIELD = (
    "tasks.gather_preliminary_metadata.job_settings.instrument_settings.instrument_id"
)


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


def key_problem(relative: str, asset_name: str) -> str | None:
    """Why a staged key cannot become a key of the asset, or None.

    S3 takes any key, but the archive must be a folder tree a person can download: no
    empty, `.` or `..` segment (a key starting with `/` has an empty first segment), no
    control character, no name longer than 255 bytes, no archive key over S3's 1024 bytes.
    """
    if relative.startswith("/") or "//" in relative:
        return "has an empty folder name (a '/' at its start or a '//' in it)"
    segments = relative.split("/")
    if any(s in (".", "..") for s in segments):
        return (
            "has a '.' or '..' path segment, which would point outside its folder once downloaded"
        )
    controls = sorted({c for c in relative if ord(c) < 32 or ord(c) == 127})
    if controls:
        shown = ", ".join(f"U+{ord(c):04X}" for c in controls)
        return f"contains control character(s) {shown}"
    longest = max(len(s.encode()) for s in segments)
    if longest > MAX_SEGMENT_BYTES:
        return f"has a name of {longest} bytes; names are at most {MAX_SEGMENT_BYTES} bytes"
    archived = len(f"{asset_name}/{relative}.zst".encode())
    if archived > MAX_KEY_BYTES:
        return (
            f"would be an archive key of {archived} bytes under {asset_name}/; S3 keys are at "
            f"most {MAX_KEY_BYTES} bytes"
        )
    return None


def _key_issues(entries: list[Entry], asset_name: str) -> tuple[list[Entry], list[Issue]]:
    """The entries whose keys are usable, and one `session.bad_key` error per other one."""
    good, issues = [], []
    for entry in entries:
        why = key_problem(entry.relative, asset_name)
        if why is None:
            good.append(entry)
            continue
        issues.append(
            _issue(
                "session.bad_key",
                f"the staged key {entry.key!r} {why}; rename it (plain folder and file names, "
                "no '..', no leading '/', no control characters) and upload the session again",
                file=entry.relative,
            )
        )
    return good, issues


def _folder_issues(data: list[Entry], modalities: list[str]) -> list[Issue]:
    """Data folders (the first path segment of data files) must be the declared modalities."""
    folders: dict[str, int] = {}
    for entry in data:
        if "/" in entry.relative:
            first = entry.relative.split("/", 1)[0]
            folders[first] = folders.get(first, 0) + 1
    issues = []
    declared = ", ".join(modalities)
    if data:
        for modality in modalities:
            if modality not in folders:
                issues.append(
                    _issue(
                        "session.missing_modality_folder",
                        f"{JOB_FILENAME} declares modality {modality!r}, but the session has no "
                        f"{modality}/ folder with data files; put the {modality} data under "
                        f"{modality}/, or remove {modality!r} from modalities",
                        file=f"{modality}/",
                        field="modalities",
                    )
                )
    for folder in sorted(set(folders) - set(modalities)):
        issues.append(
            _issue(
                "session.undeclared_modality_folder",
                f"the data folder {folder}/ ({folders[folder]} file(s)) is not a modality declared "
                f"in {JOB_FILENAME} ({declared}); data folders are named after the declared "
                f"modalities: add {folder!r} to modalities if it is one, or move its files into "
                "the folder of their modality",
                file=f"{folder}/",
                field="modalities",
            )
        )
    return issues


def _empty_file_issues(data: list[Entry]) -> list[Issue]:
    """A zero-byte data file is archived as it is, with a warning: it may be a marker or an
    empty log, but it is often an upload that was cut short."""
    return [
        _issue(
            "session.empty_file",
            f"{entry.relative} is empty (0 bytes); it is archived as an empty file. If it should "
            "hold data, its upload was cut short: upload it again, then upload upload_job.json "
            "again (a complete asset is never overwritten: an operator must remove it first)",
            file=entry.relative,
            severity="warning",
        )
        for entry in data
        if entry.size == 0
    ]


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

    listed = [e for e in source.entries() if e.relative not in (JOB_FILENAME, REPORT_FILENAME)]
    entries, key_issues = _key_issues(listed, name)
    issues += key_issues
    metadata = [e for e in entries if metadata_type_of(e.relative)]
    data = [e for e in entries if not metadata_type_of(e.relative)]
    files: dict[str, bytes] = {}
    versions: dict[str, str] = {}
    for entry in metadata:
        if entry.size > MAX_METADATA_BYTES:
            issues.append(
                _issue(
                    "json.too_large",
                    f"{entry.relative} is {entry.size} bytes; a metadata file is at most "
                    f"{MAX_METADATA_BYTES} bytes ({MAX_METADATA_BYTES // 1024**2} MB), so it was not "
                    "read. If it holds data, move it into its modality's folder; otherwise remove "
                    "the bulky content",
                    file=entry.relative,
                )
            )
            continue
        files[entry.relative], versions[entry.relative] = _read_staged(source, entry)
    metadata_names = [e.relative for e in metadata]
    supplied = {metadata_type_of(n) or "" for n in metadata_names}

    extra = _from_service(service, job, settings, supplied, issues)
    if "data_description" not in supplied:
        dd_settings = settings.get("data_description_settings")
        found = data_description.lookup(service, job["project_name"], dd_settings)
        try:
            extra["data_description@job"] = data_description.build(
                job, name, dd_settings, found=found
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
    issues += _folder_issues(data, list(job["modalities"]))
    issues += _empty_file_issues(data)
    issues += collision_issues(build_plan("", data, name, job))
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


UNREADABLE_CODES = ("AccessDenied", "403", "AllAccessDisabled", "InvalidObjectState")


def _read_staged(source: SessionSource, entry: Entry) -> tuple[bytes, str]:
    """A metadata file's bytes; a refusal names the key, a transient fault is retryable."""
    try:
        return source.read(entry.relative)
    except ClientError as exc:
        if error_code(exc) in UNREADABLE_CODES:
            raise StagedObjectUnreadableError(
                f"cannot read the staged object {entry.key!r}: S3 answered {error_code(exc)}; "
                "give the pipeline read access to it (its ACL, the bucket policy or its KMS key; "
                "restore it if it is archived), then upload upload_job.json again"
            ) from exc
        if is_transient(exc):
            raise as_transient(exc, f"reading {entry.key}") from exc
        raise


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
    listed = parse_listed_files(s3.get_object(**kwargs)["Body"].read())
    return {f.path: f.size for f in listed}


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


def _job_status_lookup(store: Any) -> Any:
    """job id -> its status (None: no record), for telling a stale lease from a live one.

    Without a store, the jobs table the function's environment names (JOBS_TABLE), if any.
    """
    if store is None:
        table = os.environ.get("JOBS_TABLE")
        if not table:
            return None
        from upload_processor.adapters.aws import client
        from upload_processor.adapters.jobs import JobStore

        store = JobStore(client("dynamodb"), table)

    def status(job_id: str) -> str | None:
        record = store.get(job_id)
        return str(record.get("status")) if record else None

    return status


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
    store: Any = None,
) -> dict[str, Any]:
    """The GatherMetadata stage; returns the (small, JSON-able) summary the state machine routes.

    The plan goes to the archive's work area (`_jobs/<job_id>/plan.json`, a JSON array of
    batches) for the Map's ItemReader, so the state payload stays small whatever the file count.
    Files over `chunk_threshold` get their multipart upload here and one plan item per range.

    The asset's lease is taken first (AssetLockedError if another live job holds it) and kept
    for the transfer unless the job is rejected, a no-op, or fails here. `store` (a JobStore;
    default: the JOBS_TABLE of the environment) tells a stale lease from a live one.
    """
    acq = datetime.fromisoformat(job["acq_datetime"])
    name = build_asset_name(job["subject_id"], acq, job.get("platform"))
    try:
        acquire_asset_lock(s3, archive_bucket, name, job_id, job_status=_job_status_lookup(store))
        try:
            result = _gather_leased(
                s3,
                name=name,
                bucket=bucket,
                prefix=prefix,
                job=job,
                archive_bucket=archive_bucket,
                job_id=job_id,
                job_notes=job_notes,
                service=service,
                job_key=job_key,
                job_version_id=job_version_id,
                files_wait_seconds=files_wait_seconds,
                chunk_threshold=chunk_threshold,
                range_size=range_size,
            )
        except BaseException:
            release_quietly(s3, archive_bucket, name, job_id)
            raise
        if result["reject"] or result["noop"]:
            release_asset_lock(s3, archive_bucket, name, job_id)
        return result
    except ClientError as exc:
        if is_transient(exc):
            raise as_transient(exc, f"gathering {name}") from exc
        raise


def _gather_leased(
    s3: Any,
    *,
    name: str,
    bucket: str,
    prefix: str,
    job: dict[str, Any],
    archive_bucket: str,
    job_id: str,
    job_notes: list[dict[str, Any]] | None,
    service: MetadataService | None,
    job_key: str | None,
    job_version_id: str | None,
    files_wait_seconds: float,
    chunk_threshold: int | None,
    range_size: int | None,
) -> dict[str, Any]:
    source = S3Session(s3, bucket, prefix)
    listed = listed_files(s3, bucket, job_key, job_version_id)
    if listed:
        wait_for_files(source, listed, wait_seconds=files_wait_seconds)
    manifest = read_manifest(s3, archive_bucket, name)
    if manifest is not None:
        differences = compare_with_asset(
            s3, source, manifest, archive=archive_bucket, asset_name=name
        )
        if differences:
            raise AssetExistsError(
                f"the archive already holds a complete asset {name} (s3://{archive_bucket}/"
                f"{name}/) and the staged session differs from it: "
                f"{describe_differences(differences)}. The asset is never overwritten: if this "
                "is a different session, fix subject_id or acq_datetime"
            )
        return _noop(
            s3,
            bucket=bucket,
            prefix=prefix,
            name=name,
            archive_bucket=archive_bucket,
            job_id=job_id,
            manifest=manifest,
            job=job,
        )
    existing = asset_objects(s3, archive_bucket, name)
    notes = list(job_notes or [])
    if existing:
        notes.append(
            _issue(
                "asset.resumed",
                f"the archive holds {len(existing)} object(s) of the unfinished asset {name} "
                "(no manifest.json: left by a job that did not complete); objects verified to hold "
                "this session's files are kept, everything else is transferred again",
                severity="warning",
            ).model_dump(mode="json")
        )
    gathered = gather_session(
        source,
        job,
        job_notes=notes,
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
        planned = batches(expanded)
        for batch in planned:
            for raw in batch:
                # a failed job's object: Transfer keeps it if it verifies, else redoes it
                if raw["dest_key"] in existing and raw["action"] != "compress_range":
                    raw["resume"] = True
        plan_key = work_key(job_id, "plan.json")
        s3.put_object(
            Bucket=archive_bucket,
            Key=plan_key,
            ContentType="application/json",
            Body=json.dumps(planned).encode(),
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
        "noop": False,
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


def _noop(
    s3: Any,
    *,
    bucket: str,
    prefix: str,
    name: str,
    archive_bucket: str,
    job_id: str,
    manifest: dict[str, Any],
    job: dict[str, Any],
) -> dict[str, Any]:
    """The staged session is the complete asset byte for byte: nothing to copy or rewrite.

    The result routes through the usual path (not rejected; the Map runs over an empty plan)
    and Finalize closes the job COMPLETE with `note`, writing nothing into the asset.
    """
    note = (
        f"the archive already holds this exact session as {name} (s3://{archive_bucket}/{name}/, "
        f"sealed by job {manifest.get('job_id') or 'unknown'}): every staged file matches its "
        "manifest, so nothing was copied or rewritten"
    )
    report = Report.from_issues(
        [
            _issue(
                "asset.identical",
                note + "; the metadata was not validated again",
                severity="warning",
            )
        ],
        asset_name=name,
    )
    report_key = join(prefix, REPORT_FILENAME)
    put_json(s3, bucket, report_key, report.model_dump(mode="json"))
    plan_key = work_key(job_id, "plan.json")
    s3.put_object(
        Bucket=archive_bucket,
        Key=plan_key,
        ContentType="application/json",
        Body=b"[]",
        ChecksumAlgorithm="SHA256",
    )
    return {
        "status": report.status,
        "asset_name": name,
        "reject": False,
        "noop": True,
        "note": note,
        "report_key": report_key,
        "summary": report.summary(),
        "error_count": 0,
        "warning_count": len(report.warnings),
        "archive_bucket": archive_bucket,
        "metadata_versions": {},
        "plan_key": plan_key,
        "verify": verify_mode(job),
        "counts": {"files": 0, "bytes_in": 0},
    }
