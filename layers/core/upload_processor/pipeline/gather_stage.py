"""The GatherMetadata stage: from the execution input to the result the state machine routes.

`run` is all the Lambda does: mark the job PROCESSING, pick the metadata service (the job's own
`metadata_service` setting, else the deployment's), `gather`, record the asset on the job, and
publish `begin` when the session goes on to be archived.

`gather` validates first (the report is saved, its key recorded on the job, and an invalid
session rejected, before the archive is looked at), then guards the archive
(upload_processor.pipeline.archive_guard): it takes the asset's lease (a job racing for the
same asset fails with AssetLockedError before writing into the archive), then a complete asset (with its manifest.json) is either the staged session byte for
byte (the job completes as a no-op: `noop: true`, an empty plan) or AssetExistsError listing
what differs; an incomplete asset (a failed job's remains) is resumed: plan items whose
destination exists are marked `resume` and Transfer keeps what it verifies. Transient S3 faults
raise TransientError, which the state machine retries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from upload_processor.adapters import notify
from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.adapters.metadata_service import service_from_spec
from upload_processor.adapters.s3 import join, put_json
from upload_processor.adapters.staging import S3Session
from upload_processor.domain.archive import as_is_key, work_key
from upload_processor.domain.contracts import ExecutionInput, GatherCounts, GatherResult
from upload_processor.domain.job_settings import gather_settings, verify_mode
from upload_processor.domain.metadata_source import MetadataService
from upload_processor.domain.naming import job_asset_name
from upload_processor.domain.plan import ENCODE_ECEPHYS, PlanItem, needs_chunks
from upload_processor.domain.report import REPORT_FILENAME, Issue, Report
from upload_processor.errors import AssetExistsError, transient_as_retryable
from upload_processor.pipeline import gather as session
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
from upload_processor.settings import Settings

RANGE_ACTIONS = ("compress_range", ENCODE_ECEPHYS)


@dataclass(frozen=True)
class GatherContext:
    """What the stage works with besides its input: clients, the archive and the deployment's
    limits. `store` (a JobStore) tells a stale asset lease from a live one."""

    s3: Any
    archive_bucket: str
    service: MetadataService | None = None
    files_wait_seconds: float = 0.0
    chunk_threshold: int | None = None
    range_size: int | None = None
    ecephys_range_size: int | None = None
    store: JobStore | None = None
    default_tz: str | None = None  # naive timestamps in metadata files are read in it


def run(
    request: ExecutionInput, *, settings: Settings, client: Callable[[str], Any]
) -> GatherResult:
    """The GatherMetadata Lambda: `client(name)` makes the boto3 clients (adapters.aws.client)."""
    store = JobStore(client("dynamodb"), settings.require("jobs_table"))
    store.update(request.job_id, JobStatus.PROCESSING)
    deployment_spec = settings.metadata_service_spec()
    spec = gather_settings(request.job).metadata_service or deployment_spec
    context = GatherContext(
        s3=client("s3"),
        archive_bucket=settings.archive_for(request.job.get("s3_bucket", "default")),
        service=service_from_spec(
            spec, dynamodb=client("dynamodb"), deployment_spec=deployment_spec
        ),
        files_wait_seconds=settings.files_wait_seconds,
        chunk_threshold=settings.chunk_threshold,
        range_size=settings.range_size,
        ecephys_range_size=settings.ecephys_range_size,
        store=store,
        default_tz=settings.default_time_zone,
    )
    result = gather(request, context)
    store.update(
        request.job_id,
        asset_name=result.asset_name,
        report_key=result.report_key,
        archive_bucket=result.archive_bucket,
    )
    if not result.reject:
        notify.publish(
            client("sns"),
            settings.require("topic_arn"),
            notify.beginning(
                job=request.job,
                job_id=request.job_id,
                asset_name=result.asset_name,
                staging_uri=request.staging_uri,
            ),
        )
    return result


def _job_status_lookup(store: JobStore | None) -> Callable[[str], str | None] | None:
    """job id -> its status (None: no record), for telling a stale lease from a live one."""
    if store is None:
        return None

    def status(job_id: str) -> str | None:
        record = store.get(job_id)
        return str(record.get("status")) if record else None

    return status


def _cancelled(store: JobStore | None, job_id: str) -> Callable[[], bool] | None:
    """Whether the job's record says CANCELLED: what `cancel` writes after stopping the
    execution, read by the stage's waits so a cancelled job's invocation ends promptly."""
    if store is None:
        return None

    def cancelled() -> bool:
        record = store.get(job_id)
        return bool(record) and str(record.get("status")) == str(JobStatus.CANCELLED)

    return cancelled


def gather(request: ExecutionInput, context: GatherContext) -> GatherResult:
    """The GatherMetadata stage; returns the (small) result the state machine routes.

    Validate first, then decide about the archive: the report is made and saved (and its key
    recorded on the job) before the asset-exists and lease checks, so an invalid session is
    rejected for what is wrong with it, and a job that then fails on an existing asset or a
    held lease still shows its report. A rejected job never takes the lease.

    The plan goes to the archive's work area (`_jobs/<job_id>/plan.json`, a JSON array of
    batches) for the Map's ItemReader, so the state payload stays small whatever the file count.
    Files over `chunk_threshold` get their multipart upload here and one plan item per range.

    The asset's lease (AssetLockedError if another live job holds it) is kept for the transfer
    unless the job is a no-op or fails here.
    """
    s3, archive = context.s3, context.archive_bucket
    job, job_id = request.job, request.job_id
    name = job_asset_name(job)
    with transient_as_retryable(f"gathering {name}"):
        source = S3Session(s3, request.bucket, request.prefix)
        listed = session.listed_files(s3, request.bucket, request.job_key, request.job_version_id)
        if listed:
            session.wait_for_files(
                source,
                listed,
                wait_seconds=context.files_wait_seconds,
                cancelled=_cancelled(context.store, job_id),
            )
        gathered = session.gather_session(
            source,
            job,
            job_notes=list(request.job_notes),
            service=context.service,
            location=f"s3://{archive}/{name}",
            default_tz=context.default_tz,
            prefix=request.prefix,
            ecephys_range_size=context.ecephys_range_size,
        )
        report_key = _save_report(s3, request, gathered.report)
        if context.store is not None:
            context.store.update(job_id, asset_name=name, report_key=report_key)
        if gathered.reject:
            return _result(
                request,
                context,
                gathered.report,
                report_key,
                reject=True,
                metadata_versions=gathered.versions,
            )
        acquire_asset_lock(s3, archive, name, job_id, job_status=_job_status_lookup(context.store))
        try:
            result = _gather_leased(request, context, name, gathered, report_key)
        except BaseException:
            release_quietly(s3, archive, name, job_id)
            raise
        if result.noop:
            release_asset_lock(s3, archive, name, job_id)
        return result


def _gather_leased(
    request: ExecutionInput,
    context: GatherContext,
    name: str,
    gathered: session.Gathered,
    report_key: str,
) -> GatherResult:
    """Under the lease: the archive's state of the asset decides, then the plan is written."""
    s3, archive = context.s3, context.archive_bucket
    source = S3Session(s3, request.bucket, request.prefix)
    manifest = read_manifest(s3, archive, name)
    if manifest is not None:
        differences = compare_with_asset(s3, source, manifest, archive=archive, asset_name=name)
        if differences:
            raise AssetExistsError(
                f"the archive already holds a complete asset {name} (s3://{archive}/"
                f"{name}/) and the staged session differs from it: "
                f"{describe_differences(differences)}. The asset is never overwritten: if this "
                "is a different session, fix subject_id or acq_datetime"
            )
        return _noop(request, context, name, manifest)
    existing = asset_objects(s3, archive, name)
    if existing:
        gathered.report.issues.append(
            _warning(
                "asset.resumed",
                f"the archive holds {len(existing)} object(s) of the unfinished asset {name} "
                "(no manifest.json: left by a job that did not complete); objects verified to hold "
                "this session's files are kept, everything else is transferred again",
            )
        )
        report_key = _save_report(s3, request, gathered.report)
    plan = gathered.plan
    plan_key = _write_plan(request, context, plan, existing)
    assembly = gathered.assembly
    document = {"core": assembly.core, "metadata": assembly.metadata}
    put_json(s3, archive, work_key(request.job_id, "assembly.json"), document, indent=None)
    return _result(
        request,
        context,
        gathered.report,
        report_key,
        metadata_versions=gathered.versions,
        plan_key=plan_key,
        counts=_counts(plan),
    )


def _counts(plan: list[PlanItem]) -> GatherCounts:
    """Files and source bytes the plan moves: an ecephys stream's ranges count as its one
    file (each range item carries the whole file's size)."""
    objects = {(item.source_key, item.dest_key): item.size for item in plan}
    return GatherCounts(files=len(objects), bytes_in=sum(objects.values()))


def _write_plan(
    request: ExecutionInput,
    context: GatherContext,
    plan: list[PlanItem],
    existing: dict[str, dict[str, Any]],
) -> str:
    """Start the chunked uploads, batch the plan, mark what a failed job left (`resume`) and
    write it for the Map's ItemReader; returns its key."""
    expanded: list[PlanItem] = []
    for item in plan:
        if needs_chunks(item, threshold=context.chunk_threshold):
            expanded += start_chunked(
                context.s3,
                item,
                dest_bucket=context.archive_bucket,
                range_size=context.range_size,
                source_bucket=request.bucket,
            )
        else:
            expanded.append(item)
    planned = session.batches(expanded)
    for batch in planned:
        for raw in batch:
            # a failed job's object (compressed, or stored as is under its plain name):
            # Transfer keeps it if it verifies, else redoes it (ranges are redone: their
            # results, not their objects, say what is done)
            left = raw["dest_key"] in existing or as_is_key(raw["dest_key"]) in existing
            if left and raw["action"] not in RANGE_ACTIONS:
                raw["resume"] = True
    return _put_plan(context, request.job_id, planned)


def _put_plan(context: GatherContext, job_id: str, planned: list[list[dict[str, Any]]]) -> str:
    plan_key = work_key(job_id, "plan.json")
    put_json(context.s3, context.archive_bucket, plan_key, planned, indent=None)
    return plan_key


def _noop(
    request: ExecutionInput, context: GatherContext, name: str, manifest: dict[str, Any]
) -> GatherResult:
    """The staged session is the complete asset byte for byte: nothing to copy or rewrite.

    The result routes through the usual path (not rejected; the Map runs over an empty plan)
    and Finalize closes the job COMPLETE with `note`, writing nothing into the asset.
    """
    archive = context.archive_bucket
    note = (
        f"the archive already holds this exact session as {name} (s3://{archive}/{name}/, "
        f"sealed by job {manifest.get('job_id') or 'unknown'}): every staged file matches its "
        "manifest, so nothing was copied or rewritten"
    )
    report = Report.from_issues(
        [_warning("asset.identical", note + "; the session's metadata validated")],
        asset_name=name,
    )
    report_key = _save_report(context.s3, request, report)
    plan_key = _put_plan(context, request.job_id, [])
    return _result(request, context, report, report_key, noop=True, note=note, plan_key=plan_key)


def _save_report(s3: Any, request: ExecutionInput, report: Report) -> str:
    """The report, beside the staged data; returns its key."""
    report_key = join(request.prefix, REPORT_FILENAME)
    put_json(s3, request.bucket, report_key, report.model_dump(mode="json"))
    return report_key


def _result(
    request: ExecutionInput,
    context: GatherContext,
    report: Report,
    report_key: str,
    *,
    reject: bool = False,
    noop: bool = False,
    note: str | None = None,
    metadata_versions: dict[str, str] | None = None,
    plan_key: str | None = None,
    counts: GatherCounts | None = None,
) -> GatherResult:
    """The one place GatherMetadata's result is made (rejected, planned or no-op)."""
    return GatherResult(
        status=report.status,
        asset_name=str(report.asset_name),
        reject=reject,
        noop=noop,
        note=note,
        report_key=report_key,
        summary=report.summary(),
        error_count=len(report.errors),
        warning_count=len(report.warnings),
        archive_bucket=context.archive_bucket,
        metadata_versions=metadata_versions or {},
        plan_key=plan_key,
        verify=verify_mode(request.job),
        counts=counts or GatherCounts(),
    )


def _warning(rule: str, message: str) -> Issue:
    return Issue(severity="warning", file=None, field=None, rule=rule, message=message)
