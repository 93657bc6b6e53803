"""The done-when of issue 15's core: a recording encoded range by range, laid out as the Zarr
store spikeinterface writes, reads back bit for bit with spikeinterface and with zarr alone,
with channel ids, sampling rate, gains/offsets and probe geometry; LSB-1 data and data scaled
x12 (the correction divides the factor out and the filter restores it)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.ecephys_support import staged_sizes, write_store
from upload_processor.ecephys.codec import EcephysOptions
from upload_processor.ecephys.recording import stream_from_spikeglx_meta, streams_from_oebin
from upload_processor_tools.sample_ecephys import write_openephys, write_spikeglx

si = pytest.importorskip("spikeinterface")
zarr = pytest.importorskip("zarr")


def _read_zarr(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return si.read_zarr(path)


@pytest.mark.parametrize(("scale", "lsb"), [(1, 1), (12, 12)])
def test_open_ephys_reads_back_exactly_with_spikeinterface_and_zarr(
    tmp_path: Path, scale: int, lsb: int
) -> None:
    session = tmp_path / "session"
    written = write_openephys(session, seconds=2.5, channels=16, scale=scale)
    streams, issues = streams_from_oebin(
        (session / written["oebin"]).read_text(), written["oebin"], staged_sizes(session)
    )
    assert issues == []
    (stream,) = streams
    store = tmp_path / f"{stream.name}.zarr"
    # ranges of two 1 s chunks: the second range holds one partial chunk (0.5 s)
    options = EcephysOptions(chunk_duration_s=1.0)
    correction, keys = write_store(
        session, stream, store, options, max_range_bytes=2 * 30_000 * 16 * 2
    )
    assert correction.stream_factor == (lsb, 0)
    assert keys == ["traces_seg0/0.0", "traces_seg0/1.0", "traces_seg0/2.0"]
    source = written["samples"]

    recording = _read_zarr(store)
    assert np.array_equal(recording.get_traces(), source)
    assert recording.get_traces().dtype == np.int16
    assert recording.sampling_frequency == 30_000.0
    assert list(recording.channel_ids) == [f"CH{k + 1}" for k in range(16)]
    assert np.allclose(recording.get_channel_gains(), written["bit_volts"])
    assert np.allclose(recording.get_channel_offsets(), 0.0)
    # random access: a few ms of one channel in the middle
    assert np.array_equal(
        recording.get_traces(start_frame=40_000, end_frame=41_000, channel_ids=["CH7"])[:, 0],
        source[40_000:41_000, 6],
    )

    traces = zarr.open(str(store), mode="r")["traces_seg0"]
    assert np.array_equal(traces[:], source)
    assert traces.compressor.codec_id == "flac"
    # what read_zarr opens first (one GET on S3): the consolidated metadata
    consolidated = zarr.open_consolidated(str(store), mode="r")
    assert np.array_equal(consolidated["traces_seg0"][:], source)
    assert list(consolidated["channel_ids"][:]) == list(recording.channel_ids)
    filters = [f.get_config() for f in traces.filters or []]
    assert traces.order == "F"  # FLAC gets each chunk channel by channel
    if lsb == 1:  # the identity filter, there for its channel-major flattening only
        assert filters == [
            {"id": "fixedscaleoffset", "offset": 0, "scale": 1, "dtype": "<i2", "astype": "<i2"}
        ]
    else:
        assert filters == [
            {
                "id": "fixedscaleoffset",
                "offset": 0,
                "scale": 1 / 12,
                "dtype": "<i2",
                "astype": "<i2",
            }
        ]


def test_the_correction_is_what_makes_scaled_data_small(tmp_path: Path) -> None:
    """x12 data with the correction stores as small as the same data at LSB 1; without it,
    clearly larger (the reason the correction exists)."""
    sizes = {}
    for scale, mode in ((1, "auto"), (12, "auto"), (12, "off")):
        session = tmp_path / f"s{scale}{mode}"
        written = write_openephys(session, seconds=1.0, channels=32, scale=scale)
        (stream,), _ = streams_from_oebin(
            (session / written["oebin"]).read_text(), written["oebin"], staged_sizes(session)
        )
        _, keys = write_store(session, stream, tmp_path / f"{scale}{mode}.zarr",
                              EcephysOptions(lsb_correction=mode))  # fmt: skip
        sizes[scale, mode] = sum(
            (tmp_path / f"{scale}{mode}.zarr" / k).stat().st_size for k in keys
        )
    assert sizes[12, "auto"] == sizes[1, "auto"]
    assert sizes[12, "off"] > 1.2 * sizes[12, "auto"]


def test_the_restore_note_gives_back_the_original_binary(tmp_path: Path) -> None:
    session = tmp_path / "session"
    written = write_openephys(session, seconds=1.3, channels=8, scale=12)
    (stream,), _ = streams_from_oebin(
        (session / written["oebin"]).read_text(), written["oebin"], staged_sizes(session)
    )
    store = tmp_path / f"{stream.name}.zarr"
    write_store(session, stream, store, EcephysOptions(chunk_duration_s=0.5))
    note = json.loads((store / ".zattrs").read_text())["upload_processor"]["restore"]
    lines = note.splitlines()
    assert lines[0].startswith("pip install zarr numcodecs flac-numcodecs")
    code = "\n".join(line for line in lines[1:] if not line.startswith("#"))
    # the documented lines, run as a user would, in the folder that holds the store
    exec(f"import os\nos.chdir({str(tmp_path)!r})\n{code}", {})
    assert (tmp_path / "continuous.dat").read_bytes() == (session / written["dat"]).read_bytes()


def test_spikeglx_reads_back_exactly_with_its_probe_geometry(tmp_path: Path) -> None:
    session = tmp_path / "session"
    written = write_spikeglx(session, seconds=2.2, channels=12)
    stream, issues = stream_from_spikeglx_meta(
        (session / written["meta"]).read_text(),
        written["bin"],
        (session / written["bin"]).stat().st_size,
    )
    assert issues == [] and stream is not None
    store = tmp_path / f"{stream.name}.zarr"
    write_store(session, stream, store, EcephysOptions())

    recording = _read_zarr(store)
    assert np.array_equal(recording.get_traces(), written["samples"])  # sync channel included
    assert recording.channel_ids[0] == "imec0.ap#AP0"
    assert recording.channel_ids[-1] == "imec0.ap#SY0"
    assert np.allclose(recording.get_channel_gains()[:12], 0.6 / 512 / 500 * 1e6)
    assert recording.has_probe()
    neural = recording.select_channels(list(recording.channel_ids[:12]))
    assert np.allclose(neural.get_channel_locations(), written["locations"])
    assert np.array_equal(zarr.open(str(store), mode="r")["traces_seg0"][:], written["samples"])


def test_zstd_and_a_level_are_honoured(tmp_path: Path) -> None:
    session = tmp_path / "session"
    written = write_openephys(session, seconds=1.0, channels=4)
    (stream,), _ = streams_from_oebin(
        (session / written["oebin"]).read_text(), written["oebin"], staged_sizes(session)
    )
    store = tmp_path / "z.zarr"
    options = EcephysOptions(codec="zstd", level=7, lsb_correction="off")
    write_store(session, stream, store, options)
    traces = zarr.open(str(store), mode="r")["traces_seg0"]
    assert traces.compressor.get_config() == {"id": "zstd", "level": 7, "checksum": False}
    assert np.array_equal(traces[:], written["samples"])


@pytest.mark.parametrize(("scale", "lsb"), [(1, 1), (12, 12)])
def test_our_chunks_are_the_bytes_zarr_itself_writes(tmp_path: Path, scale: int, lsb: int) -> None:
    """The channel-major layout is zarr's own: zarr writing the same samples through the same
    `.zarray` (order "F", the filter, FLAC) stores byte for byte the chunks `encode_range`
    makes, the padded edge chunk included; so any zarr reader decodes them the same way."""
    from numcodecs import get_codec

    from benchmarks.ecephys import stream_for
    from upload_processor.ecephys.encode import encode_range
    from upload_processor.ecephys.lsb import detect_lsb
    from upload_processor.ecephys.zarr_layout import traces_zarray
    from upload_processor_tools.sample_ecephys import ecephys_samples

    data = ecephys_samples(1.5, 8, scale=scale, seed=5)
    stream = stream_for(data)
    options = EcephysOptions(chunk_duration_s=1.0)
    correction = detect_lsb(data)
    assert correction.stream_factor[0] == lsb
    meta = traces_zarray(stream, options, correction)
    assert meta["order"] == "F"
    ours = encode_range(data.tobytes(), stream, 0, options, correction)
    array = zarr.open(
        str(tmp_path / "z"),
        mode="w",
        shape=meta["shape"],
        chunks=meta["chunks"],
        dtype=meta["dtype"],
        compressor=get_codec(dict(meta["compressor"])),
        filters=[get_codec(dict(f)) for f in meta["filters"]],
        order=meta["order"],
        fill_value=meta["fill_value"],
    )
    array[:] = data
    assert [c.key for c in ours] == ["traces_seg0/0.0", "traces_seg0/1.0"]
    for index, chunk in enumerate(ours):
        assert (tmp_path / "z" / f"{index}.0").read_bytes() == chunk.data
