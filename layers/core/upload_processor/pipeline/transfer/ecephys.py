"""One time range of an ecephys stream: encoded into its Zarr's chunks (`encode_ecephys`).

The plan (`pipeline.ecephys_plan`) gives the range as whole Zarr chunks: samples
[sample_start, sample_end), bytes [range_start, range_end) of the interleaved int16 binary.
One ranged GET (conditioned on the planned ETag) reads exactly those bytes; the ecephys room
encodes each chunk with the chosen codec and decodes it again to check it equals its source
bytes (`ecephys.encode.encode_range`); each chunk is then one independent PutObject with its
SHA-256, which S3 checks on receipt (no multipart upload: any file size, no 15-minute ceiling,
ranges in any order, a retried range simply writes its chunks again). The store's metadata
(`.zarray`, `.zattrs`, ...) is not written here: Finalize writes it once, last, after every
chunk of the stream is verified.

The encoder (numcodecs and the codec) ships in the ecephys layer only, so it is imported
inside `encode_ecephys`: the core Transfer function never loads it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from upload_processor.domain.plan import PlanItem
from upload_processor.ecephys.zarr_layout import SAMPLE_BYTES, samples_per_chunk
from upload_processor.errors import (
    EcephysError,
    EcephysVerificationError,
    TransferError,
    VerificationError,
)
from upload_processor.pipeline.transfer.faults import S3Client, url
from upload_processor.pipeline.transfer.result import TransferResult
from upload_processor.pipeline.transfer.source import get_source_range

if TYPE_CHECKING:
    from upload_processor.ecephys.codec import EcephysOptions
    from upload_processor.ecephys.lsb import LsbCorrection
    from upload_processor.ecephys.recording import RecordingStream

ZARR_CHUNK_CONTENT_TYPE = "application/octet-stream"


def _planned(item: PlanItem, *, source: str, dest: str) -> tuple[int, int, int]:
    """The range's bytes and first sample, as planned; a TransferError if the item lacks them."""
    needed = (item.range_start, item.range_end, item.sample_start, item.stream, item.options)
    if any(value is None for value in needed):
        raise TransferError(
            "an encode_ecephys plan item needs range_start, range_end, sample_start, stream "
            "and options; the plan is damaged: run the job again",
            source=source,
            dest=dest,
        )
    return int(item.range_start or 0), int(item.range_end or 0), int(item.sample_start or 0)


def encode_ecephys(
    s3: S3Client, item: PlanItem, *, source_bucket: str, dest_bucket: str
) -> TransferResult:
    """Encode one planned range into its chunks, write and record them.

    The result's `source_sha256` is the SHA-256 of the range's source bytes (Finalize combines
    the ranges' into the stream's tree hash), `bytes_out` the chunks' stored bytes, and
    `chunks` one entry per chunk: its key in the store, stored size, S3 SHA-256 (base64) and
    the SHA-256 of the source bytes it holds.
    """
    from upload_processor.ecephys.codec import EcephysOptions
    from upload_processor.ecephys.encode import encode_range
    from upload_processor.ecephys.recording import RecordingStream

    source, dest = url(source_bucket, item.source_key), url(dest_bucket, item.dest_key)
    start, end, first_sample = _planned(item, source=source, dest=dest)
    stream = RecordingStream.model_validate(item.stream)
    options = EcephysOptions.model_validate(item.options)
    raw = _read(s3, source_bucket, item, start, end, source=source, dest=dest)
    correction = None
    if options.lsb_correction == "auto":
        correction = stream_correction(
            s3, source_bucket, item, stream, options, raw, source=source, dest=dest
        )
    try:
        chunks = encode_range(raw, stream, first_sample, options, correction)
    except EcephysVerificationError as exc:
        raise VerificationError(str(exc), source=source, dest=dest) from exc
    except EcephysError as exc:  # EcephysLsbError: the message says to use lsb_correction off
        raise TransferError(str(exc), source=source, dest=dest) from exc
    written: list[dict[str, Any]] = []
    for chunk in chunks:
        checksum = base64.b64encode(hashlib.sha256(chunk.data).digest()).decode()
        s3.put_object(
            Bucket=dest_bucket,
            Key=f"{item.dest_key}/{chunk.key}",
            Body=chunk.data,
            ContentType=ZARR_CHUNK_CONTENT_TYPE,
            ChecksumSHA256=checksum,
        )
        written.append(
            {
                "key": chunk.key,
                "bytes": len(chunk.data),
                "checksum_sha256": checksum,
                "source_sha256": chunk.sha256_source,
                "source_bytes": chunk.nbytes_source,
            }
        )
    return TransferResult(
        source_key=item.source_key,
        dest_key=item.dest_key,
        action=item.action,
        codec=options.codec,
        bytes_in=len(raw),
        bytes_out=sum(c["bytes"] for c in written),
        source_sha256=hashlib.sha256(raw).hexdigest(),
        part_number=item.part_number,
        part_count=item.part_count,
        range_start=start,
        range_end=end,
        chunks=tuple(written),
        correction=None if correction is None else correction.model_dump(mode="json"),
    )


def _read(
    s3: S3Client, bucket: str, item: PlanItem, start: int, end: int, *, source: str, dest: str
) -> bytes:
    """Bytes [start, end) of the planned source (one ranged GET, conditioned on its ETag)."""
    body = get_source_range(s3, bucket, item, start, end, source=source, dest=dest)
    try:
        return bytes(body.read())
    finally:
        body.close()


def stream_correction(
    s3: S3Client,
    bucket: str,
    item: PlanItem,
    stream: RecordingStream,
    options: EcephysOptions,
    raw: bytes,
    *,
    source: str,
    dest: str,
) -> LsbCorrection:
    """The stream's LSB/offset correction, the same in every range of the stream.

    The correction is one filter of the whole store (`ecephys.lsb`), and the ranges run in
    parallel, so each range detects it on the same bytes: the stream's first chunk (the range
    that starts there has it in hand; the others read it with one more ranged GET, ~23 MB at
    384 channels). `detect_lsb` is deterministic, so every range, and Finalize's `.zarray`,
    agree; each range records it and Finalize checks they do. A later chunk the correction
    does not fit fails its range with the fix (`lsb_correction: "off"`).
    """
    import numpy as np

    from upload_processor.ecephys.lsb import detect_lsb

    frame = stream.num_channels * SAMPLE_BYTES
    first = min(samples_per_chunk(stream, options), stream.num_samples) * frame
    head = raw[:first] if item.sample_start == 0 else None
    if head is None:
        head = _read(s3, bucket, item, 0, first, source=source, dest=dest)
    return detect_lsb(np.frombuffer(head, dtype="<i2").reshape(-1, stream.num_channels))
