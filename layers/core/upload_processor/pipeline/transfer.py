"""Move one planned object from the staging bucket into the archive bucket, and verify it.

A data file can be far larger than a Lambda's memory or its /tmp, so `compress` streams: it
reads the source in chunks, hashes and compresses them on the fly (zstd on its own worker
thread, see `ZSTD_WORKERS`) and writes the output as a multipart upload, never holding more
than about two parts (and zstd's few jobs of input) in memory. `copy` never moves a byte
through the function: S3 copies server-side.

A file too big for one invocation is compressed in parallel (`start_chunked`, then
`transfer` of each `compress_range` item, then `complete_chunked`; `abort_chunked` on
failure): each byte range becomes one independent zstd frame, uploaded as one part of a
single multipart upload, and the concatenated frames are one valid zstd stream. Every step is
a separate invocation whose input and output are JSON. Its source checksum is a tree hash
(`tree_sha256`): SHA-256 is sequential, so parallel ranges cannot produce a plain one.

Errors are split so that Step Functions can tell them apart by name: `TransferError` (and its
`VerificationError`) is a permanent fault that retrying will not fix (the source is gone or
changed since it was planned, the output is wrong); anything else (throttling, a dropped
connection, a 5xx) propagates as it is, so the state machine's Retry can try again.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import logging
import math
import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import IO, Any, TypeAlias

import zstandard
from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import NOT_FOUND_CODES, is_not_found
from upload_processor.domain.plan import (
    MAX_RANGE_SIZE,
    MIN_RANGE_SIZE,
    PlanItem,
    chunk_ranges,
    range_size_for,
)
from upload_processor.errors import TransferError, VerificationError, error_code, is_transient

# boto3's S3 client is generated at run time; the typed stubs (mypy-boto3-s3) are not a
# dependency of this project, so the annotation stays loose.
S3Client: TypeAlias = Any

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_PART_SIZE = 5 * MiB  # S3: every part but the last must be at least this big
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_COPY_OBJECT_SIZE = 5 * GiB  # larger objects need UploadPartCopy
DEFAULT_PART_SIZE = 16 * MiB
DEFAULT_COPY_PART_SIZE = 512 * MiB
DEFAULT_LEVEL = 3
READ_CHUNK = 1 * MiB
# zstd compresses in one libzstd worker thread (the zstd command line's default, `-T1`): the
# calling thread reads, hashes and uploads while it compresses, instead of taking turns with
# it. libzstd's threaded mode writes the same bytes for the same input and level whatever the
# read sizes or the number of workers (>= 1); they are not the bytes of its single-threaded
# mode, so objects compressed before this setting decompress the same but differ in bytes.
ZSTD_WORKERS = 1

ZSTD_CONTENT_TYPE = "application/zstd"

# User metadata written on every compressed object (S3 lower-cases the names anyway).
META_SOURCE_SHA256 = "source-sha256"
META_SOURCE_SIZE = "source-size"
META_SOURCE_ETAG = "source-etag"
META_CODEC = "codec"
META_LEVEL = "zstd-level"
META_RANGE_SIZE = "range-size"  # chunked objects: the range size of their tree hash

# A chunked object's source checksum: "tree-sha256:<hex>:<range_size>" (see `tree_sha256`).
TREE_SHA256_PREFIX = "tree-sha256:"
# zstd skippable frames (RFC 8878, 3.1.2): magic 0x184D2A50-0x184D2A5F, a 4-byte little-endian
# payload length, the payload. Decoders skip them; we pad short parts with one.
SKIPPABLE_MAGIC = 0x184D2A50
SKIPPABLE_HEADER = 8
# A compressed range is spooled before its UploadPart (which needs the length and checksum
# up front): in memory up to this size, then in /tmp.
SPOOL_MEMORY = 64 * MiB


@dataclass(frozen=True)
class TransferResult:
    """What one transfer did: the Map iteration's output, and what Verify and the manifest use.

    `source_sha256` is the hex SHA-256 of the *source* bytes (for `compress`, of the data
    before compression). It is "" when a server-side copy left it unknown: S3 kept no
    full-object SHA-256 for the source and the bytes were, on purpose, not downloaded.

    The optional fields are set only by the chunked path:

    - a `compress_range` result (one part): `source_sha256` is the SHA-256 of that range's
      source bytes, `bytes_in`/`bytes_out` the range's and the part's sizes (padding
      included); `part_number`, `etag` and `part_checksum` (base64 SHA-256 of the part, as
      S3 checks it) are what CompleteMultipartUpload needs, with `upload_id`, `range_start`,
      `range_end` (exclusive) and `part_count`;
    - a completed chunked object (action `compress`): `source_sha256` is a tree hash
      "tree-sha256:<hex>:<range_size>", `range_sha256s` the hex SHA-256 of each range in
      order, `part_checksums` S3's base64 SHA-256 of each part, `checksum_sha256` S3's own
      checksum of the object ("<base64>-<parts>", a checksum of the part checksums),
      `etag` the object's ETag, `part_count`, `range_size` and `part_sizes` (each part's
      size in the object, padding included: where `verify_part` finds it).
    """

    source_key: str
    dest_key: str
    action: str
    codec: str | None
    bytes_in: int
    bytes_out: int
    source_sha256: str
    part_number: int | None = None
    etag: str | None = None
    part_checksum: str | None = None
    upload_id: str | None = None
    range_start: int | None = None
    range_end: int | None = None
    part_count: int | None = None
    range_size: int | None = None
    range_sha256s: tuple[str, ...] | None = None
    part_checksums: tuple[str, ...] | None = None
    checksum_sha256: str | None = None
    part_sizes: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: Step Functions carries results between states as JSON.

        Optional fields that are not set are left out, so a plain result's dict (and the
        manifest entry made from it) is as it always was.
        """
        out: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.default is None:
                continue
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransferResult:
        """Rebuild a result from `to_dict()` output (extra keys are ignored)."""
        return cls(
            source_key=str(data["source_key"]),
            dest_key=str(data["dest_key"]),
            action=str(data["action"]),
            codec=data.get("codec"),
            bytes_in=int(data["bytes_in"]),
            bytes_out=int(data["bytes_out"]),
            source_sha256=str(data.get("source_sha256") or ""),
            part_number=_opt_int(data.get("part_number")),
            etag=_opt_str(data.get("etag")),
            part_checksum=_opt_str(data.get("part_checksum")),
            upload_id=_opt_str(data.get("upload_id")),
            range_start=_opt_int(data.get("range_start")),
            range_end=_opt_int(data.get("range_end")),
            part_count=_opt_int(data.get("part_count")),
            range_size=_opt_int(data.get("range_size")),
            range_sha256s=_opt_strs(data.get("range_sha256s")),
            part_checksums=_opt_strs(data.get("part_checksums")),
            checksum_sha256=_opt_str(data.get("checksum_sha256")),
            part_sizes=(
                None
                if data.get("part_sizes") is None
                else tuple(int(v) for v in data["part_sizes"])
            ),
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_strs(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


def transfer(
    s3: S3Client,
    item: PlanItem,
    *,
    source_bucket: str,
    dest_bucket: str,
    part_size: int = DEFAULT_PART_SIZE,
    copy_threshold: int = MAX_COPY_OBJECT_SIZE,
    copy_part_size: int = DEFAULT_COPY_PART_SIZE,
) -> TransferResult:
    """Move one planned object from `source_bucket` to `dest_bucket`, as the plan says.

    `compress` streams the source through zstd into a multipart upload (`part_size` is the
    size of each uploaded part, raised if the object would otherwise need more than 10,000
    parts). `copy` is server-side: one CopyObject up to `copy_threshold` (S3's limit is
    5 GiB), UploadPartCopy in `copy_part_size` ranges above it. `compress_range` compresses
    one range of a chunked file into one part of its multipart upload (`start_chunked`) and
    returns that part's result, for `complete_chunked`.

    Either way the source must still be the object that was planned (same ETag and size),
    and a failure leaves nothing behind at the destination: no partial object, no dangling
    multipart upload. Raises `TransferError` for permanent faults; transient AWS errors
    propagate unchanged so that the caller can retry.
    """
    for name, value in (("part_size", part_size), ("copy_part_size", copy_part_size)):
        if not MIN_PART_SIZE <= value <= MAX_PART_SIZE:
            raise ValueError(f"{name} must be between 5 MiB and 5 GiB, got {value}")
    source, dest = _url(source_bucket, item.source_key), _url(dest_bucket, item.dest_key)
    if (source_bucket, item.source_key) == (dest_bucket, item.dest_key):
        raise TransferError(
            "the destination is the source itself; the plan would overwrite staged data",
            source=source,
            dest=dest,
        )
    if item.action == "compress":
        return _compress(
            s3, item, source_bucket=source_bucket, dest_bucket=dest_bucket, part_size=part_size
        )
    if item.action == "compress_range":
        return _compress_range(s3, item, source_bucket=source_bucket, dest_bucket=dest_bucket)
    if item.action == "copy":
        return _copy(
            s3,
            item,
            source_bucket=source_bucket,
            dest_bucket=dest_bucket,
            copy_threshold=copy_threshold,
            copy_part_size=copy_part_size,
        )
    raise TransferError(f"unknown action {item.action!r}", source=source, dest=dest)


def verify(
    s3: S3Client,
    target: TransferResult | PlanItem,
    *,
    dest_bucket: str,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
) -> None:
    """Check that the archived object holds exactly the source's bytes; raise if not.

    A transfer that returned without error is not yet proof: this re-reads what S3 stored.
    For `compress` it downloads the object as a stream and decompresses every zstd frame in
    it (`read_across_frames`: a plain one-shot decompress stops after the first frame and
    would pass a file whose tail is missing), hashing the output. For `copy` it compares
    size and, where S3 keeps them, the full-object SHA-256 or the plain MD5 ETag, without
    downloading.

    `expected_sha256` (hex) and `expected_size` default to what `target` says: a
    `TransferResult`'s `source_sha256` and `bytes_in`, a `PlanItem`'s `size`. Raises
    `VerificationError` on any mismatch.

    A chunked object's `expected_sha256` is its tree hash ("tree-sha256:<hex>:<range_size>"):
    the decompressed stream is cut at the same range boundaries (`chunk_ranges(size,
    range_size)`), each range hashed, and the tree hash recomputed; with the result's
    `range_sha256s` the error names the first range that differs. The zstd skippable frames
    that pad short parts are skipped by the decoder and count for nothing. A single range
    (`compress_range` result) is not an object and cannot be verified alone.
    """
    range_sha256s: Sequence[str] | None = None
    checksum_sha256: str | None = None
    if isinstance(target, TransferResult):
        if target.action == "compress_range":
            raise ValueError(
                "a compress_range result is one part of a multipart upload: verify the result "
                "of complete_chunked instead"
            )
        size = target.bytes_in if expected_size is None else expected_size
        sha = target.source_sha256 if expected_sha256 is None else expected_sha256
        out_size: int | None = target.bytes_out
        etag = ""
        range_sha256s = target.range_sha256s
        checksum_sha256 = target.checksum_sha256
    else:
        size = target.size if expected_size is None else expected_size
        sha = expected_sha256 or ""
        out_size = None
        etag = target.etag
    dest = _url(dest_bucket, target.dest_key)
    if target.action == "compress":
        _verify_compressed(
            s3,
            dest_bucket,
            target.dest_key,
            source=target.source_key,
            dest=dest,
            expected_sha256=sha.lower(),
            expected_size=size,
            expected_bytes_out=out_size,
            range_sha256s=range_sha256s,
            checksum_sha256=checksum_sha256,
        )
    else:
        _verify_copied(
            s3,
            dest_bucket,
            target.dest_key,
            source=target.source_key,
            dest=dest,
            expected_sha256=sha.lower(),
            expected_size=size,
            source_etag=etag,
        )


def verify_part(
    s3: S3Client, target: TransferResult, part_number: int, *, dest_bucket: str
) -> None:
    """Check one part of a chunked object: it is one zstd frame (plus any padding) that
    decompresses to exactly its source range, with that range's SHA-256.

    `verify` reads the whole object in one invocation, which a file of hundreds of GiB does
    not fit in; a Map over `1..part_count` calling this does the same work in parallel. The
    part is read by byte range, at the offset `part_sizes` gives; every part passing (and
    the object having the size of all of them, checked on each read) is the same proof as
    `verify` of the whole. Raises `VerificationError` on any mismatch.
    """
    dest = _url(dest_bucket, target.dest_key)

    def fail(reason: str) -> VerificationError:
        return VerificationError(
            f"part {part_number}: {reason}", source=target.source_key, dest=dest
        )

    sizes, hashes = target.part_sizes, target.range_sha256s
    if not sizes or not hashes or not target.source_sha256.startswith(TREE_SHA256_PREFIX):
        raise ValueError("verify_part needs the result of complete_chunked")
    if not 1 <= part_number <= len(sizes):
        raise ValueError(f"part_number must be between 1 and {len(sizes)}, got {part_number}")
    _, range_size = parse_tree_sha256(target.source_sha256)
    start, end = chunk_ranges(target.bytes_in, range_size)[part_number - 1]
    offset = sum(sizes[: part_number - 1])
    length = sizes[part_number - 1]
    try:
        response = s3.get_object(
            Bucket=dest_bucket, Key=target.dest_key, Range=f"bytes={offset}-{offset + length - 1}"
        )
    except ClientError as exc:
        if is_not_found(exc):
            raise fail("the destination object does not exist") from exc
        if error_code(exc) in ("InvalidRange", "416"):
            raise fail(f"the object is shorter than {offset + length} bytes") from exc
        raise
    body = response["Body"]
    try:
        total = _range_total(response.get("ContentRange"))
        if total is not None and total != target.bytes_out:
            raise fail(f"the object has {total} bytes, the upload wrote {target.bytes_out}")
        if response["ContentLength"] != length:
            raise fail(f"read {response['ContentLength']} bytes, the part has {length}")
        digest = hashlib.sha256()
        size = 0
        reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
        try:
            while chunk := reader.read(READ_CHUNK):
                size += len(chunk)
                if size > end - start:
                    raise fail(f"it decompresses to more than its {end - start} bytes")
                digest.update(chunk)
        except zstandard.ZstdError as exc:
            raise fail(f"it is not a valid zstd frame: {exc}") from exc
    finally:
        body.close()
    if size != end - start:
        raise fail(f"it decompresses to {size} bytes, expected {end - start}")
    if digest.hexdigest() != hashes[part_number - 1].lower():
        raise fail(
            f"bytes {start}-{end - 1} decompress to SHA-256 {digest.hexdigest()}, expected "
            f"{hashes[part_number - 1]}"
        )


# --- compress ---------------------------------------------------------------------------


def _compress(
    s3: S3Client, item: PlanItem, *, source_bucket: str, dest_bucket: str, part_size: int
) -> TransferResult:
    source, dest = _url(source_bucket, item.source_key), _url(dest_bucket, item.dest_key)
    level = DEFAULT_LEVEL if item.level is None else item.level
    compressor = _compressor(level, source=source, dest=dest)
    part_size = _part_size_for(item.size, part_size, source=source, dest=dest)

    response = _get_source(s3, source_bucket, item, source=source, dest=dest)
    if response["ContentLength"] != item.size:
        response["Body"].close()
        raise _changed(item, response["ContentLength"], source=source, dest=dest)

    metadata = {META_SOURCE_SIZE: str(item.size), META_CODEC: "zstd", META_LEVEL: str(level)}
    if item.etag:
        metadata[META_SOURCE_ETAG] = item.etag
    writer = _PartWriter(
        s3, dest_bucket, item.dest_key, metadata=metadata, source=source, dest=dest
    )
    digest = hashlib.sha256()
    body = response["Body"]
    try:
        # The pledged size goes into the frame header, so a reader knows the output size.
        chunker = compressor.chunker(size=item.size, chunk_size=part_size)
        bytes_in = 0
        while chunk := body.read(READ_CHUNK):
            bytes_in += len(chunk)
            # Checked before zstd sees the bytes: feeding more than pledged is a zstd error.
            if bytes_in > item.size:
                raise _changed(item, f"more than {item.size}", source=source, dest=dest)
            digest.update(chunk)
            for part in chunker.compress(chunk):
                writer.write_part(part)
        if bytes_in != item.size:
            raise _changed(item, bytes_in, source=source, dest=dest)
        source_sha256 = digest.hexdigest()
        writer.finish(chunker.finish(), source_sha256=source_sha256)
    except BaseException:
        writer.abort()
        raise
    finally:
        body.close()
    logger.info(
        "compressed %s -> %s: %d -> %d bytes in %d part(s)",
        source,
        dest,
        item.size,
        writer.bytes_out,
        writer.part_count,
    )
    return TransferResult(
        source_key=item.source_key,
        dest_key=item.dest_key,
        action="compress",
        codec="zstd",
        bytes_in=item.size,
        bytes_out=writer.bytes_out,
        source_sha256=source_sha256,
    )


def _compressor(level: int, *, source: str, dest: str) -> zstandard.ZstdCompressor:
    """The compressor of every transfer: `level`, a content checksum, `ZSTD_WORKERS` threads."""
    try:
        return zstandard.ZstdCompressor(level=level, write_checksum=True, threads=ZSTD_WORKERS)
    except (ValueError, zstandard.ZstdError) as exc:
        raise TransferError(f"invalid zstd level {level}: {exc}", source=source, dest=dest) from exc


class _PartWriter:
    """Writes compressed output to S3: one PutObject when it all fits in one part, else a
    multipart upload started lazily on the first full part.

    Starting the upload only when a second part is certain means small files (most metadata
    sidecars, short logs) cost one request and never leave an upload to clean up.

    The source SHA-256 is only known at the end, but a multipart upload takes its metadata
    when it is created: so `source-sha256` is in the metadata of single-part objects only;
    every object gets `source-size` and `source-etag`, and the result carries the SHA-256.
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        *,
        metadata: dict[str, str],
        source: str,
        dest: str,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._metadata = metadata
        self._source = source
        self._dest = dest
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.bytes_out = 0

    @property
    def part_count(self) -> int:
        return len(self._parts) or 1

    def write_part(self, data: bytes) -> None:
        """Upload one part that is known not to be the last one."""
        if self._upload_id is None:
            response = self._s3.create_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                ContentType=ZSTD_CONTENT_TYPE,
                Metadata=self._metadata,
                ChecksumAlgorithm="SHA256",
            )
            self._upload_id = response["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise TransferError(
                f"the output needs more than {MAX_PARTS} parts",
                source=self._source,
                dest=self._dest,
            )
        checksum = _b64_sha256(data)
        response = self._s3.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
        )
        self._parts.append(
            {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}
        )
        self.bytes_out += len(data)

    def finish(self, tail: Iterable[bytes], *, source_sha256: str) -> None:
        """Write the remaining output (`tail`, the last chunk last) and seal the object."""
        chunks = _with_last_flag(tail)
        for data, is_last in chunks:
            if not is_last:
                self.write_part(data)
                continue
            if self._upload_id is None:
                self._s3.put_object(
                    Bucket=self._bucket,
                    Key=self._key,
                    Body=data,
                    ContentType=ZSTD_CONTENT_TYPE,
                    Metadata={**self._metadata, META_SOURCE_SHA256: source_sha256},
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64_sha256(data),
                )
                self.bytes_out += len(data)
                return
            self.write_part(data)
        if self._upload_id is None:
            # zstd always ends a frame with an epilogue, so this means a bug, not bad data.
            raise TransferError(
                "the compressor produced no output", source=self._source, dest=self._dest
            )
        self._s3.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self._upload_id = None

    def abort(self) -> None:
        """Abort the multipart upload, if one is open, so that no parts are left billed."""
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)
        except Exception:
            # The original error matters more; a bucket lifecycle rule is the backstop.
            logger.exception("could not abort multipart upload %s of %s", upload_id, self._dest)


# --- chunked: large files in parallel ---------------------------------------------------


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
    dest = _url(dest_bucket, item.dest_key)
    source = _url(source_bucket, item.source_key) if source_bucket else item.source_key
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
    if source_bucket is not None:
        if (source_bucket, item.source_key) == (dest_bucket, item.dest_key):
            raise TransferError(
                "the destination is the source itself; the plan would overwrite staged data",
                source=source,
                dest=dest,
            )
        head = _head_source(s3, source_bucket, item, source=source, dest=dest)
        if head["ContentLength"] != item.size:
            raise _changed(item, head["ContentLength"], source=source, dest=dest)
    tree_range = ranges[0][1] - ranges[0][0]
    metadata = {
        META_SOURCE_SIZE: str(item.size),
        META_CODEC: "zstd",
        META_LEVEL: str(level),
        META_RANGE_SIZE: str(tree_range),
    }
    if item.etag:
        metadata[META_SOURCE_ETAG] = item.etag
    upload_id = s3.create_multipart_upload(
        Bucket=dest_bucket,
        Key=item.dest_key,
        ContentType=ZSTD_CONTENT_TYPE,
        Metadata=metadata,
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
    return [
        item.model_copy(
            update={
                "action": "compress_range",
                "codec": "zstd",
                "level": level,
                "part_number": number,
                "range_start": start,
                "range_end": end,
                "part_count": len(ranges),
                "upload_id": upload_id,
            }
        )
        for number, (start, end) in enumerate(ranges, start=1)
    ]


def _compress_range(
    s3: S3Client, item: PlanItem, *, source_bucket: str, dest_bucket: str
) -> TransferResult:
    source, dest = _url(source_bucket, item.source_key), _url(dest_bucket, item.dest_key)
    start, end, number, count, upload_id = _range_fields(item, source=source, dest=dest)
    try:
        try:
            return _compress_one_range(
                s3,
                item,
                source_bucket=source_bucket,
                dest_bucket=dest_bucket,
                bounds=(start, end, number, count, upload_id),
                source=source,
                dest=dest,
            )
        except ClientError as exc:
            if error_code(exc) == "NoSuchUpload":
                raise TransferError(
                    f"multipart upload {upload_id} no longer exists: it was aborted (another "
                    "range failed) or already completed",
                    source=source,
                    dest=dest,
                ) from exc
            raise
    except TransferError:
        # Permanent: the whole file fails. Abort now so that the other ranges stop at their
        # next request instead of compressing for nothing (the caller's abort_chunked, the
        # bucket's lifecycle rule, are the backstops).
        _abort_quietly(s3, dest_bucket, item.dest_key, upload_id)
        raise


def _compress_one_range(
    s3: S3Client,
    item: PlanItem,
    *,
    source_bucket: str,
    dest_bucket: str,
    bounds: tuple[int, int, int, int, str],
    source: str,
    dest: str,
) -> TransferResult:
    start, end, number, count, upload_id = bounds
    length = end - start
    level = DEFAULT_LEVEL if item.level is None else item.level
    # One independent frame per range: the content size is pledged (in the header) and the
    # frame ends with its own checksum, so frames concatenate into one valid stream.
    compressor = _compressor(level, source=source, dest=dest)

    conditions = {"IfMatch": _quoted(item.etag)} if item.etag else {}
    try:
        response = s3.get_object(
            Bucket=source_bucket,
            Key=item.source_key,
            Range=f"bytes={start}-{end - 1}",
            **conditions,
        )
    except ClientError as exc:
        if error_code(exc) in ("InvalidRange", "416"):
            raise _changed(item, f"fewer than {end}", source=source, dest=dest) from exc
        raise _source_fault(exc, item, source=source, dest=dest) from exc
    body = response["Body"]
    total = _range_total(response.get("ContentRange"))
    if response["ContentLength"] != length or (total is not None and total != item.size):
        body.close()
        raise _changed(item, total if total is not None else "other", source=source, dest=dest)

    digest = hashlib.sha256()
    spool = _Spool(source=source, dest=dest)
    try:
        frame = compressor.compressobj(size=length)
        bytes_in = 0
        try:
            while chunk := body.read(READ_CHUNK):
                bytes_in += len(chunk)
                if bytes_in > length:
                    raise _changed(item, f"more than {item.size}", source=source, dest=dest)
                digest.update(chunk)
                spool.write(frame.compress(chunk))
        finally:
            body.close()
        if bytes_in != length:
            raise _changed(item, f"a range of {bytes_in} (not {length})", source=source, dest=dest)
        spool.write(frame.flush())
        padding = 0
        if number < count and spool.size < MIN_PART_SIZE:
            # S3 refuses a part under 5 MiB unless it is the last; highly compressible data
            # (8 MiB of zeros is a few hundred bytes) needs padding that decoders ignore.
            padding = max(SKIPPABLE_HEADER, MIN_PART_SIZE - spool.size)
            spool.write(skippable_frame(padding))
        checksum = spool.b64_sha256()
        part = s3.upload_part(
            Bucket=dest_bucket,
            Key=item.dest_key,
            UploadId=upload_id,
            PartNumber=number,
            Body=spool.rewound(),
            ContentLength=spool.size,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
        )
        bytes_out = spool.size
    finally:
        spool.close()
    stored = part.get("ChecksumSHA256")
    if stored and stored != checksum:
        raise TransferError(
            f"S3 stored part {number} with SHA-256 {stored}, it was sent with {checksum}",
            source=source,
            dest=dest,
        )
    logger.info(
        "compressed %s bytes %d-%d -> %s part %d/%d: %d -> %d bytes (%d of padding)",
        source,
        start,
        end - 1,
        dest,
        number,
        count,
        length,
        bytes_out,
        padding,
    )
    return TransferResult(
        source_key=item.source_key,
        dest_key=item.dest_key,
        action="compress_range",
        codec="zstd",
        bytes_in=length,
        bytes_out=bytes_out,
        source_sha256=digest.hexdigest(),
        part_number=number,
        etag=part["ETag"],
        part_checksum=checksum,
        upload_id=upload_id,
        range_start=start,
        range_end=end,
        part_count=count,
    )


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
    left. A transient one (throttling, 5xx, a dropped connection) propagates as it is and
    leaves the upload open, so that a retry can complete it without redoing any range; when
    retries run out, the caller aborts (`abort_chunked`). A retry after a completion whose
    response was lost finds the object already there and returns the same result.
    """
    parsed = [r if isinstance(r, TransferResult) else TransferResult.from_dict(r) for r in results]
    if not parsed:
        raise ValueError("complete_chunked needs the result of every range, got none")
    first = min(parsed, key=lambda r: r.part_number or 0)
    dest_key, upload_id = first.dest_key, first.upload_id or ""
    source, dest = first.source_key, _url(dest_bucket, dest_key)
    try:
        parts = _checked_parts(parsed, source=source, dest=dest)
        upload = [
            {"PartNumber": p.part_number, "ETag": p.etag, "ChecksumSHA256": p.part_checksum}
            for p in parts
        ]
        part_checksums = tuple(str(p.part_checksum) for p in parts)
        composite = _composite_sha256(part_checksums)
        try:
            response = s3.complete_multipart_upload(
                Bucket=dest_bucket,
                Key=dest_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": upload},
            )
        except ClientError as exc:
            if is_transient(exc):
                raise
            if error_code(exc) == "NoSuchUpload":
                response = _already_completed(
                    s3, dest_bucket, dest_key, composite, exc, source=source, dest=dest
                )
            else:
                raise TransferError(
                    f"S3 refused to complete multipart upload {upload_id}: {exc}",
                    source=source,
                    dest=dest,
                ) from exc
    except TransferError:
        for key, other in sorted({(r.dest_key, r.upload_id or "") for r in parsed}):
            if other:
                _abort_quietly(s3, dest_bucket, key, other)
        raise
    stored = str(response.get("ChecksumSHA256") or "")
    if stored and stored.split("-")[0] != composite.split("-")[0]:
        # Not what the parts make: take it down rather than leave a wrong object visible.
        s3.delete_object(Bucket=dest_bucket, Key=dest_key)
        raise VerificationError(
            f"S3 reports checksum {stored} for the completed object, the parts give {composite}",
            source=source,
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
        dest_key=dest_key,
        action="compress",
        codec="zstd",
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


def abort_chunked(s3: S3Client, *, dest_bucket: str, dest_key: str, upload_id: str) -> bool:
    """Abort a chunked upload and free its parts; True if it was still open.

    Idempotent: an upload already aborted or completed is left as it is (a completed object
    is not deleted). S3 may still store a part whose upload was in flight during the abort,
    so the parts are listed afterwards and the abort repeated while any remain.
    """
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


def tree_sha256(range_sha256s: Sequence[str], range_size: int) -> str:
    """The checksum of a chunked source: "tree-sha256:<hex>:<range_size>".

    <hex> is the SHA-256 of the concatenated 32-byte SHA-256 digests of the source's ranges,
    in order; the ranges are `plan.chunk_ranges(size, range_size)` (every range `range_size`
    bytes but the last, which has a short tail folded in). The prefix keeps it from being
    mistaken for, or compared with, a plain SHA-256 of the file: recompute it with
    `chunk_ranges` and SHA-256, or let `verify` do it.
    """
    joined = b"".join(bytes.fromhex(h) for h in range_sha256s)
    return f"{TREE_SHA256_PREFIX}{hashlib.sha256(joined).hexdigest()}:{range_size}"


def parse_tree_sha256(value: str) -> tuple[str, int]:
    """The hex digest and range size of a `tree_sha256` value; ValueError if it is not one."""
    if not value.startswith(TREE_SHA256_PREFIX):
        raise ValueError(f"not a tree hash: {value!r}")
    digest, _, range_size = value[len(TREE_SHA256_PREFIX) :].partition(":")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
        raise ValueError(f"not a hex SHA-256: {digest!r}")
    if not range_size.isdigit() or int(range_size) < MIN_RANGE_SIZE:
        raise ValueError(f"bad range size {range_size!r}")
    return digest.lower(), int(range_size)


def skippable_frame(total: int) -> bytes:
    """A zstd skippable frame of exactly `total` bytes (>= 8): decoders ignore it."""
    if total < SKIPPABLE_HEADER:
        raise ValueError(f"a skippable frame has at least {SKIPPABLE_HEADER} bytes, not {total}")
    payload = total - SKIPPABLE_HEADER
    return struct.pack("<II", SKIPPABLE_MAGIC, payload) + bytes(payload)


class _RangeHasher:
    """SHA-256 of each range of a stream (`chunk_ranges(size, range_size)`), fed in any chunks."""

    def __init__(self, size: int, range_size: int) -> None:
        self.range_size = range_size
        self._ends = [end for _, end in chunk_ranges(size, range_size)]
        self._current = hashlib.sha256()
        self._position = 0
        self.hexdigests: list[str] = []

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            index = len(self.hexdigests)
            if index >= len(self._ends):  # past the expected size: the size check reports it
                self._current.update(view)
                return
            take = min(len(view), self._ends[index] - self._position)
            self._current.update(view[:take])
            self._position += take
            view = view[take:]
            if self._position == self._ends[index]:
                self.hexdigests.append(self._current.hexdigest())
                self._current = hashlib.sha256()

    def tree_sha256(self) -> str:
        return tree_sha256(self.hexdigests, self.range_size)


class _Spool:
    """Compressed output on its way to one UploadPart: in memory, then in /tmp; its SHA-256
    and size kept as it is written."""

    def __init__(self, *, source: str, dest: str) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        self._digest = hashlib.sha256()
        self._source = source
        self._dest = dest
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self._file.write(data)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise TransferError(
                f"the temporary directory is full after {self.size} bytes of one compressed range: give the "
                "function more ephemeral storage (at least the range size) or use smaller "
                "ranges",
                source=self._source,
                dest=self._dest,
            ) from exc
        self._digest.update(data)
        self.size += len(data)

    def b64_sha256(self) -> str:
        return base64.b64encode(self._digest.digest()).decode("ascii")

    def rewound(self) -> IO[bytes]:
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        self._file.close()


def _range_fields(item: PlanItem, *, source: str, dest: str) -> tuple[int, int, int, int, str]:
    start, end = item.range_start, item.range_end
    number, count, upload_id = item.part_number, item.part_count, item.upload_id
    if start is None or end is None or number is None or count is None or not upload_id:
        raise TransferError(
            "a compress_range item needs part_number, range_start, range_end, part_count and "
            "upload_id (made by start_chunked)",
            source=source,
            dest=dest,
        )
    if not (0 <= start < end <= item.size and 1 <= number <= count <= MAX_PARTS):
        raise TransferError(
            f"bad range item: part {number}/{count}, bytes [{start}, {end}) of {item.size}",
            source=source,
            dest=dest,
        )
    return start, end, number, count, upload_id


def _range_total(content_range: str | None) -> int | None:
    """The total size in a Content-Range header ("bytes 0-99/1000" -> 1000)."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


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


def _composite_sha256(part_checksums: Sequence[str]) -> str:
    """S3's checksum of a multipart object: SHA-256 of the parts' digests, "-<parts>"."""
    joined = b"".join(base64.b64decode(c) for c in part_checksums)
    digest = base64.b64encode(hashlib.sha256(joined).digest()).decode("ascii")
    return f"{digest}-{len(part_checksums)}"


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


def _abort_quietly(s3: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        abort_chunked(s3, dest_bucket=bucket, dest_key=key, upload_id=upload_id)
    except Exception:
        # The original error matters more; the bucket's lifecycle rule is the backstop.
        logger.exception("could not abort multipart upload %s of %s", upload_id, key)


# --- copy -------------------------------------------------------------------------------


def _copy(
    s3: S3Client,
    item: PlanItem,
    *,
    source_bucket: str,
    dest_bucket: str,
    copy_threshold: int,
    copy_part_size: int,
) -> TransferResult:
    source, dest = _url(source_bucket, item.source_key), _url(dest_bucket, item.dest_key)
    head = _head_source(s3, source_bucket, item, source=source, dest=dest)
    if head["ContentLength"] != item.size:
        raise _changed(item, head["ContentLength"], source=source, dest=dest)
    source_sha256 = _full_object_sha256(head)
    copy_source = {"Bucket": source_bucket, "Key": item.source_key}
    if_match = {"CopySourceIfMatch": _quoted(item.etag)} if item.etag else {}

    if item.size <= copy_threshold:
        try:
            # MetadataDirective COPY keeps the content type and user metadata as staged; the
            # checksum algorithm makes S3 compute the SHA-256 of the copy while it copies.
            response = s3.copy_object(
                Bucket=dest_bucket,
                Key=item.dest_key,
                CopySource=copy_source,
                MetadataDirective="COPY",
                ChecksumAlgorithm="SHA256",
                **if_match,
            )
        except ClientError as exc:
            raise _source_fault(exc, item, source=source, dest=dest) from exc
        copied_sha256 = _full_object_sha256(response.get("CopyObjectResult", {}))
        if source_sha256 and copied_sha256 and copied_sha256 != source_sha256:
            raise TransferError(
                f"S3 reports SHA-256 {copied_sha256} for the copy but {source_sha256} for "
                "the source",
                source=source,
                dest=dest,
            )
        source_sha256 = source_sha256 or copied_sha256
    else:
        _multipart_copy(
            s3,
            item,
            head,
            copy_source=copy_source,
            if_match=if_match,
            dest_bucket=dest_bucket,
            part_size=_part_size_for(item.size, copy_part_size, source=source, dest=dest),
            source=source,
            dest=dest,
        )
    if not source_sha256:
        logger.warning(
            "copied %s -> %s without a SHA-256: S3 holds no full-object SHA-256 for it "
            "(multipart upload or no checksum), and a copy does not download the bytes",
            source,
            dest,
        )
    return TransferResult(
        source_key=item.source_key,
        dest_key=item.dest_key,
        action="copy",
        codec=None,
        bytes_in=item.size,
        bytes_out=item.size,
        source_sha256=source_sha256,
    )


def _multipart_copy(
    s3: S3Client,
    item: PlanItem,
    head: Mapping[str, Any],
    *,
    copy_source: dict[str, str],
    if_match: dict[str, str],
    dest_bucket: str,
    part_size: int,
    source: str,
    dest: str,
) -> None:
    # UploadPartCopy does not carry the source's headers over: set them on the new upload.
    headers = {
        name: head[name]
        for name in (
            "ContentType",
            "ContentEncoding",
            "ContentDisposition",
            "ContentLanguage",
            "CacheControl",
        )
        if head.get(name)
    }
    upload_id = s3.create_multipart_upload(
        Bucket=dest_bucket, Key=item.dest_key, Metadata=head.get("Metadata", {}), **headers
    )["UploadId"]
    try:
        parts = []
        for number, start in enumerate(range(0, item.size, part_size), start=1):
            end = min(start + part_size, item.size) - 1
            try:
                response = s3.upload_part_copy(
                    Bucket=dest_bucket,
                    Key=item.dest_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={start}-{end}",
                    **if_match,
                )
            except ClientError as exc:
                raise _source_fault(exc, item, source=source, dest=dest) from exc
            parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
        s3.complete_multipart_upload(
            Bucket=dest_bucket,
            Key=item.dest_key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
    except BaseException:
        try:
            s3.abort_multipart_upload(Bucket=dest_bucket, Key=item.dest_key, UploadId=upload_id)
        except Exception:
            logger.exception("could not abort multipart copy %s of %s", upload_id, dest)
        raise


# --- verify -----------------------------------------------------------------------------


def _verify_compressed(
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    source: str,
    dest: str,
    expected_sha256: str,
    expected_size: int,
    expected_bytes_out: int | None,
    range_sha256s: Sequence[str] | None = None,
    checksum_sha256: str | None = None,
) -> None:
    def fail(reason: str) -> VerificationError:
        return VerificationError(reason, source=source, dest=dest)

    response = _get_dest(
        s3, bucket, key, source=source, dest=dest, checksums=checksum_sha256 is not None
    )
    body = response["Body"]
    try:
        length = response["ContentLength"]
        metadata = response.get("Metadata", {})
        if length == 0:
            raise fail("the object is empty, not a zstd stream")
        if expected_bytes_out is not None and length != expected_bytes_out:
            raise fail(f"the object has {length} bytes; the transfer wrote {expected_bytes_out}")
        expected_sha256 = expected_sha256 or metadata.get(META_SOURCE_SHA256, "")
        if not expected_sha256:
            raise fail("no SHA-256 of the source to compare against")
        recorded = metadata.get(META_SOURCE_SHA256)
        if recorded and recorded != expected_sha256:
            raise fail(f"its metadata records source SHA-256 {recorded}, not {expected_sha256}")
        recorded_size = metadata.get(META_SOURCE_SIZE)
        if recorded_size and recorded_size != str(expected_size):
            raise fail(f"its metadata records source size {recorded_size}, not {expected_size}")
        stored_checksum = str(response.get("ChecksumSHA256") or "")
        # S3 writes a multipart object's checksum "<base64>-<parts>"; moto drops "-<parts>".
        if (
            checksum_sha256
            and stored_checksum
            and stored_checksum.split("-")[0] != checksum_sha256.split("-")[0]
        ):
            raise fail(f"S3 reports checksum {stored_checksum}, the upload {checksum_sha256}")

        digest: _RangeHasher | Any
        if expected_sha256.startswith(TREE_SHA256_PREFIX):
            try:
                _, range_size = parse_tree_sha256(expected_sha256)
                digest = _RangeHasher(expected_size, range_size)
            except ValueError as exc:
                raise fail(f"bad tree hash {expected_sha256!r}: {exc}") from exc
            recorded_range = metadata.get(META_RANGE_SIZE)
            if recorded_range and recorded_range != str(range_size):
                raise fail(f"its metadata records range size {recorded_range}, not {range_size}")
        else:
            digest = hashlib.sha256()
        size = 0
        reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
        try:
            while chunk := reader.read(READ_CHUNK):
                size += len(chunk)
                if size > expected_size:
                    raise fail(f"it decompresses to more than the {expected_size} bytes expected")
                digest.update(chunk)
        except zstandard.ZstdError as exc:
            raise fail(f"it is not a valid zstd stream: {exc}") from exc
    finally:
        body.close()
    # A truncated last frame decompresses to fewer bytes without a zstd error: the size
    # and hash comparisons below are what catch it.
    if size != expected_size:
        raise fail(f"it decompresses to {size} bytes, expected {expected_size}")
    if isinstance(digest, _RangeHasher):
        actual = digest.tree_sha256()
        if actual != expected_sha256:
            ranges = chunk_ranges(expected_size, digest.range_size)
            for index, (got, want) in enumerate(
                zip(digest.hexdigests, range_sha256s or (), strict=False)
            ):
                if got != want.lower():
                    start, end = ranges[index]
                    raise fail(
                        f"range {index + 1} (bytes {start}-{end - 1}) decompresses to SHA-256 "
                        f"{got}, expected {want}"
                    )
            raise fail(f"it decompresses to {actual}, expected {expected_sha256}")
        return
    if digest.hexdigest() != expected_sha256:
        raise fail(f"it decompresses to SHA-256 {digest.hexdigest()}, expected {expected_sha256}")


def _verify_copied(
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    source: str,
    dest: str,
    expected_sha256: str,
    expected_size: int,
    source_etag: str,
) -> None:
    def fail(reason: str) -> VerificationError:
        return VerificationError(reason, source=source, dest=dest)

    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if is_not_found(exc):
            raise fail("the destination object does not exist") from exc
        raise
    if head["ContentLength"] != expected_size:
        raise fail(f"the object has {head['ContentLength']} bytes, expected {expected_size}")
    stored_sha256 = _full_object_sha256(head)
    if expected_sha256 and stored_sha256:
        if stored_sha256 != expected_sha256:
            raise fail(f"S3 reports SHA-256 {stored_sha256}, expected {expected_sha256}")
        return
    dest_etag = head.get("ETag", "").strip('"')
    if _is_md5_etag(source_etag) and _is_md5_etag(dest_etag) and not _kms(head):
        if dest_etag != source_etag.strip('"'):
            raise fail(f"its ETag (MD5) is {dest_etag}, the source's was {source_etag}")
        return
    logger.warning("verified %s by size only: no comparable checksum without a download", dest)


# --- helpers ----------------------------------------------------------------------------


def _url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _quoted(etag: str) -> str:
    # S3 takes quoted ETags in conditions; moto's HeadObject compares them verbatim.
    return f'"{etag.strip(chr(34))}"'


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _part_size_for(size: int, part_size: int, *, source: str, dest: str) -> int:
    """The part size to use: `part_size`, grown to whole MiB if `size` needs > 10,000 parts."""
    # zstd's worst-case expansion is well under 1% plus a small header; allow for it.
    bound = size + size // 128 + MiB
    needed = math.ceil(math.ceil(bound / MAX_PARTS) / MiB) * MiB
    chosen = max(part_size, needed)
    if chosen > MAX_PART_SIZE:
        raise TransferError(
            f"{size} bytes do not fit in {MAX_PARTS} parts of at most 5 GiB",
            source=source,
            dest=dest,
        )
    return chosen


def _with_last_flag(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Yield each chunk with whether it is the last one (one chunk of look-ahead)."""
    iterator = iter(chunks)
    try:
        previous = next(iterator)
    except StopIteration:
        return
    for chunk in iterator:
        yield previous, False
        previous = chunk
    yield previous, True


def _full_object_sha256(response: Mapping[str, Any]) -> str:
    """The hex SHA-256 of the whole object if S3 reports one, else "".

    A multipart object's SHA-256 is a checksum of the parts' checksums ("...-N", type
    COMPOSITE), not of the bytes; its ETag then ends in "-N" too, which catches the case
    where a response omits the suffix and the type.
    """
    value = response.get("ChecksumSHA256") or ""
    if not value or "-" in value or response.get("ChecksumType") == "COMPOSITE":
        return ""
    if "-" in str(response.get("ETag", "")):
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.hex() if len(raw) == 32 else ""


def _is_md5_etag(etag: str) -> bool:
    etag = etag.strip('"')
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower())


def _kms(head: Mapping[str, Any]) -> bool:
    # Under SSE-KMS (and DSSE-KMS) an ETag is not the MD5 of the bytes.
    return "kms" in str(head.get("ServerSideEncryption", ""))


def _changed(item: PlanItem, actual: object, *, source: str, dest: str) -> TransferError:
    return TransferError(
        f"the source has {actual} bytes but was planned with {item.size}: it changed after "
        "the plan was made; upload the session again",
        source=source,
        dest=dest,
    )


def _source_fault(exc: ClientError, item: PlanItem, *, source: str, dest: str) -> TransferError:
    """Translate a client error about the source into a TransferError if it is permanent;
    re-raise it as it is otherwise, so that throttling and 5xx stay retryable."""
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return TransferError("the source object does not exist", source=source, dest=dest)
    if code in ("PreconditionFailed", "412"):
        return TransferError(
            f"the source no longer has the planned ETag {item.etag}: it changed after the "
            "plan was made; upload the session again",
            source=source,
            dest=dest,
        )
    raise exc


def _get_source(
    s3: S3Client, bucket: str, item: PlanItem, *, source: str, dest: str
) -> dict[str, Any]:
    conditions = {"IfMatch": _quoted(item.etag)} if item.etag else {}
    try:
        return s3.get_object(Bucket=bucket, Key=item.source_key, **conditions)
    except ClientError as exc:
        raise _source_fault(exc, item, source=source, dest=dest) from exc


def _head_source(
    s3: S3Client, bucket: str, item: PlanItem, *, source: str, dest: str
) -> dict[str, Any]:
    conditions = {"IfMatch": _quoted(item.etag)} if item.etag else {}
    try:
        return s3.head_object(
            Bucket=bucket, Key=item.source_key, ChecksumMode="ENABLED", **conditions
        )
    except ClientError as exc:
        raise _source_fault(exc, item, source=source, dest=dest) from exc


def _get_dest(
    s3: S3Client, bucket: str, key: str, *, source: str, dest: str, checksums: bool = False
) -> dict[str, Any]:
    try:
        if checksums:
            return s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        return s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            raise VerificationError(
                "the destination object does not exist", source=source, dest=dest
            ) from exc
        raise
