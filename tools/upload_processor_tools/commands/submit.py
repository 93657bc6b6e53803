"""`upload-processor submit DIR --staging s3://BUCKET/PREFIX`: validate, upload, trigger.

Exit codes: 0 submitted; 1 invalid session (the report is printed, nothing is uploaded);
2 usage (bad --staging URI, DIR missing); 3 upload failure (the message names the file; no
job file is written, so nothing starts: run the same command again to resume).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from upload_processor.domain.upload_job import JOB_FILENAME
from upload_processor.errors import SessionLayoutError, SubmitUploadError, SubmitUsageError
from upload_processor_tools.commands.checks import validate_with_deployment
from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    DeploymentOptions,
    human_size,
    takes_deployment,
)
from upload_processor_tools.submit import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_SIZE_MIB,
    LocalFile,
    StagingLocation,
    SubmitResult,
    Submitter,
    s3_client,
    session_files,
    transfer_config,
)

err = Console(stderr=True, soft_wrap=True, highlight=False)


class RichProgress:
    """submit's progress as rich bars on stderr: files and bytes, rate, time left."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]{task.description:<9}"),
            BarColumn(),
            TextColumn("{task.fields[done]}/{task.fields[files]} files"),
            DownloadColumn(binary_units=False),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._lock = threading.Lock()
        self._check: Any = None
        self._upload: Any = None
        self._checked = 0
        self._uploaded = 0

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def checking(self, files: int, size: int) -> None:
        self._check = self.bar.add_task("checking", total=size, files=files, done=0)

    def hashed(self, size: int) -> None:
        self.bar.advance(self._check, size)

    def checked(self, file: LocalFile) -> None:
        with self._lock:
            self._checked += 1
            self.bar.update(self._check, done=self._checked)

    def uploading(self, files: int, size: int) -> None:
        if files:
            self._upload = self.bar.add_task("uploading", total=size, files=files, done=0)

    def transferred(self, size: int) -> None:
        if self._upload is not None:
            self.bar.advance(self._upload, size)

    def uploaded(self, file: LocalFile) -> None:
        with self._lock:
            self._uploaded += 1
            self.bar.update(self._upload, done=self._uploaded)


def _session_files(directory: Path, follow_symlinks: bool) -> list[LocalFile]:
    """The folder's files, or exit: 2 for an unreadable folder, 1 for a layout problem (each
    refused path listed with its reason)."""
    try:
        return session_files(directory, follow_symlinks=follow_symlinks)
    except SubmitUsageError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc
    except SessionLayoutError as exc:
        err.print(f"[red]not submitted[/]: {exc}")
        raise typer.Exit(1) from exc


def _checked_usage(
    staging: str, directory: Path, job: Path | None, *, registry: str | None, offline: bool
) -> StagingLocation:
    """Where the session goes, once the options make sense; a usage error exits 2."""
    try:
        location = StagingLocation.parse(staging)
        if not directory.is_dir():
            raise SubmitUsageError(
                f"{directory} {'is not a folder' if directory.exists() else 'does not exist'}"
            )
        if job is not None and not job.is_file():
            raise SubmitUsageError(f"--job {job}: no such file")
        if offline and registry:
            raise SubmitUsageError("--offline and --registry exclude each other")
    except SubmitUsageError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc
    return location


def _validate(out: Console, directory: Path, where: Any, **checks: Any) -> None:
    """Validate as the pipeline will (the deployment's metadata service and job types); print
    the report; an invalid session exits 1 before anything is uploaded."""
    from upload_processor_tools.commands.report_view import print_report

    report = validate_with_deployment(directory, where, skip_hint="submit with --offline", **checks)
    print_report(out, report)
    if report.status != "valid":
        err.print("[red]not submitted[/]: fix the errors above (or pass --no-validate)")
        raise typer.Exit(1)


def _job_bytes(job_path: Path) -> bytes:
    """The job file as it is uploaded: missing exits 2, unreadable exits 3."""
    try:
        return job_path.read_bytes()
    except FileNotFoundError as exc:
        err.print(f"{job_path} not found: write the job file or pass --job FILE")
        raise typer.Exit(2) from exc
    except OSError as exc:
        err.print(f"cannot read {job_path}: {exc.strerror}")
        raise typer.Exit(3) from exc


def _upload(
    where: Any,
    location: StagingLocation,
    files: list[LocalFile],
    job_raw: bytes,
    config: Any,
    concurrency: int,
) -> SubmitResult:
    """Stage the files, then the job file, with progress bars on stderr. A refused layout
    exits 1, a failed upload 3 (saying how to resume), Ctrl-C 130."""
    s3 = s3_client(
        where.endpoint_url, max_pool_connections=concurrency + 4, session=where.session()
    )
    try:
        with RichProgress(err) as progress:
            return Submitter(s3, location, config=config, progress=progress).submit(files, job_raw)
    except SessionLayoutError as exc:
        err.print(f"[red]not submitted[/]: {exc}")
        raise typer.Exit(1) from exc
    except SubmitUploadError as exc:
        err.print(f"[red]upload failed[/]: {exc}")
        if exc.file != JOB_FILENAME:
            err.print(
                f"{JOB_FILENAME} was not written, so no job started; run the same command again "
                "to resume (files already staged are skipped)"
            )
        raise typer.Exit(3) from exc
    except KeyboardInterrupt as exc:
        err.print(
            f"interrupted: {JOB_FILENAME} was not written; run the same command again to resume"
        )
        raise typer.Exit(130) from exc


def _print_submitted(
    out: Console,
    location: StagingLocation,
    result: SubmitResult,
    files: int,
    endpoint_url: str | None,
) -> None:
    """What was uploaded and skipped, the job's id, and the command that follows it."""
    out.print(
        f"uploaded {len(result.uploaded)} file(s) ({human_size(result.uploaded_bytes)}), "
        f"skipped {len(result.skipped)} already in staging ({human_size(result.skipped_bytes)})"
    )
    if result.replaced_job:
        out.print(
            f"note: {location.uri}{JOB_FILENAME} already existed; this new version starts a new job"
        )
    out.print(
        f"wrote s3://{location.bucket}/{result.job_key} (version {result.version_id}), "
        f"listing {files} file(s) (data and metadata)"
    )
    out.print(f"job id: {result.job_id}")
    follow = f"upload-processor status {result.job_id}"
    if endpoint_url:
        follow += f" --endpoint-url {endpoint_url}"
    out.print(f"follow it: {follow}")


@takes_deployment
def submit(
    directory: Path = typer.Argument(
        ..., metavar="DIR", help="The session folder, laid out as it is staged."
    ),
    staging: str = typer.Option(
        ...,
        "--staging",
        metavar="URI",
        help="Where the session goes: s3://BUCKET/PREFIX (its own folder).",
    ),
    job: Path | None = typer.Option(
        None, "--job", metavar="FILE", help="The job file (default: DIR/upload_job.json)."
    ),
    no_validate: bool = typer.Option(
        False, "--no-validate", help="Upload even if validation finds errors (it is not run)."
    ),
    registry: str | None = typer.Option(
        None,
        "--registry",
        metavar="SPEC",
        help="Metadata service for validation (as `validate --registry`); default: the "
        "deployment's, exactly as the pipeline will check the session.",
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Validate without the metadata service or the deployment."
    ),
    default_tz: str | None = typer.Option(
        None,
        "--default-tz",
        metavar="TZ",
        help="Time zone for a naive acq_datetime (default: the deployment's DefaultTimeZone).",
    ),
    part_size_mib: int = typer.Option(
        DEFAULT_PART_SIZE_MIB,
        "--part-size-mib",
        min=5,
        metavar="MIB",
        help="Files larger than this go multipart, in parts of this size.",
    ),
    concurrency: int = typer.Option(
        DEFAULT_CONCURRENCY, "--concurrency", min=1, metavar="N", help="Parallel requests."
    ),
    follow_symlinks: bool = typer.Option(
        False,
        "--follow-symlinks",
        help="Upload the target of a symlink that stays inside the folder (default: refuse "
        "every symlink; links out of the folder, dangling ones and loops are always refused).",
    ),
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Validate a session folder, upload it (resumable), then write upload_job.json to start it."""
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    out = Console(soft_wrap=True, highlight=False)
    location = _checked_usage(staging, directory, job, registry=registry, offline=offline)
    where = deployment.locate()
    files = _session_files(directory, follow_symlinks)  # what is uploaded is what is validated
    if no_validate:
        err.print("validation skipped (--no-validate)")
    else:
        checks = {"job": job, "registry": registry, "offline": offline, "default_tz": default_tz}
        _validate(out, directory, where, **checks)
    job_raw = _job_bytes(job or directory / JOB_FILENAME)
    config = transfer_config(part_size_mib, concurrency)
    result = _upload(where, location, files, job_raw, config, concurrency)
    _print_submitted(out, location, result, len(files), deployment.endpoint_url)


if __name__ == "__main__":  # pragma: no cover - `python -m upload_processor_tools.commands.submit`
    typer.run(submit)
