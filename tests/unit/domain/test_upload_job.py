"""upload_job.json parsing: the UploadJobConfigsV2-compatible contract (docs/architecture.md)."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aind_data_schema_models.modalities import Modality
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upload_processor.domain.upload_job import (
    IGNORED_TASK_FIELDS,
    JOB_FILENAME,
    MAX_JOB_BYTES,
    UploadJob,
    parse_upload_job,
)
from upload_processor.errors import UploadJobError

# The minimal example of the README, verbatim.
MINIMAL: dict[str, Any] = {
    "job_type": "default",
    "project_name": "Example Foraging Project",
    "subject_id": "750101",
    "acq_datetime": "2025-06-12T15:03:00-07:00",
    "modalities": ["behavior", "ecephys"],
    "user_email": "scientist@example.org",
}
REQUIRED = ("job_type", "project_name", "subject_id", "acq_datetime", "modalities")
ABBREVIATIONS = sorted(m().abbreviation for m in Modality.ALL)
KNOWN_RULES = {
    "job.too_large",
    "job.empty",
    "job.malformed",
    "job.not_object",
    "job.naive_datetime",
    "job.unknown_field",
    "job.missing_field",
    "job.invalid_field",
    "job.duplicate_key",
    "job.not_finite",
    "job.forbidden_setting",
}


def _raw(data: Any) -> bytes:
    return json.dumps(data).encode()


def _job(**changes: Any) -> dict[str, Any]:
    """MINIMAL with changes; a value of ... removes the field."""
    out = dict(MINIMAL)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _parse(data: Any, **kwargs: Any) -> tuple[UploadJob, list[Any]]:
    return parse_upload_job(data if isinstance(data, bytes) else _raw(data), **kwargs)


def _fails(data: Any, **kwargs: Any) -> UploadJobError:
    with pytest.raises(UploadJobError) as caught:
        _parse(data, **kwargs)
    err = caught.value
    assert err.issues, "every rejection carries at least one issue"
    for issue in err.issues:
        assert issue.severity == "error"
        assert issue.rule in KNOWN_RULES
        assert issue.message
    return err


# --- the minimal example ---------------------------------------------------------------------


def test_design_minimal_example_parses() -> None:
    job, notes = _parse(MINIMAL)
    assert notes == []
    assert job.job_type == "default"
    assert job.project_name == "Example Foraging Project"
    assert job.subject_id == "750101"
    assert job.acq_datetime == datetime(2025, 6, 12, 22, 3, tzinfo=UTC)
    assert job.acq_datetime.utcoffset() == timedelta(hours=-7)
    assert job.modalities == ["behavior", "ecephys"]
    assert job.user_email == "scientist@example.org"
    assert job.platform is None
    assert job.email_notification_types == {"fail"}
    assert job.s3_bucket == "default"
    assert job.tasks == {}


def test_email_notification_types_default_is_fail_only() -> None:
    job, _ = _parse(_job(user_email=...))
    assert job.email_notification_types == {"fail"}
    assert job.user_email is None


@pytest.mark.parametrize(
    ("given_types", "expected"),
    [
        (["begin", "end"], {"begin", "end"}),
        (["all"], {"all"}),
        (["fail", "fail", "retry"], {"fail", "retry"}),
    ],
)
def test_email_notification_types_given(given_types: list[str], expected: set[str]) -> None:
    job, _ = _parse(_job(email_notification_types=given_types))
    assert job.email_notification_types == expected


def test_email_notification_type_unknown_is_an_error() -> None:
    err = _fails(_job(email_notification_types=["fail", "sometimes"]))
    assert [i.rule for i in err.issues] == ["job.invalid_field"]
    assert err.issues[0].field.startswith("email_notification_types")


@pytest.mark.parametrize("bucket", ["private", "open", "default"])
def test_s3_bucket_values(bucket: str) -> None:
    assert _parse(_job(s3_bucket=bucket))[0].s3_bucket == bucket


def test_s3_bucket_unknown_is_an_error() -> None:
    err = _fails(_job(s3_bucket="scratch"))
    assert err.issues[0].field == "s3_bucket"


# --- modalities and platform -------------------------------------------------------------------


def _dumped(modality: Any) -> dict[str, Any]:
    """What aind-data-transfer-service's model_dump(mode="json") writes for a modality."""
    return modality.model_dump(mode="json")


@pytest.mark.parametrize(
    ("modalities", "expected"),
    [
        (["behavior", "ecephys"], ["behavior", "ecephys"]),
        (["ECEPHYS"], ["ecephys"]),
        (["Behavior-Videos"], ["behavior-videos"]),
        (["fmost", "spim", "barseq"], ["fMOST", "SPIM", "BARseq"]),
        ([_dumped(Modality.ECEPHYS), _dumped(Modality.BEHAVIOR)], ["ecephys", "behavior"]),
        ([{"name": "Behavior", "abbreviation": "behavior"}], ["behavior"]),
        ([{"name": "whatever", "abbreviation": "POPHYS"}], ["pophys"]),
        # deduplicated, first occurrence wins the order
        (["behavior", "BEHAVIOR", _dumped(Modality.BEHAVIOR), "ecephys"], ["behavior", "ecephys"]),
        (["ecephys", "behavior", "Ecephys"], ["ecephys", "behavior"]),
    ],
)
def test_modalities_accepted_forms(modalities: list[Any], expected: list[str]) -> None:
    job, notes = _parse(_job(modalities=modalities))
    assert job.modalities == expected
    assert notes == []


def test_every_library_modality_is_accepted_as_abbreviation_and_object() -> None:
    as_strings = [m().abbreviation for m in Modality.ALL]
    as_objects = [m().model_dump(mode="json") for m in Modality.ALL]
    assert _parse(_job(modalities=as_strings))[0].modalities == as_strings
    assert _parse(_job(modalities=as_objects))[0].modalities == as_strings


def test_unknown_modality_error_names_the_valid_ones() -> None:
    err = _fails(_job(modalities=["behavior", "ephys"]))
    (issue,) = err.issues
    assert issue.field == "modalities"
    assert issue.rule == "job.invalid_field"
    assert "'ephys'" in issue.message
    for abbreviation in ABBREVIATIONS:
        assert abbreviation in issue.message
    assert "ephys" in str(err)


@pytest.mark.parametrize(
    "modalities",
    [
        [],
        "ecephys",
        [None],
        [3],
        [{"name": "Extracellular electrophysiology"}],
        [{"abbreviation": 7}],
    ],
)
def test_modalities_bad_shapes_are_errors(modalities: Any) -> None:
    err = _fails(_job(modalities=modalities))
    assert all(i.field.startswith("modalities") for i in err.issues)


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("ecephys", "ecephys"),
        ({"name": "Electrophysiology platform", "abbreviation": "ecephys"}, "ecephys"),
        ({"name": "Behavior platform", "abbreviation": "behavior"}, "behavior"),
        (None, None),
    ],
)
def test_platform_as_string_or_object(platform: Any, expected: str | None) -> None:
    assert _parse(_job(platform=platform))[0].platform == expected


@pytest.mark.parametrize("platform", ["multi_plane", "a/b", "a b", "", {"abbreviation": "x_y"}])
def test_platform_that_breaks_the_asset_name_is_rejected(platform: Any) -> None:
    err = _fails(_job(platform=platform))
    assert [i.field for i in err.issues] == ["platform"]


# --- subject_id --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject_id", "char"), [("7501_01", "_"), ("750/101", "/"), ("750 101", " ")]
)
def test_subject_id_that_breaks_the_asset_name_is_rejected(subject_id: str, char: str) -> None:
    err = _fails(_job(subject_id=subject_id))
    (issue,) = err.issues
    assert issue.field == "subject_id"
    assert issue.rule == "job.invalid_field"
    assert repr(char) in issue.message
    assert "asset name" in issue.message
    assert "<subject_id>_<date>_<time>" in issue.message


@pytest.mark.parametrize("subject_id", ["750101", "A-12", "mouse.3", "x"])
def test_subject_id_safe_values(subject_id: str) -> None:
    assert _parse(_job(subject_id=subject_id))[0].subject_id == subject_id


@pytest.mark.parametrize("subject_id", ["", 750101, None])
def test_subject_id_empty_or_not_a_string(subject_id: Any) -> None:
    err = _fails(_job(subject_id=subject_id))
    assert [i.field for i in err.issues] == ["subject_id"]


# --- acq_datetime and the default time zone --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zone", "offset"),
    [
        ("2025-06-12T15:03:00", "America/Los_Angeles", timedelta(hours=-7)),  # PDT
        ("2025-01-12T15:03:00", "America/Los_Angeles", timedelta(hours=-8)),  # PST
        ("2025-06-12T15:03:00", "Asia/Tokyo", timedelta(hours=9)),
        ("2025-06-12 15:03:00.250", "UTC", timedelta(0)),
    ],
)
def test_naive_datetime_takes_the_default_time_zone_with_a_warning(
    value: str, zone: str, offset: timedelta
) -> None:
    job, notes = _parse(_job(acq_datetime=value), default_tz=zone)
    assert job.acq_datetime.utcoffset() == offset
    assert job.acq_datetime.replace(tzinfo=None) == datetime.fromisoformat(value)
    (note,) = notes
    assert note.severity == "warning"
    assert note.rule == "job.naive_datetime"
    assert note.field == "acq_datetime"
    assert note.file == JOB_FILENAME
    assert zone in note.message


def test_naive_datetime_without_default_time_zone_is_rejected() -> None:
    err = _fails(_job(acq_datetime="2025-06-12T15:03:00"))
    (issue,) = err.issues
    assert issue.rule == "job.naive_datetime"
    assert issue.field == "acq_datetime"
    assert "offset" in issue.message


@pytest.mark.parametrize(
    "value", ["2025-06-12T15:03:00Z", "2025-06-12T15:03:00+00:00", "2025-06-12T15:03:00+05:30"]
)
def test_aware_datetime_is_not_touched_by_the_default_time_zone(value: str) -> None:
    job, notes = _parse(_job(acq_datetime=value), default_tz="Asia/Tokyo")
    assert notes == []
    assert job.acq_datetime == datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("value", ["yesterday", "2025-13-01T00:00:00-07:00", "", None, [2025]])
def test_acq_datetime_invalid(value: Any) -> None:
    err = _fails(_job(acq_datetime=value), default_tz="UTC")
    assert [i.field for i in err.issues] == ["acq_datetime"]


def test_bad_default_time_zone_is_a_configuration_fault_not_the_users() -> None:
    from upload_processor.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="Not/AZone"):
        _parse(_job(acq_datetime="2025-06-12T15:03:00"), default_tz="Not/AZone")


# --- ignored and unknown fields ----------------------------------------------------------------


def test_s3_prefix_is_accepted_and_reported_ignored() -> None:
    job, notes = _parse(_job(s3_prefix="ecephys_750101_2025-06-12_15-03-00"))
    assert job.subject_id == "750101"
    assert [(n.severity, n.rule, n.field) for n in notes] == [
        ("warning", "job.field_ignored", "s3_prefix")
    ]


@pytest.mark.parametrize("name", IGNORED_TASK_FIELDS)
def test_ignored_task_field_is_reported(name: str) -> None:
    tasks = {"gather_preliminary_metadata": {"job_settings": {"a": 1}, name: "x"}}
    job, notes = _parse(_job(tasks=tasks))
    assert job.tasks["gather_preliminary_metadata"].job_settings == {"a": 1}
    assert [(n.severity, n.rule, n.field) for n in notes] == [
        ("warning", "job.field_ignored", f"tasks.gather_preliminary_metadata.{name}")
    ]


def test_all_ignored_task_fields_in_plain_and_per_modality_tasks() -> None:
    extra = {
        "image": "ghcr.io/x:1",
        "image_resources": {"memory": 1},
        "command_script": "run",
        "retry_count": 2,
    }
    tasks = {
        "check_s3_folder_exists": dict(extra),
        "modality_transformation_settings": {
            "ecephys": {"job_settings": {"level": 9}, **extra},
            "behavior": dict(extra),
        },
    }
    job, notes = _parse(_job(tasks=tasks, s3_prefix="p"))
    assert all(n.severity == "warning" and n.rule == "job.field_ignored" for n in notes)
    fields = {n.field for n in notes}
    assert fields == {"s3_prefix"} | {
        f"{path}.{name}"
        for path in (
            "tasks.check_s3_folder_exists",
            "tasks.modality_transformation_settings.ecephys",
            "tasks.modality_transformation_settings.behavior",
        )
        for name in extra
    }
    per_modality = job.tasks["modality_transformation_settings"]
    assert isinstance(per_modality, dict)
    assert per_modality["ecephys"].job_settings == {"level": 9}


def test_task_fields_we_run_are_parsed() -> None:
    tasks = {
        "gather_preliminary_metadata": {
            "skip_task": False,
            "image_version": "1.2.3",
            "job_settings": {"raise_if_invalid": False, "instrument_settings": {"x": 1}},
        },
        "check_s3_folder_exists": {"skip_task": True},
    }
    job, notes = _parse(_job(tasks=tasks))
    assert notes == []
    gather = job.tasks["gather_preliminary_metadata"]
    assert gather.image_version == "1.2.3"
    assert gather.job_settings == {"raise_if_invalid": False, "instrument_settings": {"x": 1}}
    assert job.tasks["check_s3_folder_exists"].skip_task is True


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"subjectid": "750101"}, "subjectid"),
        ({"acquisition_datetime": "2025-06-12T15:03:00-07:00"}, "acquisition_datetime"),
        (
            {"tasks": {"gather_preliminary_metadata": {"job_settings": {}, "foo": 1}}},
            "tasks.gather_preliminary_metadata.foo",
        ),
        (
            {"tasks": {"check_s3_folder_exists": {"skip": True}}},
            "tasks.check_s3_folder_exists.skip",
        ),
        (
            {"tasks": {"modality_transformation_settings": {"ecephys": {"levle": 3}}}},
            "tasks.modality_transformation_settings.ecephys.levle",
        ),
        (
            {"tasks": {"modality_transformation_settings": {"ecephys": {"image": "i", "bar": 2}}}},
            "tasks.modality_transformation_settings.ecephys.bar",
        ),
    ],
)
def test_unknown_field_is_an_error_naming_it(changes: dict[str, Any], field: str) -> None:
    err = _fails(_job(**changes))
    # exactly one issue, with the field's path in the file (no pydantic union labels)
    assert [(i.rule, i.field) for i in err.issues] == [("job.unknown_field", field)]
    assert field in err.issues[0].message
    assert field in str(err)


def test_several_problems_are_reported_at_once() -> None:
    err = _fails(_job(colour="blue", subject_id="a_b", modalities=["nope"], job_type=...))
    assert {(i.rule, i.field) for i in err.issues} == {
        ("job.unknown_field", "colour"),
        ("job.invalid_field", "subject_id"),
        ("job.invalid_field", "modalities"),
        ("job.missing_field", "job_type"),
    }


@pytest.mark.parametrize("tasks", [[], "gather", {"gather_preliminary_metadata": 3}])
def test_tasks_bad_shapes_are_errors(tasks: Any) -> None:
    err = _fails(_job(tasks=tasks))
    assert all(i.rule == "job.invalid_field" and i.field.startswith("tasks") for i in err.issues)


@pytest.mark.parametrize("name", REQUIRED)
def test_missing_required_field(name: str) -> None:
    err = _fails(_job(**{name: ...}))
    assert [(i.rule, i.field) for i in err.issues] == [("job.missing_field", name)]
    assert name in err.issues[0].message


def test_empty_object_lists_every_missing_field() -> None:
    err = _fails({})
    assert sorted(i.field for i in err.issues) == sorted(REQUIRED)
    assert {i.rule for i in err.issues} == {"job.missing_field"}


@pytest.mark.parametrize("name", ["job_type", "project_name"])
def test_required_strings_may_not_be_empty(name: str) -> None:
    err = _fails(_job(**{name: ""}))
    assert [i.field for i in err.issues] == [name]


# --- file-level problems -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b"", "job.empty"),
        (b"   \n\t ", "job.empty"),
        (b"{", "job.malformed"),
        (b'{"job_type": "default",}', "job.malformed"),
        (b"{'job_type': 'default'}", "job.malformed"),
        (b"\xff\xfe\xfa not utf-8", "job.malformed"),
        (b"NaN-ish garbage", "job.malformed"),
        (b"[]", "job.not_object"),
        (b'["job_type"]', "job.not_object"),
        (b'"default"', "job.not_object"),
        (b"42", "job.not_object"),
        (b"null", "job.not_object"),
        (b"true", "job.not_object"),
        # nested deeper than any job file: refused, never a RecursionError
        (b'{"a": ' + b"[" * 200 + b"]" * 200 + b"}", "job.malformed"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "job.malformed"),
        (
            b'{"tasks": {"x": {"job_settings": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5003,
            "job.malformed",
        ),
    ],
)
def test_file_level_errors(raw: bytes, rule: str) -> None:
    err = _fails(raw)
    assert [(i.rule, i.field, i.file) for i in err.issues] == [(rule, None, JOB_FILENAME)]


def test_too_large_file_is_refused_before_parsing() -> None:
    raw = _raw(_job(project_name="x" * MAX_JOB_BYTES))
    assert len(raw) > MAX_JOB_BYTES
    err = _fails(raw)
    assert [i.rule for i in err.issues] == ["job.too_large"]
    assert str(MAX_JOB_BYTES) in str(err)


def test_file_just_under_the_limit_parses() -> None:
    padding = MAX_JOB_BYTES - len(_raw(_job(project_name="")))
    raw = _raw(_job(project_name="x" * padding))
    assert len(raw) == MAX_JOB_BYTES
    assert len(_parse(raw)[0].project_name) == padding


def test_issues_name_the_given_file() -> None:
    with pytest.raises(UploadJobError) as caught:
        parse_upload_job(_raw(_job(colour=1)), file="session/upload_job.json")
    assert [i.file for i in caught.value.issues] == ["session/upload_job.json"]


# --- user_email --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    ["scientist", "scientist@example", "@example.org", "a@@example.org", "a@b@example.org", ""],
)
def test_bad_user_email(email: str) -> None:
    err = _fails(_job(user_email=email))
    (issue,) = err.issues
    assert (issue.rule, issue.field) == ("job.invalid_field", "user_email")
    assert "email" in issue.message


@pytest.mark.parametrize("email", ["scientist@example.org", "a.b+tag@lab.example.co.uk"])
def test_good_user_email(email: str) -> None:
    assert _parse(_job(user_email=email))[0].user_email == email


def test_user_email_null_is_no_email() -> None:
    assert _parse(_job(user_email=None))[0].user_email is None


# --- properties --------------------------------------------------------------------------------

SAFE = string.ascii_letters + string.digits + "-."
NOTIFICATION_TYPES = ("begin", "end", "fail", "retry", "all")


def _offsets() -> st.SearchStrategy[timezone]:
    return st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    )


def _modality_form(abbreviation: str) -> st.SearchStrategy[Any]:
    """An abbreviation in any case, or a {"name", "abbreviation"} object."""
    return st.one_of(
        st.just(abbreviation),
        st.just(abbreviation.upper()),
        st.just(abbreviation.lower()),
        st.just({"name": f"{abbreviation} modality", "abbreviation": abbreviation}),
    )


@st.composite
def valid_jobs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(job document, the values parse should give back)."""
    modalities = draw(st.lists(st.sampled_from(ABBREVIATIONS), min_size=1, max_size=5, unique=True))
    forms = [draw(_modality_form(m)) for m in modalities]
    repeats = draw(st.lists(st.sampled_from(modalities), max_size=3))  # duplicates are dropped
    acq = draw(
        st.datetimes(
            min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=_offsets()
        )
    )
    doc: dict[str, Any] = {
        "job_type": draw(st.text(SAFE, min_size=1, max_size=20)),
        "project_name": draw(
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
        ),
        "subject_id": draw(st.text(SAFE, min_size=1, max_size=20)),
        "acq_datetime": acq.isoformat(),
        "modalities": forms + repeats,
    }
    expected = {k: doc[k] for k in ("job_type", "project_name", "subject_id")}
    expected |= {"acq_datetime": acq, "modalities": modalities}
    if draw(st.booleans()):
        platform = draw(st.sampled_from(ABBREVIATIONS))
        doc["platform"] = draw(
            st.sampled_from([platform, {"name": "a platform", "abbreviation": platform}])
        )
        expected["platform"] = platform
    if draw(st.booleans()):
        local = draw(st.text(SAFE, min_size=1, max_size=10))
        doc["user_email"] = expected["user_email"] = f"{local}@example.org"
    if draw(st.booleans()):
        types = draw(st.sets(st.sampled_from(NOTIFICATION_TYPES)))
        doc["email_notification_types"] = sorted(types)
        expected["email_notification_types"] = types
    if draw(st.booleans()):
        doc["s3_bucket"] = expected["s3_bucket"] = draw(
            st.sampled_from(["private", "open", "default"])
        )
    return doc, expected


@settings(max_examples=100, deadline=None)
@given(valid_jobs())
def test_property_valid_jobs_round_trip(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    doc, expected = case
    try:
        job, notes = parse_upload_job(_raw(doc))
    except UploadJobError as exc:  # a failure here is a finding: show the issues
        pytest.fail(f"valid job rejected: {exc.issues}")
    assert notes == []
    assert job.job_type == expected["job_type"]
    assert job.project_name == expected["project_name"]
    assert job.subject_id == expected["subject_id"]
    assert job.acq_datetime == expected["acq_datetime"]
    assert job.acq_datetime.utcoffset() == expected["acq_datetime"].utcoffset()
    assert job.modalities == expected["modalities"]
    assert job.platform == expected.get("platform")
    assert job.user_email == expected.get("user_email")
    assert job.email_notification_types == expected.get("email_notification_types", {"fail"})
    assert job.s3_bucket == expected.get("s3_bucket", "default")


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = [
    *REQUIRED,
    "platform",
    "user_email",
    "email_notification_types",
    "s3_bucket",
    "tasks",
    "s3_prefix",
]
TASK_LIKE = st.dictionaries(
    st.sampled_from(
        ["skip_task", "job_settings", "image_version", *IGNORED_TASK_FIELDS, "ecephys", "x"]
    ),
    JSON_VALUES
    | st.dictionaries(st.sampled_from(["skip_task", "job_settings", "image"]), JSON_VALUES),
    max_size=4,
)


def _must_only_raise_upload_job_error(raw: bytes, default_tz: str | None) -> None:
    try:
        job, notes = parse_upload_job(raw, default_tz=default_tz)
    except UploadJobError as exc:
        assert exc.issues
        assert all(i.rule in KNOWN_RULES for i in exc.issues)
        return
    assert isinstance(job, UploadJob)
    assert all(n.severity == "warning" for n in notes)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=10), JSON_VALUES, max_size=8),
    st.sampled_from([None, "UTC", "America/Los_Angeles"]),
)
def test_property_arbitrary_objects_raise_only_upload_job_error(
    data: dict[str, Any], default_tz: str | None
) -> None:
    _must_only_raise_upload_job_error(_raw(data), default_tz)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(FIELD_NAMES), JSON_VALUES, max_size=4),
    st.dictionaries(st.text(SAFE, min_size=1, max_size=12), TASK_LIKE, max_size=3),
    st.sampled_from([None, "UTC"]),
)
def test_property_mutated_valid_jobs_raise_only_upload_job_error(
    changes: dict[str, Any], tasks: dict[str, Any], default_tz: str | None
) -> None:
    """Near-valid jobs reach the field validators, where a stray exception would hide."""
    doc = {**MINIMAL, "tasks": tasks, **changes}
    _must_only_raise_upload_job_error(_raw(doc), default_tz)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_property_arbitrary_bytes_raise_only_upload_job_error(raw: bytes) -> None:
    _must_only_raise_upload_job_error(raw, None)
