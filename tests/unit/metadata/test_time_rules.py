"""Time as real rigs write it (issue 12, points 2 and 3): a start with microseconds does not put
the job's one-second acq_datetime "before the acquisition", and an acquisition written in UTC
merges with one in a named zone when their instants agree (the named zone is kept, the fixed
offset noted), as the library's `+` merges them."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.aind_support import SAMPLE_ASSET, metadata_files, retimed, sample_job
from upload_processor.metadata import JobFacts, assemble
from upload_processor_tools import sample
from upload_processor_tools.cli import app
from upload_processor_tools.sample import build_session

ASSET = SAMPLE_ASSET
START = sample.DEFAULT_ACQ_DATETIME
JOB = sample_job()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_session(tmp_path_factory.mktemp("time") / "s", data_mb_per_modality=0)


def _microseconds(raw: bytes) -> bytes:
    return retimed(raw, lambda t: t + timedelta(microseconds=474680))


def test_a_start_with_microseconds_holds_the_one_second_acq_datetime(session: Path) -> None:
    files = {
        name: _microseconds(raw) if name.startswith("acquisition_") else raw
        for name, raw in metadata_files(session).items()
    }
    result = assemble(files, asset_name=ASSET, job=JOB)
    assert result.errors == []
    early = JobFacts(
        subject_id="750101", modalities=JOB.modalities, acq_datetime=START - timedelta(seconds=1)
    )
    (error,) = assemble(files, asset_name=ASSET, job=early).errors
    assert error.rule == "merge.acq_datetime_outside"


def test_utc_and_a_named_zone_merge_keeping_the_zone(session: Path) -> None:
    files = metadata_files(session)
    files["acquisition_behavior.json"] = retimed(
        files["acquisition_behavior.json"], lambda t: t, "America/Los_Angeles"
    )
    files["acquisition_ecephys.json"] = retimed(
        files["acquisition_ecephys.json"], lambda t: t.astimezone(UTC), 0
    )
    result = assemble(files, asset_name=ASSET, job=JOB)
    assert result.errors == []
    (note,) = [i for i in result.issues if i.rule == "merge.fixed_offset"]
    assert (note.severity, note.file) == ("warning", "acquisition_ecephys.json")
    assert result.core["acquisition"]["acquisition_start_tz"] == "America/Los_Angeles"
    assert result.metadata is not None


def test_validate_accepts_microsecond_starts(session: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(session, tmp_path / "s"))
    for path in folder.glob("acquisition_*.json"):
        path.write_bytes(_microseconds(path.read_bytes()))
    run = CliRunner().invoke(app, ["validate", str(folder), "--offline", "--json"])
    assert run.exit_code == 0, run.output


def _naive_copy(session: Path, tmp_path: Path) -> Path:
    """The session with every acquisition time written without its offset (local rig time)."""
    folder = Path(shutil.copytree(session, tmp_path / "naive"))
    for path in folder.glob("acquisition_*.json"):
        path.write_bytes(retimed(path.read_bytes(), lambda t: t.replace(tzinfo=None)))
    return folder


@pytest.fixture
def host_zone(monkeypatch: pytest.MonkeyPatch):
    """Set the validating machine's zone (TZ) for the test; the previous one is restored."""

    def set_zone(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_naive_times_get_the_same_verdict_under_any_host_zone(
    session: Path, tmp_path: Path, host_zone
) -> None:
    folder = _naive_copy(session, tmp_path)
    verdicts = []
    for zone in ("UTC", "America/Los_Angeles", "Asia/Tokyo"):
        host_zone(zone)
        run = CliRunner().invoke(
            app,
            ["validate", str(folder), "--offline", "--json", "--default-tz", "America/Los_Angeles"],
        )
        report = json.loads(run.stdout)
        verdicts.append((run.exit_code, sorted((i["rule"], i["file"]) for i in report["issues"])))
    assert verdicts[0][0] == 0, verdicts
    assert verdicts[1:] == verdicts[:-1]
    assert ("metadata.naive_datetime", "acquisition_ecephys.json") in verdicts[0][1]


def test_naive_times_without_a_default_zone_are_an_error(session: Path, tmp_path: Path) -> None:
    folder = _naive_copy(session, tmp_path)
    run = CliRunner().invoke(app, ["validate", str(folder), "--offline", "--json"])
    assert run.exit_code == 1
    errors = [i for i in json.loads(run.stdout)["issues"] if i["severity"] == "error"]
    assert {(i["rule"], i["file"]) for i in errors} >= {
        ("metadata.naive_datetime", "acquisition_behavior.json"),
        ("metadata.naive_datetime", "acquisition_ecephys.json"),
    }
