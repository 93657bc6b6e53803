"""GatherMetadata: read the session, assemble and validate its metadata, plan the transfer.

`gather_session` is the exact code that both the Lambda (on the staging bucket) and
`upload-processor validate` (on a local folder) run. An invalid session is a result
(`reject: true` when the job's `raise_if_invalid` says so), which the state machine's Choice
routes; only faults raise. The report is saved beside the staged data: the one object the
pipeline ever adds to a staging prefix.

The stage around it (the asset's lease, the no-op and resume cases, the plan written for the
Map) is upload_processor.pipeline.gather_stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import join
from upload_processor.adapters.staging import Entry, SessionSource
from upload_processor.domain.job_settings import GatherPreliminarySettings, gather_settings
from upload_processor.domain.metadata_source import MetadataService
from upload_processor.domain.naming import job_asset_name
from upload_processor.domain.plan import ENCODE_ECEPHYS, PlanItem, collision_issues, plan_item
from upload_processor.domain.report import REPORT_FILENAME, Issue, Report
from upload_processor.domain.units import DEFAULT_LEVEL, GiB, MiB
from upload_processor.domain.upload_job import JOB_FILENAME, parse_listed_files
from upload_processor.ecephys.recording import RecordingStream
from upload_processor.errors import (
    FilesMissingError,
    JobCancelledError,
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
from upload_processor.pipeline import ecephys_plan

BATCH_SIZE = 100
BATCH_BYTES = 2 * GiB  # one Map iteration moves at most this much (well inside 15 minutes)
# A metadata file is read whole into memory (and validated): larger ones are refused from
# their listed size, before a byte is read. Real core files are kilobytes to a few MB.
MAX_METADATA_BYTES = 20 * MiB
# S3's key limit; every staged key becomes `<asset>/<relative>[.zst]` in the archive.
MAX_KEY_BYTES = 1024
# A path segment longer than this cannot be a file name on the usual file systems, so the
# asset could not be downloaded as it is archived.
MAX_SEGMENT_BYTES = 255
INSTRUMENT_ID_FIELD = (
    "tasks.gather_preliminary_metadata.job_settings.instrument_settings.instrument_id"
)


@dataclass
class Gathered:
    """What gathering a session found."""

    asset_name: str
    report: Report
    assembly: Assembly
    metadata_files: list[str]
    versions: dict[str, str]
    data: list[Entry] = field(default_factory=list)
    raise_if_invalid: bool = True
    # The transfer plan of `data` (`build_plan`), made once: the collision check reads it and
    # GatherMetadata writes it.
    plan: list[PlanItem] = field(default_factory=list)
    # the ecephys streams to encode (the ecephys transformation's recordings, checked)
    streams: list[RecordingStream] = field(default_factory=list)

    @property
    def reject(self) -> bool:
        """Invalid, and the job asks to reject invalid sessions (default)."""
        return self.report.status == "invalid" and self.raise_if_invalid


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
    settings: GatherPreliminarySettings,
    supplied: set[str],
    issues: list[Issue],
) -> dict[str, dict[str, Any]]:
    """Core documents fetched for the session: subject, procedures, a registered instrument."""
    instrument_id = settings.instrument_settings and settings.instrument_settings.instrument_id
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
        return {}
    extra = _subject_documents(service, job["subject_id"], supplied, issues)
    if instrument_id:
        document = _registered_instrument(service, instrument_id, issues)
        if document is not None:
            extra[f"instrument@registry:{instrument_id}"] = document
    return extra


def _subject_documents(
    service: MetadataService, subject_id: str, supplied: set[str], issues: list[Issue]
) -> dict[str, dict[str, Any]]:
    """The subject (unless the session supplies subject.json) and procedures the service holds
    for the subject; a refusal or a document missing from both is an issue, not a fault."""
    extra: dict[str, dict[str, Any]] = {}
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
    return extra


def _registered_instrument(
    service: MetadataService, instrument_id: str, issues: list[Issue]
) -> dict[str, Any] | None:
    """The instrument the job names by id, from the registry; None (with an issue) when the
    service refuses or does not know it."""
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
        return None
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
    return document


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
    default_tz: str | None = None,
    prefix: str = "",
    ecephys_range_size: int | None = None,
) -> Gathered:
    """Assemble and validate a session's metadata into a report (no side effects); naive
    timestamps in the metadata files are read in ``default_tz``, the deployment's zone. The
    data files' transfer plan is made here, once, with source keys under `prefix`."""
    name = job_asset_name(job)
    settings = gather_settings(job)
    issues = [Issue.model_validate(n) for n in (job_notes or [])]

    listed = [e for e in source.entries() if e.relative not in (JOB_FILENAME, REPORT_FILENAME)]
    entries, key_issues = _key_issues(listed, name)
    issues += key_issues
    metadata = [e for e in entries if metadata_type_of(e.relative)]
    data = [e for e in entries if not metadata_type_of(e.relative)]
    files, versions = _read_metadata(source, metadata, issues)
    metadata_names = [e.relative for e in metadata]
    supplied = {metadata_type_of(n) or "" for n in metadata_names}

    extra = _from_service(service, job, settings, supplied, issues)
    if "data_description" not in supplied:
        document = _built_data_description(service, job, name, settings, issues)
        if document is not None:
            extra["data_description@job"] = document
    facts = JobFacts(
        subject_id=job["subject_id"],
        modalities=tuple(job["modalities"]),
        acq_datetime=datetime.fromisoformat(job["acq_datetime"]),
        default_tz=default_tz,
    )
    assembly = assemble(files, asset_name=name, location=location, job=facts, extra=extra)
    issues += assembly.issues
    recordings = ecephys_plan.find_recordings(source, data, ecephys_plan.ecephys_settings(job))
    issues += recordings.issues
    plan = build_plan(
        prefix, data, name, job, recordings.streams, ecephys_range_size=ecephys_range_size
    )
    issues += _data_issues(data, plan, job, prefix)
    report = Report.from_issues(issues, asset_name=name, merged_from=assembly.merged_from)
    return Gathered(
        asset_name=name,
        report=report,
        assembly=assembly,
        metadata_files=metadata_names,
        versions=versions,
        data=data,
        raise_if_invalid=settings.raise_if_invalid,
        plan=plan,
        streams=recordings.streams,
    )


def _read_metadata(
    source: SessionSource, metadata: list[Entry], issues: list[Issue]
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The staged metadata files' bytes and the versions read ({relative: ...} each); one
    over MAX_METADATA_BYTES is refused from its listed size, unread, as a `json.too_large`."""
    files: dict[str, bytes] = {}
    versions: dict[str, str] = {}
    for entry in metadata:
        if entry.size > MAX_METADATA_BYTES:
            issues.append(
                _issue(
                    "json.too_large",
                    f"{entry.relative} is {entry.size} bytes; a metadata file is at most "
                    f"{MAX_METADATA_BYTES} bytes ({MAX_METADATA_BYTES // MiB} MB), so it was not "
                    "read. If it holds data, move it into its modality's folder; otherwise remove "
                    "the bulky content",
                    file=entry.relative,
                )
            )
            continue
        files[entry.relative], versions[entry.relative] = _read_staged(source, entry)
    return files, versions


def _built_data_description(
    service: MetadataService | None,
    job: dict[str, Any],
    name: str,
    settings: GatherPreliminarySettings,
    issues: list[Issue],
) -> dict[str, Any] | None:
    """The data_description built from the job (and the project the service knows), for a
    session that supplies none; None, with an issue, when the job lacks what it needs."""
    given = settings.data_description_settings
    dd_settings = given.model_dump(exclude_unset=True) if given is not None else None
    found = data_description.lookup(service, job["project_name"], dd_settings)
    try:
        return data_description.build(job, name, dd_settings, found=found)
    except (data_description.DataDescriptionError, ValueError) as exc:
        issues.append(
            _issue(
                "data_description.incomplete",
                str(exc).split("\n")[0],
                file=JOB_FILENAME,
                field="tasks.gather_preliminary_metadata.job_settings.data_description_settings",
            )
        )
        return None


def _data_issues(
    data: list[Entry], plan: list[PlanItem], job: dict[str, Any], prefix: str
) -> list[Issue]:
    """What is wrong with the data files: none at all, folders that are not the declared
    modalities, empty files, and keys that would collide once archived."""
    issues = []
    if not data:
        issues.append(
            _issue(
                "session.no_data",
                "the session folder holds no data files; upload the data before upload_job.json",
            )
        )
    issues += _folder_issues(data, list(job["modalities"]))
    issues += _empty_file_issues(data)
    issues += collision_issues(plan, prefix)
    return issues


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
    """The zstd level the resolved job asks for this modality (default 3; an audio codec's
    level is not a zstd level: the files it does not encode get the default)."""
    settings = transformation(job, modality).get("job_settings") or {}
    if settings.get("codec", "zstd") != "zstd" or settings.get("level") is None:
        return DEFAULT_LEVEL
    return int(settings["level"])


def compresses(job: dict[str, Any], modality: str | None) -> bool:
    """False when the modality's transformation is skipped or its codec is none: copy as is."""
    task = transformation(job, modality)
    codec = (task.get("job_settings") or {}).get("codec", "zstd")
    return not task.get("skip_task") and codec not in (None, "none")


def build_plan(
    prefix: str,
    data: list[Entry],
    name: str,
    job: dict[str, Any],
    streams: Sequence[RecordingStream] = (),
    *,
    ecephys_range_size: int | None = None,
) -> list[PlanItem]:
    """One plan item per data object, sorted by key for a stable plan; with the ecephys
    transformation (`streams`: the recordings `ecephys_plan.find_recordings` checked), one
    `encode_ecephys` item per range of each stream, and the ecephys folder's other files
    under `ecephys/ecephys_clipped/` (`ecephys_range_size`: source bytes per range, default
    `ecephys_plan.RANGE_BYTES`)."""
    settings = ecephys_plan.ecephys_settings(job)
    options = ecephys_plan.options_of(settings) if settings is not None else None
    encoded = {s.source_key: s for s in streams} if options is not None else {}
    items = []
    for entry in sorted(data, key=lambda e: e.relative):
        modality = entry.relative.split("/", 1)[0] if "/" in entry.relative else None
        key = join(prefix, entry.relative)
        stream = encoded.get(entry.relative)
        ranges: list[PlanItem] = []
        if stream is not None and options is not None:
            ranges = ecephys_plan.encode_items(
                prefix_key=key,
                entry=entry,
                stream=stream,
                options=options,
                asset_name=name,
                range_bytes=ecephys_range_size or ecephys_plan.RANGE_BYTES,
            )
            items += ranges
        if ranges and options is not None and not options.keep_raw:
            continue  # (a stream of no samples has no range: its file is archived as it is)
        clipped = options is not None and modality == ecephys_plan.MODALITY
        items.append(
            plan_item(
                prefix=prefix,
                key=key,
                size=entry.size,
                etag=entry.etag,
                asset_name=name,
                level=compression_level(job, modality),
                compress=compresses(job, modality),
                dest_relative=ecephys_plan.clipped_relative(entry.relative) if clipped else None,
            )
        )
    return items


def batches(
    items: list[PlanItem], size: int = BATCH_SIZE, max_bytes: int = BATCH_BYTES
) -> list[list[dict[str, Any]]]:
    """The plan as batches of at most `size` objects and `max_bytes` bytes, one Map iteration
    each (moto's Map recurses per item: ~100 objects an iteration keeps it shallow). A range of
    a chunked file or of an ecephys stream is a batch of its own, so the ranges run in
    parallel (and an ecephys batch holds nothing else: the Map routes it to the ecephys
    function by its first item's action)."""
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    weight = 0
    for item in items:
        dumped = item.model_dump(mode="json", exclude_none=True)
        ranged = item.action in ("compress_range", ENCODE_ECEPHYS)
        cost = (item.range_end or 0) - (item.range_start or 0) if ranged else item.size
        if ranged:
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
    source: SessionSource,
    listed: dict[str, int],
    *,
    wait_seconds: float,
    poll_seconds: float = 5.0,
    cancelled: Callable[[], bool] | None = None,
) -> None:
    """Block (bounded) until every listed file is staged with its listed size.

    `cancelled` is asked at every poll: once the job is cancelled the wait ends with
    JobCancelledError. StopExecution does not kill a running Lambda, so without it a cancelled
    job would hold this invocation (and, locally, the in-process runner) until the wait ran out.
    """
    import time

    deadline = time.monotonic() + wait_seconds
    while True:
        present = {e.relative: e.size for e in source.entries()}
        missing = sorted(p for p, size in listed.items() if present.get(p) != size)
        if not missing:
            return
        if cancelled is not None and cancelled():
            raise JobCancelledError(
                f"the job was cancelled while waiting for {len(missing)} listed file(s)"
            )
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
