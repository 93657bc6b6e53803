"""The Announce state, and the events of the other ways a job ends.

Announce runs last after Finalize. It reads every registration step's outcome back from the job
record (so it reports whatever steps ran), puts `Upload Asset Archived` on the default
EventBridge bus and sends the `end` notification (when the job asks for it) saying the
registration outcome. Both go out once per sealed asset: the job record's `announced_at` is
claimed first (a conditional update) and released again if sending fails, so a retried
Announce neither repeats nor loses them. A no-op job (nothing sealed) sends no event, only its
`end` notification.

Reject and MarkFailed put `Upload Job Rejected` / `Upload Job Failed` (`job_event`); a problem
putting those is logged, never a reason to leave the job unclosed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from upload_processor.adapters import events, notify
from upload_processor.domain.catalog import utc_key
from upload_processor.domain.contracts import FailedInput, RejectedInput
from upload_processor.domain.registration import Registration, RegistrationInput, StepOutcome
from upload_processor.domain.report import Report
from upload_processor.pipeline.step_context import StepContext

logger = logging.getLogger(__name__)


def _acquired(job: Mapping[str, Any]) -> str | None:
    when = job.get("acq_datetime")
    try:
        return utc_key(str(when)) if when else None
    except ValueError:
        return str(when)


def archived_detail(
    request: RegistrationInput, record: Mapping[str, Any], registration: Registration
) -> dict[str, Any]:
    """The `Upload Asset Archived` event's detail."""
    job = request.job
    return {
        "asset_name": request.asset_name,
        "archive_uri": request.archive_uri,
        "job_id": request.job_id,
        "subject_id": job.get("subject_id"),
        "project_name": job.get("project_name"),
        "modalities": list(job.get("modalities") or []),
        "acquisition_time": _acquired(job),  # UTC; acq_datetime: as the job gave it
        "acq_datetime": job.get("acq_datetime"),
        "data_level": "raw",  # this pipeline archives raw assets (data_description)
        "manifest_key": request.manifest_key,
        "metadata_key": request.metadata_key,
        "archive_bucket": request.archive_bucket,
        "files": request.finalize.files,
        "bytes_in": request.finalize.bytes_in,
        "bytes_out": request.finalize.bytes_out,
        "registration": registration.summary(ignore=("announce",)),
        "registration_steps": {
            name: outcome.model_dump(mode="json")
            for name, outcome in registration.ordered()
            if name != "announce"
        },
        "user_email": record.get("user_email") or job.get("user_email"),
        "job_type": job.get("job_type"),
    }


def announce(request: RegistrationInput, ctx: StepContext) -> StepOutcome:
    """Put the asset's event and send the `end` notification, once."""
    record = ctx.store.get(request.job_id) or {}
    registration = Registration.from_record(record)
    summary = registration.summary(ignore=("announce",))
    if not ctx.store.claim_announcement(request.job_id):
        return StepOutcome.ok(note="already announced", registration=summary)
    try:
        details: dict[str, str] = {"registration": summary}
        if not request.finalize.noop:
            details["event_id"] = events.put_event(
                ctx.client("events"),
                source=ctx.settings.event_source,
                detail_type=events.ARCHIVED,
                detail=archived_detail(request, record, registration),
                resource=request.archive_uri,
            )
        message_id = _notify_end(request, ctx, registration)
        if message_id:
            details["end_message_id"] = message_id
    except BaseException:
        ctx.store.release_announcement(request.job_id)
        raise
    return StepOutcome.ok(**details)


def _notify_end(
    request: RegistrationInput, ctx: StepContext, registration: Registration
) -> str | None:
    job = request.job
    if not notify.wants(job, "end"):
        return None
    counts = request.finalize.model_dump(include={"files", "bytes_in", "bytes_out"})
    steps = {n: o.line() for n, o in registration.ordered() if n != "announce"}
    message = notify.completion(
        job=job,
        asset_name=request.asset_name,
        archive_uri=request.archive_uri,
        counts=counts,
        registration=registration.summary(ignore=("announce",)),
        steps=steps,
    )
    return notify.publish(ctx.client("sns"), ctx.settings.require("topic_arn"), message)


def job_event(
    client: Any,
    *,
    source: str,
    detail_type: events.DetailType,
    job_id: str,
    job: Mapping[str, Any],
    staging_uri: str,
    **detail: Any,
) -> str | None:
    """Put `Upload Job Rejected` / `Upload Job Failed`; its id, None when it could not be put
    (logged: the job is closed whatever EventBridge says)."""
    body = {
        "job_id": job_id,
        "staging_uri": staging_uri,
        "subject_id": job.get("subject_id"),
        "project_name": job.get("project_name"),
        "modalities": list(job.get("modalities") or []),
        "acquisition_time": _acquired(job),
        "job_type": job.get("job_type"),
        **detail,
    }
    try:
        return events.put_event(
            client, source=source, detail_type=detail_type, detail=body, resource=staging_uri
        )
    except Exception:
        logger.exception("could not put the %r event of job %s", detail_type, job_id)
        return None


def rejected_event(client: Any, *, source: str, event: RejectedInput, report: Report) -> None:
    """`Upload Job Rejected`: where the report is and its first problems."""
    gather = event.gather
    job_event(
        client,
        source=source,
        detail_type=events.REJECTED,
        job_id=event.job_id,
        job=event.job,
        staging_uri=event.staging_uri,
        asset_name=gather.asset_name,
        report_uri=f"s3://{event.bucket}/{gather.report_key}",
        errors=len(report.errors),
        problems=[f"{i.file}: {i.field}: {i.message}" for i in report.errors[:20]],
    )


def failed_event(
    client: Any, *, source: str, event: FailedInput, result: Mapping[str, Any]
) -> None:
    """`Upload Job Failed`: the step, the error and its cause (as the fail message says)."""
    job_event(
        client,
        source=source,
        detail_type=events.FAILED,
        job_id=event.job_id,
        job=event.job,
        staging_uri=event.staging_uri,
        step=event.step,
        error=result["error"],
        cause=result.get("cause"),
    )
