"""The Zarr (format v2) store spikeinterface's `write_zarr` writes and `read_zarr` reads.

Layout of `<name>.zarr`: `.zgroup`, `.zattrs` (sampling_frequency, num_segments, annotations,
probe), `traces_seg0/.zarray` + chunks `traces_seg0/<i>.0`, `channel_ids`, `properties/...`
(gain_to_uV, offset_to_uV, contact_vector when the geometry is known). Chunks are written by
parallel ranges; the metadata keys are written once, last, by the sealing step.
"""

from __future__ import annotations

from upload_processor.ecephys.codec import EcephysOptions
from upload_processor.ecephys.lsb import LsbCorrection
from upload_processor.ecephys.recording import RecordingStream

TRACES = "traces_seg0"


def samples_per_chunk(stream: RecordingStream, options: EcephysOptions) -> int:
    """Samples (time) per Zarr chunk: `chunk_duration_s` at the stream's rate."""
    raise NotImplementedError


def chunk_key(stream: RecordingStream, chunk_index: int) -> str:
    """Key of a traces chunk relative to the store root, e.g. `traces_seg0/3.0`."""
    raise NotImplementedError


def chunks_per_range(stream: RecordingStream, options: EcephysOptions, max_range_bytes: int) -> int:
    """How many whole Zarr chunks one range (one Map iteration) holds: ≤ `max_range_bytes` of
    source, at least one."""
    raise NotImplementedError


def chunk_ranges(
    stream: RecordingStream, options: EcephysOptions, max_range_bytes: int = 256 * 2**20
) -> list[tuple[int, int]]:
    """The `[start, end)` sample ranges that cover the stream, each aligned to whole chunks."""
    raise NotImplementedError


def byte_range(stream: RecordingStream, start_sample: int, end_sample: int) -> tuple[int, int]:
    """`[first, last]` byte offsets (inclusive, as an HTTP Range) of a sample range in the binary."""
    raise NotImplementedError


def metadata_objects(
    stream: RecordingStream, options: EcephysOptions, correction: LsbCorrection | None
) -> dict[str, bytes]:
    """Every metadata key of the store (relative to its root) -> content."""
    raise NotImplementedError


def restore_instructions(stream: RecordingStream) -> str:
    """How to get the original binary back with zarr/numcodecs alone (for the manifest)."""
    raise NotImplementedError
