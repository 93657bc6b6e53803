"""Writing an ecephys Zarr store to a local folder the way the pipeline writes it to S3: every
range's verified chunks, then the metadata keys last. Test-only (the pipeline writes objects)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from upload_processor.ecephys.codec import EcephysOptions
from upload_processor.ecephys.encode import encode_range
from upload_processor.ecephys.lsb import LsbCorrection, detect_lsb
from upload_processor.ecephys.recording import RecordingStream
from upload_processor.ecephys.zarr_layout import byte_range, chunk_ranges, metadata_objects


def staged_sizes(folder: Path) -> dict[str, int]:
    """Relative path -> size of every file under `folder` (what staging lists)."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()
    }


def write_store(
    session: Path,
    stream: RecordingStream,
    out: Path,
    options: EcephysOptions,
    *,
    max_range_bytes: int = 256 * 2**20,
    correction: LsbCorrection | None = None,
) -> tuple[LsbCorrection, list[str]]:
    """Encode `stream` (its binary under `session`) into the store `out`; returns the
    correction used (detected on the first chunk unless given or off) and the chunk keys."""
    raw = (session / stream.source_key).read_bytes()
    if correction is None:
        if options.lsb_correction == "off":
            correction = LsbCorrection.identity(stream.num_channels)
        else:
            first = np.frombuffer(raw, "<i2").reshape(-1, stream.num_channels)
            correction = detect_lsb(first[: round(stream.sampling_rate)])
    keys = []
    for start, end in chunk_ranges(stream, options, max_range_bytes):
        first_byte, last_byte = byte_range(stream, start, end)
        for chunk in encode_range(
            raw[first_byte : last_byte + 1], stream, start, options, correction
        ):
            path = out / chunk.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(chunk.data)
            keys.append(chunk.key)
    for key, content in metadata_objects(stream, options, correction).items():
        path = out / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return correction, keys
