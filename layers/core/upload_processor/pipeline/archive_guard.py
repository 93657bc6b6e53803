"""Guarantee 2, the archive is never overwritten: the asset lease, the identical-content
check, and resuming the remains of a failed job.

- **Lease.** A job writes into `<asset>/` only while it holds the asset's lock object
  `_jobs/locks/<asset>.json` in the archive bucket, taken with a conditional
  `PutObject(IfNoneMatch="*")`: of two jobs racing for one asset, the second fails with
  `AssetLockedError` before writing anything. The holder releases it when its job ends
  (Finalize: complete, rejected, failed). A lock whose holder's job record is no longer
  RECEIVED or PROCESSING (cancelled, failed without reaching Finalize) is stale and is taken
  over with a conditional `PutObject(IfMatch=<its ETag>)`. A retry of the same job (same
  job id) re-enters its own lease.
- **Complete asset** (`<asset>/manifest.json` exists): the staged session is compared with
  what the manifest recorded, file by file (keys, sizes, the source ETag, else S3's full-object
  SHA-256, else a bounded download hashed like the manifest's `source_sha256`) and the staged
  metadata files byte for byte with the archived originals. Identical: the job is a no-op.
  Otherwise `AssetExistsError` lists what differs.
- **Incomplete asset** (objects under `<asset>/`, no manifest): the remains of a failed job.
  The new job plans everything as usual and marks the items whose destination already exists;
  `reuse_verified` keeps such an object only when it provably holds the planned source version
  (its `source-etag`/`source-size`/codec/level metadata, and a SHA-256 from its metadata or from
  decompressing it; for a copy, the same ETag or S3 SHA-256 as the source), else it is redone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import zstandard
from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import (
    full_object_sha256,
    is_conflict,
    is_not_found,
    list_objects,
    read_bytes,
)
from upload_processor.adapters.staging import Entry, S3Session
from upload_processor.domain.archive import (
    CODEC_ZSTD,
    MANIFEST,
    META_CODEC,
    META_LEVEL,
    META_RANGE_SIZE,
    META_SOURCE_ETAG,
    META_SOURCE_SHA256,
    META_SOURCE_SIZE,
    TREE_SHA256_PREFIX,
    lock_key,
    parse_tree_sha256,
    tree_sha256,
)
from upload_processor.domain.plan import PlanItem, chunk_ranges
from upload_processor.domain.report import REPORT_FILENAME
from upload_processor.domain.units import DEFAULT_LEVEL, READ_CHUNK, GiB
from upload_processor.errors import AssetLockedError
from upload_processor.pipeline.transfer.as_is import as_is_item, mark_as_is
from upload_processor.pipeline.transfer.result import TransferResult

logger = logging.getLogger(__name__)

# Jobs whose lease is live: any other status (or a record that says so) makes a lock stale.
LIVE_STATUSES = ("RECEIVED", "PROCESSING")
# How many bytes the identical-content check may download when no ETag or S3 checksum
# settles a file (beyond it, the file counts as different: never overwrite on a guess).
COMPARE_DOWNLOAD_BUDGET = 1 * GiB
SHOWN_DIFFERENCES = 10


# --- the lease ----------------------------------------------------------------------------


def lock_holder(s3: Any, archive: str, asset_name: str) -> tuple[dict[str, Any], str] | None:
    """The lock's content and ETag, or None when the asset is not locked."""
    try:
        out = s3.get_object(Bucket=archive, Key=lock_key(asset_name))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    try:
        holder = json.loads(out["Body"].read())
    except ValueError:
        holder = {}
    return (holder if isinstance(holder, dict) else {}), str(out.get("ETag", ""))


def _lock_body(asset_name: str, job_id: str) -> bytes:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return json.dumps({"asset_name": asset_name, "job_id": job_id, "acquired_at": stamp}).encode()


def _put_lock(s3: Any, archive: str, asset_name: str, job_id: str, **condition: str) -> None:
    """Write the lease with a condition (IfNoneMatch: create; IfMatch: take over a stale one)."""
    s3.put_object(
        Bucket=archive,
        Key=lock_key(asset_name),
        Body=_lock_body(asset_name, job_id),
        ContentType="application/json",
        **condition,
    )


def acquire_asset_lock(
    s3: Any,
    archive: str,
    asset_name: str,
    job_id: str,
    *,
    job_status: Callable[[str], str | None] | None = None,
) -> str:
    """Take the asset's lease for `job_id`; returns how ("acquired", "reentered", "taken over").

    `job_status(job_id)` gives another job's status (None: unknown); with it, a lock whose
    holder is neither RECEIVED nor PROCESSING is stale and taken over. Raises AssetLockedError
    naming the holder otherwise.
    """
    key = lock_key(asset_name)
    for _ in range(5):
        try:
            _put_lock(s3, archive, asset_name, job_id, IfNoneMatch="*")
            return "acquired"
        except ClientError as exc:
            if not is_conflict(exc):
                raise
        found = lock_holder(s3, archive, asset_name)
        if found is None:
            continue  # released meanwhile: try again
        holder, etag = found
        other = str(holder.get("job_id") or "")
        if other == job_id:
            return "reentered"
        status = job_status(other) if (job_status and other) else None
        if status is not None and status not in LIVE_STATUSES:
            try:
                _put_lock(s3, archive, asset_name, job_id, IfMatch=etag)
                return "taken over"
            except ClientError as exc:
                if not is_conflict(exc) and not is_not_found(exc):
                    raise
                continue  # someone else moved first: look again
        since = holder.get("acquired_at") or "an unknown time"
        raise AssetLockedError(
            f"asset {asset_name} is being written by job {other or '(unknown)'} (lease taken "
            f"{since}, s3://{archive}/{key}); this job stopped before writing anything. Wait "
            "for that job to end, then upload upload_job.json again; if that job is no longer "
            f"running, cancel it (`upload-processor cancel {other}`) to free the asset"
        )
    raise AssetLockedError(
        f"asset {asset_name}: the lease s3://{archive}/{key} kept changing hands; "
        "upload upload_job.json again"
    )


def release_asset_lock(s3: Any, archive: str, asset_name: str, job_id: str) -> bool:
    """Release the lease if `job_id` holds it (never another job's); True if released."""
    found = lock_holder(s3, archive, asset_name)
    if found is None or found[0].get("job_id") != job_id:
        return False
    s3.delete_object(Bucket=archive, Key=lock_key(asset_name))
    return True


def release_quietly(s3: Any, archive: str | None, name: str | None, job_id: str) -> None:
    """Release the job's lease if it holds it, logging (not raising) a failure: the outcome
    being recorded matters more, and a stale lease is taken over by the next job."""
    if not (s3 is not None and archive and name):
        return
    try:
        release_asset_lock(s3, archive, name, job_id)
    except Exception:
        logger.exception("could not release the lease of %s", name)


def holds_asset_lock(s3: Any, archive: str, asset_name: str, job_id: str) -> bool:
    """Whether `job_id` holds the asset's lease now."""
    found = lock_holder(s3, archive, asset_name)
    return found is not None and found[0].get("job_id") == job_id


# --- a complete asset: identical or not -----------------------------------------------------


def read_manifest(s3: Any, archive: str, asset_name: str) -> dict[str, Any] | None:
    """The asset's manifest, or None when the asset is not complete."""
    try:
        return json.loads(read_bytes(s3, archive, f"{asset_name}/{MANIFEST}"))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def archived_relative(asset_name: str, entry: dict[str, Any]) -> str:
    """The session-relative path a manifest object was transferred from (recorded as
    `source_relative` when the asset places it elsewhere: an ecephys stream's Zarr, the
    ecephys transformation's `ecephys_clipped/` files)."""
    if entry.get("source_relative"):
        return str(entry["source_relative"])
    rel = str(entry["dest_key"])[len(asset_name) + 1 :]
    if entry.get("action") == "compress" and rel.endswith(".zst"):
        rel = rel[: -len(".zst")]
    return rel


def _sha256_download(s3: Any, bucket: str, key: str, size: int, recorded: str) -> str:
    """The staged object's checksum, computed the way the manifest recorded it (plain SHA-256,
    or the tree hash of a chunked file)."""
    if recorded.startswith(TREE_SHA256_PREFIX):
        _, range_size = parse_tree_sha256(recorded)
        hashes = []
        for start, end in chunk_ranges(size, range_size):
            body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
            digest = hashlib.sha256()
            while chunk := body.read(READ_CHUNK):
                digest.update(chunk)
            hashes.append(digest.hexdigest())
        return tree_sha256(hashes, range_size)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    while chunk := body.read(READ_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _content_difference(
    s3: Any, bucket: str, entry: Entry, archived: dict[str, Any], budget: list[int]
) -> str | None:
    """Why a staged data file is not the one archived, or None when it provably is."""
    if int(archived.get("bytes_in", -1)) != entry.size:
        return f"{entry.size} bytes staged, {archived.get('bytes_in')} archived"
    recorded_etag = str(archived.get("source_etag") or "").strip('"')
    if recorded_etag and recorded_etag == entry.etag.strip('"'):
        return None
    if archived.get("action") == "encode_ecephys":
        # its checksum is a tree hash over the plan's ranges (pipeline.ecephys_seal)
        return "its ETag differs from the archived recording's"
    recorded = str(archived.get("source_sha256") or "").lower()
    if not recorded:
        return "the manifest records no checksum to compare it with, and its ETag differs"
    if not recorded.startswith(TREE_SHA256_PREFIX):
        head = s3.head_object(Bucket=bucket, Key=entry.key, ChecksumMode="ENABLED")
        staged_sha = full_object_sha256(head)
        if staged_sha:
            return None if staged_sha == recorded else "its SHA-256 differs from the archived one"
    if entry.size > budget[0]:
        return (
            f"cannot be compared without downloading its {entry.size} bytes (no matching "
            "ETag or S3 SHA-256); it is taken as different"
        )
    budget[0] -= entry.size
    computed = _sha256_download(s3, bucket, entry.key, entry.size, recorded)
    return None if computed == recorded else "its SHA-256 differs from the archived one"


def compare_with_asset(
    s3: Any,
    source: S3Session,
    manifest: dict[str, Any],
    *,
    archive: str,
    asset_name: str,
    budget: int = COMPARE_DOWNLOAD_BUDGET,
) -> list[str]:
    """What differs between the staged session and the complete asset (empty: identical)."""
    # imported here: the Transfer function (reuse_verified) never loads aind-data-schema
    from upload_processor.domain.upload_job import JOB_FILENAME
    from upload_processor.metadata import metadata_type_of

    entries = {
        e.relative: e for e in source.entries() if e.relative not in (JOB_FILENAME, REPORT_FILENAME)
    }
    staged_data = {r: e for r, e in entries.items() if not metadata_type_of(r)}
    staged_meta = {r: e for r, e in entries.items() if metadata_type_of(r)}
    archived = {archived_relative(asset_name, o): o for o in manifest.get("objects", [])}
    marker = f"{asset_name}/original_metadata/"
    originals = {
        str(k)[len(marker) :] for k in manifest.get("metadata", []) if str(k).startswith(marker)
    }
    out = [f"{r}: staged, not in the asset" for r in sorted(staged_data.keys() - archived.keys())]
    out += [f"{r}: in the asset, not staged" for r in sorted(archived.keys() - staged_data.keys())]
    out += [f"{r}: staged, not in the asset" for r in sorted(staged_meta.keys() - originals)]
    out += [f"{r}: in the asset, not staged" for r in sorted(originals - staged_meta.keys())]
    left = [budget]
    for rel in sorted(staged_data.keys() & archived.keys()):
        why = _content_difference(s3, source.bucket, staged_data[rel], archived[rel], left)
        if why:
            out.append(f"{rel}: {why}")
    for rel in sorted(staged_meta.keys() & originals):
        staged_bytes, _ = source.read(rel)
        if staged_bytes != read_bytes(s3, archive, marker + rel):
            out.append(f"{rel}: differs from the archived original")
    return out


def describe_differences(differences: list[str]) -> str:
    """The first few differences, for a message a person reads."""
    shown = "; ".join(differences[:SHOWN_DIFFERENCES])
    more = (
        f"; and {len(differences) - SHOWN_DIFFERENCES} more"
        if len(differences) > SHOWN_DIFFERENCES
        else ""
    )
    return shown + more


# --- an incomplete asset: resume -------------------------------------------------------------


def asset_objects(s3: Any, archive: str, asset_name: str) -> dict[str, dict[str, Any]]:
    """Every object under `<asset>/`, by key."""
    return {o["Key"]: o for o in list_objects(s3, archive, f"{asset_name}/")}


def _decompressed(s3: Any, bucket: str, key: str, size: int) -> str | None:
    """SHA-256 of the object's decompressed bytes if it is a whole zstd stream of `size`
    bytes (every frame's own checksum is checked by the decoder), else None."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    total = 0
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
        while chunk := reader.read(READ_CHUNK):
            total += len(chunk)
            if total > size:
                return None
            digest.update(chunk)
    except zstandard.ZstdError:
        return None
    finally:
        body.close()
    return digest.hexdigest() if total == size else None


def reuse_verified(
    s3: Any, item: PlanItem, *, source_bucket: str, dest_bucket: str
) -> TransferResult | None:
    """The result of an earlier job's transfer of this very item, when the object it left at
    the destination is verified to hold the planned source version; else None (redo it).

    A `compress` item an earlier attempt stored as is (zstd did not shrink it: its plain name,
    `transfer.as_is`) is kept the same way, verified as a copy, and its result says so."""
    kept = _reuse_planned(s3, item, source_bucket=source_bucket, dest_bucket=dest_bucket)
    plain = as_is_item(item) if kept is None else None
    if plain is None:
        return kept
    kept = _reuse_planned(s3, plain, source_bucket=source_bucket, dest_bucket=dest_bucket)
    if kept is None:
        return None
    return mark_as_is(kept, item, "stored as is by an earlier attempt, verified as the source")


def _reuse_planned(
    s3: Any, item: PlanItem, *, source_bucket: str, dest_bucket: str
) -> TransferResult | None:
    """`reuse_verified` of the object at the item's own `dest_key`."""
    if item.action not in ("compress", "copy"):
        return None
    try:
        head = s3.head_object(Bucket=dest_bucket, Key=item.dest_key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    size_out = int(head["ContentLength"])
    if item.action == "compress":
        level = DEFAULT_LEVEL if item.level is None else item.level
        if (
            meta.get(META_SOURCE_ETAG) != item.etag
            or meta.get(META_SOURCE_SIZE) != str(item.size)
            or meta.get(META_CODEC) != CODEC_ZSTD
            or meta.get(META_LEVEL) != str(level)
            or META_RANGE_SIZE in meta  # a chunked object: its tree hash is not re-derivable here
        ):
            return None
        sha = meta.get(META_SOURCE_SHA256) or _decompressed(
            s3, dest_bucket, item.dest_key, item.size
        )
        if not sha:
            return None
        return TransferResult.of_item(
            item, bytes_out=size_out, source_sha256=sha, etag=head.get("ETag")
        )
    if size_out != item.size:
        return None
    dest_sha = full_object_sha256(head)
    same = bool(item.etag) and str(head.get("ETag", "")).strip('"') == item.etag.strip('"')
    if not same and dest_sha:
        source = s3.head_object(Bucket=source_bucket, Key=item.source_key, ChecksumMode="ENABLED")
        same = full_object_sha256(source) == dest_sha
    if not same:
        return None
    return TransferResult.of_item(
        item, bytes_out=item.size, source_sha256=dest_sha, etag=head.get("ETag")
    )
