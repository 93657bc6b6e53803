"""The ecephys transformation's planning: recordings found and checked, ranges of whole chunks,
the clipped folder, the fallback for recordings it cannot read."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from upload_processor.adapters.staging import LocalSession
from upload_processor.domain.job_settings import TransformationSettings
from upload_processor.ecephys.codec import EcephysOptions
from upload_processor.ecephys.zarr_layout import samples_per_chunk
from upload_processor.pipeline import ecephys_plan
from upload_processor.pipeline.gather import batches, build_plan
from upload_processor_tools.sample_ecephys import write_openephys, write_spikeglx

ASSET = "750101_2025-06-12_15-03-00"
CHANNELS = 8
SECONDS = 3.5


def _job(**job_settings: Any) -> dict[str, Any]:
    settings = {"codec": "flac", **job_settings}
    return {
        "tasks": {
            "modality_transformation_settings": {
                "ecephys": {"skip_task": False, "job_settings": settings},
                "behavior": {"skip_task": False, "job_settings": {"codec": "zstd", "level": 3}},
            }
        }
    }


@pytest.fixture
def session(tmp_path: Path) -> Path:
    write_openephys(tmp_path / "ecephys", SECONDS, CHANNELS)
    write_spikeglx(tmp_path / "ecephys", SECONDS, CHANNELS)
    (tmp_path / "ecephys" / "extra.dat").write_bytes(bytes(100))
    (tmp_path / "behavior").mkdir()
    (tmp_path / "behavior" / "log.csv").write_text("t,x\n")
    return tmp_path


def _found(session: Path, **job_settings: Any) -> tuple[LocalSession, ecephys_plan.Recordings]:
    source = LocalSession(session)
    settings = ecephys_plan.ecephys_settings(_job(**job_settings))
    return source, ecephys_plan.find_recordings(source, source.entries(), settings)


def test_both_formats_are_found_and_an_unknown_binary_is_a_warning(session: Path) -> None:
    _, found = _found(session)
    formats = sorted((s.format, s.num_channels) for s in found.streams)
    assert formats == [("openephys", CHANNELS), ("spikeglx", CHANNELS + 1)]
    assert all(s.source_key.startswith("ecephys/") for s in found.streams)
    (note,) = found.issues
    assert (note.severity, note.rule, note.file) == (
        "warning",
        "ecephys.unknown_recording",
        "ecephys/extra.dat",
    )
    assert "zstd" in note.message and ".meta" in note.message


def test_codec_zstd_reads_no_description(session: Path) -> None:
    job = _job(codec="zstd")
    assert ecephys_plan.ecephys_settings(job) is None
    source = LocalSession(session)
    assert ecephys_plan.find_recordings(source, source.entries(), None).streams == []


@pytest.mark.parametrize("range_mib", [0.5, 1, 256])
def test_ranges_are_whole_chunks_covering_the_stream_in_order(
    session: Path, range_mib: float
) -> None:
    source, found = _found(session)
    plan = build_plan(
        "",
        source.entries(),
        ASSET,
        _job(),
        found.streams,
        ecephys_range_size=int(range_mib * 2**20),
    )
    for stream in found.streams:
        items = [
            i for i in plan if i.action == "encode_ecephys" and i.source_key == stream.source_key
        ]
        per_chunk = samples_per_chunk(stream, EcephysOptions())
        frame = stream.num_channels * 2
        assert [i.part_number for i in items] == list(range(1, len(items) + 1))
        assert {i.part_count for i in items} == {len(items)}
        assert items[0].sample_start == 0 and items[-1].sample_end == stream.num_samples
        for before, after in itertools.pairwise(items):
            assert before.sample_end == after.sample_start
        for item in items:
            assert item.sample_start % per_chunk == 0
            assert (item.range_start, item.range_end) == (
                item.sample_start * frame,
                item.sample_end * frame,
            )
            chunks = -(-(item.sample_end - item.sample_start) // per_chunk)
            assert chunks == 1 or item.range_end - item.range_start <= range_mib * 2**20
            assert item.dest_key == f"{ASSET}/ecephys/ecephys_compressed/{stream.name}.zarr"
            assert item.stream is not None and item.stream["name"] == stream.name
            assert item.options is not None and item.options["codec"] == "flac"


def test_the_other_files_go_to_the_clipped_folder_without_the_binaries(session: Path) -> None:
    source, found = _found(session)
    plan = build_plan("rig/s", source.entries(), ASSET, _job(), found.streams)
    binaries = {s.source_key for s in found.streams}
    placed = {i.source_key.removeprefix("rig/s/"): i for i in plan if i.action != "encode_ecephys"}
    assert not binaries & set(placed)
    oebin = next(k for k in placed if k.endswith("structure.oebin"))
    inner = oebin.removeprefix("ecephys/")
    assert placed[oebin].dest_key == f"{ASSET}/ecephys/ecephys_clipped/{inner}.zst"
    # the unknown binary falls back to zstd in the clipped folder; other modalities unchanged
    assert placed["ecephys/extra.dat"].dest_key == f"{ASSET}/ecephys/ecephys_clipped/extra.dat.zst"
    assert placed["behavior/log.csv"].dest_key == f"{ASSET}/behavior/log.csv.zst"


def test_keep_raw_also_plans_the_binary_zstd(session: Path) -> None:
    source, found = _found(session, keep_raw=True)
    plan = build_plan("", source.entries(), ASSET, _job(keep_raw=True), found.streams)
    for stream in found.streams:
        (raw,) = [i for i in plan if i.source_key == stream.source_key and i.action == "compress"]
        assert (
            raw.dest_key == f"{ASSET}/" + ecephys_plan.clipped_relative(stream.source_key) + ".zst"
        )


def test_each_range_is_a_batch_of_its_own(session: Path) -> None:
    source, found = _found(session)
    plan = build_plan("", source.entries(), ASSET, _job(), found.streams, ecephys_range_size=2**20)
    planned = batches(plan)
    ranges = [b for b in planned if any(i["action"] == "encode_ecephys" for i in b)]
    assert ranges and all(len(b) == 1 for b in ranges)
    assert sum(len(b) for b in planned) == len(plan)


def test_two_streams_with_one_name_are_an_error(tmp_path: Path) -> None:
    write_spikeglx(tmp_path / "ecephys" / "a", 1, CHANNELS)
    write_spikeglx(tmp_path / "ecephys" / "b", 1, CHANNELS)
    source = LocalSession(tmp_path)
    settings = TransformationSettings(codec="flac")
    found = ecephys_plan.find_recordings(source, source.entries(), settings)
    (issue,) = [i for i in found.issues if i.rule == "ecephys.stream_name_collision"]
    assert issue.severity == "error" and "one upload per recording" in issue.message


def test_an_audio_level_is_checked_against_its_codec() -> None:
    with pytest.raises(ValueError, match="9 is not a flac level: use 0-8"):
        TransformationSettings(codec="flac", level=9)
    assert TransformationSettings(codec="flac", level=8).zstd_level == 3


def test_a_binary_whose_description_is_wrong_gets_that_error_only(tmp_path: Path) -> None:
    written = write_spikeglx(tmp_path / "ecephys", 1, CHANNELS)
    meta = tmp_path / "ecephys" / written["meta"]
    meta.write_text(meta.read_text().replace("nSavedChans=9", "nSavedChans=10"))
    source = LocalSession(tmp_path)
    found = ecephys_plan.find_recordings(
        source, source.entries(), TransformationSettings(codec="flac")
    )
    assert found.streams == []
    assert {i.rule for i in found.issues} == {"ecephys.channel_count"}


def test_a_stream_of_no_samples_is_archived_as_its_file(tmp_path: Path) -> None:
    written = write_openephys(tmp_path / "ecephys", 1, CHANNELS)
    dat = tmp_path / "ecephys" / written["dat"]
    dat.write_bytes(b"")
    for stamp in ("sample_numbers.npy", "timestamps.npy"):
        (dat.parent / stamp).unlink()
    source, found = _found(tmp_path)
    plan = build_plan("", source.entries(), ASSET, _job(), found.streams)
    (item,) = [i for i in plan if i.source_key == f"ecephys/{written['dat']}"]
    assert item.action == "compress" and "/ecephys_clipped/" in item.dest_key


def test_wavpack_is_refused_up_front_naming_the_fix() -> None:
    from upload_processor.domain.job_settings import check

    (issue,) = check(
        "modality_transformation_settings",
        {"codec": "wavpack"},
        "tasks.modality_transformation_settings.ecephys.job_settings",
        "upload_job.json",
    )
    assert issue.field == "tasks.modality_transformation_settings.ecephys.job_settings.codec"
    assert "glibc" in issue.message and "use 'flac'" in issue.message


def test_aind_ephys_job_settings_are_read_with_their_own_names() -> None:
    """aind-ephys-transformation's EphysJobSettings names for codec, level and chunk duration;
    its other settings are reported as ignored (upload_job's AIND notes)."""
    settings = TransformationSettings.model_validate(
        {
            "compressor_name": "FLAC",
            "compressor_kwargs": {"level": 8},
            "compress_chunk_duration": "500ms",
        }
    )
    assert (settings.codec, settings.level, settings.chunk_duration_s) == ("flac", 8, 0.5)
    with pytest.raises(ValueError, match="use 'flac'"):
        TransformationSettings.model_validate({"compressor_name": "wavpack"})
