"""Metadata assembly: parse, validate, merge with the library's `+`, validate as a whole."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from aind_data_schema.core.metadata import Metadata

from upload_processor.metadata import CORE_TYPES, Assembly, assemble, metadata_type_of
from upload_processor.metadata.validate import MODELS
from upload_processor_tools import sample
from upload_processor_tools.sample import build_session

ASSET = "750101_2025-06-12_15-03-00"

# Validating models directly (outside assemble) lets the library's own noise through: it reads
# its deprecated coordinate_system fields. assemble() filters exactly these.
pytestmark = pytest.mark.filterwarnings("ignore:Deprecated. use .* instead:DeprecationWarning")


def _metadata_files(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and metadata_type_of(p.name)
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = build_session(tmp_path_factory.mktemp("ok") / "s", data_mb_per_modality=0.01)
    return _metadata_files(folder)


@pytest.fixture(scope="module")
def good(files: dict[str, bytes]) -> Assembly:
    return assemble(files, asset_name=ASSET)


def _with(files: dict[str, bytes], **changes: bytes | None) -> dict[str, bytes]:
    """A copy of files; keyword `subject_json=b"..."` sets subject.json, None removes it."""
    out = dict(files)
    for key, value in changes.items():
        name = key.removesuffix("_json") + ".json"
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def _edit(files: dict[str, bytes], name: str, change) -> bytes:
    doc = json.loads(files[name])
    change(doc)
    return json.dumps(doc).encode()


def _errors(result: Assembly) -> list:
    return [i for i in result.issues if i.severity == "error"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("instrument.json", "instrument"),
        ("instrument_behavior.json", "instrument"),
        ("acquisition_ecephys.json", "acquisition"),
        ("subject.json", "subject"),
        ("procedures.json", "procedures"),
        ("processing.json", "processing"),
        ("data_description.json", "data_description"),
        ("quality_control.json", "quality_control"),
        ("model.json", "model"),
        ("upload_job.json", None),
        ("upload_report.json", None),
        ("metadata.nd.json", None),
        ("ecephys/settings.json", None),
        ("behavior/instrument.json", None),
        ("instrument.txt", None),
        ("instrument.json.bak", None),
        ("notes.json", None),
    ],
)
def test_metadata_type_of(path: str, expected: str | None) -> None:
    assert metadata_type_of(path) == expected


def test_core_types_have_models() -> None:
    assert set(MODELS) == set(CORE_TYPES)


def test_sample_session_is_valid(good: Assembly) -> None:
    assert good.issues == []
    assert good.metadata is not None
    assert set(good.core) == {
        "instrument",
        "acquisition",
        "subject",
        "procedures",
        "data_description",
    }
    assert good.merged_from.instrument == ["instrument_behavior.json", "instrument_ecephys.json"]
    assert good.merged_from.acquisition == [
        "acquisition_behavior.json",
        "acquisition_ecephys.json",
    ]
    assert good.metadata["name"] == ASSET
    assert good.metadata["instrument"]["instrument_id"] == sample.MERGED_INSTRUMENT_ID


def test_sample_metadata_validates_as_metadata(good: Assembly) -> None:
    # Metadata fed dicts only warns about invalid parts: validate each part strictly first.
    assert good.metadata is not None
    parts = {
        core_type: MODELS[core_type].model_validate(good.metadata[core_type])
        for core_type in CORE_TYPES
        if good.metadata.get(core_type) is not None
    }
    whole = Metadata(name=ASSET, location=good.metadata["location"], **parts)
    assert whole.model_dump(mode="json") == good.metadata
    for core_type, part in parts.items():
        assert part.model_dump(mode="json") == good.core[core_type]


def test_merged_instrument_has_the_harp_once(good: Assembly) -> None:
    names = [c["name"] for c in good.core["instrument"]["components"]]
    assert names.count(sample.SHARED_CLOCK_NAME) == 1
    assert len(names) == len(set(names))
    assert {"Lick spout assembly", "Ephys assembly A", "Basestation Slot 3"} <= set(names)
    modalities = {m["abbreviation"] for m in good.core["instrument"]["modalities"]}
    assert modalities == {"behavior", "ecephys"}


def test_file_order_does_not_matter(files: dict[str, bytes], good: Assembly) -> None:
    reversed_files = dict(reversed(list(files.items())))
    again = assemble(reversed_files, asset_name=ASSET)
    assert again.core == good.core
    assert again.merged_from == good.merged_from


def test_non_metadata_names_are_skipped(files: dict[str, bytes]) -> None:
    extra = _with(files, upload_job_json=b"{}")
    extra["ecephys/settings.json"] = b"not json at all"
    assert assemble(extra, asset_name=ASSET).issues == []


def test_conflicting_subject_is_an_error(tmp_path: Path) -> None:
    folder = build_session(tmp_path / "s", data_mb_per_modality=0, conflicting_subject_id="750102")
    result = assemble(_metadata_files(folder), asset_name=ASSET)
    assert result.metadata is None
    (error,) = _errors(result)
    assert error.rule == "merge.subject_id_mismatch"
    assert error.file == "acquisition_ecephys.json"
    assert error.field == "subject_id"
    for text in ("acquisition_behavior.json", "acquisition_ecephys.json", "750101", "750102"):
        assert text in error.message
    assert "acquisition" not in result.core


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b'{"subject_id": "750101", ', "json.malformed"),
        (b"", "json.empty"),
        (b"  \n", "json.empty"),
        (b"[1, 2]", "json.not_object"),
        (b'"subject"', "json.not_object"),
        (b"null", "json.not_object"),
        (b'{"subject_id": NaN}', "json.malformed"),
        (b'{"subject_id": "\xff"}', "json.malformed"),
        (b'{"subject_id": "1", "subject_id": "2"}', "json.duplicate_key"),
    ],
)
def test_unreadable_files_are_errors_naming_the_file(
    files: dict[str, bytes], content: bytes, rule: str
) -> None:
    result = assemble(_with(files, subject_json=content), asset_name=ASSET)
    assert result.metadata is None
    (error,) = _errors(result)
    assert (error.rule, error.file) == (rule, "subject.json")
    assert "subject.json" in error.message
    assert "subject" not in result.core


def test_unknown_field_is_an_error_naming_file_and_field(files: dict[str, bytes]) -> None:
    bad = _edit(files, "subject.json", lambda d: d.update(favourite_colour="blue"))
    result = assemble(_with(files, subject_json=bad), asset_name=ASSET)
    (error,) = _errors(result)
    assert (error.rule, error.file, error.field) == (
        "schema.invalid",
        "subject.json",
        "favourite_colour",
    )
    assert "Unknown field 'favourite_colour'" in error.message
    assert "Remove it" in error.message


def test_each_schema_error_is_one_issue_with_a_dotted_field(files: dict[str, bytes]) -> None:
    def break_it(doc: dict) -> None:
        doc["components"][0]["is_clock_generator"] = "maybe"
        del doc["modification_date"]

    bad = _edit(files, "instrument_ecephys.json", break_it)
    result = assemble(_with(files, instrument_ecephys_json=bad), asset_name=ASSET)
    errors = _errors(result)
    assert {(e.file, e.field) for e in errors} == {
        ("instrument_ecephys.json", "modification_date"),
        ("instrument_ecephys.json", "components.0.Harp device.is_clock_generator"),
    }
    assert all(e.rule == "schema.invalid" for e in errors)
    assert "instrument" not in result.core, "no merge from a broken part"
    assert result.metadata is None


def test_exact_name_wins(files: dict[str, bytes], good: Assembly) -> None:
    merged = json.dumps(good.core["instrument"]).encode()
    result = assemble(_with(files, instrument_json=merged), asset_name=ASSET)
    assert _errors(result) == []
    assert result.metadata is not None
    assert result.merged_from.instrument == ["instrument.json"]
    ignored = [i for i in result.issues if i.rule == "merge.exact_name_wins"]
    assert [(i.severity, i.file) for i in ignored] == [
        ("warning", "instrument_behavior.json"),
        ("warning", "instrument_ecephys.json"),
    ]
    assert all("instrument.json" in i.message for i in ignored)


def test_exact_name_wins_even_when_the_others_are_broken(files: dict[str, bytes]) -> None:
    only_behavior = _with(files, instrument_ecephys_json=b"garbage")
    only_behavior["acquisition.json"] = files["acquisition_behavior.json"]
    only_behavior["instrument.json"] = files["instrument_behavior.json"]
    # Behavior only now: the data description must not claim ecephys (merge.modalities_mismatch).
    only_behavior["data_description.json"] = _edit(
        files,
        "data_description.json",
        lambda d: d.update(
            modalities=[m for m in d["modalities"] if m["abbreviation"] != "ecephys"]
        ),
    )
    result = assemble(only_behavior, asset_name=ASSET)
    assert _errors(result) == []
    assert result.merged_from.acquisition == ["acquisition.json"]


def test_missing_required_file(files: dict[str, bytes]) -> None:
    result = assemble(_with(files, subject_json=None), asset_name=ASSET)
    assert result.metadata is None
    (error,) = _errors(result)
    assert error.rule == "metadata.missing_file"
    assert "subject.json" in error.message
    assert "instrument" in result.core, "the rest is still assembled and reported"


def test_several_files_of_a_single_file_type(files: dict[str, bytes]) -> None:
    two = _with(files, subject_json=None)
    two["subject_a.json"] = two["subject_b.json"] = files["subject.json"]
    (error,) = _errors(assemble(two, asset_name=ASSET))
    assert error.rule == "merge.multiple_files"
    assert "subject_a.json" in error.message and "subject_b.json" in error.message


def test_library_key_field_refusal_names_the_field_and_both_values(
    files: dict[str, bytes],
) -> None:
    bad = _edit(files, "acquisition_ecephys.json", lambda d: d.update(acquisition_type="Other"))
    result = assemble(_with(files, acquisition_ecephys_json=bad), asset_name=ASSET)
    (error,) = _errors(result)
    assert (error.rule, error.file, error.field) == (
        "merge.key_field_conflict",
        "acquisition_ecephys.json",
        "acquisition_type",
    )
    assert error.message.startswith(
        "acquisition_ecephys.json and acquisition_behavior.json disagree on acquisition_type: "
        '"Other" here, "Dynamic foraging with ecephys" in acquisition_behavior.json.'
    )
    assert "subject_id:" not in error.message, "equal key fields are not listed"


def test_library_merge_error_becomes_merge_failed(files: dict[str, bytes]) -> None:
    details = json.loads(files["acquisition_behavior.json"])["subject_details"]
    bad = _edit(files, "acquisition_ecephys.json", lambda d: d.update(subject_details=details))
    result = assemble(_with(files, acquisition_ecephys_json=bad), asset_name=ASSET)
    (error,) = _errors(result)
    assert (error.rule, error.file) == ("merge.failed", "acquisition_ecephys.json")
    assert "acquisition_behavior.json" in error.message
    assert "SubjectDetails cannot be combined" in error.message


def test_whole_metadata_error(files: dict[str, bytes]) -> None:
    # Valid on its own, but Metadata requires subject details for an in-vivo acquisition.
    # (A wrong instrument_id is caught earlier now: merge.acquisition_instrument_id.)
    bad = _edit(files, "acquisition_behavior.json", lambda d: d.update(subject_details=None))
    result = assemble(_with(files, acquisition_behavior_json=bad), asset_name=ASSET)
    errors = _errors(result)
    assert [e.rule for e in errors] == ["metadata.invalid"]
    assert "subject_details" in errors[0].message
    assert not errors[0].message.startswith("[")
    assert result.metadata is None


def test_library_log_becomes_a_warning_not_log_noise(
    files: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    # Two overlapping streams naming the same active device: the library's DataStream "+" only
    # logs that it dropped the duplicate. (A device shared by two instruments, which it also
    # only logs, is our merge.shared_device error now.)
    def share_the_clock(doc: dict) -> None:
        doc["data_streams"][0]["active_devices"].append(sample.SHARED_CLOCK_NAME)

    bad = _edit(files, "acquisition_ecephys.json", share_the_clock)
    with caplog.at_level(logging.DEBUG):
        result = assemble(_with(files, acquisition_ecephys_json=bad), asset_name=ASSET)
    assert not [r for r in caplog.records if r.name.startswith("aind_data_schema")]
    library_logger = logging.getLogger("aind_data_schema")
    assert library_logger.propagate is True, "logger state restored after capture"
    assert library_logger.handlers == []
    # The shared clock is a DAQ device, which the library allows in both streams: its log
    # line names no file nor device and is not actionable, so it is dropped (issue 12 point 9;
    # a non-DAQ device is a warning naming both: tests/unit/metadata/test_messages.py).
    assert result.issues == []
    assert result.metadata is not None


def test_library_warning_names_the_file(files: dict[str, bytes]) -> None:
    def old_name(doc: dict) -> None:
        doc["coordinate_system"] = doc.pop("global_coordinate_system")

    bad = _edit(files, "instrument_ecephys.json", old_name)
    result = assemble(_with(files, instrument_ecephys_json=bad), asset_name=ASSET)
    assert _errors(result) == []
    (warning,) = result.issues
    assert (warning.rule, warning.file) == ("library.warning", "instrument_ecephys.json")
    assert "coordinate_system" in warning.message


def test_location_is_set(files: dict[str, bytes]) -> None:
    result = assemble(files, asset_name=ASSET, location="s3://archive/" + ASSET)
    assert result.metadata is not None
    assert result.metadata["location"] == "s3://archive/" + ASSET
