"""The schema_version policy (issue 12, point 1): aind-data-schema reads every document of its
own major version (its own `test_validate_old_schema_version`), so an older 2.x file is accepted
with a note, a newer one with a warning, and only another major version is an error whose fix
names the upgrade path; a document of the metadata service is never blamed on the user."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aind_data_schema.core.subject import Subject
from typer.testing import CliRunner

from tests.aind_support import SAMPLE_ASSET, metadata_files, sample_job
from upload_processor.metadata import assemble
from upload_processor_tools.cli import app
from upload_processor_tools.sample import build_session

ASSET = SAMPLE_ASSET
JOB = sample_job()
OURS = Subject.model_fields["schema_version"].default
MAJOR, MINOR, PATCH = (int(p) for p in OURS.split("."))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_session(tmp_path_factory.mktemp("versions") / "s", data_mb_per_modality=0)


def _files(session: Path, subject_version: str) -> dict[str, bytes]:
    files = metadata_files(session)
    subject = json.loads(files["subject.json"])
    files["subject.json"] = json.dumps({**subject, "schema_version": subject_version}).encode()
    return files


@pytest.mark.parametrize(
    ("version", "rule"),
    [
        (f"{MAJOR}.0.0", "schema.version_older"),
        (f"{MAJOR}.{MINOR}.{PATCH + 1}", "schema.version_newer"),
        (f"{MAJOR}.{MINOR + 1}.0", "schema.version_newer"),
    ],
)
def test_the_same_major_version_is_accepted_with_a_warning(
    session: Path, version: str, rule: str
) -> None:
    result = assemble(_files(session, version), asset_name=ASSET, job=JOB)
    assert result.errors == []
    (entry,) = [i for i in result.issues if i.rule.startswith("schema.version")]
    assert (entry.rule, entry.severity, entry.file) == (rule, "warning", "subject.json")
    assert version in entry.message and OURS in entry.message
    assert result.metadata is not None


@pytest.mark.parametrize(
    ("version", "path"),
    [("1.4.0", "aind-metadata-upgrader"), (f"{MAJOR + 1}.0.0", "deployment must be upgraded")],
)
def test_another_major_version_is_an_error_naming_the_upgrade_path(
    session: Path, version: str, path: str
) -> None:
    result = assemble(_files(session, version), asset_name=ASSET, job=JOB)
    (error,) = result.errors
    assert (error.rule, error.file, error.field) == (
        "schema.version_mismatch",
        "subject.json",
        "schema_version",
    )
    assert path in error.message and "metadata service" not in error.message


def test_a_service_document_is_never_blamed_on_the_user(session: Path) -> None:
    files = _files(session, OURS)
    subject = json.loads(files.pop("subject.json"))
    label = "subject@service:750101"
    result = assemble(
        files, asset_name=ASSET, job=JOB, extra={label: {**subject, "schema_version": "1.0.0"}}
    )
    (error,) = result.errors
    assert error.file == label
    assert "came from the metadata service" in error.message
    assert "operator" in error.message


def test_validate_accepts_an_older_minor_version(session: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(session, tmp_path / "s"))
    (folder / "subject.json").write_bytes(_files(session, f"{MAJOR}.0.0")["subject.json"])
    run = CliRunner().invoke(app, ["validate", str(folder), "--offline", "--json"])
    assert run.exit_code == 0, run.output
    rules = [i["rule"] for i in json.loads(run.stdout)["issues"]]
    assert "schema.version_older" in rules
