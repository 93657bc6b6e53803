"""Streaming compression of one object: source -> SHA-256 and zstd -> a multipart upload.

A data file can be far larger than a Lambda's memory or its /tmp, so `compress_object`
streams: it reads the source in chunks, hashes and compresses them on the fly (zstd on its
own worker thread, see `ZSTD_WORKERS`) and writes the output through `PartWriter`, never
holding more than about two parts (and zstd's few jobs of input) in memory.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import zstandard

from upload_processor.adapters.s3 import b64_sha256
from upload_processor.domain.archive import (
    CODEC_ZSTD,
    META_CODEC,
    META_LEVEL,
    META_SOURCE_ETAG,
    META_SOURCE_SHA256,
    META_SOURCE_SIZE,
    ZSTD_CONTENT_TYPE,
)
from upload_processor.domain.plan import MAX_PARTS, PlanItem
from upload_processor.domain.units import DEFAULT_LEVEL, READ_CHUNK
from upload_processor.errors import TransferError
from upload_processor.pipeline.transfer.as_is import as_is_item, store_as_is
from upload_processor.pipeline.transfer.faults import S3Client, changed, url
from upload_processor.pipeline.transfer.parts import part_size_for
from upload_processor.pipeline.transfer.result import TransferResult
from upload_processor.pipeline.transfer.source import get_source

logger = logging.getLogger(__name__)

# zstd compresses in one libzstd worker thread (the zstd command line's default, `-T1`): the
# calling thread reads, hashes and uploads while it compresses, instead of taking turns with
# it. libzstd's threaded mode writes the same bytes for the same input and level whatever the
# read sizes or the number of workers (>= 1); they are not the bytes of its single-threaded
# mode, so objects compressed before this setting decompress the same but differ in bytes.
# An object of one part, and every range of a chunked file (transfer.ranges), is compressed
# in single-threaded mode instead: the same bytes for the same input, level and part size.
ZSTD_WORKERS = 1


def compressor(
    level: int, *, source: str, dest: str, threads: int = ZSTD_WORKERS
) -> zstandard.ZstdCompressor:
    """The compressor of every transfer: `level`, a content checksum, `threads` zstd workers
    (`ZSTD_WORKERS`; 0: on the calling thread)."""
    try:
        return zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads)
    except (ValueError, zstandard.ZstdError) as exc:
        raise TransferError(f"invalid zstd level {level}: {exc}", source=source, dest=dest) from exc


def source_metadata(item: PlanItem, level: int) -> dict[str, str]:
    """The object metadata every compressed object carries from the start (`domain.archive`)."""
    metadata = {META_SOURCE_SIZE: str(item.size), META_CODEC: CODEC_ZSTD, META_LEVEL: str(level)}
    if item.etag:
        metadata[META_SOURCE_ETAG] = item.etag
    return metadata


def compress_object(
    s3: S3Client, item: PlanItem, *, source_bucket: str, dest_bucket: str, part_size: int
) -> TransferResult:
    """Compress the whole source into one zstd frame at the destination (see the module)."""
    source, dest = url(source_bucket, item.source_key), url(dest_bucket, item.dest_key)
    level = DEFAULT_LEVEL if item.level is None else item.level
    part_size = part_size_for(item.size, part_size, source=source, dest=dest)
    # A zstd worker thread only pays when there is reading and uploading to overlap it with:
    # an object of one part (most files of a session) is compressed on the calling thread.
    threads = ZSTD_WORKERS if item.size > part_size else 0
    zstd = compressor(level, source=source, dest=dest, threads=threads)

    response = get_source(s3, source_bucket, item, source=source, dest=dest)
    if response["ContentLength"] != item.size:
        response["Body"].close()
        raise changed(item, response["ContentLength"], source=source, dest=dest)

    metadata = source_metadata(item, level)
    writer = PartWriter(s3, dest_bucket, item.dest_key, metadata=metadata, source=source, dest=dest)
    digest = hashlib.sha256()
    body = response["Body"]
    try:
        # The pledged size goes into the frame header, so a reader knows the output size.
        chunker = zstd.chunker(size=item.size, chunk_size=part_size)
        bytes_in = 0
        while chunk := body.read(READ_CHUNK):
            bytes_in += len(chunk)
            # Checked before zstd sees the bytes: feeding more than pledged is a zstd error.
            if bytes_in > item.size:
                raise changed(item, f"more than {item.size}", source=source, dest=dest)
            digest.update(chunk)
            for part in chunker.compress(chunk):
                writer.write_part(part)
        if bytes_in != item.size:
            raise changed(item, bytes_in, source=source, dest=dest)
        source_sha256 = digest.hexdigest()
        # store the smaller: a stream not shorter than the source is never completed (as_is.py)
        limit = item.size if as_is_item(item) is not None else None
        stored = writer.finish(chunker.finish(), source_sha256=source_sha256, keep_below=limit)
    except BaseException:
        writer.abort()
        raise
    finally:
        body.close()
    if not stored:
        return store_as_is(
            s3,
            item,
            source_bucket=source_bucket,
            dest_bucket=dest_bucket,
            source_sha256=source_sha256,
            compressed_size=writer.bytes_out,
        )
    logger.info(
        "compressed %s -> %s: %d -> %d bytes in %d part(s)",
        source,
        dest,
        item.size,
        writer.bytes_out,
        writer.part_count,
    )
    return TransferResult.of_item(
        item, bytes_out=writer.bytes_out, source_sha256=source_sha256, etag=writer.etag
    )


class PartWriter:
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
        self.etag: str | None = None  # S3's answer to the object's write

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
        checksum = b64_sha256(data)
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

    def finish(
        self, tail: Iterable[bytes], *, source_sha256: str, keep_below: int | None = None
    ) -> bool:
        """Write the remaining output (`tail`, the last chunk last) and seal the object; True.

        With `keep_below`, an output of that many bytes or more is not sealed: the multipart
        upload is aborted (a single part is never put), `bytes_out` says how long it was, and
        the answer is False (the caller stores the source as is instead).
        """
        chunks = with_last_flag(tail)
        for data, is_last in chunks:
            if not is_last:
                self.write_part(data)
                continue
            if self._upload_id is None:
                if keep_below is not None and self.bytes_out + len(data) >= keep_below:
                    self.bytes_out += len(data)
                    return False
                response = self._s3.put_object(
                    Bucket=self._bucket,
                    Key=self._key,
                    Body=data,
                    ContentType=ZSTD_CONTENT_TYPE,
                    Metadata={**self._metadata, META_SOURCE_SHA256: source_sha256},
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=b64_sha256(data),
                )
                self.bytes_out += len(data)
                self.etag = response.get("ETag")
                return True
            self.write_part(data)
        if self._upload_id is None:
            # zstd always ends a frame with an epilogue, so this means a bug, not bad data.
            raise TransferError(
                "the compressor produced no output", source=self._source, dest=self._dest
            )
        if keep_below is not None and self.bytes_out >= keep_below:
            self.abort()
            return False
        response = self._s3.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self.etag = response.get("ETag")
        self._upload_id = None
        return True

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


def with_last_flag(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
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
