"""`upload-processor submit`: stage a session folder the way the pipeline wants it.

Every file but the job file goes up first, through boto3's transfer manager (multipart for
large files, many files in parallel, SHA-256 checksums checked by S3). A file already staged
with the same size and SHA-256 is skipped, so an interrupted submit resumes where it stopped.
`upload_job.json` goes last, listing every file and its size: its arrival starts the job, and
processing waits until everything it lists is there. The job id is the execution name ingest
derives from the job file's key and the version id S3 gave it.

The command line is `commands/submit.py`; this module holds no printing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from upload_processor.adapters.s3 import is_not_found
from upload_processor.domain.report import REPORT_FILENAME
from upload_processor.domain.units import MiB
from upload_processor.domain.upload_job import JOB_FILENAME
from upload_processor.errors import SessionLayoutError, SubmitUploadError, SubmitUsageError
from upload_processor.pipeline.ingest import execution_name

DEFAULT_PART_SIZE_MIB = 64
DEFAULT_CONCURRENCY = 10
SHA256_METADATA = "sha256"  # object metadata: the whole file's SHA-256 (hex)
_HASH_BLOCK = 8 * MiB


@dataclass(frozen=True)
class StagingLocation:
    """`s3://BUCKET/PREFIX`: the session's folder in the staging bucket."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> StagingLocation:
        """Parse and check the URI; the prefix is required (a session needs its own folder)."""
        text = (uri or "").strip()
        if not text.startswith("s3://"):
            raise SubmitUsageError(f"--staging {uri!r} is not an s3:// URI; use s3://BUCKET/PREFIX")
        bucket, _, prefix = text[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        if not bucket or any(c in bucket for c in " \\"):
            raise SubmitUsageError(f"--staging {uri!r} names no bucket; use s3://BUCKET/PREFIX")
        if not prefix:
            raise SubmitUsageError(
                f"--staging {uri!r} has no prefix: a session needs its own folder, e.g. "
                f"s3://{bucket}/rig-7/750101_2025-06-12_15-03-00"
            )
        if "//" in prefix:
            raise SubmitUsageError(f"--staging {uri!r}: the prefix has an empty path segment")
        return cls(bucket, prefix)

    def key(self, relative: str) -> str:
        """The object key of a session file."""
        return f"{self.prefix}/{relative}"

    @property
    def uri(self) -> str:
        """s3://bucket/prefix/"""
        return f"s3://{self.bucket}/{self.prefix}/"


@dataclass
class LocalFile:
    """One file of the session folder."""

    relative: str
    path: Path
    size: int
    sha256: str = ""  # hex, filled by hashing

    @property
    def sha256_b64(self) -> str:
        """The digest as S3's ChecksumSHA256 writes it (base64)."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


@dataclass
class SubmitResult:
    """What a submit did."""

    staging: StagingLocation
    uploaded: list[LocalFile] = field(default_factory=list)
    skipped: list[LocalFile] = field(default_factory=list)
    job_key: str = ""
    version_id: str = ""
    job_id: str = ""
    replaced_job: bool = False  # an upload_job.json was already there: this is a new job

    @property
    def uploaded_bytes(self) -> int:
        """Bytes sent."""
        return sum(f.size for f in self.uploaded)

    @property
    def skipped_bytes(self) -> int:
        """Bytes already in staging."""
        return sum(f.size for f in self.skipped)


class Progress(Protocol):
    """What submit reports while it works (the CLI draws a progress bar from it)."""

    def checking(self, files: int, size: int) -> None:
        """Hashing and comparing with staging starts."""

    def hashed(self, size: int) -> None:
        """Bytes read to hash."""

    def checked(self, file: LocalFile) -> None:
        """One file hashed and compared."""

    def uploading(self, files: int, size: int) -> None:
        """The uploads start."""

    def transferred(self, size: int) -> None:
        """Bytes sent (negative when a retried part rolls back)."""

    def uploaded(self, file: LocalFile) -> None:
        """One file fully staged."""


class _NoProgress:
    def checking(self, files: int, size: int) -> None:
        pass

    def hashed(self, size: int) -> None:
        pass

    def checked(self, file: LocalFile) -> None:
        pass

    def uploading(self, files: int, size: int) -> None:
        pass

    def transferred(self, size: int) -> None:
        pass

    def uploaded(self, file: LocalFile) -> None:
        pass


# -- the folder ------------------------------------------------------------------------------
def session_files(root: Path, *, follow_symlinks: bool = False) -> list[LocalFile]:
    """The files to stage: everything under root except the job file and the pipeline's report.

    Only regular files are staged. Anything else is refused, every one listed with its reason
    in one SessionLayoutError, before a byte is sent: a symlink out of the folder (it would
    upload a file that is not the session's), a dangling one, a FIFO, socket or device (reading
    it blocks or never ends), a symlinked-directory loop. A symlink inside the folder is
    followed only with `follow_symlinks` (the staged object is then its target's bytes under
    the link's name). A nested file named upload_job.json would start a second, bogus job (the
    staging bucket triggers on that name anywhere), so it is refused too.
    """
    if not root.exists():
        raise SubmitUsageError(f"{root} does not exist")
    if not root.is_dir():
        raise SubmitUsageError(f"{root} is not a folder")
    real_root = root.resolve()
    out: list[LocalFile] = []
    refused: list[tuple[str, str]] = []
    stack = [(root, real_root, (real_root,))]
    while stack:
        folder, real_folder, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise SubmitUsageError(f"{folder} cannot be read: {exc.strerror}") from exc
        for entry in entries:
            path = Path(entry.path)
            relative = path.relative_to(root).as_posix()
            target = _resolve(path) if entry.is_symlink() else real_folder / entry.name
            if target is None:
                refused.append((relative, "symlink loop (it points, through links, to itself)"))
                continue
            why = _refusal(path, target, real_root, ancestors, follow_symlinks)
            if why:
                refused.append((relative, why))
            elif target.is_dir():
                stack.append((path, target, (*ancestors, target)))
            elif relative in (JOB_FILENAME, REPORT_FILENAME):
                continue
            elif path.name == JOB_FILENAME:
                refused.append((relative, _NESTED_JOB))
            else:
                out.append(LocalFile(relative, path, target.stat().st_size))
    if refused:
        listed = "\n".join(f"  {relative}: {why}" for relative, why in sorted(refused))
        raise SessionLayoutError(
            f"{len(refused)} path(s) of {root} cannot be staged as they are; fix each, then run "
            f"the same command again:\n{listed}"
        )
    return sorted(out, key=lambda f: f.relative)


_NESTED_JOB = (
    f"only the session's root may hold {JOB_FILENAME} (its arrival starts a job for the folder "
    "it is in); rename or move the nested one"
)


def _resolve(link: Path) -> Path | None:
    """Where a symlink finally points; None for a chain of links that loops."""
    try:
        return link.resolve()
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError for a loop
        return None


def _refusal(
    path: Path, target: Path, real_root: Path, ancestors: tuple[Path, ...], follow: bool
) -> str | None:
    """Why one folder entry cannot be staged (`target`: where it resolves), or None."""
    if path.is_symlink():
        if not target.exists():
            return f"dangling symlink (points to {os.readlink(path)}, which does not exist)"
        if not target.is_relative_to(real_root):
            return (
                f"symlink that leaves the session folder (points to {target}); copy the file "
                "into the folder if it belongs to the session"
            )
        if target.is_dir() and target in ancestors:
            return f"symlinked-directory loop (points to its own parent folder {target})"
        if not follow:
            return (
                f"symlink inside the folder (points to {target}); pass --follow-symlinks to "
                "upload its target under this name, or replace it with the file"
            )
    if target.is_dir() or target.is_file():
        return None
    kind = _special_kind(target)
    return f"{kind}, not a regular file (reading it would block or never end); remove it"


def _special_kind(path: Path) -> str:
    """What a non-regular, non-folder entry is, in words."""
    if path.is_fifo():
        return "a FIFO (named pipe)"
    if path.is_socket():
        return "a socket"
    if path.is_block_device() or path.is_char_device():
        return "a device"
    return "not a file or folder"


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """The file's SHA-256 (hex), read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
            if on_bytes:
                on_bytes(len(block))
    return digest.hexdigest()


def job_document(raw: bytes, files: list[LocalFile]) -> bytes:
    """The job file as staged: the user's job plus `files`, every staged file and its size."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SessionLayoutError(f"{JOB_FILENAME} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SessionLayoutError(f"{JOB_FILENAME} must hold a JSON object")
    data["files"] = [{"path": f.relative, "size": f.size} for f in files]
    return (json.dumps(data, indent=2) + "\n").encode()


# -- S3 --------------------------------------------------------------------------------------
def s3_client(
    endpoint_url: str | None = None, *, max_pool_connections: int = 20, session: Any = None
) -> Any:
    """The S3 client submit uses, from `session` (the deployment's: its profile, region, and
    fake credentials for a local cloud). Without one: the default session, with fake
    credentials when an endpoint is given and none are configured (a local server accepts any)."""
    import boto3
    from botocore.config import Config

    if session is None:
        session = boto3.session.Session()
        local = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if local and session.get_credentials() is None:
            session = boto3.session.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
            )
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=max_pool_connections,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=session.region_name or "us-east-1",
        config=config,
    )


def transfer_config(
    part_size_mib: int = DEFAULT_PART_SIZE_MIB, concurrency: int = DEFAULT_CONCURRENCY
) -> Any:
    """boto3's TransferConfig: files above one part size go multipart, in parts of that size."""
    from boto3.s3.transfer import TransferConfig

    part = max(5, int(part_size_mib)) * MiB  # S3's smallest part
    return TransferConfig(
        multipart_threshold=part,
        multipart_chunksize=part,
        max_concurrency=max(1, int(concurrency)),
        use_threads=True,
        preferred_transfer_client="classic",
    )


def already_staged(head: dict[str, Any] | None, file: LocalFile) -> bool:
    """Whether the staged object is this file: same size, same SHA-256.

    submit stores the whole file's SHA-256 as metadata (`sha256`): for a multipart upload
    S3's ChecksumSHA256 is a checksum of the parts' checksums, not the file's. An object
    without that metadata is compared by ChecksumSHA256 when it is a whole-object one.
    """
    if head is None or int(head.get("ContentLength", -1)) != file.size:
        return False
    stored = (head.get("Metadata") or {}).get(SHA256_METADATA)
    if stored:
        return stored.lower() == file.sha256
    checksum = head.get("ChecksumSHA256") or ""
    whole_object = checksum and "-" not in checksum and head.get("ChecksumType") != "COMPOSITE"
    return bool(whole_object) and checksum == file.sha256_b64


class Submitter:
    """Stages one session folder under a staging location."""

    def __init__(
        self,
        s3: Any,
        staging: StagingLocation,
        *,
        config: Any = None,
        progress: Progress | None = None,
    ) -> None:
        self.s3 = s3
        self.staging = staging
        self.config = config or transfer_config()
        self.progress: Progress = progress or _NoProgress()

    def check_bucket(self) -> None:
        """Fail early, naming the bucket, when it is missing or not ours to write."""
        try:
            self.s3.head_bucket(Bucket=self.staging.bucket)
        except Exception as exc:
            raise SubmitUploadError(
                f"cannot reach staging bucket {self.staging.bucket}: {_describe(exc)}"
            ) from exc

    def _head(self, file: LocalFile) -> dict[str, Any] | None:
        try:
            return self.s3.head_object(
                Bucket=self.staging.bucket,
                Key=self.staging.key(file.relative),
                ChecksumMode="ENABLED",
            )
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def plan(self, files: list[LocalFile]) -> tuple[list[LocalFile], list[LocalFile]]:
        """Hash every file and compare it with staging: (to upload, already staged)."""
        self.progress.checking(len(files), sum(f.size for f in files))

        def check(file: LocalFile) -> bool:
            try:
                file.sha256 = sha256_file(file.path, self.progress.hashed)
            except OSError as exc:
                raise SubmitUploadError(
                    f"cannot read {file.relative}: {exc.strerror or exc}", file.relative
                ) from exc
            try:
                staged = already_staged(self._head(file), file)
            except Exception as exc:
                raise SubmitUploadError(
                    f"cannot check {file.relative} in staging: {_describe(exc)}", file.relative
                ) from exc
            self.progress.checked(file)
            return staged

        workers = max(1, min(self.config.max_concurrency, 16))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="submit-check") as pool:
            verdicts = list(pool.map(check, files))
        todo = [f for f, staged in zip(files, verdicts, strict=True) if not staged]
        done = [f for f, staged in zip(files, verdicts, strict=True) if staged]
        return todo, done

    def upload(self, files: list[LocalFile]) -> None:
        """Upload files through one transfer manager; the first failure stops the rest."""
        from boto3.s3.transfer import create_transfer_manager
        from s3transfer.subscribers import BaseSubscriber

        progress = self.progress
        progress.uploading(len(files), sum(f.size for f in files))
        if not files:
            return

        class _Subscriber(BaseSubscriber):
            def __init__(self, file: LocalFile) -> None:
                self.file = file

            def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
                progress.transferred(bytes_transferred)

        # The manager's context exit cancels whatever is in flight when the block raises (the
        # first failure, or Ctrl-C). Not `shutdown(cancel=True)`: s3transfer 0.19 passes its
        # arguments on shifted there (the message becomes the exception type).
        pending: dict[Any, LocalFile] = {}
        with create_transfer_manager(self.s3, self.config) as manager:
            for file in files:
                future = manager.upload(
                    str(file.path),
                    self.staging.bucket,
                    self.staging.key(file.relative),
                    extra_args={
                        "ChecksumAlgorithm": "SHA256",
                        "Metadata": {SHA256_METADATA: file.sha256},
                    },
                    subscribers=[_Subscriber(file)],
                )
                pending[future] = file
                self._collect(pending)
            while pending:
                time.sleep(0.02)
                self._collect(pending)

    def _collect(self, pending: dict[Any, LocalFile]) -> None:
        """Account for finished uploads; raise on the first that failed."""
        for future in [f for f in pending if f.done()]:
            file = pending.pop(future)
            try:
                future.result()
            except Exception as exc:
                raise SubmitUploadError(
                    f"upload of {file.relative} failed: {_describe(exc)}", file.relative
                ) from exc
            self.progress.uploaded(file)

    def write_job(self, body: bytes) -> tuple[str, str, bool]:
        """Put upload_job.json (last); returns its key, version id and whether one was there."""
        key = self.staging.key(JOB_FILENAME)
        existed = False
        try:
            self.s3.head_object(Bucket=self.staging.bucket, Key=key)
            existed = True
        except Exception as exc:
            if not is_not_found(exc):
                raise SubmitUploadError(
                    f"cannot check {JOB_FILENAME} in staging: {_describe(exc)}", JOB_FILENAME
                ) from exc
        try:
            out = self.s3.put_object(
                Bucket=self.staging.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",
            )
        except Exception as exc:
            raise SubmitUploadError(
                f"upload of {JOB_FILENAME} failed: {_describe(exc)}; the data is staged, run "
                "submit again to write the job file",
                JOB_FILENAME,
            ) from exc
        # as ingest names an event without a version id (an unversioned bucket)
        version = out.get("VersionId") or f"etag-{out['ETag'].strip(chr(34))}"
        return key, version, existed

    def submit(self, files: list[LocalFile], job_raw: bytes) -> SubmitResult:
        """Stage the files, then the job file listing them."""
        body = job_document(job_raw, files)
        self.check_bucket()
        todo, done = self.plan(files)
        self.upload(todo)
        key, version, existed = self.write_job(body)
        return SubmitResult(
            staging=self.staging,
            uploaded=todo,
            skipped=done,
            job_key=key,
            version_id=version,
            job_id=execution_name(self.staging.bucket, key, version),
            replaced_job=existed,
        )


def _describe(exc: BaseException) -> str:
    """A short reason: the S3 error code and message when there is one."""
    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    if error:
        return f"{error.get('Code', '')} {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
