"""One range of a chunked file: compressed into one independent zstd frame, uploaded as one
part of the file's multipart upload (`chunked.start_chunked` opened it).

The content size is pledged in the frame's header and the frame ends with its own checksum,
so the parts concatenate into one valid zstd stream. UploadPart needs the part's length and
checksum up front, so the frame is spooled first (`Spool`: in memory, then in /tmp). A part
under S3's 5 MiB minimum that is not the last is padded with a skippable frame.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import tempfile
from typing import IO, Any

from botocore.exceptions import ClientError

from upload_processor.domain.archive import CODEC_ZSTD, SKIPPABLE_HEADER, skippable_frame
from upload_processor.domain.plan import MAX_PARTS, PlanItem
from upload_processor.domain.units import DEFAULT_LEVEL, READ_CHUNK, MiB
from upload_processor.errors import TransferError, error_code
from upload_processor.pipeline.transfer.chunked import abort_quietly
from upload_processor.pipeline.transfer.compress import compressor
from upload_processor.pipeline.transfer.faults import S3Client, changed, url
from upload_processor.pipeline.transfer.parts import MIN_PART_SIZE
from upload_processor.pipeline.transfer.result import TransferResult
from upload_processor.pipeline.transfer.source import get_source_range

logger = logging.getLogger(__name__)

# A compressed range is spooled before its UploadPart (which needs the length and checksum
# up front): in memory up to this size, then in /tmp.
SPOOL_MEMORY = 64 * MiB


def compress_range(
    s3: S3Client, item: PlanItem, *, source_bucket: str, dest_bucket: str
) -> TransferResult:
    """Compress one `compress_range` item into its part; the part's result, for
    `complete_chunked`. A permanent fault aborts the whole upload (see below)."""
    source, dest = url(source_bucket, item.source_key), url(dest_bucket, item.dest_key)
    bounds = _range_fields(item, source=source, dest=dest)
    upload_id = bounds[4]
    try:
        try:
            return _compress_one_range(
                s3,
                item,
                source_bucket=source_bucket,
                dest_bucket=dest_bucket,
                bounds=bounds,
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
        abort_quietly(s3, dest_bucket, item.dest_key, upload_id)
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
    body = get_source_range(s3, source_bucket, item, start, end, source=source, dest=dest)
    digest = hashlib.sha256()
    spool = Spool(source=source, dest=dest)
    try:
        padding = _spool_frame(body, spool, digest, item, bounds, source=source, dest=dest)
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
        end - start,
        bytes_out,
        padding,
    )
    return TransferResult(
        source_key=item.source_key,
        dest_key=item.dest_key,
        action="compress_range",
        codec=CODEC_ZSTD,
        bytes_in=end - start,
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


def _spool_frame(
    body: Any,
    spool: Spool,
    digest: Any,
    item: PlanItem,
    bounds: tuple[int, int, int, int, str],
    *,
    source: str,
    dest: str,
) -> int:
    """Hash and compress the range's body into `spool` as one frame (padded if it is too
    short to be a part); the bytes of padding. The body is closed."""
    start, end, number, count, _ = bounds
    length = end - start
    level = DEFAULT_LEVEL if item.level is None else item.level
    frame = compressor(level, source=source, dest=dest).compressobj(size=length)
    bytes_in = 0
    try:
        while chunk := body.read(READ_CHUNK):
            bytes_in += len(chunk)
            if bytes_in > length:
                raise changed(item, f"more than {item.size}", source=source, dest=dest)
            digest.update(chunk)
            spool.write(frame.compress(chunk))
    finally:
        body.close()
    if bytes_in != length:
        raise changed(item, f"a range of {bytes_in} (not {length})", source=source, dest=dest)
    spool.write(frame.flush())
    padding = 0
    if number < count and spool.size < MIN_PART_SIZE:
        # S3 refuses a part under 5 MiB unless it is the last; highly compressible data
        # (8 MiB of zeros is a few hundred bytes) needs padding that decoders ignore.
        padding = max(SKIPPABLE_HEADER, MIN_PART_SIZE - spool.size)
        spool.write(skippable_frame(padding))
    return padding


class Spool:
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
