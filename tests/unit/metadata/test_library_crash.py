"""A library exception becomes a report entry (issue 12, point 6): aind-data-schema 2.9.2
raises AttributeError on an acquisition whose streams are all `ExternalDataStream`s beside an
instrument; that is a `library.crash` error naming the files, never exit 3 or a stage fault."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aind_data_schema.core.metadata import Metadata
from typer.testing import CliRunner

from tests.aind_support import SAMPLE_ASSET, external_streams, metadata_files, sample_job
from upload_processor.metadata import assemble
from upload_processor.metadata.library_log import library_issues
from upload_processor.metadata.validate import MODELS
from upload_processor_tools.cli import app
from upload_processor_tools.sample import build_session

ASSET = SAMPLE_ASSET
JOB = sample_job()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = build_session(tmp_path_factory.mktemp("crash") / "s", data_mb_per_modality=0)
    for path in folder.glob("acquisition_*.json"):
        path.write_bytes(external_streams(path.read_bytes()))
    return folder


def test_the_library_itself_raises(session: Path) -> None:
    files = metadata_files(session)
    models = {
        kind: MODELS[kind].model_validate_json(files[f"{kind}.json"])
        for kind in ("subject", "procedures", "data_description")
    }
    models["instrument"] = MODELS["instrument"].model_validate_json(
        files["instrument_behavior.json"]
    )
    models["acquisition"] = MODELS["acquisition"].model_validate_json(
        files["acquisition_behavior.json"]
    )
    with pytest.raises(AttributeError, match="active_devices"):
        Metadata(name=ASSET, location="s3://x/y", **models)


def test_a_library_crash_is_a_report_entry_naming_the_files(session: Path) -> None:
    result = assemble(metadata_files(session), asset_name=ASSET, job=JOB)
    crashes = [i for i in result.errors if i.rule == "library.crash"]
    assert len(crashes) == 1, result.issues
    assert "AttributeError" in crashes[0].message
    assert "acquisition_ecephys.json" in crashes[0].message
    assert "instrument_ecephys.json" in crashes[0].message
    assert result.metadata is None


def test_validate_exits_1_with_the_crash_in_the_report(session: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(session, tmp_path / "s"))
    run = CliRunner().invoke(app, ["validate", str(folder), "--offline", "--json"])
    assert run.exit_code == 1, run.output
    rules = [i["rule"] for i in json.loads(run.stdout)["issues"]]
    assert "library.crash" in rules


def test_a_library_warning_never_says_the_session_is_accepted() -> None:
    """Issue 12, point 9 (in part): a warning may sit inside a rejection."""
    said = ["Processing objects have repeated processes: ['x']. Renaming duplicates."]
    (issue,) = library_issues(said, "processing.json", None)
    assert issue.severity == "warning" and "accepted" not in issue.message
    assert issue.file == "processing.json"


def test_a_warning_a_rule_explains_with_file_and_value_is_dropped() -> None:
    """The line "Duplicate active devices were removed" names no file nor device: rules.streams reports
    the devices with both (tests/unit/metadata/test_messages.py)."""
    assert library_issues(["Duplicate active devices were removed."], None, "merging") == []
