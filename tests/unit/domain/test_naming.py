"""The asset name: `[<platform>_]<subject_id>_<YYYY-MM-DD_HH-MM-SS>`."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from aind_data_schema_models.data_name_patterns import DataRegex
from hypothesis import given, settings
from hypothesis import strategies as st

from upload_processor.domain.naming import asset_name, job_asset_name, name_part_problem
from upload_processor.domain.upload_job import parse_upload_job

RAW = re.compile(DataRegex.RAW.value)


@pytest.mark.parametrize(
    ("subject_id", "acq", "platform", "expected"),
    [
        # the three examples of docs/architecture.md
        ("750101", "2025-06-12T15:03:00-07:00", None, "750101_2025-06-12_15-03-00"),
        ("750101", "2025-06-12T15:03:00-07:00", "ecephys", "ecephys_750101_2025-06-12_15-03-00"),
        ("750101", "2025-06-13T07:03:00+09:00", None, "750101_2025-06-13_07-03-00"),
        # the same instant in UTC is named by its own wall time
        ("750101", "2025-06-12T22:03:00+00:00", None, "750101_2025-06-12_22-03-00"),
        # an empty platform adds no prefix
        ("750101", "2025-06-12T15:03:00-07:00", "", "750101_2025-06-12_15-03-00"),
        # fractional seconds are dropped, never rounded
        ("750101", "2025-06-12T15:03:00.999999-07:00", None, "750101_2025-06-12_15-03-00"),
        ("750101", "2025-06-12T15:03:59.5-07:00", None, "750101_2025-06-12_15-03-59"),
        ("A-1", "2025-12-31T23:59:59.9+14:00", "behavior", "behavior_A-1_2025-12-31_23-59-59"),
    ],
)
def test_asset_name_examples(
    subject_id: str, acq: str, platform: str | None, expected: str
) -> None:
    name = asset_name(subject_id, datetime.fromisoformat(acq), platform)
    assert name == expected
    assert RAW.match(name)


def test_named_zone_uses_its_offset_on_that_date() -> None:
    zone = ZoneInfo("America/Los_Angeles")
    summer = datetime(2025, 6, 12, 15, 3, tzinfo=zone)
    winter = datetime(2025, 1, 12, 15, 3, tzinfo=zone)
    assert asset_name("750101", summer) == "750101_2025-06-12_15-03-00"
    assert asset_name("750101", winter) == "750101_2025-01-12_15-03-00"


def test_naive_datetime_raises() -> None:
    with pytest.raises(ValueError, match="time zone"):
        asset_name("750101", datetime(2025, 6, 12, 15, 3))


def test_input_datetime_is_not_modified() -> None:
    acq = datetime(2025, 6, 12, 15, 3, 0, 123456, tzinfo=UTC)
    asset_name("750101", acq)
    assert acq.microsecond == 123456


SAFE = string.ascii_letters + string.digits + "-."


@settings(max_examples=100, deadline=None)
@given(
    subject_id=st.text(SAFE, min_size=1, max_size=24),
    platform=st.none() | st.text(SAFE, min_size=1, max_size=12),
    wall=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_property_name_matches_raw_pattern_and_keeps_wall_time(
    subject_id: str, platform: str | None, wall: datetime, offset_minutes: int
) -> None:
    acq = wall.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    name = asset_name(subject_id, acq, platform)
    match = RAW.fullmatch(name)
    assert match, name
    label = f"{platform}_{subject_id}" if platform else subject_id
    assert match["subject_id"] == label
    assert name == f"{label}_{match['c_datetime']}"
    parsed = datetime.strptime(match["c_datetime"], "%Y-%m-%d_%H-%M-%S")
    assert parsed == wall.replace(microsecond=0)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("770\t007", "U+0009"),
        ("770\x00007", "U+0000"),
        ("770\u202e007", "U+202E"),
        ("770\u200b007", "U+200B"),
        ("a*b", "'*'"),
        ("a#b", "'#'"),
        ("7" * 101, "101 bytes"),
        ("é" * 51, "102 bytes"),
    ],
)
def test_name_parts_must_make_a_folder_name_valid_everywhere(value: str, problem: str) -> None:
    found = name_part_problem(value)
    assert found is not None and problem in found


@pytest.mark.parametrize("value", ["750101", "7" * 100, "Mouse-12.b", "é" * 50])
def test_ordinary_name_parts_pass(value: str) -> None:
    assert name_part_problem(value) is None


def test_a_job_has_one_asset_name_parsed_or_resolved() -> None:
    """Ingest names the asset from the parsed job, gather from its resolved JSON form: the same."""
    raw = (
        b'{"job_type": "default", "project_name": "P", "subject_id": "750101", '
        b'"acq_datetime": "2025-06-12T15:03:00.250-07:00", "platform": "ecephys", '
        b'"modalities": ["ecephys"]}'
    )
    job, _ = parse_upload_job(raw)
    resolved = job.model_dump(mode="json")
    assert job_asset_name(job) == "ecephys_750101_2025-06-12_15-03-00"
    assert job_asset_name(resolved) == job_asset_name(job)
