"""Optional cleanup of staging, after a verified archive copy, when the job asks for it.

Staged data is read-only to the pipeline: no failure, retry or rejection modifies or deletes a
staged object (the validation report is the only object it adds). The one exception is asked
for by the job itself: when its resolved task `remove_source_folders` (an
aind-data-transfer-service task id) is not skipped, Finalize removes the staged objects the
asset was made from, and only once the asset's `manifest.json` is written (the asset sealed,
every transfer verified). Job types ship the task skipped (upload_processor.domain.job_types); a job
asks with `"tasks": {"remove_source_folders": {"skip_task": false}}`. A no-op job (an
identical re-upload), a rejected or a failed job never cleans up.

What is removed is what the manifest records, nothing else: the data files
(`objects[].source_key`, with the ETag they were planned from, `source_etag`), the metadata
originals and upload_job.json (`staged_metadata[]`); never the validation report, never a key
outside the job's staging prefix. Each object is removed only if its *current* version still
has the ETag the job archived (and, where the manifest records it, is the version it archived):
HeadObject, then DeleteObject with `IfMatch` (S3's conditional delete, which closes the window
between the two) and never with a `VersionId`. The staging
bucket is versioned, so a delete only adds a delete marker: the archived bytes stay
recoverable as a noncurrent version (until a lifecycle rule, if the deployment adds one,
expires them). An object re-uploaded since (another ETag) is kept and listed; one already gone
(a retried Finalize) is counted as absent.

The pure parts (`cleanup_requested`, `staged_objects`, `same_etag`, `CleanupResult.summary`)
need no AWS; `remove_staged` takes a boto3 S3 client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

CLEANUP_TASK = "remove_source_folders"
# how many kept objects the job record and Finalize's result list (a DynamoDB item holds
# 400 KB, a Step Functions payload 256 KB); `kept_count` always gives the total
SHOWN_KEPT = 50
# concurrent HEAD + DELETE pairs: thousands of files finish well inside Finalize's timeout
WORKERS = 8

_ABSENT = ("404", "NoSuchKey", "NotFound", "NoSuchVersion")
_CHANGED = ("412", "PreconditionFailed")


@dataclass(frozen=True)
class StagedObject:
    """A staged object the manifest records, with the ETag (unquoted) the job archived and,
    when the manifest has it (metadata files, upload_job.json), the version it archived."""

    key: str
    etag: str
    version_id: str = ""


@dataclass
class CleanupResult:
    """What a cleanup did: keys removed, objects kept (and why), keys already gone."""

    removed: list[str] = field(default_factory=list)
    kept: list[dict[str, str]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)

    def summary(self, shown: int = SHOWN_KEPT) -> dict[str, Any]:
        """The job record's (and Finalize's result's) `staging_cleanup`: small whatever the
        file count; at most `shown` kept objects are listed, `kept_count` is the total."""
        kept = sorted(self.kept, key=lambda k: k["key"])
        return {
            "removed": len(self.removed),
            "kept": kept[:shown],
            "kept_count": len(kept),
            "absent": len(self.absent),
        }


def cleanup_requested(job: Mapping[str, Any]) -> bool:
    """Whether the resolved job runs `remove_source_folders`: present and not skipped.

    A resolved job always carries the task (skipped unless asked for); one without it (an
    execution started before the task existed) never cleans up.
    """
    task = (job.get("tasks") or {}).get(CLEANUP_TASK)
    return isinstance(task, Mapping) and task.get("skip_task") is False


def same_etag(a: str | None, b: str | None) -> bool:
    """Two ETags are the same (S3 quotes them, the plan and the manifest do not)."""
    left, right = (a or "").strip().strip('"'), (b or "").strip().strip('"')
    return bool(left) and left == right


def staged_objects(
    manifest: Mapping[str, Any], *, prefix: str, exclude: Iterable[str] = ()
) -> list[StagedObject]:
    """The staged objects a sealed manifest records, once each, sorted by key.

    Data files come from `objects` (`source_key`, `source_etag`), the metadata originals and
    upload_job.json from `staged_metadata` (`source_key`, `source_etag`). Keys in `exclude`
    (the validation report) and keys outside the staging `prefix` are left out. An entry
    without an ETag is kept as given (empty ETag): `remove_staged` then keeps the object.
    """
    within = prefix.strip("/") + "/" if prefix.strip("/") else ""
    skip = set(exclude)
    found: dict[str, StagedObject] = {}
    entries = [*(manifest.get("objects") or []), *(manifest.get("staged_metadata") or [])]
    for entry in entries:
        key = str(entry.get("source_key") or "")
        if not key or key in skip or not key.startswith(within):
            continue
        etag = str(entry.get("source_etag") or "").strip('"')
        version = str(entry.get("source_version_id") or "")
        # a key recorded twice: keep the first entry seen for it
        found.setdefault(key, StagedObject(key, etag, version))
    return [found[key] for key in sorted(found)]


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _remove_one(s3: Any, bucket: str, obj: StagedObject) -> tuple[str, str]:
    """("removed" | "absent" | "kept", reason) for one object."""
    if not obj.etag:
        return "kept", "no archived ETag recorded, so it cannot be checked"
    try:
        head = s3.head_object(Bucket=bucket, Key=obj.key)
    except ClientError as exc:
        code = _code(exc)
        if code in _ABSENT:
            return "absent", ""
        return "kept", f"could not check it ({code})"
    except BotoCoreError as exc:
        return "kept", f"could not check it ({type(exc).__name__})"
    current = str(head.get("ETag") or "")
    if not same_etag(current, obj.etag):
        return "kept", (
            f"changed since it was archived (ETag {current.strip(chr(34))}, archived "
            f"{obj.etag}): re-uploaded, so it is left in place"
        )
    if obj.version_id and head.get("VersionId") and head["VersionId"] != obj.version_id:
        return "kept", (
            f"uploaded again since it was archived (version {head['VersionId']}, archived "
            f"{obj.version_id}), so it is left in place"
        )
    try:
        # never a VersionId: the versioned bucket keeps the archived bytes as a noncurrent
        # version behind a delete marker; IfMatch: a re-upload since the HEAD is not removed
        s3.delete_object(Bucket=bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')
    except ClientError as exc:
        code = _code(exc)
        if code in _CHANGED:
            return "kept", "changed while being removed: re-uploaded, so it is left in place"
        if code in _ABSENT:
            return "absent", ""
        return "kept", f"could not remove it ({code})"
    except BotoCoreError as exc:
        return "kept", f"could not remove it ({type(exc).__name__})"
    return "removed", ""


def remove_staged(
    s3: Any, bucket: str, objects: Iterable[StagedObject], *, workers: int = WORKERS
) -> CleanupResult:
    """Remove each staged object whose current version still has its archived ETag.

    Never raises for one object: what cannot be checked or removed is kept, with the reason.
    """
    todo = list(objects)
    result = CleanupResult()
    if not todo:
        return result
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
        outcomes = list(pool.map(lambda o: _remove_one(s3, bucket, o), todo))
    for obj, (outcome, reason) in zip(todo, outcomes, strict=True):
        if outcome == "removed":
            result.removed.append(obj.key)
        elif outcome == "absent":
            result.absent.append(obj.key)
        else:
            result.kept.append({"key": obj.key, "reason": reason})
    return result
