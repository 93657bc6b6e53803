"""The lifecycle of a chunked file: one multipart upload, its ranges compressed in parallel.

A file too big for one invocation is compressed in parallel: `start_chunked` opens the
upload and returns one `compress_range` plan item per byte range; `transfer` of each item
(`ranges.compress_range`, in any order, in parallel) compresses that range into one
independent zstd frame uploaded as one part; `complete_chunked` seals the object from every
part's result, and `abort_chunked` frees the parts if any range fails. The concatenated frames
are one valid zstd stream. Every step is a separate invocation whose input and output are
JSON. The source checksum is a tree hash (`domain.archive.tree_sha256`): SHA-256 is
sequential, so parallel ranges cannot produce a plain one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import zstandard
from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import composite_sha256, is_not_found
from upload_processor.domain.archive import (
    CODEC_ZSTD,
    META_RANGE_SIZE,
    ZSTD_CONTENT_TYPE,
    tree_sha256,
)
from upload_processor.domain.plan import (
    MAX_RANGE_SIZE,
    MIN_RANGE_SIZE,
    PlanItem,
    chunk_ranges,
    range_size_for,
)
from upload_processor.domain.units import DEFAULT_LEVEL
from upload_processor.errors import TransferError, VerificationError, error_code, is_transient
from upload_processor.pipeline.transfer.compress import source_metadata
from upload_processor.pipeline.transfer.faults import (
    S3Client,
    changed,
    refuse_own_source,
    transient_surfaced,
    url,
)
from upload_processor.pipeline.transfer.result import TransferResult
from upload_processor.pipeline.transfer.source import head_source

logger = logging.getLogger(__name__)


def start_chunked(
    s3: S3Client,
    item: PlanItem,
    *,
    dest_bucket: str,
    range_size: int | None = None,
    source_bucket: str | None = None,
) -> list[PlanItem]:
    """Open the multipart upload of a large `compress` item; one `compress_range` item per range.

    The ranges are `chunk_ranges(item.size, range_size)` (`range_size` defaults to
    `range_size_for` the item's level and size); item n becomes part n. The upload is created
    with SHA-256 part checksums, the zstd content type and the metadata known up front
    (source size and ETag, codec, level, range size). With `source_bucket`, the source is
    first checked to still be the planned object, so that a stale plan opens no upload.

    Every returned item carries the upload id; pass each to `transfer` (in any order, in
    parallel), then all their results to `complete_chunked`, or call `abort_chunked` if any
    fails.
    """
    dest = url(dest_bucket, item.dest_key)
    source = url(source_bucket, item.source_key) if source_bucket else item.source_key
    level, ranges = _checked_chunking(item, range_size, source=source, dest=dest)
    with transient_surfaced(f"opening the chunked upload {source} -> {dest}"):
        if source_bucket is not None:
            refuse_own_source(
                item, source_bucket=source_bucket, dest_bucket=dest_bucket, source=source, dest=dest
            )
            head = head_source(s3, source_bucket, item, source=source, dest=dest)
            if head["ContentLength"] != item.size:
                raise changed(item, head["ContentLength"], source=source, dest=dest)
        tree_range = ranges[0][1] - ranges[0][0]
        upload_id = s3.create_multipart_upload(
            Bucket=dest_bucket,
            Key=item.dest_key,
            ContentType=ZSTD_CONTENT_TYPE,
            Metadata={**source_metadata(item, level), META_RANGE_SIZE: str(tree_range)},
            ChecksumAlgorithm="SHA256",
        )["UploadId"]
    logger.info(
        "chunked %s -> %s: %d bytes in %d range(s) of %d, upload %s",
        source,
        dest,
        item.size,
        len(ranges),
        tree_range,
        upload_id,
    )
    update = {"action": "compress_range", "codec": CODEC_ZSTD, "level": level}
    return [
        item.model_copy(
            update={
                **update,
                "part_number": number,
                "range_start": start,
                "range_end": end,
                "part_count": len(ranges),
                "upload_id": upload_id,
            }
        )
        for number, (start, end) in enumerate(ranges, start=1)
    ]


def _checked_chunking(
    item: PlanItem, range_size: int | None, *, source: str, dest: str
) -> tuple[int, list[tuple[int, int]]]:
    """The level and the ranges of an item that can be chunked; ValueError (or TransferError
    for a bad level) otherwise."""
    if item.action != "compress":
        raise ValueError(f"only a compress item can be chunked, not {item.action!r}")
    if item.size <= 0:
        raise ValueError("an empty file has nothing to chunk: compress it in one piece")
    level = DEFAULT_LEVEL if item.level is None else item.level
    if range_size is None:
        range_size = range_size_for(level, size=item.size)
    if not MIN_RANGE_SIZE <= range_size <= MAX_RANGE_SIZE:
        raise ValueError(f"range_size must be between 5 MiB and 4 GiB, got {range_size}")
    ranges = chunk_ranges(item.size, range_size)
    try:
        zstandard.ZstdCompressor(level=level)
    except (ValueError, zstandard.ZstdError) as exc:
        raise TransferError(f"invalid zstd level {level}: {exc}", source=source, dest=dest) from exc
    return level, ranges


def complete_chunked(
    s3: S3Client, results: Sequence[Mapping[str, Any] | TransferResult], *, dest_bucket: str
) -> TransferResult:
    """Complete the multipart upload from every `compress_range` result (in any order).

    The results must be the parts 1..n of one upload, their ranges contiguous from 0 and
    exactly `chunk_ranges(size, range_size)`. The parts are completed in part order with
    their ETags and SHA-256 checksums (S3 checks each against what it stored). Returns the
    object's result (action `compress`): `source_sha256` is the tree hash of the range
    hashes, with `range_sha256s`, `part_checksums` and S3's composite `checksum_sha256` kept
    for the manifest.

    A permanent fault (missing, duplicate or foreign parts, a part S3 rejects, an upload that
    no longer exists) aborts the upload and raises `TransferError`: no object, no upload is
    left. A transient one (throttling, 5xx, a dropped connection) raises `TransientError` and
    leaves the upload open, so that a retry can complete it without redoing any range; when
    retries run out, the caller aborts (`abort_chunked`). A retry after a completion whose
    response was lost finds the object already there and returns the same result.
    """
    parsed = [r if isinstance(r, TransferResult) else TransferResult.from_dict(r) for r in results]
    if not parsed:
        raise ValueError("complete_chunked needs the result of every range, got none")
    first = min(parsed, key=lambda r: r.part_number or 0)
    dest = url(dest_bucket, first.dest_key)
    with transient_surfaced(f"completing {dest}"):
        try:
            parts, response = _send_completion(s3, parsed, first, dest_bucket=dest_bucket)
        except TransferError:
            for key, other in sorted({(r.dest_key, r.upload_id or "") for r in parsed}):
                if other:
                    abort_quietly(s3, dest_bucket, key, other)
            raise
        part_checksums = tuple(str(p.part_checksum) for p in parts)
        composite = composite_sha256(part_checksums)
        stored = str(response.get("ChecksumSHA256") or "")
        if stored and stored.split("-")[0] != composite.split("-")[0]:
            # Not what the parts make: take it down rather than leave a wrong object visible.
            s3.delete_object(Bucket=dest_bucket, Key=first.dest_key)
            raise VerificationError(
                f"S3 reports checksum {stored} for the completed object, the parts give "
                f"{composite}",
                source=first.source_key,
                dest=dest,
            )
    range_sha256s = tuple(p.source_sha256 for p in parts)
    range_size = int(parts[0].range_end or 0) - int(parts[0].range_start or 0)
    size = int(parts[-1].range_end or 0)
    bytes_out = sum(p.bytes_out for p in parts)
    logger.info(
        "completed %s: %d parts, %d -> %d bytes, checksum %s",
        dest,
        len(parts),
        size,
        bytes_out,
        composite,
    )
    return TransferResult(
        source_key=first.source_key,
        dest_key=first.dest_key,
        action="compress",
        codec=CODEC_ZSTD,
        bytes_in=size,
        bytes_out=bytes_out,
        source_sha256=tree_sha256(range_sha256s, range_size),
        etag=response.get("ETag"),
        part_count=len(parts),
        range_size=range_size,
        range_sha256s=range_sha256s,
        part_checksums=part_checksums,
        checksum_sha256=composite,
        part_sizes=tuple(p.bytes_out for p in parts),
    )


def _send_completion(
    s3: S3Client, parsed: Sequence[TransferResult], first: TransferResult, *, dest_bucket: str
) -> tuple[list[TransferResult], Mapping[str, Any]]:
    """CompleteMultipartUpload of the checked parts: the parts in order and S3's answer (or
    the object's head, when an earlier attempt completed it). TransferError if S3 refuses."""
    dest_key, upload_id = first.dest_key, first.upload_id or ""
    source, dest = first.source_key, url(dest_bucket, dest_key)
    parts = _checked_parts(parsed, source=source, dest=dest)
    upload = [
        {"PartNumber": p.part_number, "ETag": p.etag, "ChecksumSHA256": p.part_checksum}
        for p in parts
    ]
    try:
        response = s3.complete_multipart_upload(
            Bucket=dest_bucket, Key=dest_key, UploadId=upload_id, MultipartUpload={"Parts": upload}
        )
    except ClientError as exc:
        if is_transient(exc):
            raise
        if error_code(exc) != "NoSuchUpload":
            raise TransferError(
                f"S3 refused to complete multipart upload {upload_id}: {exc}",
                source=source,
                dest=dest,
            ) from exc
        composite = composite_sha256([str(p.part_checksum) for p in parts])
        response = _already_completed(
            s3, dest_bucket, dest_key, composite, exc, source=source, dest=dest
        )
    return parts, response


def abort_chunked(s3: S3Client, *, dest_bucket: str, dest_key: str, upload_id: str) -> bool:
    """Abort a chunked upload and free its parts; True if it was still open.

    Idempotent: an upload already aborted or completed is left as it is (a completed object
    is not deleted). S3 may still store a part whose upload was in flight during the abort,
    so the parts are listed afterwards and the abort repeated while any remain.
    """
    with transient_surfaced(f"aborting upload {upload_id} of {url(dest_bucket, dest_key)}"):
        return _abort(s3, dest_bucket=dest_bucket, dest_key=dest_key, upload_id=upload_id)


def _abort(s3: S3Client, *, dest_bucket: str, dest_key: str, upload_id: str) -> bool:
    aborted = False
    for _ in range(3):
        try:
            s3.abort_multipart_upload(Bucket=dest_bucket, Key=dest_key, UploadId=upload_id)
            aborted = True
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchUpload", "404"):
                raise
        try:
            remaining = s3.list_parts(Bucket=dest_bucket, Key=dest_key, UploadId=upload_id)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchUpload", "404"):
                return aborted
            raise
        if not remaining.get("Parts"):
            return aborted
    logger.warning("parts of upload %s of %s remain after 3 aborts", upload_id, dest_key)
    return aborted


def abort_quietly(s3: S3Client, bucket: str, key: str, upload_id: str) -> None:
    """`abort_chunked`, logging (not raising) a failure: the error that led here matters more,
    and the bucket's lifecycle rule is the backstop."""
    try:
        abort_chunked(s3, dest_bucket=bucket, dest_key=key, upload_id=upload_id)
    except Exception:
        logger.exception("could not abort multipart upload %s of %s", upload_id, key)


def _checked_parts(
    parsed: Sequence[TransferResult], *, source: str, dest: str
) -> list[TransferResult]:
    """The results sorted by part number, once they are shown to be exactly one whole upload."""

    def fail(reason: str) -> TransferError:
        return TransferError(
            f"cannot complete the chunked upload: {reason}", source=source, dest=dest
        )

    if any(r.action != "compress_range" for r in parsed):
        raise fail("a result is not a compress_range result")
    for name in ("upload_id", "dest_key", "source_key", "part_count"):
        values = {getattr(r, name) for r in parsed}
        if len(values) != 1 or None in values:
            raise fail(f"the results disagree on {name} ({len(values)} different values)")
    count = int(parsed[0].part_count or 0)
    numbers = sorted(int(r.part_number or 0) for r in parsed)
    if numbers != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(numbers))
        duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
        raise fail(f"expected parts 1..{count}; missing {missing}, duplicated {duplicates}")
    parts = sorted(parsed, key=lambda r: int(r.part_number or 0))
    for part in parts:
        if not part.etag or not part.part_checksum:
            raise fail(f"part {part.part_number} has no ETag or checksum")
    ranges = [(int(p.range_start or 0), int(p.range_end or 0)) for p in parts]
    try:
        planned = chunk_ranges(ranges[-1][1], ranges[0][1] - ranges[0][0])
    except ValueError as exc:
        raise fail(f"the ranges are not a chunking of the file: {exc}") from exc
    if ranges != planned:
        raise fail(f"the ranges {ranges} are not the planned {planned}")
    for part, (start, end) in zip(parts, ranges, strict=True):
        if part.bytes_in != end - start:
            raise fail(f"part {part.part_number} read {part.bytes_in} bytes, not its range")
    return parts


def _already_completed(
    s3: S3Client,
    bucket: str,
    key: str,
    composite: str,
    exc: ClientError,
    *,
    source: str,
    dest: str,
) -> dict[str, Any]:
    """The upload is gone: if it was completed with exactly these parts (a retry whose first
    response was lost), the object's head; else a TransferError."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as head_exc:
        if not is_not_found(head_exc):
            raise
        head = {}
    stored = str(head.get("ChecksumSHA256") or "")
    if stored and stored.split("-")[0] == composite.split("-")[0]:
        logger.info("%s was already completed with these parts", dest)
        return head
    raise TransferError(
        "the multipart upload no longer exists and the object is not the one these parts "
        "make: it was aborted (a range failed)",
        source=source,
        dest=dest,
    ) from exc
