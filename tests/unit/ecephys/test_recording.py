"""Reading the recording's own description, and the report entries that reject a session
before any transfer: each names the file, the field, both values and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ecephys_support import staged_sizes
from upload_processor.ecephys.recording import (
    description_keys,
    find_recordings,
    stream_from_spikeglx_meta,
    streams_from_oebin,
)
from upload_processor_tools.sample_ecephys import write_openephys, write_spikeglx

CHANNELS = 8


@pytest.fixture
def openephys(tmp_path: Path) -> tuple[Path, dict]:
    return tmp_path, write_openephys(tmp_path, seconds=0.5, channels=CHANNELS)


def _parse(folder: Path, written: dict, sizes: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    oebin = written["oebin"]
    return streams_from_oebin(
        (folder / oebin).read_text(), oebin, staged_sizes(folder) if sizes is None else sizes
    )


def test_a_real_shaped_oebin_gives_its_stream(openephys: tuple[Path, dict]) -> None:
    folder, written = openephys
    (stream,), issues = _parse(folder, written)
    assert issues == []
    assert stream.name == "experiment1_Record Node 101#Neuropix-PXI-100.ProbeA-AP_recording1"
    assert stream.source_key == written["dat"]
    assert stream.format == "openephys"
    assert (stream.num_channels, stream.sampling_rate, stream.num_samples) == (
        CHANNELS,
        30_000.0,
        15_000,
    )
    assert stream.byte_size == 15_000 * CHANNELS * 2
    assert stream.channel_ids == [f"CH{k}" for k in range(1, CHANNELS + 1)]
    assert stream.gains_uV == [written["bit_volts"]] * CHANNELS


def test_a_truncated_dat_names_file_size_channels_and_fix(openephys: tuple[Path, dict]) -> None:
    folder, written = openephys
    dat = folder / written["dat"]
    dat.write_bytes(dat.read_bytes()[:-5])  # an interrupted upload
    streams, issues = _parse(folder, written)
    assert streams == []
    (issue,) = issues
    assert (issue.severity, issue.rule, issue.file, issue.field) == (
        "error",
        "ecephys.truncated_binary",
        written["dat"],
        "size",
    )
    size = 15_000 * CHANNELS * 2 - 5
    assert f"is {size} bytes" in issue.message
    assert f"{CHANNELS} int16 channels" in issue.message
    assert "num_channels" in issue.message and written["oebin"] in issue.message
    assert "Upload the complete file" in issue.message


def test_an_oebin_that_disagrees_with_the_file_size(openephys: tuple[Path, dict]) -> None:
    """The .dat is whole frames, but the stream's own sample_numbers.npy counts more samples."""
    folder, written = openephys
    dat = folder / written["dat"]
    dat.write_bytes(dat.read_bytes()[: 10_000 * CHANNELS * 2])
    streams, issues = _parse(folder, written)
    assert streams == []
    (issue,) = issues
    assert (issue.rule, issue.file, issue.field) == (
        "ecephys.size_mismatch",
        written["dat"],
        "size",
    )
    assert "holds 10000 samples" in issue.message and "has 15000" in issue.message
    assert "sample_numbers.npy" in issue.message and "Upload both files complete" in issue.message


def test_an_oebin_whose_channel_count_disagrees_with_its_channels(
    openephys: tuple[Path, dict],
) -> None:
    folder, written = openephys
    oebin = folder / written["oebin"]
    document = json.loads(oebin.read_text())
    document["continuous"][0]["num_channels"] = CHANNELS + 1
    oebin.write_text(json.dumps(document))
    streams, issues = _parse(folder, written)
    assert streams == []
    (issue,) = issues
    assert (issue.rule, issue.file, issue.field) == (
        "ecephys.channel_count",
        written["oebin"],
        "continuous[0].num_channels",
    )
    assert f"is {CHANNELS + 1}" in issue.message and f"has {CHANNELS} entries" in issue.message


def test_an_oebin_naming_a_binary_that_was_not_uploaded(openephys: tuple[Path, dict]) -> None:
    folder, written = openephys
    sizes = {k: v for k, v in staged_sizes(folder).items() if k != written["dat"]}
    streams, issues = _parse(folder, written, sizes)
    assert streams == [] and [i.rule for i in issues] == ["ecephys.missing_binary"]
    assert issues[0].file == written["dat"] and "was not uploaded" in issues[0].message


def test_an_unreadable_oebin_is_a_warning_and_no_stream(tmp_path: Path) -> None:
    """Unknown recordings fall back to zstd with a report note, never a failure."""
    streams, issues = streams_from_oebin("{not json", "rec/structure.oebin", {})
    assert streams == []
    (issue,) = issues
    assert (issue.severity, issue.rule, issue.file) == (
        "warning",
        "ecephys.unreadable_description",
        "rec/structure.oebin",
    )
    assert "archived with zstd" in issue.message


@pytest.fixture
def spikeglx(tmp_path: Path) -> tuple[Path, dict]:
    return tmp_path, write_spikeglx(tmp_path, seconds=0.5, channels=CHANNELS)


def _meta(folder: Path, written: dict, meta_text: str | None = None, size: int | None = None):  # type: ignore[no-untyped-def]
    return stream_from_spikeglx_meta(
        (folder / written["meta"]).read_text() if meta_text is None else meta_text,
        written["bin"],
        (folder / written["bin"]).stat().st_size if size is None else size,
    )


def test_a_real_shaped_meta_gives_its_stream(spikeglx: tuple[Path, dict]) -> None:
    folder, written = spikeglx
    stream, issues = _meta(folder, written)
    assert issues == [] and stream is not None
    assert stream.name == "run_g0_t0.imec0.ap"
    assert (stream.num_channels, stream.num_samples) == (CHANNELS + 1, 15_000)
    assert stream.channel_ids[-1] == "imec0.ap#SY0"
    assert stream.gains_uV[0] == pytest.approx(2.34375) and stream.gains_uV[-1] == 1.0
    assert stream.locations == written["locations"]
    assert stream.extra["sync_channels"] == 1


def test_a_meta_with_a_wrong_channel_count(spikeglx: tuple[Path, dict]) -> None:
    folder, written = spikeglx
    text = (
        (folder / written["meta"])
        .read_text()
        .replace(f"nSavedChans={CHANNELS + 1}", f"nSavedChans={CHANNELS}")
    )
    stream, issues = _meta(folder, written, text)
    assert stream is None
    rules = {(i.rule, i.file, i.field) for i in issues}
    meta = written["meta"]
    assert rules == {("ecephys.channel_count", meta, "nSavedChans")}
    by_source = {i.message.split(" but ")[1].split(" ")[0]: i.message for i in issues}
    assert set(by_source) == {"snsApLfSy/snsMnMaXaDw", "~snsChanMap", "~snsGeomMap"}
    for message in by_source.values():
        assert f"nSavedChans is {CHANNELS}" in message
        assert "Upload the .meta SpikeGLX wrote with this .bin" in message
    assert f"adds up to {CHANNELS + 1}" in by_source["snsApLfSy/snsMnMaXaDw"]
    assert f"lists {CHANNELS + 1} channels" in by_source["~snsChanMap"]
    assert f"places {CHANNELS} probe channels" in by_source["~snsGeomMap"]


def test_a_meta_whose_count_does_not_divide_the_file(spikeglx: tuple[Path, dict]) -> None:
    """Only nSavedChans is wrong (no channel map to compare): the file is whole per
    fileSizeBytes, so the report blames the count, not the upload."""
    folder, written = spikeglx
    lines = [
        line
        for line in (folder / written["meta"]).read_text().splitlines()
        if not line.startswith(("~snsChanMap", "snsApLfSy"))
    ]
    wrong = 2 * CHANNELS  # 15000 x 9 x 2 bytes is not a whole number of 16-channel samples
    text = "\n".join(lines).replace(f"nSavedChans={CHANNELS + 1}", f"nSavedChans={wrong}")
    stream, issues = _meta(folder, written, text)
    assert stream is None
    assert {(i.rule, i.field) for i in issues} == {("ecephys.channel_count", "nSavedChans")}
    against_file = next(i for i in issues if "fileSizeBytes" in i.message)
    assert f"nSavedChans is {wrong}" in against_file.message
    assert f"not a whole number of {wrong}-channel int16 samples" in against_file.message
    assert any("~snsGeomMap places 8 probe channels" in i.message for i in issues)


def test_a_bin_shorter_than_its_meta_says(spikeglx: tuple[Path, dict]) -> None:
    folder, written = spikeglx
    full = (folder / written["bin"]).stat().st_size
    stream, issues = _meta(folder, written, size=full - 2 * (CHANNELS + 1) * 100)
    assert stream is None
    (issue,) = issues
    assert (issue.rule, issue.file, issue.field) == (
        "ecephys.size_mismatch",
        written["bin"],
        "size",
    )
    assert f"fileSizeBytes says {full}" in issue.message
    assert f"is {full - 2 * (CHANNELS + 1) * 100} bytes" in issue.message


def test_a_truncated_bin(spikeglx: tuple[Path, dict]) -> None:
    folder, written = spikeglx
    full = (folder / written["bin"]).stat().st_size
    stream, issues = _meta(folder, written, size=full - 3)
    assert stream is None
    assert {i.rule for i in issues} == {"ecephys.size_mismatch", "ecephys.truncated_binary"}
    truncated = next(i for i in issues if i.rule == "ecephys.truncated_binary")
    assert truncated.file == written["bin"] and "Upload the complete file" in truncated.message


def test_a_meta_without_the_essentials_is_a_warning(spikeglx: tuple[Path, dict]) -> None:
    folder, written = spikeglx
    stream, issues = _meta(folder, written, "imSampRate=30000\n")
    assert stream is None
    assert [(i.severity, i.rule) for i in issues] == [("warning", "ecephys.unreadable_description")]


def test_find_recordings_in_a_session_with_both_formats_and_a_stray_binary(tmp_path: Path) -> None:
    oe = write_openephys(tmp_path / "ecephys" / "oe", seconds=0.2, channels=4)
    sg = write_spikeglx(tmp_path / "ecephys" / "sg", seconds=0.2, channels=4)
    (tmp_path / "ecephys" / "other.bin").write_bytes(bytes(64))  # no .meta beside it
    sizes = staged_sizes(tmp_path)
    keys = description_keys(sizes)
    assert keys == [f"ecephys/oe/{oe['oebin']}", f"ecephys/sg/{sg['meta']}"]
    streams, issues = find_recordings(sizes, {k: (tmp_path / k).read_text() for k in keys})
    assert [s.source_key for s in streams] == [f"ecephys/oe/{oe['dat']}", f"ecephys/sg/{sg['bin']}"]
    assert [(i.severity, i.rule, i.file) for i in issues] == [
        ("warning", "ecephys.undescribed_binary", "ecephys/other.bin")
    ]
