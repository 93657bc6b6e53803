"""`upload-processor validate`: the gather stage's exact checks, on a local folder, before a
single byte is uploaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from upload_processor.adapters.staging import LocalSession
from upload_processor.domain.job_types import resolve_job
from upload_processor.domain.metadata_source import MetadataService
from upload_processor.domain.report import Issue, Report
from upload_processor.domain.upload_job import JOB_FILENAME, parse_upload_job
from upload_processor.errors import UploadJobError, UsageError
from upload_processor.pipeline.gather import gather_session


def validate_directory(
    root: Path,
    *,
    job_path: Path | None = None,
    service: MetadataService | None = None,
    default_tz: str | None = None,
    job_types: dict[str, dict[str, Any]] | None = None,
) -> Report:
    """The validation report of a session folder laid out as it would be staged; `job_types`
    are the deployment's (upload_processor_tools.deployment), default the shipped ones."""
    if not root.exists():
        raise UsageError(f"{root} does not exist")
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder")
    try:
        next(root.iterdir(), None)
    except OSError as exc:
        raise UsageError(f"{root} cannot be read: {exc.strerror}") from exc
    job_path = job_path or root / JOB_FILENAME
    label = job_path.name if job_path.parent == root else str(job_path)
    try:
        raw = job_path.read_bytes()
    except FileNotFoundError:
        return Report.from_issues(
            [
                Issue(
                    severity="error",
                    file=label,
                    field=None,
                    rule="job.missing",
                    message=f"{label} not found: write the job file (see `upload-processor schema upload-job`) "
                    "or pass --job FILE",
                )
            ],
            asset_name=None,
        )
    except OSError as exc:
        raise UsageError(f"{job_path} cannot be read: {exc.strerror}") from exc
    try:
        job, notes = parse_upload_job(raw, file=label, default_tz=default_tz)
        resolution = resolve_job(job, job_types, file=label)
    except UploadJobError as exc:
        issues = exc.issues or [
            Issue(severity="error", file=label, field=None, rule="job.invalid", message=str(exc))
        ]
        return Report.from_issues(issues, asset_name=None)
    gathered = gather_session(
        LocalSession(root),
        resolution.resolved,
        job_notes=[n.model_dump(mode="json") for n in notes + resolution.notes],
        service=service,
        default_tz=default_tz,
    )
    return gathered.report
