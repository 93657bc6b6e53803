"""Sealing the transfers: complete the chunked uploads and verify every planned object.

Finalize's first step (`seal_transfers`), and `abort_job_uploads`, which frees a failed job's
multipart uploads. Quick verification trusts what each transfer proved when it wrote its
object (the conditional GET, the SHA-256 S3 checked on each PUT and part) and checks from one
listing of the asset what can have changed since (`check_listed`); a result without the ETag
its write got keeps a HeadObject check (`check_stored`).
"""

from __future__ import annotations

import json
from typing import Any

from upload_processor.adapters.s3 import read_bytes
from upload_processor.domain.archive import work_key
from upload_processor.domain.plan import ENCODE_ECEPHYS as ENCODE
from upload_processor.errors import TransferError, VerificationError
from upload_processor.pipeline.archive_guard import asset_objects
from upload_processor.pipeline.failures import missing_objects_error, recorded_cause
from upload_processor.pipeline.transfer import (
    TransferResult,
    abort_chunked,
    complete_chunked,
    verify,
)
from upload_processor.pipeline.transfer.batch import collect_results


def seal_transfers(
    s3: Any,
    *,
    archive: str,
    job_id: str,
    plan: list[list[dict[str, Any]]],
    verify_mode: str,
    recorded: list[TransferResult] | None = None,
) -> list[TransferResult]:
    """Complete the chunked uploads and check every planned object is in the archive.

    Quick verification (the default) trusts what the transfers already proved and checks
    only what can have changed since, from one listing of the asset (a request per 1,000
    objects) instead of a request per object:

    - trusted, not re-read: the bytes. Every compressed object was read with a GET
      conditioned on the planned ETag and hashed as it was read; every PUT and part was sent
      with the SHA-256 of its bytes, which S3 checked before storing them; a chunked object's
      completion is checked against the composite of its parts' checksums; a copy was made by
      S3 from the planned ETag.
    - checked: each planned object is listed, with the size its transfer wrote and the ETag
      S3 answered that write with: an object lost, or overwritten (even at the same size)
      after its transfer, fails the job here. A result without a recorded ETag (older
      records) is checked the old way, by HeadObject with its checksum.

    `full` also decompresses every compressed object and compares it with the source's
    SHA-256 (the Transfer iterations already did that for whole files).
    """
    if recorded is None:
        recorded = collect_results(s3, archive, job_id)
    # an ecephys stream's ranges are sealed by ecephys_seal.seal_streams
    planned = {i["dest_key"] for batch in plan for i in batch if i.get("action") != ENCODE}
    whole = [r for r in recorded if r.action not in ("compress_range", ENCODE)]
    parts: dict[str, list[TransferResult]] = {}
    for result in recorded:
        if result.action == "compress_range":
            parts.setdefault(result.upload_id or "", []).append(result)
    for upload_parts in parts.values():
        try:
            completed = complete_chunked(s3, upload_parts, dest_bucket=archive)
        except TransferError as exc:
            dest_key = upload_parts[0].dest_key
            raise recorded_cause(s3, archive, job_id, exc, dest_key) from exc
        if verify_mode == "full":
            verify(s3, completed, dest_bucket=archive)
        whole.append(completed)
    done = {r.planned_dest_key for r in whole}  # a file stored as is: under its plain name
    missing = sorted(planned - done)
    if missing:
        raise missing_objects_error(s3, archive, job_id, missing)
    listed: dict[str, dict[str, Any]] = {}
    for asset in sorted({r.dest_key.split("/", 1)[0] for r in whole}):
        listed.update(asset_objects(s3, archive, asset))
    for result in whole:
        if result.etag:
            check_listed(result, listed.get(result.dest_key), dest_bucket=archive)
        else:
            check_stored(s3, result, dest_bucket=archive)
    return sorted(whole, key=lambda r: r.dest_key)


def check_listed(
    result: TransferResult, listed: dict[str, Any] | None, *, dest_bucket: str
) -> None:
    """The object is listed with the size its transfer wrote and the ETag S3 answered that
    write with (`listed`: its ListObjectsV2 entry, None if it is not listed)."""
    dest = f"s3://{dest_bucket}/{result.dest_key}"
    if listed is None:
        raise VerificationError(
            "not found: the transfer wrote it, the archive no longer lists it",
            source=result.source_key,
            dest=dest,
        )
    if int(listed["Size"]) != result.bytes_out:
        raise VerificationError(
            f"holds {listed['Size']} bytes, its transfer wrote {result.bytes_out}",
            source=result.source_key,
            dest=dest,
        )
    etag, written = str(listed.get("ETag", "")).strip('"'), str(result.etag).strip('"')
    if etag != written:
        raise VerificationError(
            f"has ETag {etag}, its transfer wrote ETag {written}: it was replaced since",
            source=result.source_key,
            dest=dest,
        )


def check_stored(s3: Any, result: TransferResult, *, dest_bucket: str) -> None:
    """The object exists with the size (and S3 checksum, when recorded) its transfer reported."""
    dest = f"s3://{dest_bucket}/{result.dest_key}"
    try:
        head = s3.head_object(Bucket=dest_bucket, Key=result.dest_key, ChecksumMode="ENABLED")
    except s3.exceptions.ClientError as exc:
        raise VerificationError(f"not found: {exc}", source=result.source_key, dest=dest) from exc
    if int(head["ContentLength"]) != result.bytes_out:
        raise VerificationError(
            f"holds {head['ContentLength']} bytes, its transfer wrote {result.bytes_out}",
            source=result.source_key,
            dest=dest,
        )
    stored = (head.get("ChecksumSHA256") or "").split("-")[0]
    expected = (result.checksum_sha256 or "").split("-")[0]
    if stored and expected and stored != expected:
        raise VerificationError(
            f"S3 checksum {stored} differs from the transfer's {expected}",
            source=result.source_key,
            dest=dest,
        )


def abort_job_uploads(s3: Any, *, archive: str, job_id: str) -> int:
    """Abort the multipart uploads of a job's chunked files (none is left dangling)."""
    try:
        plan = json.loads(read_bytes(s3, archive, work_key(job_id, "plan.json")))
    except s3.exceptions.NoSuchKey:
        return 0
    uploads = {
        (item["dest_key"], item["upload_id"])
        for batch in plan
        for item in batch
        if item.get("upload_id")
    }
    for dest_key, upload_id in sorted(uploads):
        abort_chunked(s3, dest_bucket=archive, dest_key=dest_key, upload_id=upload_id)
    return len(uploads)
