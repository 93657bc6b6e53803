"""Ingest: an upload_job.json arrived; record the job and start exactly one execution for it.

The execution name is derived from the staging key and the object's version id: a duplicate
delivery of the same event maps to the same name (and finds its record), while uploading
upload_job.json again creates a new version, hence a new job. A job file that cannot be parsed,
names an unknown job type, or pins a task to a version no deploy published, is rejected right
here: a job record, a report beside the data, an SNS message; never a stack trace.

Ingest also decides which published version of each pipeline function the job runs on
(upload_processor.adapters.versions): the execution input's `functions` holds the ARNs the state
machine's tasks invoke.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from upload_processor.adapters import notify
from upload_processor.adapters.job_types_store import load_job_types
from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.adapters.s3 import join, put_json, read_bytes
from upload_processor.adapters.versions import resolve_pins
from upload_processor.domain.contracts import ExecutionInput, Functions
from upload_processor.domain.job_types import resolve_job
from upload_processor.domain.naming import job_asset_name
from upload_processor.domain.report import REPORT_FILENAME, Issue, Report
from upload_processor.domain.upload_job import (
    JOB_FILENAME,
    MAX_JOB_BYTES,
    UploadJob,
    job_too_large,
    parse_upload_job,
)
from upload_processor.errors import ObjectTooLargeError, UploadJobError
from upload_processor.settings import Settings


@dataclass(frozen=True)
class StagedJobFile:
    """Where an upload_job.json version lives."""

    bucket: str
    key: str
    version_id: str

    @property
    def prefix(self) -> str:
        """The session folder: the job file's directory."""
        return posixpath.dirname(self.key)

    @property
    def uri(self) -> str:
        """s3:// address of the session folder."""
        return f"s3://{self.bucket}/{self.prefix}/" if self.prefix else f"s3://{self.bucket}/"


def execution_name(bucket: str, key: str, version_id: str) -> str:
    """A deterministic Step Functions execution name (≤ 80 chars of [A-Za-z0-9-_]).

    A readable slug of the session folder, then a hash of bucket, key and version.
    """
    digest = hashlib.sha256(f"{bucket}\x00{key}\x00{version_id}".encode()).hexdigest()[:20]
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", posixpath.dirname(key))[-50:].strip("-") or "root"
    return f"{slug}-{digest}"


@dataclass
class IngestOutcome:
    """What ingest did with one job file."""

    job_id: str
    action: str  # "started", "duplicate", "rejected", "ignored"
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-able form for the handler's result and logs."""
        return {"job_id": self.job_id, "action": self.action, "detail": self.detail}


class Ingest:
    """Turns one staged upload_job.json into a job record and an execution."""

    def __init__(
        self,
        *,
        s3: Any,
        sfn: Any,
        sns: Any,
        store: JobStore,
        settings: Settings,
        awslambda: Any = None,
        function_names: dict[str, str] | None = None,
    ) -> None:
        self.s3, self.sfn, self.sns, self.store, self.settings = s3, sfn, sns, store, settings
        # the pipeline functions whose published versions a job's tasks pin (default: the
        # environment template.yaml gives IngestFunction) and a Lambda client to read them
        self._awslambda = awslambda
        self._function_names = function_names

    @property
    def awslambda(self) -> Any:
        """The Lambda client pins are resolved with (made on first use)."""
        if self._awslambda is None:
            from upload_processor.adapters.aws import client

            self._awslambda = client("lambda")
        return self._awslambda

    @property
    def function_names(self) -> dict[str, str]:
        """{"gather", "transfer", "finalize": function name}."""
        if self._function_names is None:
            self._function_names = self.settings.pipeline_functions()
        return self._function_names

    def version_of(self, bucket: str, key: str, version_id: str | None) -> str:
        """The event's version id; when an event lacks one, the object's current version."""
        if version_id:
            return version_id
        head = self.s3.head_object(Bucket=bucket, Key=key)
        return head.get("VersionId") or f"etag-{head['ETag'].strip(chr(34))}"

    def handle(self, bucket: str, key: str, version_id: str | None) -> IngestOutcome:
        """Process one upload_job.json object version."""
        if posixpath.basename(key) != JOB_FILENAME:
            return IngestOutcome("", "ignored", f"{key} is not an {JOB_FILENAME}")
        staged = StagedJobFile(bucket, key, self.version_of(bucket, key, version_id))
        job_id = execution_name(bucket, key, staged.version_id)
        seen = self._seen_before(job_id)
        if seen is not None:
            return seen
        if not staged.prefix:
            return self._reject_at_root(job_id, staged)
        try:
            raw = self._read_job(staged)
        except UploadJobError as exc:
            return self._reject(job_id, staged, exc, {})
        job = None  # once parsed, a rejection still names its asset (`status ASSET` finds it)
        try:
            job, notes = parse_upload_job(
                raw, file=JOB_FILENAME, default_tz=self.settings.default_time_zone
            )
            accepted = self._resolve(job, notes)
        except UploadJobError as exc:
            partial = _partial_job(raw)
            if job is not None:
                partial["asset_name"] = job_asset_name(job)
            return self._reject(job_id, staged, exc, partial)
        return self._start_job(job_id, staged, accepted)

    def _seen_before(self, job_id: str) -> IngestOutcome | None:
        """A duplicate delivery: the job already has an execution, or was rejected or
        cancelled (a new job needs a new upload of the job file)."""
        existing = self.store.get(job_id)
        if existing is None:
            return None
        if existing.get("execution_arn") or existing.get("status") in (
            JobStatus.REJECTED,
            JobStatus.CANCELLED,
        ):
            return IngestOutcome(job_id, "duplicate", f"job already {existing.get('status')}")
        return None

    def _reject_at_root(self, job_id: str, staged: StagedJobFile) -> IngestOutcome:
        """A job file at the bucket's root would take the whole bucket as its session: refused,
        the rejection still addressed to the user the file names when it can be read."""
        message = (
            f"{JOB_FILENAME} is at the root of the bucket, so the whole bucket would be taken as "
            "one session; put the session in its own folder (e.g. rig-7/750101_2025-06-12_15-03-00/) "
            f"and upload {JOB_FILENAME} there"
        )
        issue = Issue(
            severity="error",
            file=JOB_FILENAME,
            field=None,
            rule="job.at_bucket_root",
            message=message,
        )
        try:
            partial = _partial_job(self._read_job(staged))
        except UploadJobError:
            partial = {}
        return self._reject(job_id, staged, UploadJobError(message, issues=[issue]), partial)

    def _resolve(self, job: UploadJob, notes: list[Issue]) -> _Accepted:
        """Resolve the parsed job against its job type and pin its functions' versions; an
        UploadJobError here rejects the job."""
        presets = load_job_types(self.settings.job_types_prefix)
        if job.job_type not in presets:  # a type added since the cache was filled
            presets = load_job_types(self.settings.job_types_prefix, force_fetch=True)
        resolution = resolve_job(job, presets)
        functions = resolve_pins(resolution.resolved, self.awslambda, self.function_names)
        return _Accepted(
            job=resolution.resolved,
            notes=notes + resolution.notes,
            functions=functions,
            asset_name=job_asset_name(job),
        )

    def _start_job(self, job_id: str, staged: StagedJobFile, accepted: _Accepted) -> IngestOutcome:
        """Record the accepted job and start its execution; a job for an asset whose last job
        failed is recorded (and announced) as that job's retry."""
        record = _job_record(job_id, staged, accepted)
        previous = self._previous_failure(accepted.asset_name, job_id)
        if previous is not None:
            record["retry_of_job"] = previous["job_id"]
        # False on a retried delivery after a crash: start anyway
        created = self.store.create(record)
        arn = self._start(job_id, _execution_input(job_id, staged, accepted))
        self.store.update(job_id, execution_arn=arn)
        if created and previous is not None:
            notify.publish(
                self.sns,
                self.settings.require("topic_arn"),
                notify.retrying(
                    job=accepted.job,
                    job_id=job_id,
                    asset_name=accepted.asset_name,
                    previous_job_id=previous["job_id"],
                    staging_uri=staged.uri,
                ),
            )
        return IngestOutcome(job_id, "started", arn)

    def _read_job(self, staged: StagedJobFile) -> bytes:
        """The job file's bytes; one over MAX_JOB_BYTES is rejected from its size, unread."""
        try:
            return read_bytes(
                self.s3, staged.bucket, staged.key, staged.version_id, max_bytes=MAX_JOB_BYTES
            )
        except ObjectTooLargeError as exc:
            raise job_too_large(exc.size, JOB_FILENAME) from exc

    def _previous_failure(self, name: str, job_id: str) -> dict[str, Any] | None:
        """The newest earlier job for this asset, when it failed: this job is its retry."""
        for record in self.store.for_asset(name, limit=5):
            if record["job_id"] == job_id:
                continue
            return record if record.get("status") == JobStatus.FAILED else None
        return None

    def _start(self, job_id: str, execution_input: ExecutionInput) -> str:
        arn = self.settings.require("state_machine_arn")
        try:
            out = self.sfn.start_execution(
                stateMachineArn=arn, name=job_id, input=execution_input.model_dump_json()
            )
            return out["executionArn"]
        except self.sfn.exceptions.ExecutionAlreadyExists:
            return arn.replace(":stateMachine:", ":execution:") + f":{job_id}"

    def _reject(
        self, job_id: str, staged: StagedJobFile, exc: UploadJobError, partial: dict[str, Any]
    ) -> IngestOutcome:
        report = Report.from_issues(exc.issues or [], asset_name=None)
        if not report.errors:
            report = Report.model_validate(
                {
                    "status": "invalid",
                    "asset_name": None,
                    "issues": [
                        {
                            "severity": "error",
                            "file": JOB_FILENAME,
                            "field": None,
                            "rule": "job.invalid",
                            "message": str(exc),
                        }
                    ],
                }
            )
        report_key = join(staged.prefix, REPORT_FILENAME)
        put_json(self.s3, staged.bucket, report_key, report.model_dump(mode="json"))
        created = self.store.create(
            {
                "job_id": job_id,
                "status": str(JobStatus.REJECTED),
                "staging_bucket": staged.bucket,
                "staging_prefix": staged.prefix,
                "job_key": staged.key,
                "job_version_id": staged.version_id,
                "job_type": partial.get("job_type") or "unknown",
                "user_email": partial.get("user_email"),
                "asset_name": partial.get("asset_name"),
                "report_key": report_key,
                "error": str(exc)[:2000],
            }
        )
        if created:
            message = notify.rejection(
                job=partial,
                report=report,
                staging_uri=staged.uri,
                report_uri=f"s3://{staged.bucket}/{report_key}",
            )
            notify.publish(self.sns, self.settings.require("topic_arn"), message)
        return IngestOutcome(job_id, "rejected", str(exc))


def _partial_job(raw: bytes) -> dict[str, Any]:
    """What can be salvaged from an invalid job file to address the rejection (email, type)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    email = data.get("user_email")
    job_type = data.get("job_type")
    return {
        "user_email": email if isinstance(email, str) and "@" in email else None,
        "job_type": job_type if isinstance(job_type, str) and len(job_type) < 100 else None,
        "email_notification_types": ["fail"],
    }


@dataclass(frozen=True)
class _Accepted:
    """A job that parsed and resolved: what its record and execution input are built from."""

    job: dict[str, Any]  # the resolved job
    notes: list[Issue]
    functions: dict[str, str]
    asset_name: str


def _job_record(job_id: str, staged: StagedJobFile, accepted: _Accepted) -> dict[str, Any]:
    """The RECEIVED job record of an accepted job."""
    resolved = accepted.job
    return {
        "job_id": job_id,
        "status": str(JobStatus.RECEIVED),
        "staging_bucket": staged.bucket,
        "staging_prefix": staged.prefix,
        "job_key": staged.key,
        "job_version_id": staged.version_id,
        "job_type": resolved["job_type"],
        "user_email": resolved.get("user_email"),
        "subject_id": resolved["subject_id"],
        "asset_name": accepted.asset_name,
        "functions": accepted.functions,
    }


def _execution_input(job_id: str, staged: StagedJobFile, accepted: _Accepted) -> ExecutionInput:
    """The state machine's input for an accepted job."""
    return ExecutionInput(
        job_id=job_id,
        bucket=staged.bucket,
        prefix=staged.prefix,
        job_key=staged.key,
        job_version_id=staged.version_id,
        job=accepted.job,
        job_notes=[n.model_dump(mode="json") for n in accepted.notes],
        # what every Lambda task of the state machine invokes (FunctionName.$): a pinned
        # published version, else the alias live. MarkFailed reads it too: always present.
        functions=Functions.model_validate(accepted.functions),
    )
