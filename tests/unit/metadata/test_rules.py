"""Merge rules that aind-data-schema 2.9.2 does not enforce, on real fixtures.

Every fixture starts from the sample session (valid by construction, sample.py) and is changed
as JSON, then checked to still validate on its own, so a failing case fails for the rule under
test and nothing else. Each rule has a passing and a failing case.
"""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, timedelta
from functools import reduce
from pathlib import Path

import pytest
from aind_data_schema.core.acquisition import Acquisition
from aind_data_schema.core.instrument import Instrument
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upload_processor.metadata import (
    Assembly,
    JobFacts,
    assemble,
    extra_type_of,
    metadata_type_of,
)
from upload_processor.metadata.validate import MODELS
from upload_processor_tools import sample
from upload_processor_tools.sample import build_session

ASSET = "750101_2025-06-12_15-03-00"
START = sample.DEFAULT_ACQ_DATETIME
END = START + timedelta(minutes=50)  # the sample's session length
JOB = JobFacts(subject_id="750101", modalities=("behavior", "ecephys"), acq_datetime=START)

VIDEO_INSTRUMENT_ID = "447-VIDEO-1"
THREE_IDS = "_".join(
    sorted([sample.BEHAVIOR_INSTRUMENT_ID, sample.ECEPHYS_INSTRUMENT_ID, VIDEO_INSTRUMENT_ID])
)

pytestmark = pytest.mark.filterwarnings("ignore:Deprecated. use .* instead:DeprecationWarning")


# --------------------------------------------------------------------------- fixtures


def _load(files: dict[str, bytes], name: str) -> dict:
    return json.loads(files[name])


def _dump(doc: dict) -> bytes:
    return json.dumps(doc, indent=2).encode()


def _edited(files: dict[str, bytes], name: str, change) -> dict[str, bytes]:
    """A copy of files with one file's JSON changed by change(doc)."""
    doc = _load(files, name)
    change(doc)
    return {**files, name: _dump(doc)}


def _valid_alone(name: str, raw: bytes) -> None:
    """A fixture must be valid on its own, so only the rule under test can fail."""
    core_type = metadata_type_of(name)
    assert core_type is not None
    MODELS[core_type].model_validate(json.loads(raw))


def _errors(result: Assembly) -> list:
    return [i for i in result.issues if i.severity == "error"]


def _rules(result: Assembly) -> list[str]:
    return [i.rule for i in _errors(result)]


def _device_names(instrument: dict) -> set[str]:
    """Every device name in a dumped instrument, nested ones included."""
    found: set[str] = set()

    def visit(value) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("name"), str) and "object_type" in value:
                found.add(value["name"])
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(instrument["components"])
    return found - {"BREGMA_ARI"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder: Path = build_session(tmp_path_factory.mktemp("rules") / "s", data_mb_per_modality=0)
    return {p.name: p.read_bytes() for p in folder.iterdir() if metadata_type_of(p.name)}


def _video_instrument(files: dict[str, bytes]) -> dict:
    """A third rig: the same shared Harp clock, a body camera and its own computer."""
    doc = _load(files, "instrument_behavior.json")
    clock, camera = doc["components"][0], copy.deepcopy(doc["components"][3])
    camera["name"] = "Body camera assembly"
    camera["target"] = "Body"
    camera["camera"]["name"] = "Body camera"
    camera["lens"]["name"] = "Body camera lens"
    doc["instrument_id"] = VIDEO_INSTRUMENT_ID
    doc["components"] = [
        clock,
        camera,
        {"object_type": "Computer", "name": "Video computer", "operating_system": "Linux"},
    ]
    return doc


def _video_acquisition(files: dict[str, bytes]) -> dict:
    """The third rig's acquisition: one behavior stream with the body camera."""
    doc = _load(files, "acquisition_ecephys.json")
    doc["instrument_id"] = VIDEO_INSTRUMENT_ID
    stream = doc["data_streams"][0]
    stream["modalities"] = [{"name": "Behavior", "abbreviation": "behavior"}]
    stream["active_devices"] = ["Body camera assembly"]
    stream["configurations"] = []
    return doc


@pytest.fixture(scope="module")
def three(files: dict[str, bytes]) -> dict[str, bytes]:
    """A valid session recorded on three instruments (three instrument and acquisition files)."""
    out = {
        **files,
        "instrument_video.json": _dump(_video_instrument(files)),
        "acquisition_video.json": _dump(_video_acquisition(files)),
    }
    for name in ("instrument_video.json", "acquisition_video.json"):
        _valid_alone(name, out[name])
    return out


def test_fixtures_are_valid(files: dict[str, bytes], three: dict[str, bytes]) -> None:
    for name, raw in three.items():
        _valid_alone(name, raw)
    assert assemble(files, asset_name=ASSET, job=JOB).issues == []
    result = assemble(three, asset_name=ASSET, job=JOB)
    assert result.issues == []
    assert result.metadata is not None
    assert result.metadata["instrument"]["instrument_id"] == THREE_IDS
    assert result.metadata["acquisition"]["instrument_id"] == THREE_IDS


# --------------------------------------------------------------------------- API


def test_job_facts_need_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        JobFacts(
            subject_id="750101", modalities=("behavior",), acq_datetime=START.replace(tzinfo=None)
        )
    facts = JobFacts(subject_id="750101", modalities=["behavior"], acq_datetime=START)  # type: ignore[arg-type]
    assert facts.modalities == ("behavior",)
    assert facts.file == "upload_job.json"


@pytest.mark.parametrize(
    ("label", "core_type"),
    [
        ("instrument@registry:447-EPHYS-1", "instrument"),
        ("subject@service:750101", "subject"),
        ("procedures@service:750101", "procedures"),
        ("data_description@generated", "data_description"),
    ],
)
def test_extra_label_convention(label: str, core_type: str) -> None:
    assert extra_type_of(label) == core_type


@pytest.mark.parametrize(
    "label", ["instrument", "registry:447-EPHYS-1", "instrument@", "rig@registry:1", "@x"]
)
def test_bad_extra_label_is_the_callers_bug(files: dict[str, bytes], label: str) -> None:
    with pytest.raises(ValueError, match="<core type>@<source>"):
        assemble(files, asset_name=ASSET, extra={label: {}})


def test_extra_label_may_not_shadow_a_file(files: dict[str, bytes]) -> None:
    staged = {**files, "subject@x.json": files["subject.json"]}
    with pytest.raises(ValueError, match="staged file"):
        assemble(staged, asset_name=ASSET, extra={"subject@x.json": {}})


# --------------------------------------------------------------------------- rule 3: devices


def test_shared_identical_clock_is_allowed(files: dict[str, bytes]) -> None:
    result = assemble(files, asset_name=ASSET)
    assert _errors(result) == []
    names = [c["name"] for c in result.core["instrument"]["components"]]
    assert names.count(sample.SHARED_CLOCK_NAME) == 1


def test_shared_top_level_device_is_an_error(files: dict[str, bytes]) -> None:
    def add_computer(doc: dict) -> None:
        doc["components"].append({"object_type": "Computer", "name": "Behavior computer"})

    staged = _edited(files, "instrument_ecephys.json", add_computer)
    _valid_alone("instrument_ecephys.json", staged["instrument_ecephys.json"])
    result = assemble(staged, asset_name=ASSET)
    (error,) = _errors(result)
    assert (error.rule, error.file, error.field) == (
        "merge.shared_device",
        "instrument_ecephys.json",
        "components.4",
    )
    assert error.message.startswith(
        "instrument_ecephys.json and instrument_behavior.json both define device "
        "'Behavior computer'"
    )
    assert "only one Harp clock generator" in error.message
    assert "it is a Computer, not a HarpDevice" in error.message
    assert "rename the device or move it into one instrument" in error.message
    assert "instrument" not in result.core
    assert result.metadata is None
    assert not [i for i in result.issues if i.rule == "library.warning"], "no log echo"


def test_harp_that_is_not_a_clock_in_one_file_is_an_error(files: dict[str, bytes]) -> None:
    staged = _edited(
        files,
        "instrument_ecephys.json",
        lambda d: d["components"][0].update(is_clock_generator=False),
    )
    (error,) = _errors(assemble(staged, asset_name=ASSET))
    assert (error.rule, error.field) == ("merge.shared_device", "components.0")
    assert "'Harp Behavior'" in error.message
    assert "in instrument_ecephys.json it is not a clock generator" in error.message


@pytest.mark.parametrize(
    ("rename", "field", "other_path"),
    [
        # a top-level-in-one, nested-in-the-other clash: the manipulator takes a camera's name
        (
            lambda d: d["components"][2]["manipulator"].update(name="Face camera"),
            "components.2.manipulator",
            "components.3.camera",
        ),
        # nested in both: a probe's headstage named like a lick spout's sensor
        (
            lambda d: d["components"][2]["probes"][0]["headstage"].update(name="Left lick sensor"),
            "components.2.probes.0.headstage",
            "components.1.lick_spouts.0.lick_sensor",
        ),
        # an assembly named like a device nested in the other instrument
        (
            lambda d: d["components"][2].update(name="Right lick spout"),
            "components.2",
            "components.1.lick_spouts.1",
        ),
    ],
)
def test_nested_device_clash_is_an_error(
    files: dict[str, bytes], rename, field: str, other_path: str
) -> None:
    staged = _edited(files, "instrument_ecephys.json", rename)
    _valid_alone("instrument_ecephys.json", staged["instrument_ecephys.json"])
    result = assemble(staged, asset_name=ASSET)
    (error,) = _errors(result)
    assert (error.rule, error.file, error.field) == (
        "merge.shared_device",
        "instrument_ecephys.json",
        field,
    )
    assert f"instrument_behavior.json: {other_path}" in error.message
    assert "sits inside another component" in error.message


def test_library_alone_misses_the_nested_clash(files: dict[str, bytes]) -> None:
    """Library fact: Instrument.__add__ compares top-level names only, and keeps both."""
    staged = _edited(
        files,
        "instrument_ecephys.json",
        lambda d: d["components"][2]["manipulator"].update(name="Face camera"),
    )
    behavior = Instrument.model_validate_json(staged["instrument_behavior.json"])
    ecephys = Instrument.model_validate_json(staged["instrument_ecephys.json"])
    names = (behavior + ecephys).get_component_names()
    assert names.count("Face camera") == 2


def test_two_shared_clocks_are_an_error(files: dict[str, bytes]) -> None:
    def second_clock(doc: dict) -> None:
        clock = copy.deepcopy(doc["components"][0])
        clock.update(name="Harp Sound Card", serial_number="SC-000311")
        doc["components"].append(clock)

    staged = _edited(files, "instrument_behavior.json", second_clock)
    staged = _edited(staged, "instrument_ecephys.json", second_clock)
    # issue 12 point 9: only the second clock is blamed, not the rig's clock listed first
    (error,) = _errors(assemble(staged, asset_name=ASSET))
    assert (error.rule, error.file) == ("merge.shared_device", "instrument_ecephys.json")
    assert "device 'Harp Sound Card'" in error.message
    assert "'Harp Behavior'" in error.message  # named as the one shared clock, not blamed
    assert "already share the clock generator 'Harp Behavior'" in error.message
    assert error.field == "components.4"


# --------------------------------------------------------------------------- rule 3: the clock


def test_clock_copies_that_differ_are_an_error(files: dict[str, bytes]) -> None:
    staged = _edited(
        files,
        "instrument_ecephys.json",
        lambda d: d["components"][0].update(firmware_version="3.2"),
    )
    result = assemble(staged, asset_name=ASSET)
    (error,) = _errors(result)
    assert (error.rule, error.file, error.field) == (
        "merge.clock_mismatch",
        "instrument_ecephys.json",
        "components.0.firmware_version",
    )
    assert "'Harp Behavior'" in error.message
    assert 'firmware_version "3.2" here, "3.1" in instrument_behavior.json' in error.message
    assert result.metadata is None


def test_library_alone_does_not_compare_the_clocks(files: dict[str, bytes]) -> None:
    """Library fact: Instrument.__add__ keeps the first clock and drops the other silently."""
    staged = _edited(
        files,
        "instrument_ecephys.json",
        lambda d: d["components"][0].update(firmware_version="3.2"),
    )
    behavior = Instrument.model_validate_json(staged["instrument_behavior.json"])
    ecephys = Instrument.model_validate_json(staged["instrument_ecephys.json"])
    merged = ecephys + behavior
    clocks = [c for c in merged.components if c.name == sample.SHARED_CLOCK_NAME]
    assert [c.firmware_version for c in clocks] == ["3.2"]


def test_clock_mismatch_in_the_third_file(three: dict[str, bytes]) -> None:
    staged = _edited(
        three, "instrument_video.json", lambda d: d["components"][0].update(serial_number="HB-9")
    )
    errors = _errors(assemble(staged, asset_name=ASSET))
    assert [(e.rule, e.file) for e in errors] == [("merge.clock_mismatch", "instrument_video.json")]


# --------------------------------------------------------------------------- 3+ instruments

INSTRUMENT_NAMES = ("instrument_a.json", "instrument_b.json", "instrument_c.json")


def _instruments_renamed(three: dict[str, bytes], order: tuple[str, ...]) -> dict[str, bytes]:
    """The three-rig session with the instrument contents given under INSTRUMENT_NAMES."""
    out = {k: v for k, v in three.items() if not k.startswith("instrument")}
    for name, source in zip(INSTRUMENT_NAMES, order, strict=True):
        out[name] = three[source]
    return out


THREE_INSTRUMENTS = ("instrument_behavior.json", "instrument_ecephys.json", "instrument_video.json")


def test_library_instrument_id_depends_on_merge_order(three: dict[str, bytes]) -> None:
    """Library fact: pairwise merge_str_alphabetical gives an order-dependent id for 3+."""
    models = [Instrument.model_validate_json(three[n]) for n in THREE_INSTRUMENTS]
    ids = {
        reduce(lambda a, b: a + b, order).instrument_id for order in itertools.permutations(models)
    }
    assert len(ids) > 1
    assert THREE_IDS in ids


def test_three_instruments_in_every_order(three: dict[str, bytes]) -> None:
    results = []
    for order in itertools.permutations(THREE_INSTRUMENTS):
        result = assemble(_instruments_renamed(three, order), asset_name=ASSET, job=JOB)
        assert _errors(result) == [], order
        assert result.metadata is not None
        results.append(result)
    ids = {r.core["instrument"]["instrument_id"] for r in results}
    acquisition_ids = {r.core["acquisition"]["instrument_id"] for r in results}
    devices = {frozenset(_device_names(r.core["instrument"])) for r in results}
    assert ids == acquisition_ids == {THREE_IDS}
    assert len(devices) == 1
    (names,) = devices
    assert {sample.SHARED_CLOCK_NAME, "Body camera", "Probe A", "Face camera"} <= names
    # Everything but the order of merged lists (it follows the file names) is the same.
    normalised = {
        json.dumps(
            {
                **r.core["instrument"],
                "components": sorted(r.core["instrument"]["components"], key=str),
            },
            sort_keys=True,
        )
        for r in results
    }
    assert len(normalised) == 1


def test_shared_device_among_three_instruments_in_every_order(three: dict[str, bytes]) -> None:
    speaker = _load(three, "instrument_behavior.json")["components"][2]
    assert speaker["name"] == "Go cue speaker"

    def add_speaker(doc: dict) -> None:
        doc["components"].append(speaker)

    staged = _edited(three, "instrument_video.json", add_speaker)
    _valid_alone("instrument_video.json", staged["instrument_video.json"])
    for order in itertools.permutations(THREE_INSTRUMENTS):
        renamed = _instruments_renamed(staged, order)
        holders = sorted(
            n
            for n, src in zip(INSTRUMENT_NAMES, order, strict=True)
            if src != "instrument_ecephys.json"
        )
        result = assemble(renamed, asset_name=ASSET)
        (error,) = _errors(result)
        assert error.rule == "merge.shared_device"
        assert error.file == holders[-1]
        assert error.message.startswith(
            f"{holders[-1]} and {holders[0]} both define device 'Go cue speaker'"
        ), order
        assert "instrument" not in result.core


# --------------------------------------------------------------------------- rule 2: subject_id


@pytest.mark.parametrize(
    "name",
    [
        "subject.json",
        "procedures.json",
        "data_description.json",
        "acquisition_behavior.json",
        "acquisition_ecephys.json",
    ],
)
def test_one_file_with_another_subject(files: dict[str, bytes], name: str) -> None:
    staged = _edited(files, name, lambda d: d.update(subject_id="750102"))
    _valid_alone(name, staged[name])
    result = assemble(staged, asset_name=ASSET, job=JOB)
    (error,) = _errors(result)
    assert (error.rule, error.file, error.field) == (
        "merge.subject_id_mismatch",
        name,
        "subject_id",
    )
    assert "'750102'" in error.message and "'750101'" in error.message
    assert "upload_job.json" in error.message


def test_job_with_another_subject_is_the_one_blamed(files: dict[str, bytes]) -> None:
    job = JobFacts(subject_id="750102", modalities=JOB.modalities, acq_datetime=START)
    (error,) = _errors(assemble(files, asset_name=ASSET, job=job))
    assert (error.rule, error.file, error.field) == (
        "merge.subject_id_mismatch",
        "upload_job.json",
        "subject_id",
    )
    for name in ("subject.json", "procedures.json", "acquisition_ecephys.json"):
        assert name in error.message


def test_subject_id_agrees_everywhere(files: dict[str, bytes]) -> None:
    assert _errors(assemble(files, asset_name=ASSET, job=JOB)) == []


# --------------------------------------------------------------------------- modalities


@pytest.mark.parametrize(
    ("modalities", "undeclared", "unrecorded"),
    [
        (("behavior",), "'ecephys'", None),
        (("behavior", "ecephys", "fib"), None, "'fib'"),
        (("ecephys", "pophys"), "'behavior'", "'pophys'"),
    ],
)
def test_job_modalities_against_the_streams(
    files: dict[str, bytes], modalities: tuple[str, ...], undeclared, unrecorded
) -> None:
    """A recorded modality the job does not declare is an error; a declared one that no
    stream records is a warning (issue 12: AIND's own records list such modalities)."""
    job = JobFacts(subject_id="750101", modalities=modalities, acq_datetime=START)
    result = assemble(files, asset_name=ASSET, job=job)
    errors = [(e.rule, e.file, e.field) for e in _errors(result)]
    warnings = [i for i in result.issues if i.rule == "merge.modality_without_stream"]
    if undeclared:
        assert errors == [("merge.modalities_mismatch", "upload_job.json", "modalities")]
        assert f"also record {undeclared}" in _errors(result)[0].message
    else:
        assert errors == []
    if unrecorded:
        (warning,) = warnings
        assert (warning.severity, warning.file) == ("warning", "upload_job.json")
        assert f"declares {unrecorded}, but no data stream" in warning.message
    else:
        assert warnings == []


def test_job_modalities_in_any_order_pass(files: dict[str, bytes]) -> None:
    job = JobFacts(subject_id="750101", modalities=("ecephys", "behavior"), acq_datetime=START)
    assert _errors(assemble(files, asset_name=ASSET, job=job)) == []


def test_without_a_job_the_job_checks_are_skipped(files: dict[str, bytes]) -> None:
    # Neither the job's modalities nor its subject nor its time can be compared: no job.
    assert _errors(assemble(files, asset_name=ASSET, job=None)) == []


def test_stream_modality_the_instrument_does_not_declare(files: dict[str, bytes]) -> None:
    behavior = {"name": "Behavior", "abbreviation": "behavior"}
    staged = _edited(files, "instrument_ecephys.json", lambda d: d.update(modalities=[behavior]))
    _valid_alone("instrument_ecephys.json", staged["instrument_ecephys.json"])
    (error,) = _errors(assemble(staged, asset_name=ASSET, job=JOB))
    assert (error.rule, error.file, error.field) == (
        "merge.modalities_mismatch",
        "acquisition_ecephys.json",
        "data_streams.0.modalities",
    )
    assert "'ecephys'" in error.message and "instrument_behavior.json" in error.message


def test_data_description_modalities_must_match_the_streams(files: dict[str, bytes]) -> None:
    staged = _edited(files, "data_description.json", lambda d: d["modalities"].pop())
    _valid_alone("data_description.json", staged["data_description.json"])
    (error,) = _errors(assemble(staged, asset_name=ASSET))
    assert (error.rule, error.file, error.field) == (
        "merge.modalities_mismatch",
        "data_description.json",
        "modalities",
    )


def test_data_description_that_follows_a_wrong_job_is_not_blamed_twice(
    files: dict[str, bytes],
) -> None:
    staged = _edited(files, "data_description.json", lambda d: d["modalities"].pop())
    job = JobFacts(subject_id="750101", modalities=("behavior",), acq_datetime=START)
    (error,) = _errors(assemble(staged, asset_name=ASSET, job=job))
    assert (error.rule, error.file) == ("merge.modalities_mismatch", "upload_job.json")


# --------------------------------------------------------------------------- instrument_id


def test_acquisition_naming_an_unknown_instrument(files: dict[str, bytes]) -> None:
    staged = _edited(
        files, "acquisition_ecephys.json", lambda d: d.update(instrument_id="ELSEWHERE")
    )
    result = assemble(staged, asset_name=ASSET)
    (error,) = _errors(result)
    assert (error.rule, error.file, error.field) == (
        "merge.acquisition_instrument_id",
        "acquisition_ecephys.json",
        "instrument_id",
    )
    assert "'ELSEWHERE'" in error.message and sample.MERGED_INSTRUMENT_ID in error.message
    assert "no acquisition names instrument_ecephys.json's '447-EPHYS-1'" in error.message


def test_instrument_no_acquisition_names(three: dict[str, bytes]) -> None:
    staged = {k: v for k, v in three.items() if k != "acquisition_video.json"}
    (error,) = _errors(assemble(staged, asset_name=ASSET))
    assert (error.rule, error.file) == ("merge.acquisition_instrument_id", "instrument_video.json")
    assert "no acquisition names it" in error.message


def test_single_acquisition_may_name_the_merged_id(files: dict[str, bytes]) -> None:
    merged = assemble(files, asset_name=ASSET).core["acquisition"]
    staged = {k: v for k, v in files.items() if not k.startswith("acquisition")}
    staged["acquisition.json"] = _dump(merged)
    result = assemble(staged, asset_name=ASSET, job=JOB)
    assert _errors(result) == []
    assert result.metadata is not None


def test_mixing_own_and_merged_ids_is_an_error(three: dict[str, bytes]) -> None:
    staged = _edited(
        three,
        "acquisition_video.json",
        lambda d: d.update(instrument_id=sample.MERGED_INSTRUMENT_ID),
    )
    staged = {k: v for k, v in staged.items() if k != "instrument_video.json"}
    (error,) = _errors(assemble(staged, asset_name=ASSET))
    assert error.rule == "merge.acquisition_instrument_id"
    assert "sorted unique ids" in error.message


# --------------------------------------------------------------------------- acq_datetime


@pytest.mark.parametrize(
    "when",
    [
        START,
        END,
        START + timedelta(minutes=20),
        START.astimezone(UTC),  # the same instant in another offset
    ],
)
def test_acq_datetime_within_the_acquisition(files: dict[str, bytes], when) -> None:
    job = JobFacts(subject_id="750101", modalities=JOB.modalities, acq_datetime=when)
    assert _errors(assemble(files, asset_name=ASSET, job=job)) == []


@pytest.mark.parametrize(
    ("when", "side"),
    [
        (START - timedelta(seconds=1), "before the acquisition starts"),
        (END + timedelta(seconds=1), "after the acquisition ends"),
        (START.replace(tzinfo=UTC), "before the acquisition starts"),  # 7 h early
    ],
)
def test_acq_datetime_outside_the_acquisition(files: dict[str, bytes], when, side: str) -> None:
    job = JobFacts(subject_id="750101", modalities=JOB.modalities, acq_datetime=when)
    (error,) = _errors(assemble(files, asset_name=ASSET, job=job))
    assert (error.rule, error.file, error.field) == (
        "merge.acq_datetime_outside",
        "upload_job.json",
        "acq_datetime",
    )
    assert side in error.message


# --------------------------------------------------------------------------- time zone


def _zones(files: dict[str, bytes], **zones) -> dict[str, bytes]:
    """files with acquisition_<key>.json's acquisition_start_tz set to the value."""
    out = dict(files)
    for key, zone in zones.items():
        name = f"acquisition_{key}.json"
        out = _edited(out, name, lambda d, z=zone: d.update(acquisition_start_tz=z))
        _valid_alone(name, out[name])
    return out


def test_library_alone_loses_the_named_zone(files: dict[str, bytes]) -> None:
    staged = _zones(files, behavior="America/Los_Angeles", ecephys="America/Los_Angeles")
    behavior = Acquisition.model_validate_json(staged["acquisition_behavior.json"])
    ecephys = Acquisition.model_validate_json(staged["acquisition_ecephys.json"])
    assert (behavior + ecephys).acquisition_start_tz == -7


@pytest.mark.parametrize(
    "zones",
    [
        {"behavior": "America/Los_Angeles", "ecephys": "America/Los_Angeles"},
        {"behavior": "America/Los_Angeles", "ecephys": -7},
        {"behavior": -7, "ecephys": "America/Los_Angeles"},
    ],
)
def test_named_zone_is_kept(files: dict[str, bytes], zones: dict) -> None:
    result = assemble(_zones(files, **zones), asset_name=ASSET, job=JOB)
    assert _errors(result) == []
    assert result.core["acquisition"]["acquisition_start_tz"] == "America/Los_Angeles"
    assert result.metadata is not None
    assert result.metadata["acquisition"]["acquisition_start_tz"] == "America/Los_Angeles"


def test_fixed_offsets_stay_fixed(files: dict[str, bytes]) -> None:
    result = assemble(files, asset_name=ASSET)
    assert result.core["acquisition"]["acquisition_start_tz"] == -7


@pytest.mark.parametrize(
    ("zones", "text"),
    [
        (
            {"behavior": "America/Los_Angeles", "ecephys": "America/Denver"},
            "names the time zone 'America/Denver' but acquisition_behavior.json names "
            "'America/Los_Angeles'",
        ),
        (
            {"behavior": "America/Los_Angeles", "ecephys": -5},
            "gives the fixed UTC offset -5 h",
        ),
    ],
)
def test_zone_that_cannot_be_kept(files: dict[str, bytes], zones: dict, text: str) -> None:
    (error,) = _errors(assemble(_zones(files, **zones), asset_name=ASSET))
    assert (error.rule, error.file, error.field) == (
        "merge.time_zone_lost",
        "acquisition_ecephys.json",
        "acquisition_start_tz",
    )
    assert text in error.message


# --------------------------------------------------------------------------- one file


def test_library_silently_rewrites_schema_version(files: dict[str, bytes]) -> None:
    """Library fact: a wrong schema_version validates and is replaced by the model's."""
    doc = _load(files, "instrument_behavior.json")
    doc["schema_version"] = "1.0.0"
    assert Instrument.model_validate(doc).schema_version == "2.2.8"


def test_missing_schema_version_is_accepted(files: dict[str, bytes]) -> None:
    staged = _edited(files, "subject.json", lambda d: d.pop("schema_version"))
    assert _errors(assemble(staged, asset_name=ASSET)) == []


BROKEN = {
    "malformed": (lambda raw: raw[:-5], "json.malformed"),
    "empty": (lambda raw: b"", "json.empty"),
    "not an object": (lambda raw: b"[" + raw + b"]", "json.not_object"),
    "unknown field": (
        lambda raw: _dump({**json.loads(raw), "favourite_colour": "blue"}),
        "schema.invalid",
    ),
    "wrong schema_version": (
        lambda raw: _dump({**json.loads(raw), "schema_version": "0.9.0"}),
        "schema.version_mismatch",
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.parametrize(
    "name",
    [
        "instrument_ecephys.json",
        "acquisition_behavior.json",
        "procedures.json",
        "data_description.json",
    ],
)
def test_broken_file_is_a_report_entry_naming_it(
    files: dict[str, bytes], name: str, kind: str
) -> None:
    breaker, rule = BROKEN[kind]
    result = assemble({**files, name: breaker(files[name])}, asset_name=ASSET, job=JOB)
    errors = _errors(result)
    assert [(e.rule, e.file) for e in errors] == [(rule, name)]
    assert name in errors[0].message
    if kind == "wrong schema_version":
        assert errors[0].field == "schema_version"
        assert "0.9.0" in errors[0].message
    if kind == "unknown field":
        assert errors[0].field == "favourite_colour"
    assert result.metadata is None


def test_unknown_nested_field_is_flagged(files: dict[str, bytes]) -> None:
    staged = _edited(
        files, "instrument_ecephys.json", lambda d: d["components"][0].update(colour="red")
    )
    (error,) = _errors(assemble(staged, asset_name=ASSET))
    assert (error.rule, error.file) == ("schema.invalid", "instrument_ecephys.json")
    assert error.field == "components.0.Harp device.colour"


# --------------------------------------------------------------------------- data description


def test_data_description_name_must_be_the_asset_name(files: dict[str, bytes]) -> None:
    other = "750101_2025-06-12_15-04-00"
    staged = _edited(files, "data_description.json", lambda d: d.update(name=other))
    _valid_alone("data_description.json", staged["data_description.json"])
    (error,) = _errors(assemble(staged, asset_name=ASSET))
    assert (error.rule, error.file, error.field) == (
        "data_description.name_mismatch",
        "data_description.json",
        "name",
    )
    assert other in error.message and ASSET in error.message


def test_data_description_of_another_asset(files: dict[str, bytes]) -> None:
    (error,) = _errors(assemble(files, asset_name="ecephys_" + ASSET))
    assert error.rule == "data_description.name_mismatch"


# --------------------------------------------------------------------------- extra sources


def test_registered_instrument_joins_the_merge(files: dict[str, bytes]) -> None:
    label = f"instrument@registry:{sample.ECEPHYS_INSTRUMENT_ID}"
    registered = json.loads(files["instrument_ecephys.json"])
    kept = copy.deepcopy(registered)
    staged = {k: v for k, v in files.items() if k != "instrument_ecephys.json"}
    result = assemble(staged, asset_name=ASSET, job=JOB, extra={label: registered})
    assert _errors(result) == []
    assert result.metadata is not None
    assert result.merged_from.instrument == [label, "instrument_behavior.json"]
    assert result.core["instrument"]["instrument_id"] == sample.MERGED_INSTRUMENT_ID
    whole = assemble(files, asset_name=ASSET).core["instrument"]
    assert _device_names(result.core["instrument"]) == _device_names(whole)
    assert registered == kept, "the caller's dict is not modified"


def test_registered_instrument_clash_names_the_label(files: dict[str, bytes]) -> None:
    label = "instrument@registry:447-FORAGING-2"
    twin = {**json.loads(files["instrument_behavior.json"]), "instrument_id": "447-FORAGING-2"}
    errors = _errors(assemble(files, asset_name=ASSET, extra={label: twin}))
    shared = [e for e in errors if e.rule == "merge.shared_device"]
    assert shared and all(label in e.message for e in shared)


def test_broken_extra_is_a_report_entry_naming_the_label(files: dict[str, bytes]) -> None:
    label = "instrument@registry:447-X"
    result = assemble(files, asset_name=ASSET, extra={label: {"instrument_id": "447-X"}})
    errors = _errors(result)
    assert errors and {e.file for e in errors} == {label}
    assert {e.rule for e in errors} == {"schema.invalid"}
    (error,) = _errors(assemble(files, asset_name=ASSET, extra={label: [1]}))  # type: ignore[dict-item]
    assert (error.rule, error.file) == ("json.not_object", label)


def test_service_subject_used_when_none_is_staged(files: dict[str, bytes]) -> None:
    label = "subject@service:750101"
    staged = {k: v for k, v in files.items() if k != "subject.json"}
    result = assemble(
        staged, asset_name=ASSET, job=JOB, extra={label: _load(files, "subject.json")}
    )
    assert _errors(result) == []
    assert result.core["subject"] == json.loads(files["subject.json"])


def test_service_subject_ignored_when_one_is_staged(files: dict[str, bytes]) -> None:
    other = {**_load(files, "subject.json"), "subject_id": "999999"}
    result = assemble(files, asset_name=ASSET, job=JOB, extra={"subject@service:999999": other})
    assert _errors(result) == []
    assert result.core["subject"]["subject_id"] == "750101"


def test_service_subject_is_checked_like_a_file(files: dict[str, bytes]) -> None:
    label = "subject@service:750102"
    staged = {k: v for k, v in files.items() if k != "subject.json"}
    other = {**_load(files, "subject.json"), "subject_id": "750102"}
    (error,) = _errors(assemble(staged, asset_name=ASSET, job=JOB, extra={label: other}))
    assert (error.rule, error.file) == ("merge.subject_id_mismatch", label)


def _training(files: dict[str, bytes]) -> dict:
    """The service's procedures: another surgery (an injection-free implant a week later)."""
    doc = _load(files, "procedures.json")
    surgery = copy.deepcopy(doc["subject_procedures"][0])
    surgery["start_date"] = "2025-05-29"
    surgery["procedures"] = surgery["procedures"][1:]  # the craniotomy only
    doc["subject_procedures"] = [surgery]
    return doc


def test_staged_and_service_procedures_are_merged(files: dict[str, bytes]) -> None:
    service = _training(files)
    MODELS["procedures"].model_validate(copy.deepcopy(service))
    result = assemble(
        files, asset_name=ASSET, job=JOB, extra={"procedures@service:750101": service}
    )
    assert _errors(result) == []
    dates = [p["start_date"] for p in result.core["procedures"]["subject_procedures"]]
    assert dates == ["2025-05-22", "2025-05-29"]  # the staged file first
    assert result.metadata is not None


def test_procedure_in_both_is_a_duplicate(files: dict[str, bytes]) -> None:
    label = "procedures@service:750101"
    service = _training(files)
    service["subject_procedures"].insert(
        0, _load(files, "procedures.json")["subject_procedures"][0]
    )
    result = assemble(files, asset_name=ASSET, extra={label: service})
    (error,) = _errors(result)
    assert (error.rule, error.file, error.field) == (
        "procedures.duplicate",
        "procedures.json",
        "subject_procedures.0",
    )
    assert label in error.message and "Surgery of 2025-05-22" in error.message
    dates = [p["start_date"] for p in result.core["procedures"]["subject_procedures"]]
    assert dates == ["2025-05-22", "2025-05-29"], "kept once"


def test_service_procedures_alone(files: dict[str, bytes]) -> None:
    staged = {k: v for k, v in files.items() if k != "procedures.json"}
    extra = {"procedures@service:750101": _load(files, "procedures.json")}
    assert _errors(assemble(staged, asset_name=ASSET, extra=extra)) == []


# --------------------------------------------------------------------------- order (hypothesis)

_FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _same(a: Assembly, b: Assembly) -> None:
    assert a.core == b.core
    assert a.merged_from == b.merged_from
    assert a.issues == b.issues
    assert a.metadata == b.metadata


@_FAST
@given(data=st.data())
def test_result_does_not_depend_on_file_order(three: dict[str, bytes], data: st.DataObject) -> None:
    """Any subset of the files, listed in any order, assembles exactly like its sorted listing."""
    names = sorted(three)
    left_out = data.draw(st.sets(st.sampled_from(names), max_size=3), label="left out")
    chosen = [n for n in names if n not in left_out]
    shuffled = data.draw(st.permutations(chosen), label="order")
    baseline = assemble({n: three[n] for n in chosen}, asset_name=ASSET, job=JOB)
    _same(assemble({n: three[n] for n in shuffled}, asset_name=ASSET, job=JOB), baseline)


@_FAST
@given(order=st.permutations(THREE_INSTRUMENTS), acquisitions=st.permutations(range(3)))
def test_which_file_holds_which_rig_does_not_change_the_merge(
    three: dict[str, bytes], order: list[str], acquisitions: list[int]
) -> None:
    """Contents moved between file names: same ids, devices, streams, verdict."""
    staged = _instruments_renamed(three, tuple(order))
    sources = ["acquisition_behavior.json", "acquisition_ecephys.json", "acquisition_video.json"]
    staged = {k: v for k, v in staged.items() if not k.startswith("acquisition")}
    for i, j in enumerate(acquisitions):
        staged[f"acquisition_{i}.json"] = three[sources[j]]
    result = assemble(staged, asset_name=ASSET, job=JOB)
    assert _errors(result) == []
    assert result.core["instrument"]["instrument_id"] == THREE_IDS
    assert result.core["acquisition"]["instrument_id"] == THREE_IDS
    assert _device_names(result.core["instrument"]) == _device_names(
        assemble(three, asset_name=ASSET).core["instrument"]
    )
    streams = result.core["acquisition"]["data_streams"]
    assert {m["abbreviation"] for s in streams for m in s["modalities"]} == {"behavior", "ecephys"}


@_FAST
@given(data=st.data())
def test_extras_and_files_in_any_order(files: dict[str, bytes], data: st.DataObject) -> None:
    """The registered instrument and service subject: the insertion order of both dicts."""
    extra = {
        f"instrument@registry:{sample.ECEPHYS_INSTRUMENT_ID}": _load(
            files, "instrument_ecephys.json"
        ),
        "subject@service:750101": _load(files, "subject.json"),
    }
    staged = {
        k: v for k, v in files.items() if k not in ("instrument_ecephys.json", "subject.json")
    }
    baseline = assemble(staged, asset_name=ASSET, job=JOB, extra=extra)
    assert _errors(baseline) == []
    staged_order = data.draw(st.permutations(sorted(staged)))
    extra_order = data.draw(st.permutations(sorted(extra)))
    again = assemble(
        {n: staged[n] for n in staged_order},
        asset_name=ASSET,
        job=JOB,
        extra={k: extra[k] for k in extra_order},
    )
    _same(again, baseline)
