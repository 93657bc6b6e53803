"""Messages a scientist can act on (issue 12, point 9), through `upload-processor validate`.

Each case starts from the sample session (valid by construction) and changes one file the way
real material differs; the report is read as the scientist reads it: the JSON of
`validate --json`, the table of `validate`, and the summary the SNS rejection carries.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from aind_data_schema.core.quality_control import QualityControl
from typer.testing import CliRunner

from tests.aind_support import SAMPLE_ASSET, metadata_files, quality_control, sample_job
from upload_processor.domain.report import Issue, Report
from upload_processor.metadata import assemble
from upload_processor.metadata.fold import fold
from upload_processor_tools.cli import app
from upload_processor_tools.sample import build_session


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_session(tmp_path_factory.mktemp("messages") / "s", data_mb_per_modality=0)


@pytest.fixture
def session(sample: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(sample, tmp_path / "s"))


def _edit(folder: Path, name: str, change: Callable[[dict], None]) -> None:
    doc = json.loads((folder / name).read_text())
    change(doc)
    (folder / name).write_text(json.dumps(doc, indent=2))


def _validate(folder: Path, *args: str) -> tuple[int, str]:
    # wide enough that the table never folds a value across lines
    run = CliRunner().invoke(
        app, ["validate", str(folder), "--offline", *args], env={"COLUMNS": "400"}
    )
    return run.exit_code, run.stdout


def _report(folder: Path) -> tuple[int, Report]:
    code, out = _validate(folder, "--json")
    return code, Report.model_validate_json(out)


def _metadata_issues(report: Report) -> list[Issue]:
    return [i for i in report.issues if i.rule != "session.empty_file"]


# ------------------------------------------------------------ key-field conflicts, leaf by leaf


def test_coordinate_system_conflict_names_the_leaf_and_its_two_values(session: Path) -> None:
    def flip(doc: dict) -> None:
        doc["global_coordinate_system"]["axes"][1]["direction"] = "Right_to_left"

    _edit(session, "instrument_ecephys.json", flip)
    code, report = _report(session)
    assert code == 1
    (error,) = report.errors
    assert (error.rule, error.file, error.field) == (
        "merge.key_field_conflict",
        "instrument_ecephys.json",
        "global_coordinate_system.axes.1.direction",
    )
    assert (
        'disagree on global_coordinate_system.axes.1.direction: "Right_to_left" here, '
        '"Left_to_right" in instrument_behavior.json'
    ) in error.message
    assert "object_type=" not in error.message, "no Python reprs"
    assert "location:" not in error.message and "temperature_control:" not in error.message
    code, table = _validate(session)
    assert code == 1
    assert "global_coordinate_system.axes.1.direction" in table  # the field column


def test_each_differing_key_field_is_its_own_entry(session: Path) -> None:
    def move(doc: dict) -> None:
        doc["location"] = "Room 448"
        doc["global_coordinate_system"]["axes"].pop()

    _edit(session, "instrument_ecephys.json", move)
    _, report = _report(session)
    fields = [(e.rule, e.field) for e in report.errors]
    assert fields == [
        ("merge.key_field_conflict", "location"),
        ("merge.key_field_conflict", "global_coordinate_system.axes.2"),
    ]
    assert '"Room 448" here' in report.errors[0].message
    assert "absent here" in report.errors[1].message


# ------------------------------------------------------------------- the library's warnings


def test_a_shared_non_daq_device_is_a_warning_naming_files_streams_and_device(
    session: Path,
) -> None:
    _edit(
        session,
        "acquisition_ecephys.json",
        lambda d: d["data_streams"][0]["active_devices"].append("Go cue speaker"),
    )
    code, report = _report(session)
    assert code == 0, report.errors
    (warning,) = _metadata_issues(report)
    assert (warning.rule, warning.file, warning.field) == (
        "acquisition.duplicate_active_device",
        "acquisition_ecephys.json",
        "data_streams.0.active_devices",
    )
    assert warning.message.startswith(
        "acquisition_ecephys.json (data_streams.0) and acquisition_behavior.json "
        "(data_streams.0) both list 'Go cue speaker' among active_devices"
    )
    assert "accepted" not in warning.message


def test_a_shared_clock_in_both_streams_says_nothing(session: Path) -> None:
    """The library logs "Duplicate active devices were removed" for the shared Harp clock too,
    which it allows (a DAQ device): not actionable, so not in the report."""
    _edit(
        session,
        "acquisition_ecephys.json",
        lambda d: d["data_streams"][0]["active_devices"].append("Harp Behavior"),
    )
    code, report = _report(session)
    assert code == 0
    assert _metadata_issues(report) == []


def test_no_rejection_says_accepted(session: Path) -> None:
    _edit(
        session,
        "acquisition_ecephys.json",
        lambda d: d["data_streams"][0]["active_devices"].append("Go cue speaker"),
    )
    _edit(session, "subject.json", lambda d: d.update(subject_id="750199"))
    code, out = _validate(session)
    assert code == 1
    assert "accepted" not in out.lower()
    _, report = _report(session)
    assert "acquisition.duplicate_active_device" in {i.rule for i in report.warnings}
    assert "library.warning" not in {i.rule for i in report.issues}


# ------------------------------------------------------------ a file named like a core type


def test_notes_named_like_an_instrument_are_one_entry(session: Path) -> None:
    notes = {"notes": "laser power checked at 3 mW", "date": "2025-06-01", "by": "Jane"}
    (session / "instrument_calibration_notes.json").write_text(json.dumps(notes))
    code, report = _report(session)
    assert code == 1
    mine = [i for i in report.issues if i.file == "instrument_calibration_notes.json"]
    assert [(i.rule, i.severity) for i in mine] == [("json.not_metadata", "error")]
    assert mine[0].message.startswith("instrument_calibration_notes.json is not an Instrument:")
    assert "rename it" in mine[0].message
    assert report.errors == mine, "the real instruments are not blamed"


def test_a_foreign_object_type_is_one_entry(session: Path) -> None:
    other = {"object_type": "Calibration", "schema_version": "2.4.2", "device_name": "Laser"}
    (session / "instrument_laser.json").write_text(json.dumps(other))
    _, report = _report(session)
    (error,) = report.errors
    assert (error.rule, error.file) == ("json.not_metadata", "instrument_laser.json")
    assert 'is not an Instrument: its object_type is "Calibration"' in error.message


def test_an_instrument_missing_a_few_fields_is_still_read_as_one(session: Path) -> None:
    """Only a file that is plainly not one is called "not an Instrument": a real instrument
    with a field missing gets its field-by-field error."""
    _edit(session, "instrument_ecephys.json", lambda d: d.pop("instrument_id"))
    _, report = _report(session)
    assert [(e.rule, e.field) for e in report.errors] == [("schema.invalid", "instrument_id")]


# ----------------------------------------------------------------------------- sorted reports


def test_reports_list_errors_first_then_by_file(session: Path) -> None:
    _edit(session, "subject.json", lambda d: d.update(subject_id="750199"))
    _edit(session, "instrument_ecephys.json", lambda d: d.update(location="Room 448"))
    (session / "acquisition_notes_x.json").write_text(json.dumps({"notes": "x"}))
    _edit(  # a warning, listed after every error though its file sorts first
        session,
        "acquisition_behavior.json",
        lambda d: d.update(schema_version="2.0.34"),
    )
    code, report = _report(session)
    assert code == 1
    keys = [(i.severity, i.file or "") for i in report.issues]
    assert keys == sorted(keys, key=lambda k: (k[0] != "error", k[1]))
    assert report.issues[0].severity == "error"
    assert report.issues[-1].severity == "warning"
    order = [i.file for i in report.issues]
    _, table = _validate(session)
    rows = [
        line for line in table.splitlines() if line.startswith("│ error") or "│ warning" in line
    ]
    assert len(rows) == len(order)
    for row, file in zip(rows, order, strict=True):
        assert (file or "(session)") in row
    # the SNS rejection carries the summary: "- SEVERITY file [field]: message (rule)"
    lines = report.summary(limit=100).splitlines()[1:]
    assert [tuple(line.split()[1:3]) for line in lines] == [
        (i.severity.upper(), (i.file or "-") + ("" if i.field else ":")) for i in report.issues
    ]


# ------------------------------------------------------------------ quality control conflicts


def test_quality_control_plus_refusal_names_both_files_and_the_field() -> None:
    """What the library's QualityControl "+" raises becomes merge.failed naming both files and
    the field. 2.9.2's "+" refuses only documents of different schema versions, and reading
    relabels every 2.x file with the library's version, so the test holds one relabelled
    back (model_copy does not validate): the refusal itself is the library's."""
    drift = QualityControl.model_validate_json(quality_control("drift", "ecephys"))
    frames = QualityControl.model_validate_json(quality_control("frames", "behavior"))
    validated = {
        "quality_control_a.json": drift,
        "quality_control_b.json": frames.model_copy(update={"schema_version": "2.0.0"}),
    }
    issues: list[Issue] = []
    assert fold("quality_control", validated, issues) is None
    (error,) = issues
    assert (error.rule, error.file, error.field) == (
        "merge.failed",
        "quality_control_b.json",
        "schema_version",
    )
    assert error.message.startswith(
        "Cannot merge quality_control_b.json into quality_control_a.json: Cannot combine "
        "QualityControl objects with different schema versions: 2.4.2 and 2.0.0."
    )


def test_quality_control_files_that_disagree_still_merge(session: Path) -> None:
    """Library fact: QualityControl "+" concatenates metrics and never refuses two valid files
    (schema versions are relabelled on reading), so there is no conflict left to report."""
    (session / "quality_control_a.json").write_bytes(quality_control("drift", "ecephys"))
    older = json.loads(quality_control("drift", "ecephys"))
    older["schema_version"] = "2.0.0"
    (session / "quality_control_b.json").write_text(json.dumps(older))
    code, report = _report(session)
    assert code == 0, report.errors
    result = assemble(metadata_files(session), asset_name=SAMPLE_ASSET, job=sample_job())
    assert [m["name"] for m in result.core["quality_control"]["metrics"]] == ["drift", "drift"]


def test_two_overlapping_streams_of_one_file_are_named_too(session: Path) -> None:
    """The library's "+" merges overlapping streams of one file as well (once several
    acquisitions are merged), with the same bare log line."""

    def second_stream(doc: dict) -> None:  # the same probe recorded twice, say
        doc["data_streams"].append(doc["data_streams"][0])

    _edit(session, "acquisition_ecephys.json", second_stream)
    code, report = _report(session)
    assert code == 0, report.errors
    (warning,) = _metadata_issues(report)
    assert (warning.rule, warning.file, warning.field) == (
        "acquisition.duplicate_active_device",
        "acquisition_ecephys.json",
        "data_streams.1.active_devices",
    )
    assert warning.message.startswith(
        "acquisition_ecephys.json (data_streams.0 and data_streams.1) both list 'Ephys assembly A'"
    )


def test_a_clock_copy_that_differs_deep_down_names_the_leaf(session: Path) -> None:
    from aind_data_schema_models.organizations import Organization

    aind = Organization.AIND.model_dump(mode="json")
    _edit(
        session, "instrument_ecephys.json", lambda d: d["components"][0].update(manufacturer=aind)
    )
    _, report = _report(session)
    (error,) = report.errors
    assert (error.rule, error.field) == ("merge.clock_mismatch", "components.0.manufacturer.name")
    assert (
        'manufacturer.name "Allen Institute for Neural Dynamics" here, '
        '"Open Ephys Production Site" in instrument_behavior.json'
    ) in error.message
    assert "registry" not in error.message, "only the differing leaf, not the whole object"


def test_a_1x_document_of_a_retired_type_gets_the_version_advice(session: Path) -> None:
    """A 1.x Rig saved as instrument_rig.json is an old document, not notes: the version
    policy's upgrade advice, not "rename it"."""
    rig = {"object_type": "Rig", "schema_version": "1.0.1", "rig_id": "447_FRG_20240101"}
    (session / "instrument_rig.json").write_text(json.dumps(rig))
    _, report = _report(session)
    rules = {(e.rule, e.file) for e in report.errors}
    assert ("schema.version_mismatch", "instrument_rig.json") in rules
    assert "json.not_metadata" not in {e.rule for e in report.errors}
