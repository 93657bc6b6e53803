"""Encode one range of a binary into verified Zarr chunks (one Map iteration's work).

A range holds whole chunks of the traces array (`zarr_layout.chunk_ranges`); each chunk is
encoded exactly as zarr would write it and decoded again by the array's compressor (what every
reader runs) before it is returned: the range's first chunk through the whole pipeline and
compared with its source bytes, the others compared with the samples the compressor was given
(the source through the exactly checked LSB split and the channel-major copy), so a chunk that
reaches the archive is known to read back bit for bit.

Memory: the range's source bytes plus, per chunk, a few copies of one chunk (the corrected
channel-major copy, the int32 copy libFLAC reads, the decoded copy) and the encoded chunks
(about a third of the source). Measured (`benchmarks/ecephys.py`'s child, 384 channels, 1 s chunks,
256 MiB ranges): 490 MB peak RSS for the whole process, the same for a 264 MB and a 527 MB
file: well inside 1 GB, and flat in the file's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from upload_processor.ecephys.codec import (
    EcephysOptions,
    compressor_input,
    decode_compressed,
    effective_correction,
    encode_given,
)
from upload_processor.ecephys.lsb import LsbCorrection, filter_is_exact
from upload_processor.ecephys.recording import RecordingStream
from upload_processor.ecephys.zarr_layout import (
    SAMPLE_BYTES,
    chunk_key,
    samples_per_chunk,
    traces_zarray,
)
from upload_processor.errors import EcephysError, EcephysLsbError, EcephysVerificationError

if TYPE_CHECKING:
    import numpy as np


class EncodedChunk(BaseModel):
    """One stored chunk and the checksum of the source bytes it holds."""

    key: str
    data: bytes
    sha256_source: str
    nbytes_source: int


def encode_range(
    raw: bytes,
    stream: RecordingStream,
    start_sample: int,
    options: EcephysOptions,
    correction: LsbCorrection | None = None,
) -> list[EncodedChunk]:
    """Encode `raw` (the source bytes of samples `start_sample`... : whole chunks, the last
    one may end at the stream's end) and verify each chunk.

    Raises `EcephysLsbError` when a chunk does not fit the stream's correction, and
    `EcephysVerificationError` when a chunk does not decode to its source.
    """
    import numpy as np

    per_chunk = samples_per_chunk(stream, options)
    frame = stream.num_channels * SAMPLE_BYTES
    if start_sample % per_chunk:
        raise EcephysError(
            f"{stream.source_key}: a range must start on a chunk boundary "
            f"(a multiple of {per_chunk} samples), got sample {start_sample}"
        )
    if len(raw) % frame:
        raise EcephysError(
            f"{stream.source_key}: {len(raw)} bytes from sample {start_sample} is not a whole "
            f"number of {stream.num_channels}-channel int16 samples"
        )
    samples = len(raw) // frame
    end = start_sample + samples
    if end > stream.num_samples or (samples % per_chunk and end != stream.num_samples):
        raise EcephysError(
            f"{stream.source_key}: samples [{start_sample}, {end}) are not whole chunks of "
            f"{per_chunk} samples inside the stream's {stream.num_samples}"
        )
    meta = traces_zarray(stream, options, correction)
    active = effective_correction(options, correction)
    if active is not None and not filter_is_exact(*active.stream_factor):
        raise EcephysLsbError(
            f"{stream.source_key}: numcodecs' FixedScaleOffset does not restore every "
            f"{active.stream_factor[0]} x n + {active.stream_factor[1]} exactly; encode the "
            "stream with lsb_correction='off'"
        )
    filtered = bool(meta["filters"])
    view = np.frombuffer(raw, dtype="<i2").reshape(samples, stream.num_channels)
    out: list[EncodedChunk] = []
    for first in range(0, samples, per_chunk):
        index = (start_sample + first) // per_chunk
        chunk = view[first : first + per_chunk]
        source = memoryview(raw)[first * frame : (first + len(chunk)) * frame]
        given = _compressor_input(chunk, per_chunk, active, filtered=filtered)
        if given is None:
            raise EcephysLsbError(
                f"{stream.source_key}: chunk {index} (samples {start_sample + first}.."
                f"{start_sample + first + len(chunk) - 1}) holds values that are not "
                f"{active.stream_factor[0]} x n + {active.stream_factor[1]}, the correction "
                "detected on a sample of the stream; encode it with lsb_correction='off'"
            )
        data = encode_given(given, options)
        key = chunk_key(stream, index)
        if first == 0:  # the whole reader pipeline, back to the source bytes
            verify_chunk(data, source, meta, key=key)
        else:
            verify_compressed(data, given, meta, key=key)
        digest = hashlib.sha256(source).hexdigest()
        out.append(
            EncodedChunk(key=key, data=data, sha256_source=digest, nbytes_source=len(source))
        )
        del chunk, given, source
    return out


# samples per block of `_compressor_input`: a block (192 KiB at 384 channels) stays in cache
# while it is split and its columns are written (1 s x 384 channels, x12 data: 13 ms against
# 22 ms for the split of the whole chunk, then its transpose)
_BLOCK = 256


def _compressor_input(
    chunk: np.ndarray, per_chunk: int, active: LsbCorrection | None, *, filtered: bool
) -> np.ndarray | None:
    """What the compressor is handed for `chunk` (time x channels int16 source samples, the
    last chunk maybe short): the correction's `split` (None when a sample does not fit), zero
    padded to `per_chunk` samples as zarr v2 stores an edge chunk (0: offset, 0 x lsb), laid
    out as `codec.compressor_input`. With a filter, split and transposed block by block."""
    import numpy as np

    rows, channels = chunk.shape
    if not filtered:
        values = chunk if active is None else active.split(chunk)
        if values is None:
            return None
        if rows < per_chunk:
            padded = np.zeros((per_chunk, channels), dtype="<i2")
            padded[:rows] = values
            values = padded
        return compressor_input(values, filtered=False)
    out = np.empty((channels, per_chunk), dtype=np.int16)
    for t in range(0, rows, _BLOCK):
        block = chunk[t : t + _BLOCK]
        values = block if active is None else active.split(block)
        if values is None:
            return None
        out[:, t : t + len(block)] = values.T
    out[:, rows:] = 0
    return out.reshape(-1)


def verify_compressed(
    data: bytes, given: np.ndarray, meta: dict[str, Any], *, key: str = "chunk"
) -> None:
    """Decode `data` with the array's compressor, as a reader does, and raise
    `EcephysVerificationError` unless it gives back `given`, the samples the compressor was
    handed, sample for sample.

    The steps before the compressor cannot lose a sample unnoticed: `LsbCorrection.split`
    checks `lsb * y + offset` equals the source for every sample, and the channel-major
    copy is numpy's (zarr writes the same bytes: `test_round_trip`). Comparing here, in the
    compressor's own layout, spares two passes over the chunk (restore, transpose back) that
    `verify_chunk` pays; `encode_range` still runs that on each range's first chunk.
    """
    import numpy as np

    decoded = decode_compressed(data, meta)
    expected = np.asarray(given).reshape(-1)
    if decoded.shape != expected.shape or not np.array_equal(decoded, expected):
        raise EcephysVerificationError(
            f"{key}: the encoded chunk does not decode to the {expected.size} samples its "
            "codec was given; nothing of it is archived"
        )


def verify_chunk(
    data: bytes, source: bytes | memoryview, meta: dict[str, Any], *, key: str = "chunk"
) -> None:
    """Decode `data` as a reader does (`meta`: the array's `.zarray`) and raise
    `EcephysVerificationError` unless its first samples are `source`, sample for sample.

    The compressor's decode is run for real (libFLAC, numcodecs' zstd); the LSB filter's decode
    is done in integer arithmetic, which `filter_is_exact` has checked equals numcodecs'
    `FixedScaleOffset.decode` for every value that filter can ever see (its float64 decode
    costs 3x the FLAC decode; `test_round_trip` reads the stores through zarr itself).
    """
    import numpy as np

    decoded = decode_compressed(data, meta)
    correction = LsbCorrection.from_zarr_filters(meta.get("filters"), 1)
    if not filter_is_exact(*correction.stream_factor):
        raise EcephysVerificationError(f"{key}: its LSB filter does not decode exactly")
    expected = np.frombuffer(source, dtype="<i2")
    if meta.get("order", "C") == "F":
        # channel-major: the decoded channels' first samples, restored and transposed back to
        # time x channels in one pass into a contiguous buffer (comparing strided views
        # directly costs 4x more), then compared with the source
        length, channels = meta["chunks"]
        rows = len(expected) // channels
        if decoded.size != length * channels or rows * channels != len(expected):
            raise EcephysVerificationError(
                f"{key}: the encoded chunk decodes to {decoded.size} samples, not "
                f"{length} x {channels}; nothing of it is archived"
            )
        restored = np.empty((rows, channels), dtype=np.int16)
        correction.restore(decoded.reshape(channels, length)[:, :rows].T, out=restored)
        expected = expected.reshape(rows, channels)
    else:
        restored = correction.restore(decoded[: len(expected)])
    if restored.shape != expected.shape or not np.array_equal(restored, expected):
        raise EcephysVerificationError(
            f"{key}: the encoded chunk does not decode to its {len(source)} source bytes; "
            "nothing of it is archived"
        )


CHUNKS_SHA256_PREFIX = "chunks-sha256:"


def source_checksum(chunk_sha256s: Sequence[str], chunk_bytes: int) -> str:
    """The source binary's checksum for the manifest: `"chunks-sha256:<hex>:<chunk_bytes>"`.

    <hex> is the SHA-256 of the concatenated 32-byte SHA-256 digests of the binary's
    consecutive `chunk_bytes`-byte pieces (the last one shorter), in order: the
    `EncodedChunk.sha256_source` of every chunk, which parallel ranges compute without ever
    holding the file (a plain SHA-256 of the whole file would need one sequential pass). Its
    own prefix keeps it from being compared with a plain SHA-256 or the zstd path's
    `tree-sha256` (whose last range folds a short tail in). Recompute it from a restored file
    with `checksum_of(data, chunk_bytes)`.
    """
    joined = b"".join(bytes.fromhex(h) for h in chunk_sha256s)
    return f"{CHUNKS_SHA256_PREFIX}{hashlib.sha256(joined).hexdigest()}:{chunk_bytes}"


def checksum_of(data: bytes, chunk_bytes: int) -> str:
    """`source_checksum` of a whole binary held in memory (tests, a user's check)."""
    view = memoryview(data)
    digests = [
        hashlib.sha256(view[i : i + chunk_bytes]).hexdigest()
        for i in range(0, len(data), chunk_bytes)
    ]
    return source_checksum(digests, chunk_bytes)


def chunk_source_bytes(stream: RecordingStream, options: EcephysOptions) -> int:
    """Source bytes of one full chunk (the `chunk_bytes` of `source_checksum`)."""
    return samples_per_chunk(stream, options) * stream.num_channels * SAMPLE_BYTES
