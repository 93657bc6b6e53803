"""Verification: the archived object holds exactly the source's bytes.

A transfer that returned without error is not yet proof: `verify` re-reads what S3 stored.
A compressed object is downloaded as a stream and every zstd frame in it decompressed
(`read_across_frames`: a plain one-shot decompress stops after the first frame and would pass
a file whose tail is missing), hashing the output; a copy is compared by size and, where S3
keeps them, the full-object SHA-256 or the plain MD5 ETag, without downloading. `verify_part`
checks one part of a chunked object on its own, so that a Map can verify a huge file in
parallel.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import zstandard
from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import (
    full_object_sha256,
    is_kms_encrypted,
    is_md5_etag,
    is_not_found,
)
from upload_processor.domain.archive import (
    META_RANGE_SIZE,
    META_SOURCE_SHA256,
    META_SOURCE_SIZE,
    TREE_SHA256_PREFIX,
    parse_tree_sha256,
    tree_sha256,
)
from upload_processor.domain.plan import PlanItem, chunk_ranges
from upload_processor.domain.units import READ_CHUNK
from upload_processor.errors import VerificationError, error_code
from upload_processor.pipeline.transfer.faults import S3Client, transient_surfaced, url
from upload_processor.pipeline.transfer.result import TransferResult
from upload_processor.pipeline.transfer.source import range_total

logger = logging.getLogger(__name__)


def verify(
    s3: S3Client,
    target: TransferResult | PlanItem,
    *,
    dest_bucket: str,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
) -> None:
    """Check that the archived object holds exactly the source's bytes; raise if not.

    `expected_sha256` (hex) and `expected_size` default to what `target` says: a
    `TransferResult`'s `source_sha256` and `bytes_in`, a `PlanItem`'s `size`. Raises
    `VerificationError` on any mismatch, `TransientError` on a transient S3 fault.

    A chunked object's `expected_sha256` is its tree hash ("tree-sha256:<hex>:<range_size>"):
    the decompressed stream is cut at the same range boundaries (`chunk_ranges(size,
    range_size)`), each range hashed, and the tree hash recomputed; with the result's
    `range_sha256s` the error names the first range that differs. The zstd skippable frames
    that pad short parts are skipped by the decoder and count for nothing. A single range
    (`compress_range` result) is not an object and cannot be verified alone.
    """
    expected = _Expected.of(target, expected_sha256, expected_size)
    dest = url(dest_bucket, target.dest_key)
    with transient_surfaced(f"verifying {dest}"):
        if target.action == "compress":
            _verify_compressed(s3, dest_bucket, target, expected, dest=dest)
        else:
            _verify_copied(s3, dest_bucket, target, expected, dest=dest)


class _Expected:
    """What the archived object must hold, from a result or a plan item."""

    def __init__(
        self,
        *,
        size: int,
        sha256: str,
        bytes_out: int | None = None,
        etag: str = "",
        range_sha256s: Sequence[str] | None = None,
        checksum_sha256: str | None = None,
    ) -> None:
        self.size, self.sha256, self.bytes_out, self.etag = size, sha256.lower(), bytes_out, etag
        self.range_sha256s, self.checksum_sha256 = range_sha256s, checksum_sha256

    @classmethod
    def of(
        cls, target: TransferResult | PlanItem, sha256: str | None, size: int | None
    ) -> _Expected:
        if isinstance(target, PlanItem):
            return cls(
                size=target.size if size is None else size, sha256=sha256 or "", etag=target.etag
            )
        if target.action == "compress_range":
            raise ValueError(
                "a compress_range result is one part of a multipart upload: verify the result "
                "of complete_chunked instead"
            )
        return cls(
            size=target.bytes_in if size is None else size,
            sha256=target.source_sha256 if sha256 is None else sha256,
            bytes_out=target.bytes_out,
            range_sha256s=target.range_sha256s,
            checksum_sha256=target.checksum_sha256,
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
    dest = url(dest_bucket, target.dest_key)

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
    with transient_surfaced(f"verifying part {part_number} of {dest}"):
        body = _get_part(s3, dest_bucket, target, offset, length, fail)
        digest = hashlib.sha256()
        size = decompress_into(
            body,
            digest,
            end - start,
            fail,
            too_long=f"it decompresses to more than its {end - start} bytes",
            invalid="it is not a valid zstd frame",
        )
    if size != end - start:
        raise fail(f"it decompresses to {size} bytes, expected {end - start}")
    if digest.hexdigest() != hashes[part_number - 1].lower():
        raise fail(
            f"bytes {start}-{end - 1} decompress to SHA-256 {digest.hexdigest()}, expected "
            f"{hashes[part_number - 1]}"
        )


def _get_part(
    s3: S3Client,
    bucket: str,
    target: TransferResult,
    offset: int,
    length: int,
    fail: Callable[[str], VerificationError],
) -> Any:
    """The body of one part of the object, once its response shows the object's size."""
    try:
        response = s3.get_object(
            Bucket=bucket, Key=target.dest_key, Range=f"bytes={offset}-{offset + length - 1}"
        )
    except ClientError as exc:
        if is_not_found(exc):
            raise fail("the destination object does not exist") from exc
        if error_code(exc) in ("InvalidRange", "416"):
            raise fail(f"the object is shorter than {offset + length} bytes") from exc
        raise
    body = response["Body"]
    total = range_total(response.get("ContentRange"))
    if total is not None and total != target.bytes_out:
        body.close()
        raise fail(f"the object has {total} bytes, the upload wrote {target.bytes_out}")
    if response["ContentLength"] != length:
        body.close()
        raise fail(f"read {response['ContentLength']} bytes, the part has {length}")
    return body


def decompress_into(
    body: Any,
    digest: Any,
    limit: int,
    fail: Callable[[str], VerificationError],
    *,
    too_long: str,
    invalid: str,
) -> int:
    """Decompress every frame of `body` into `digest`; the decompressed size. Raises
    `fail(too_long)` past `limit` bytes, `fail(invalid: ...)` on a zstd error; the body is
    closed either way."""
    size = 0
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
        try:
            while chunk := reader.read(READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise fail(too_long)
                digest.update(chunk)
        except zstandard.ZstdError as exc:
            raise fail(f"{invalid}: {exc}") from exc
    finally:
        body.close()
    return size


def _verify_compressed(
    s3: S3Client, bucket: str, target: TransferResult | PlanItem, expected: _Expected, *, dest: str
) -> None:
    def fail(reason: str) -> VerificationError:
        return VerificationError(reason, source=target.source_key, dest=dest)

    response = _get_dest(
        s3,
        bucket,
        target.dest_key,
        source=target.source_key,
        dest=dest,
        checksums=expected.checksum_sha256 is not None,
    )
    body = response["Body"]
    try:
        expected_sha256 = _check_stored(response, expected, fail)
        digest = _digest_for(expected_sha256, expected.size, response.get("Metadata", {}), fail)
    except BaseException:
        body.close()
        raise
    size = decompress_into(
        body,
        digest,
        expected.size,
        fail,
        too_long=f"it decompresses to more than the {expected.size} bytes expected",
        invalid="it is not a valid zstd stream",
    )
    # A truncated last frame decompresses to fewer bytes without a zstd error: the size
    # and hash comparisons below are what catch it.
    if size != expected.size:
        raise fail(f"it decompresses to {size} bytes, expected {expected.size}")
    if isinstance(digest, _RangeHasher):
        _check_tree(digest, expected_sha256, expected, fail)
    elif digest.hexdigest() != expected_sha256:
        raise fail(f"it decompresses to SHA-256 {digest.hexdigest()}, expected {expected_sha256}")


def _check_stored(
    response: Mapping[str, Any], expected: _Expected, fail: Callable[[str], VerificationError]
) -> str:
    """Check what S3 says of the object (size, recorded metadata, checksum) before reading it;
    the source SHA-256 to compare the decompressed bytes with."""
    length = response["ContentLength"]
    metadata = response.get("Metadata", {})
    if length == 0:
        raise fail("the object is empty, not a zstd stream")
    if expected.bytes_out is not None and length != expected.bytes_out:
        raise fail(f"the object has {length} bytes; the transfer wrote {expected.bytes_out}")
    expected_sha256 = expected.sha256 or metadata.get(META_SOURCE_SHA256, "")
    if not expected_sha256:
        raise fail("no SHA-256 of the source to compare against")
    recorded = metadata.get(META_SOURCE_SHA256)
    if recorded and recorded != expected_sha256:
        raise fail(f"its metadata records source SHA-256 {recorded}, not {expected_sha256}")
    recorded_size = metadata.get(META_SOURCE_SIZE)
    if recorded_size and recorded_size != str(expected.size):
        raise fail(f"its metadata records source size {recorded_size}, not {expected.size}")
    stored_checksum = str(response.get("ChecksumSHA256") or "")
    wanted = expected.checksum_sha256
    # S3 writes a multipart object's checksum "<base64>-<parts>"; moto drops "-<parts>".
    if wanted and stored_checksum and stored_checksum.split("-")[0] != wanted.split("-")[0]:
        raise fail(f"S3 reports checksum {stored_checksum}, the upload {wanted}")
    return expected_sha256


def _digest_for(
    expected_sha256: str,
    size: int,
    metadata: Mapping[str, str],
    fail: Callable[[str], VerificationError],
) -> Any:
    """A plain SHA-256, or for a tree hash a `_RangeHasher` cutting at its ranges."""
    if not expected_sha256.startswith(TREE_SHA256_PREFIX):
        return hashlib.sha256()
    try:
        _, range_size = parse_tree_sha256(expected_sha256)
        digest = _RangeHasher(size, range_size)
    except ValueError as exc:
        raise fail(f"bad tree hash {expected_sha256!r}: {exc}") from exc
    recorded_range = metadata.get(META_RANGE_SIZE)
    if recorded_range and recorded_range != str(range_size):
        raise fail(f"its metadata records range size {recorded_range}, not {range_size}")
    return digest


def _check_tree(
    digest: _RangeHasher,
    expected_sha256: str,
    expected: _Expected,
    fail: Callable[[str], VerificationError],
) -> None:
    """Compare the recomputed tree hash, naming the first range that differs if known."""
    actual = digest.tree_sha256()
    if actual == expected_sha256:
        return
    ranges = chunk_ranges(expected.size, digest.range_size)
    for index, (got, want) in enumerate(
        zip(digest.hexdigests, expected.range_sha256s or (), strict=False)
    ):
        if got != want.lower():
            start, end = ranges[index]
            raise fail(
                f"range {index + 1} (bytes {start}-{end - 1}) decompresses to SHA-256 "
                f"{got}, expected {want}"
            )
    raise fail(f"it decompresses to {actual}, expected {expected_sha256}")


def _verify_copied(
    s3: S3Client, bucket: str, target: TransferResult | PlanItem, expected: _Expected, *, dest: str
) -> None:
    def fail(reason: str) -> VerificationError:
        return VerificationError(reason, source=target.source_key, dest=dest)

    try:
        head = s3.head_object(Bucket=bucket, Key=target.dest_key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if is_not_found(exc):
            raise fail("the destination object does not exist") from exc
        raise
    if head["ContentLength"] != expected.size:
        raise fail(f"the object has {head['ContentLength']} bytes, expected {expected.size}")
    stored_sha256 = full_object_sha256(head)
    if expected.sha256 and stored_sha256:
        if stored_sha256 != expected.sha256:
            raise fail(f"S3 reports SHA-256 {stored_sha256}, expected {expected.sha256}")
        return
    dest_etag = head.get("ETag", "").strip('"')
    source_etag = expected.etag
    if is_md5_etag(source_etag) and is_md5_etag(dest_etag) and not is_kms_encrypted(head):
        if dest_etag != source_etag.strip('"'):
            raise fail(f"its ETag (MD5) is {dest_etag}, the source's was {source_etag}")
        return
    logger.warning("verified %s by size only: no comparable checksum without a download", dest)


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
