"""Every fault the project raises, under one base class, and the one notion of "transient".

An invalid session is *not* an exception: it is a result that a Choice state routes. These are
for what goes wrong around it. The names are stable: the state machine matches them by class
name in `Retry`/`Catch` (a test ties every `ErrorEquals` to a class here), and the fail message
quotes them.

Transient (worth retrying with backoff, see `is_transient`): throttling, 5xx and timeouts of
any AWS service (S3, DynamoDB, SNS, Step Functions, Lambda) and of an HTTP API whose errors
carry a `status_code` (Code Ocean's SDK: 429 and 5xx), connection errors, and
`TransientError` itself. Stages turn such a fault into `TransientError` (`as_transient`),
which is the only application error the state machine retries; everything else (AccessDenied,
NoSuchBucket, a validation error, ...) is permanent and fails the job once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

# AWS error codes that retrying can fix (S3, DynamoDB, SNS, Lambda, Step Functions, STS).
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "TransactionConflictException",
        "RequestTimeout",
        "RequestTimeoutException",
        "RequestTimeTooSkewed",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottlingException",
        "500",
        "502",
        "503",
        "504",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same call later can succeed: the project's one definition.

    botocore is imported here, not at module level, so that the domain (which imports this
    module for its exception classes) stays free of AWS libraries.
    """
    if isinstance(exc, TransientError):
        return True
    status_code = getattr(exc, "status_code", None)
    if isinstance(status_code, int) and not isinstance(status_code, bool):
        # an HTTP API's error (Code Ocean's SDK): throttled (429) or the server's fault (5xx)
        return status_code == 429 or status_code >= 500
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error_code(exc) in TRANSIENT_CODES or int(status) >= 500
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, BotoConnectionError | HTTPClientError | TimeoutError)


def as_transient(exc: BaseException, doing: str) -> TransientError:
    """A transient fault as the TransientError the state machine's Retry matches."""
    code = error_code(exc) or type(exc).__name__
    return TransientError(f"{code} while {doing}: {exc}")


@contextlib.contextmanager
def transient_as_retryable(doing: str) -> Iterator[None]:
    """Run the block; an AWS error that `is_transient` leaves it as the TransientError the
    state machine retries (`doing` says what was being done, for the message). Any other
    error, permanent ones included (AccessDenied, NoSuchBucket), leaves it unchanged."""
    try:
        yield
    except TransientError:
        raise
    except Exception as exc:
        if isinstance(getattr(exc, "response", None), dict) and is_transient(exc):
            raise as_transient(exc, doing) from exc
        raise


class UploadProcessorError(Exception):
    """Base of every fault the pipeline raises on purpose."""


class TransientError(UploadProcessorError):
    """A fault worth retrying (throttling, 5xx): the ASL retries it with backoff."""


class UploadJobError(UploadProcessorError):
    """upload_job.json cannot be read or parsed; the message says which field and how to fix."""

    def __init__(self, message: str, issues: list[Any] | None = None) -> None:
        super().__init__(message)
        self.issues = list(issues or [])


class UnknownJobTypeError(UploadJobError):
    """The job names a job type this deployment does not define."""


class ConfigurationError(UploadProcessorError):
    """The deployment is missing a setting (an environment variable from template.yaml)."""


class AssetExistsError(UploadProcessorError):
    """The archive already holds a different asset under the same name: nothing is overwritten."""


class JobNotFoundError(UploadProcessorError):
    """No job record with that id."""


class DataDescriptionError(UploadProcessorError, ValueError):
    """The job does not say enough to build a valid data_description; the message says what."""


class AssetLockedError(UploadProcessorError):
    """Another job holds the asset's lease: this job stops before writing anything."""


class TransferError(UploadProcessorError):
    """A permanent fault moving one object: retrying the same plan item will not fix it.

    The message names the source, the destination and why, so that it can go to a person
    unchanged (the Failed notification, the job record).
    """

    def __init__(self, reason: str, *, source: str, dest: str) -> None:
        super().__init__(f"{source} -> {dest}: {reason}")
        self.reason = reason
        self.source = source
        self.dest = dest


class VerificationError(TransferError):
    """The object in the archive is not what was transferred (size, checksum or format)."""


class EcephysError(UploadProcessorError):
    """A permanent fault encoding an ecephys binary into Zarr (the recording's own data, not
    the pipeline, is at odds with what its description or the stream's correction promised)."""


class EcephysLsbError(EcephysError):
    """A chunk holds a value the stream's LSB/offset correction cannot represent exactly (the
    correction was detected on a sample of the file). Nothing of the stream may be sealed with
    that correction: encode the stream again with `lsb_correction="off"`."""


class EcephysVerificationError(EcephysError):
    """A chunk decoded from what was written is not the source bytes it was made from."""


class SourceChangedError(TransferError):
    """The staged object changed (a new version, another size) after GatherMetadata planned
    it, while this job was transferring it: nothing of it is archived. Unlike other transfer
    faults the cause is not the pipeline's and needs no fix: a retry once the upload is
    complete plans, and archives, the new version."""


class FilesMissingError(UploadProcessorError):
    """Files that upload_job.json lists never arrived in staging within the wait."""


class JobCancelledError(UploadProcessorError):
    """The job was cancelled (its record is CANCELLED) while a stage was still working on it:
    the stage stops instead of finishing work nobody wants. Its execution has already been
    stopped by `cancel`, so nothing routes this fault; it only ends the invocation early."""


class StagedObjectUnreadableError(UploadProcessorError):
    """S3 refuses to let the pipeline read a staged object (403, archived to Glacier, ...):
    the job fails naming it; it is not the session's metadata that is wrong."""


class OperationRefusedError(UploadProcessorError):
    """The job is not in a state the operation applies to."""


class MetadataServiceError(UploadProcessorError):
    """The metadata service could not answer: a transient failure that outlasted the retries
    (5xx, 429, timeouts, connection errors), or (`MetadataRequestError`) a request it refused.
    The message names the URL (or table)."""

    transient = True

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class MetadataRequestError(MetadataServiceError):
    """The service refused the request (a 4xx other than 404: 400, 401, 403, 406, ...) or its
    answer is unusable (ambiguous, not JSON). Retrying the same request will not help."""

    transient = False


class RegistrationError(UploadProcessorError):
    """A registration step after Finalize (catalog, Code Ocean, pipelines, announce) could not
    do its work; the job stays COMPLETE and records it as `registration: FAILED (reason)`."""


class EventPublishError(RegistrationError):
    """EventBridge refused an event (PutEvents' FailedEntryCount): its error code and message."""


class CodeOceanError(RegistrationError):
    """Code Ocean refused a request for good (401, 403, 400, 404, ...) or answered something
    unusable: retrying the same call will not help. The message names the call, the HTTP
    status and Code Ocean's own message; a 429 or 5xx is a TransientError instead."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidQueryError(UploadProcessorError, ValueError):
    """A listing request that cannot be answered as asked (unknown state, bad token, ...)."""


class JobStateConflictError(UploadProcessorError):
    """A conditional update found the job in another status than expected."""


class PinError(UploadJobError):
    """A task pins a version no published function version carries, or pins disagree."""


class RegistryError(UploadProcessorError):
    """Base of the registry's errors."""


class UnknownKindError(RegistryError):
    """Not one of the registry's kinds (instrument, subject, procedures, project)."""


class RegistryValidationError(RegistryError):
    """The document is not a valid aind-data-schema record of its kind (HTTP 400).

    `errors` holds one entry per problem: ``{"loc": [...], "field": "a.b.0", "msg": ...,
    "type": ...}`` (pydantic's location, as a list and as a dotted path).
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of a 400 response."""
        return {"message": str(self), "errors": self.errors}


class RegistryConflictError(RegistryError):
    """The record (id and version) already exists and replace was not asked for (HTTP 409)."""

    def __init__(self, kind: str, record_id: str, version: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.id, self.version = kind, record_id, version


class StrictJsonError(UploadProcessorError, ValueError):
    """JSON that Python's parser accepts but JSON (and Step Functions) does not mean.

    `problems` holds one `(kind, field, detail)` per problem: kind ``duplicate_key`` (detail:
    the key) or ``not_finite`` (detail: ``NaN``, ``Infinity`` or ``-Infinity``); field is the
    dotted path of the value (list indexes as numbers), "" for the document itself.
    """

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        shown = "; ".join(
            f"{kind} {detail!r} at {field or '<root>'}" for kind, field, detail in problems
        )
        super().__init__(f"not strict JSON: {shown}")
        self.problems = problems


class ObjectTooLargeError(UploadProcessorError, ValueError):
    """An object is larger than the caller reads whole; nothing of it was read."""

    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(f"{key} is {size} bytes, more than the {limit} read whole")
        self.key, self.size, self.limit = key, size, limit


class UsageError(UploadProcessorError):
    """The folder cannot be validated at all (missing, not a folder, unreadable): exit 2."""


class LocalModeError(UploadProcessorError, RuntimeError):
    """The template holds something local mode cannot create, or the seam moved."""


class SubmitUsageError(UploadProcessorError):
    """Bad arguments (staging URI, folder): exit 2."""


class SessionLayoutError(UploadProcessorError):
    """The folder cannot be staged as one session (exit 1, like an invalid session)."""


class SubmitUploadError(UploadProcessorError):
    """A file (or the job file) could not be staged: exit 3. `file` names it."""

    def __init__(self, message: str, file: str | None = None) -> None:
        super().__init__(message)
        self.file = file


class NotLocatedError(ConfigurationError):
    """A resource the command needs could not be found: the message says how to name it."""
