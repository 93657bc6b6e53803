"""Move one planned object from the staging bucket into the archive bucket, and verify it.

A data file can be far larger than a Lambda's memory or its /tmp, so `compress` streams: it
reads the source in chunks, hashes and compresses them on the fly and writes the output as a
multipart upload, never holding more than about two parts in memory. `copy` never moves a byte
through the function: S3 copies server-side.

Errors are split so that Step Functions can tell them apart by name: `TransferError` (and its
`VerificationError`) is a permanent fault that retrying will not fix (the source is gone or
changed since it was planned, the output is wrong); anything else (throttling, a dropped
connection, a 5xx) propagates as it is, so the state machine's Retry can try again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

import zstandard
from botocore.exceptions import ClientError

from upload_processor.plan import PlanItem

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

ZSTD_CONTENT_TYPE = "application/zstd"

# User metadata written on every compressed object (S3 lower-cases the names anyway).
META_SOURCE_SHA256 = "source-sha256"
META_SOURCE_SIZE = "source-size"
META_SOURCE_ETAG = "source-etag"
META_CODEC = "codec"
META_LEVEL = "zstd-level"


class TransferError(Exception):
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


@dataclass(frozen=True)
class TransferResult:
    """What one transfer did: the Map iteration's output, and what Verify and the manifest use.

    `source_sha256` is the hex SHA-256 of the *source* bytes (for `compress`, of the data
    before compression). It is "" when a server-side copy left it unknown: S3 kept no
    full-object SHA-256 for the source and the bytes were, on purpose, not downloaded.
    """

    source_key: str
    dest_key: str
    action: str
    codec: str | None
    bytes_in: int
    bytes_out: int
    source_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: Step Functions carries results between states as JSON."""
        return asdict(self)

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
        )


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
    5 GiB), UploadPartCopy in `copy_part_size` ranges above it.

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
    """
    if isinstance(target, TransferResult):
        size = target.bytes_in if expected_size is None else expected_size
        sha = target.source_sha256 if expected_sha256 is None else expected_sha256
        out_size: int | None = target.bytes_out
        etag = ""
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


# --- compress ---------------------------------------------------------------------------


def _compress(
    s3: S3Client, item: PlanItem, *, source_bucket: str, dest_bucket: str, part_size: int
) -> TransferResult:
    source, dest = _url(source_bucket, item.source_key), _url(dest_bucket, item.dest_key)
    level = DEFAULT_LEVEL if item.level is None else item.level
    try:
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    except (ValueError, zstandard.ZstdError) as exc:
        raise TransferError(f"invalid zstd level {level}: {exc}", source=source, dest=dest) from exc
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
) -> None:
    def fail(reason: str) -> VerificationError:
        return VerificationError(reason, source=source, dest=dest)

    response = _get_dest(s3, bucket, key, source=source, dest=dest)
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
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
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


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


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
    code = _error_code(exc)
    if code in ("NoSuchKey", "404", "NotFound"):
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


def _get_dest(s3: S3Client, bucket: str, key: str, *, source: str, dest: str) -> dict[str, Any]:
    try:
        return s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
            raise VerificationError(
                "the destination object does not exist", source=source, dest=dest
            ) from exc
        raise
