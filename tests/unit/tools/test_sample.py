"""The sample session is real: every file validates, and it has the shape docs/architecture.md describes."""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aind_data_schema.core.acquisition import Acquisition
from aind_data_schema.core.data_description import DataDescription
from aind_data_schema.core.instrument import Instrument
from aind_data_schema.core.procedures import Procedures
from aind_data_schema.core.subject import Subject

from upload_processor_tools import sample, sample_files
from upload_processor_tools.sample import asset_name_for, build_session

MB = 0.25
ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))

# Validating models directly lets the library's own noise through: it reads its deprecated
# coordinate_system fields while validating.
pytestmark = pytest.mark.filterwarnings("ignore:Deprecated. use .* instead:DeprecationWarning")

MODEL_OF = {
    "instrument_behavior.json": Instrument,
    "instrument_ecephys.json": Instrument,
    "acquisition_behavior.json": Acquisition,
    "acquisition_ecephys.json": Acquisition,
    "subject.json": Subject,
    "procedures.json": Procedures,
    "data_description.json": DataDescription,
}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_session(tmp_path_factory.mktemp("session") / "staged", data_mb_per_modality=MB)


def _load(session: Path, name: str):
    return MODEL_OF[name].model_validate_json((session / name).read_text())


def test_layout(session: Path) -> None:
    files = sorted(p.relative_to(session).as_posix() for p in session.rglob("*") if p.is_file())
    assert files == sorted(
        [
            *MODEL_OF,
            "upload_job.json",
            "behavior/trials.csv",
            "behavior/behavior_32.bin",
            "behavior/video.mp4",
            "ecephys/continuous.dat",
            "ecephys/settings.json",
            "ecephys/sync_messages.txt",
        ]
    )


@pytest.mark.parametrize("name", sorted(MODEL_OF))
def test_every_metadata_file_validates_on_its_own(session: Path, name: str) -> None:
    model = _load(session, name)
    # Written with model_dump_json: re-dumping the validated model gives the same document.
    assert json.loads(model.model_dump_json()) == json.loads((session / name).read_text())


def test_instruments_share_only_the_harp_clock(session: Path) -> None:
    behavior = _load(session, "instrument_behavior.json")
    ecephys = _load(session, "instrument_ecephys.json")
    shared = set(behavior.get_component_names()) & set(ecephys.get_component_names())
    assert shared == {sample.SHARED_CLOCK_NAME}
    for instrument in (behavior, ecephys):
        names = instrument.get_component_names()
        assert len(names) == len(set(names)), "device names within one instrument are unique"
    (harp_b,) = [c for c in behavior.components if c.name == sample.SHARED_CLOCK_NAME]
    (harp_e,) = [c for c in ecephys.components if c.name == sample.SHARED_CLOCK_NAME]
    assert type(harp_b).__name__ == "HarpDevice"
    assert harp_b.is_clock_generator is True
    assert harp_b == harp_e
    assert {m.abbreviation for m in behavior.modalities} == {"behavior"}
    assert {m.abbreviation for m in ecephys.modalities} == {"ecephys"}


def test_acquisitions_match_what_merging_the_instruments_gives(session: Path) -> None:
    instrument = _load(session, "instrument_behavior.json") + _load(
        session, "instrument_ecephys.json"
    )
    behavior = _load(session, "acquisition_behavior.json")
    ecephys = _load(session, "acquisition_ecephys.json")
    acquisition = behavior + ecephys
    assert instrument.instrument_id == acquisition.instrument_id == sample.MERGED_INSTRUMENT_ID
    modalities = {
        m.abbreviation
        for acq in (behavior, ecephys)
        for stream in acq.data_streams
        for m in stream.modalities
    }
    assert modalities == {"behavior", "ecephys"}
    for acq in (behavior, ecephys):
        assert acq.subject_id == "750101"
        assert acq.acquisition_start_time <= ACQ <= acq.acquisition_end_time


def test_data_description_and_job(session: Path) -> None:
    dd = _load(session, "data_description.json")
    assert dd.name == "750101_2025-06-12_15-03-00" == asset_name_for("750101", ACQ)
    assert dd.project_name == "Example Foraging Project"
    assert {m.abbreviation for m in dd.modalities} == {"behavior", "ecephys"}
    job = json.loads((session / "upload_job.json").read_text())
    assert job == {
        "job_type": "default",
        "project_name": "Example Foraging Project",
        "subject_id": "750101",
        "acq_datetime": "2025-06-12T15:03:00-07:00",
        "modalities": ["behavior", "ecephys"],
        "user_email": "scientist@example.org",
    }
    newest_other = max(
        p.stat().st_mtime_ns
        for p in session.rglob("*")
        if p.is_file() and p.name != "upload_job.json"
    )
    assert (session / "upload_job.json").stat().st_mtime_ns >= newest_other


def test_data_files_are_sized_and_shaped(session: Path) -> None:
    budget = MB * 1024 * 1024
    for modality in ("behavior", "ecephys"):
        total = sum(p.stat().st_size for p in (session / modality).rglob("*") if p.is_file())
        assert 0.95 * budget <= total <= budget, modality

    dat = (session / "ecephys" / "continuous.dat").read_bytes()
    assert len(dat) % (2 * sample_files.ECEPHYS_CHANNELS) == 0
    samples = struct.unpack(f"<{len(dat) // 2}h", dat)
    mean = sum(samples) / len(samples)
    rms = (sum((s - mean) ** 2 for s in samples) / len(samples)) ** 0.5
    assert abs(mean) < 20 and 30 < rms < 90, "noise of a few tens of counts around zero"
    settings = json.loads((session / "ecephys" / "settings.json").read_text())
    assert settings["num_channels"] == 384

    harp = (session / "behavior" / "behavior_32.bin").read_bytes()
    size = 13
    assert len(harp) % size == 0 and len(harp) > 0
    first = harp[:size]
    assert first[0] == 3 and first[1] == size - 2 and first[2] == 32
    assert sum(first[:-1]) & 0xFF == first[-1], "Harp checksum"
    header = (session / "behavior" / "trials.csv").read_text().splitlines()[0]
    assert header.startswith("trial,")
    assert (session / "behavior" / "video.mp4").stat().st_size > 0


def test_deterministic(tmp_path: Path) -> None:
    def digest(folder: Path) -> dict[str, str]:
        return {
            p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*")
            if p.is_file()
        }

    a = build_session(tmp_path / "a", data_mb_per_modality=0.05)
    b = build_session(tmp_path / "b", data_mb_per_modality=0.05)
    assert digest(a) == digest(b)


def test_options(tmp_path: Path) -> None:
    tokyo = datetime(2025, 6, 13, 7, 3, tzinfo=timezone(timedelta(hours=9)))
    dest = build_session(
        tmp_path / "s",
        subject_id="123456",
        acq_datetime=tokyo,
        data_mb_per_modality=0,
        conflicting_subject_id="654321",
        write_job=False,
    )
    assert not (dest / "upload_job.json").exists()
    assert _load(dest, "data_description.json").name == "123456_2025-06-13_07-03-00"
    assert _load(dest, "acquisition_behavior.json").subject_id == "123456"
    assert _load(dest, "acquisition_ecephys.json").subject_id == "654321"
    assert _load(dest, "subject.json").subject_id == "123456"
    assert (dest / "ecephys" / "continuous.dat").stat().st_size == 0


def test_naive_datetime_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_session(tmp_path / "s", acq_datetime=datetime(2025, 6, 12, 15, 3))
