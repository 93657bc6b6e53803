"""What S3's answers mean for a transfer: permanent faults become `TransferError`, transient
ones `TransientError`.

Step Functions tells errors apart by name. `TransferError` (and its `VerificationError` and
`SourceChangedError`) is a permanent fault that retrying the same plan will not fix (the
source is gone, or changed since it was planned; the output is wrong), and it names both
objects. A transient fault (throttling, a 5xx, a dropped connection or a timeout:
`errors.is_transient`) leaves the package as `TransientError`, the one application error the
state machine retries. Any other AWS error (AccessDenied, NoSuchBucket, ...) is permanent and
propagates as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeAlias

from upload_processor.adapters.s3 import NOT_FOUND_CODES
from upload_processor.domain.plan import PlanItem
from upload_processor.errors import (
    SourceChangedError,
    TransferError,
    UploadProcessorError,
    as_transient,
    error_code,
    is_transient,
)

# boto3's S3 client is generated at run time; the typed stubs (mypy-boto3-s3) are not a
# dependency of this project, so the annotation stays loose.
S3Client: TypeAlias = Any

# S3 answers that no retry fixes: the object's permissions (or KMS key), or its storage class.
REFUSED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "InvalidObjectState"})


def url(bucket: str, key: str) -> str:
    """The s3:// address of an object, as messages name it."""
    return f"s3://{bucket}/{key}"


@contextlib.contextmanager
def transient_surfaced(doing: str) -> Iterator[None]:
    """Re-raise a transient AWS or connection fault as `TransientError` ("<code> while
    <doing>: ..."); let the project's own errors and permanent faults through unchanged."""
    try:
        yield
    except UploadProcessorError:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise as_transient(exc, doing) from exc
        raise


def refuse_own_source(
    item: PlanItem, *, source_bucket: str, dest_bucket: str, source: str, dest: str
) -> None:
    """TransferError if the destination is the source itself (the plan would overwrite
    staged data)."""
    if (source_bucket, item.source_key) == (dest_bucket, item.dest_key):
        raise TransferError(
            "the destination is the source itself; the plan would overwrite staged data",
            source=source,
            dest=dest,
        )


def changed(item: PlanItem, actual: object, *, source: str, dest: str) -> SourceChangedError:
    """The source is not the size it was planned with: it changed after the plan was made."""
    return source_changed(
        f"it has {actual} bytes but was planned with {item.size}", source=source, dest=dest
    )


def source_changed(detail: str, *, source: str, dest: str) -> SourceChangedError:
    """The staged object is no longer the one planned (`detail` says how it differs)."""
    return SourceChangedError(
        f"the staged file changed while this job was transferring it ({detail}): nothing of it "
        "was archived; retry the job once its upload is complete, or upload the session again",
        source=source,
        dest=dest,
    )


def source_fault(exc: Exception, item: PlanItem, *, source: str, dest: str) -> TransferError:
    """Translate a client error about the source into a TransferError if it says the source is
    gone or changed; re-raise it as it is otherwise (transient ones surface as
    `TransientError` at the package's edge)."""
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return TransferError("the source object does not exist", source=source, dest=dest)
    if code in ("PreconditionFailed", "412"):
        return source_changed(
            f"it no longer has the planned ETag {item.etag}", source=source, dest=dest
        )
    raise exc


def refused(exc: Exception, item: PlanItem, *, source: str, dest: str) -> TransferError | None:
    """A permanent refusal to read or write the object (`REFUSED_CODES`) as a TransferError
    that says what to fix; None for any other error."""
    code = error_code(exc)
    if code not in REFUSED_CODES:
        return None
    message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
    return TransferError(
        f"S3 refused the transfer ({code}: {message}); give the pipeline read access to the "
        f"staged object {item.source_key!r} and write access to the archive (ACL, bucket "
        "policy, KMS key; restore an archived object), then upload upload_job.json again",
        source=source,
        dest=dest,
    )
