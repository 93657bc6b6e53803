"""The modality policy as AIND applies it (issue 12, point 7): a stream of an undeclared
modality is an error; a declared modality with no stream, or an instrument without modalities,
is a warning (AIND's real multiplane-ophys record 804670 lists behavior and behavior-videos
with no stream of their own, and an instrument with modalities `[]`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.aind_support import SAMPLE_ASSET, metadata_files, sample_job
from upload_processor.metadata import JobFacts, assemble
from upload_processor_tools.cli import app
from upload_processor_tools.sample import build_session

JOB = sample_job()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_session(tmp_path_factory.mktemp("modalities") / "s", data_mb_per_modality=0)


def _edited(files: dict[str, bytes], name: str, **changes) -> dict[str, bytes]:
    return {**files, name: json.dumps({**json.loads(files[name]), **changes}).encode()}


def test_instruments_without_modalities_are_a_warning(session: Path) -> None:
    files = metadata_files(session)
    for name in ("instrument_behavior.json", "instrument_ecephys.json"):
        files = _edited(files, name, modalities=[])
    result = assemble(files, asset_name=SAMPLE_ASSET, job=JOB)
    assert result.errors == []
    (warning,) = [i for i in result.issues if i.rule == "merge.instrument_without_modalities"]
    assert warning.severity == "warning"
    assert result.metadata is not None


def test_a_described_modality_without_a_stream_is_a_warning(session: Path) -> None:
    files = metadata_files(session)
    described = json.loads(files["data_description.json"])["modalities"]
    videos = {"name": "Behavior videos", "abbreviation": "behavior-videos"}
    files = _edited(files, "data_description.json", modalities=[*described, videos])
    job = JobFacts(
        subject_id="750101",
        modalities=("behavior", "ecephys", "behavior-videos"),
        acq_datetime=JOB.acq_datetime,
    )
    result = assemble(files, asset_name=SAMPLE_ASSET, job=job)
    assert result.errors == []
    warned = [
        (i.file, i.severity) for i in result.issues if i.rule == "merge.modality_without_stream"
    ]
    assert warned == [("upload_job.json", "warning")]  # the description follows the job


def test_validate_accepts_a_declared_modality_without_a_stream(
    session: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(session, tmp_path / "s"))
    job = json.loads((folder / "upload_job.json").read_text())
    job["modalities"] = [*job["modalities"], "behavior-videos"]
    (folder / "upload_job.json").write_text(json.dumps(job))
    (folder / "behavior-videos").mkdir()
    (folder / "behavior-videos" / "face_camera.avi").write_bytes(b"frames")  # no stream of its own
    run = CliRunner().invoke(app, ["validate", str(folder), "--offline", "--json"])
    assert run.exit_code == 0, run.output
    rules = [i["rule"] for i in json.loads(run.stdout)["issues"]]
    assert "merge.modality_without_stream" in rules
