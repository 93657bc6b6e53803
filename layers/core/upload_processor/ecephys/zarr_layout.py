"""The Zarr (format v2) store spikeinterface's `write_zarr` writes and `read_zarr` reads.

Layout of `<name>.zarr`: `.zgroup`, `.zattrs` (sampling_frequency, num_segments, annotations,
probe), `traces_seg0/.zarray` + chunks `traces_seg0/<i>.0`, `channel_ids`, `properties/...`
(gain_to_uV, offset_to_uV, contact_vector when the geometry is known). Chunks are written by
parallel ranges; the metadata keys are written once, last, by the sealing step.
"""

from __future__ import annotations

import json
from typing import Any

from upload_processor.ecephys.codec import (
    EcephysOptions,
    array_order,
    compressor_config,
    effective_correction,
    store_filters,
)
from upload_processor.ecephys.lsb import LsbCorrection
from upload_processor.ecephys.recording import RecordingStream

TRACES = "traces_seg0"
SAMPLE_BYTES = 2  # int16
# what spikeinterface's ZarrRecordingExtractor records of itself; read_zarr ignores it
CLASS_INFO = {
    "class": "spikeinterface.core.zarrextractors.ZarrRecordingExtractor",
    "module": "spikeinterface",
    "version": "0.105.3",
}
# Neuropixels contacts are 12 um squares; the .oebin/.meta give positions, not shapes
CONTACT_SHAPE = ("square", {"width": 12.0})


def samples_per_chunk(stream: RecordingStream, options: EcephysOptions) -> int:
    """Samples (time) per Zarr chunk: `chunk_duration_s` at the stream's rate (at least one)."""
    return max(1, round(options.chunk_duration_s * stream.sampling_rate))


def num_chunks(stream: RecordingStream, options: EcephysOptions) -> int:
    """How many chunks the traces array has (the last one may be partly beyond the end)."""
    return -(-stream.num_samples // samples_per_chunk(stream, options))


def chunk_key(stream: RecordingStream, chunk_index: int) -> str:
    """Key of a traces chunk relative to the store root, e.g. `traces_seg0/3.0` (one chunk
    spans all channels, so the channel index is always 0)."""
    if chunk_index < 0:
        raise ValueError(f"chunk_index must be >= 0, got {chunk_index}")
    return f"{TRACES}/{chunk_index}.0"


def chunks_per_range(stream: RecordingStream, options: EcephysOptions, max_range_bytes: int) -> int:
    """How many whole Zarr chunks one range (one Map iteration) holds: at most
    `max_range_bytes` of source, at least one."""
    chunk_bytes = samples_per_chunk(stream, options) * stream.num_channels * SAMPLE_BYTES
    return max(1, max_range_bytes // chunk_bytes)


def chunk_ranges(
    stream: RecordingStream, options: EcephysOptions, max_range_bytes: int = 256 * 2**20
) -> list[tuple[int, int]]:
    """The `[start, end)` sample ranges that cover the stream, each starting on a chunk
    boundary and holding whole chunks (the last ends at the stream's end)."""
    step = samples_per_chunk(stream, options) * chunks_per_range(stream, options, max_range_bytes)
    return [(s, min(s + step, stream.num_samples)) for s in range(0, stream.num_samples, step)]


def byte_range(stream: RecordingStream, start_sample: int, end_sample: int) -> tuple[int, int]:
    """`(first, last)` byte offsets, inclusive as in an HTTP `Range: bytes=first-last`, of the
    samples `[start_sample, end_sample)` in the binary (headerless, interleaved int16)."""
    if not 0 <= start_sample < end_sample <= stream.num_samples:
        raise ValueError(
            f"sample range [{start_sample}, {end_sample}) is not inside "
            f"[0, {stream.num_samples}) of {stream.source_key}"
        )
    frame = stream.num_channels * SAMPLE_BYTES
    return start_sample * frame, end_sample * frame - 1


def traces_zarray(
    stream: RecordingStream, options: EcephysOptions, correction: LsbCorrection | None
) -> dict[str, Any]:
    """The traces array's `.zarray`: what zarr needs to decode every chunk."""
    filters = store_filters(options, correction)
    return {
        "chunks": [samples_per_chunk(stream, options), stream.num_channels],
        "compressor": compressor_config(options),
        "dtype": "<i2",
        "fill_value": 0,
        "filters": filters,
        "order": array_order(filters),
        "shape": [stream.num_samples, stream.num_channels],
        "zarr_format": 2,
    }


def _vector(dtype: str, length: int, fill: Any) -> dict[str, Any]:
    """A one-chunk, uncompressed 1-D array's `.zarray` (how spikeinterface writes properties)."""
    return {
        "chunks": [length],
        "compressor": None,
        "dtype": dtype,
        "fill_value": fill,
        "filters": None,
        "order": "C",
        "shape": [length],
        "zarr_format": 2,
    }


def _probegroup(stream: RecordingStream) -> dict[str, Any] | None:
    """probeinterface's `ProbeGroup.to_dict()` for the stream's contact positions."""
    if not stream.locations:
        return None
    ndim = len(stream.locations[0])
    shape, params = CONTACT_SHAPE
    n = len(stream.locations)
    axes = [[[1.0 if i == j else 0.0 for j in range(ndim)] for i in range(2)]] * n
    return {
        "probe_ids": ["0"],
        "probes": [
            {
                "annotations": {},
                "contact_annotations": {},
                "contact_ids": [str(i) for i in range(n)],
                "contact_plane_axes": axes,
                "contact_positions": [[float(v) for v in p] for p in stream.locations],
                "contact_shape_params": [dict(params)] * n,
                "contact_shapes": [shape] * n,
                "device_channel_indices": list(range(n)),
                "ndim": ndim,
                "si_units": "um",
            }
        ],
    }


def metadata_objects(
    stream: RecordingStream, options: EcephysOptions, correction: LsbCorrection | None
) -> dict[str, bytes]:
    """Every metadata key of the store (relative to its root) -> content, `.zmetadata`
    (consolidated, what `read_zarr` opens first: one GET instead of one per key) included."""
    import struct

    n = stream.num_channels
    active = effective_correction(options, correction)
    width = max(1, *(len(c) for c in stream.channel_ids))
    ids = b"".join(c.ljust(width, "\0").encode("utf-32-le") for c in stream.channel_ids)
    attrs: dict[str, Any] = {
        "annotations": {"is_filtered": False},
        "num_segments": 1,
        "provenance": None,
        "sampling_frequency": float(stream.sampling_rate),
        "zarr_class_info": CLASS_INFO,
        "upload_processor": {
            "source_key": stream.source_key,
            "format": stream.format,
            "codec": options.codec,
            "lsb": active.stream_factor[0] if active is not None else 1,
            "lsb_offset": active.stream_factor[1] if active is not None else 0,
            "restore": restore_instructions(stream),
        },
    }
    probegroup = _probegroup(stream)
    if probegroup is not None:
        attrs["probegroup"] = probegroup
    meta: dict[str, Any] = {
        ".zgroup": {"zarr_format": 2},
        ".zattrs": attrs,
        f"{TRACES}/.zarray": traces_zarray(stream, options, correction),
        "channel_ids/.zarray": _vector(f"<U{width}", n, ""),
        "properties/.zgroup": {"zarr_format": 2},
        "properties/gain_to_uV/.zarray": _vector("<f8", n, 0.0),
        "properties/offset_to_uV/.zarray": _vector("<f8", n, 0.0),
        "properties/group/.zarray": _vector("<i8", n, 0),
    }
    objects = {key: _json(value) for key, value in meta.items()}
    objects[".zmetadata"] = _json({"metadata": meta, "zarr_consolidated_format": 1})
    objects["channel_ids/0"] = ids
    objects["properties/gain_to_uV/0"] = struct.pack(f"<{n}d", *stream.gains_uV)
    objects["properties/offset_to_uV/0"] = struct.pack(f"<{n}d", *stream.offsets_uV)
    objects["properties/group/0"] = bytes(8 * n)  # one group: what set_probe gives one probe
    return objects


def _json(value: Any) -> bytes:
    """JSON the way zarr writes its metadata (indented, sorted keys)."""
    return json.dumps(value, indent=4, sort_keys=True, ensure_ascii=True).encode()


def restore_instructions(stream: RecordingStream) -> str:
    """How to get the original binary back with zarr/numcodecs alone (for the manifest)."""
    binary = stream.source_key.rsplit("/", 1)[-1]
    step = max(1, round(stream.sampling_rate))
    return (
        "pip install zarr numcodecs flac-numcodecs  # (wavpack-numcodecs for a WavPack store)\n"
        f"import zarr; t = zarr.open('{stream.name}.zarr', mode='r')['{TRACES}']\n"
        f"with open('{binary}', 'wb') as f: "
        f"[f.write(t[i:i + {step}].tobytes()) for i in range(0, t.shape[0], {step})]\n"
        f"# {stream.num_samples} samples x {stream.num_channels} channels, int16 interleaved: "
        "byte for byte the recorded file"
    )
