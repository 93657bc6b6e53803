"""Why a transfer failed, told from what the batches recorded.

A failed Map reports only its own generic cause, and completing a chunked upload only sees a
missing part; the Transfer iterations record each failure beside their results
(`transfer.batch.recorded_failures`). These functions quote those records, so the job's error
and its `fail` message name the object and the real cause (a staged file that changed becomes
a SourceChangedError, with its own retry advice).
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters import notify
from upload_processor.domain.archive import work_key
from upload_processor.errors import SourceChangedError, TransferError, VerificationError
from upload_processor.pipeline.transfer.batch import RecordedFailure, recorded_failures

logger = logging.getLogger(__name__)

# How many recorded batch failures a failure's cause quotes.
SHOWN_BATCH_FAILURES = 5


def recorded_cause(
    s3: Any, archive: str, job_id: str, exc: TransferError, dest_key: str
) -> TransferError:
    """Why a chunked upload could not be completed: the failure a range recorded for that
    file, raised again as it was (a SourceChangedError says the staged file changed, where
    the completion only sees a missing part); `exc` itself when no range recorded one."""
    for failure in recorded_failures(s3, archive, job_id):
        recorded = failure.as_error() if failure.dest_key == dest_key else None
        if recorded is not None:
            logger.warning("completing %s failed after a range failed: %s", exc.dest, exc)
            return recorded
    return exc


def headline_class(
    failures: list[RecordedFailure], default: type[TransferError]
) -> type[TransferError]:
    """The error class a failure quoting `failures` is raised as: SourceChangedError if a
    staged file changed (its own retry advice: the cause is not the pipeline's), else
    `default`."""
    if any(f.error == SourceChangedError.__name__ for f in failures):
        return SourceChangedError
    return default


def distinct_causes(failures: list[RecordedFailure], headline: str = "") -> list[str]:
    """The failures as quoted, each once (the ranges of one changed file fail alike); those
    of the `headline` class (the error that quotes them) without their class name."""
    return list(dict.fromkeys(f.message if f.error == headline else str(f) for f in failures))


def with_batch_failures(
    s3: Any, archive: str, job_id: str, error: dict[str, Any]
) -> dict[str, Any]:
    """A failed Map reports its own generic cause (States.ExceedToleratedFailureThreshold):
    the batches' recorded failures say which object failed and why; quote them."""
    try:
        failures = recorded_failures(s3, archive, job_id)
    except ClientError:
        logger.exception("could not read the recorded transfer failures of %s", job_id)
        return error
    if not failures:
        return error
    changed = headline_class(failures, TransferError) is SourceChangedError
    # a changed staged file names the failure: the fail message's retry advice is its own
    named = {"Error": SourceChangedError.__name__} if changed else {}
    distinct = distinct_causes(failures, named.get("Error", ""))
    shown = "; ".join(distinct[:SHOWN_BATCH_FAILURES])
    more = len(distinct) - SHOWN_BATCH_FAILURES
    cause = notify.cause_text(str(error.get("Cause") or error.get("cause") or ""))
    quoted = f"{shown}" + (f"; and {more} more" if more > 0 else "")
    return {
        **error,
        **named,
        "Cause": f"{quoted} (the Map: {cause})" if cause else quoted,
    }


def missing_objects_error(s3: Any, archive: str, job_id: str, missing: list[str]) -> TransferError:
    """Planned objects without a transfer result: the transfers' own recorded failures first,
    since they say which object failed and what to do."""
    failures = recorded_failures(s3, archive, job_id)
    headline = headline_class(failures, VerificationError)
    distinct = distinct_causes(failures, headline.__name__)
    causes = "".join(f"{c}; " for c in distinct[:SHOWN_BATCH_FAILURES])
    return headline(
        f"{causes}{len(missing)} planned object(s) have no transfer result: "
        f"{', '.join(missing[:10])}",
        source=f"s3://{archive}/{work_key(job_id, 'plan.json')}",
        dest=f"s3://{archive}/",
    )
