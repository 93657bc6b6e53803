"""One range of a chunked file: compressed into one independent zstd frame, uploaded as one
part of the file's multipart upload (`chunked.start_chunked` opened it).

The content size is pledged in the frame's header and the frame ends with its own checksum,
so the parts concatenate into one valid zstd stream. UploadPart needs the part's length and
checksum up front, so the frame is held first (`Spool`: in memory, past half the function's
memory in /tmp). A part under S3's 5 MiB minimum that is not the last is padded with a
skippable frame. The range is compressed on the calling thread (no zstd worker): the ranges of
a file already run in parallel, one per core, and a worker thread per range would put more
busy threads than cores.
"""

from __future__ import annotations

import base64
import bisect
import errno
import hashlib
import io
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
from upload_processor.settings import function_memory_mib

logger = logging.getLogger(__name__)

# A compressed range is held before its UploadPart (which needs the length and checksum up
# front): in memory up to this size outside Lambda (half the function's memory in Lambda),
# past it in /tmp.
SPOOL_MEMORY = 512 * MiB
# zstd worker threads of one range: none, see the module docstring.
RANGE_ZSTD_WORKERS = 0


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
    zstd = compressor(level, source=source, dest=dest, threads=RANGE_ZSTD_WORKERS)
    frame = zstd.compressobj(size=length)
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
    """Compressed output on its way to one UploadPart, with its SHA-256 and size kept as it is
    written: held in memory as the compressor's chunks (no copy), moved to /tmp only past
    `memory_limit` (`spool_memory_limit`).

    UploadPart needs the part's length and checksum before its first byte, and a zstd frame's
    length is known only at its end, so the part cannot be streamed: it is held. Measured
    (issue 17, one 128 MiB range of NP1-like data, 46 MiB out, median of 5): 1.35 s of CPU
    held in memory, 1.31 s through /tmp, the same within the noise; compression is the cost.
    Memory is preferred because it does not depend on /tmp's free space or speed.
    """

    def __init__(self, *, source: str, dest: str, memory_limit: int | None = None) -> None:
        self._chunks: list[bytes] = []
        self._file: IO[bytes] | None = None
        self._limit = spool_memory_limit() if memory_limit is None else memory_limit
        self._digest = hashlib.sha256()
        self._source = source
        self._dest = dest
        self.size = 0

    @property
    def in_memory(self) -> bool:
        return self._file is None

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._digest.update(data)
        self.size += len(data)
        if self._file is None and self.size <= self._limit:
            self._chunks.append(data)
            return
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile()  # noqa: SIM115
                for chunk in self._chunks:
                    self._file.write(chunk)
                self._chunks = []
            self._file.write(data)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise TransferError(
                f"the temporary directory is full after {self.size} bytes of one compressed "
                "range: give the function more memory or ephemeral storage (at least the range "
                "size) or use smaller ranges",
                source=self._source,
                dest=self._dest,
            ) from exc

    def b64_sha256(self) -> str:
        return base64.b64encode(self._digest.digest()).decode("ascii")

    def rewound(self) -> IO[bytes]:
        """The part's bytes from the start, as a seekable file (botocore rewinds it to retry)."""
        if self._file is not None:
            self._file.seek(0)
            return self._file
        return HeldChunks(self._chunks)

    def close(self) -> None:
        self._chunks = []
        if self._file is not None:
            self._file.close()


def spool_memory_limit() -> int:
    """How much of one compressed range is held in memory: half the function's memory
    (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MiB), else `SPOOL_MEMORY`; the rest goes to /tmp."""
    memory = function_memory_mib()
    return memory * MiB // 2 if memory is not None else SPOOL_MEMORY


class HeldChunks(io.RawIOBase):
    """A seekable, read-only file over a list of byte strings, read without joining them."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self._starts: list[int] = []
        total = 0
        for chunk in chunks:
            self._starts.append(total)
            total += len(chunk)
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and self._pos < self._size:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            chunk = self._chunks[index]
            offset = self._pos - self._starts[index]
            count = min(len(chunk) - offset, len(view) - written)
            view[written : written + count] = chunk[offset : offset + count]
            written += count
            self._pos += count
        return written

    def read(self, size: int | None = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        pieces: list[bytes] = []
        while self._pos < end:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            chunk = self._chunks[index]
            offset = self._pos - self._starts[index]
            take = min(len(chunk) - offset, end - self._pos)
            whole = offset == 0 and take == len(chunk)
            pieces.append(chunk if whole else chunk[offset : offset + take])
            self._pos += take
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


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
