"""The store's layout: chunk keys, ranges aligned to chunks, byte ranges, the metadata keys,
and what the core layer can import without numpy."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from tests.paths import ROOT
from upload_processor.ecephys.codec import EcephysOptions, compressor_config, compressor_for
from upload_processor.ecephys.lsb import LsbCorrection
from upload_processor.ecephys.recording import RecordingStream
from upload_processor.ecephys.zarr_layout import (
    byte_range,
    chunk_key,
    chunk_ranges,
    chunks_per_range,
    metadata_objects,
    num_chunks,
    samples_per_chunk,
)


def _stream(num_samples: int, channels: int = 384) -> RecordingStream:
    return RecordingStream(
        name="probe",
        source_key="rec/continuous/probe/continuous.dat",
        format="openephys",
        num_channels=channels,
        sampling_rate=30_000.0,
        channel_ids=[f"CH{k}" for k in range(channels)],
        gains_uV=[0.195] * channels,
        offsets_uV=[0.0] * channels,
        num_samples=num_samples,
        byte_size=num_samples * channels * 2,
    )


def test_ranges_cover_the_stream_in_whole_chunks() -> None:
    stream = _stream(30_000 * 100 + 123)  # 100 s and a bit at 384 channels: 2.3 GB
    options = EcephysOptions()
    assert samples_per_chunk(stream, options) == 30_000
    assert num_chunks(stream, options) == 101
    per_range = chunks_per_range(stream, options, 256 * 2**20)
    assert per_range == 11  # 11 x 23 MB <= 256 MiB
    ranges = chunk_ranges(stream, options, 256 * 2**20)
    assert ranges[0] == (0, 330_000) and ranges[-1][1] == stream.num_samples
    assert all(a % 30_000 == 0 for a, _ in ranges)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(ranges))
    assert chunks_per_range(stream, options, 1) == 1  # never less than one chunk


def test_byte_ranges_are_inclusive_and_inside_the_file() -> None:
    stream = _stream(1000, channels=4)
    assert byte_range(stream, 0, 1000) == (0, 7999)
    assert byte_range(stream, 10, 20) == (80, 159)
    with pytest.raises(ValueError, match="not inside"):
        byte_range(stream, 0, 1001)


def test_chunk_keys_are_zarr_v2_keys() -> None:
    assert chunk_key(_stream(10), 0) == "traces_seg0/0.0"
    assert chunk_key(_stream(10), 41) == "traces_seg0/41.0"


def test_metadata_holds_every_key_spikeinterface_opens() -> None:
    stream = _stream(45_000, channels=4).model_copy(
        update={"locations": [[0, 0], [0, 20], [16, 40], [16, 60]]}
    )
    objects = metadata_objects(
        stream, EcephysOptions(), LsbCorrection(lsb=[12] * 4, offset=[0] * 4)
    )
    assert set(objects) == {
        ".zgroup", ".zattrs", ".zmetadata", "traces_seg0/.zarray", "channel_ids/.zarray",
        "channel_ids/0", "properties/.zgroup", "properties/gain_to_uV/.zarray",
        "properties/gain_to_uV/0", "properties/offset_to_uV/.zarray", "properties/offset_to_uV/0",
        "properties/group/.zarray", "properties/group/0",
    }  # fmt: skip
    zarray = json.loads(objects["traces_seg0/.zarray"])
    assert zarray["shape"] == [45_000, 4] and zarray["chunks"] == [30_000, 4]
    assert zarray["filters"][0]["id"] == "fixedscaleoffset"
    attrs = json.loads(objects[".zattrs"])
    assert attrs["sampling_frequency"] == 30_000.0 and attrs["num_segments"] == 1
    assert attrs["probegroup"]["probes"][0]["contact_positions"][3] == [16.0, 60.0]
    consolidated = json.loads(objects[".zmetadata"])["metadata"]
    assert consolidated["traces_seg0/.zarray"] == zarray and consolidated[".zattrs"] == attrs


@pytest.mark.parametrize("options", [EcephysOptions(), EcephysOptions(level=8),
                                     EcephysOptions(codec="zstd"), EcephysOptions(codec="zstd", level=9)])  # fmt: skip
def test_the_codec_config_written_without_the_codec_is_the_codecs_own(
    options: EcephysOptions,
) -> None:
    assert compressor_config(options) == compressor_for(options).get_config()


def test_the_core_layer_imports_the_plan_side_without_numpy() -> None:
    """Gather/Finalize run in the core layer (no numpy, numcodecs or the codec): parsing,
    the layout and the metadata must import and run there."""
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numpy", "numcodecs", "flac_numcodecs", "pyflac", "zarr"):
            raise ImportError("not in the core layer: " + name)
sys.meta_path.insert(0, Block())
sys.path[:0] = [{str(ROOT / "layers" / "core")!r}]
from upload_processor.ecephys.codec import EcephysOptions
from upload_processor.ecephys.lsb import LsbCorrection
from upload_processor.ecephys.recording import RecordingStream, streams_from_oebin, stream_from_spikeglx_meta
from upload_processor.ecephys import zarr_layout, encode
s = RecordingStream(name="p", source_key="a.dat", format="openephys", num_channels=2,
    sampling_rate=30000.0, channel_ids=["a", "b"], gains_uV=[1.0, 1.0], offsets_uV=[0.0, 0.0],
    num_samples=10, byte_size=40)
print(len(zarr_layout.metadata_objects(s, EcephysOptions(), LsbCorrection.identity(2))))
print(zarr_layout.chunk_ranges(s, EcephysOptions()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["13", "[(0,", "10)]"]
