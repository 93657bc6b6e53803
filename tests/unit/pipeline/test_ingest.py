"""Ingest's execution name: one per upload_job.json object version, valid for Step Functions."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upload_processor.pipeline.ingest import execution_name

VALID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
BUCKET = "staging"
VERSION = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"

KEYS = [
    "project/750101/upload_job.json",
    "upload_job.json",  # root level
    "/upload_job.json",
    "a b/c d/upload_job.json",
    "Ünïcødé/セッション/upload_job.json",
    "😀/upload_job.json",
    "!!!/???/upload_job.json",
    "x" * 1000 + "/upload_job.json",
    "/".join(f"level{i}" for i in range(200)) + "/upload_job.json",
    "project/750101_2025-06-12_15-03-00/upload_job.json",
    "project/a+b%20c/upload_job.json",
    "p/upload job.json",
    "p/\t\n\x00/upload_job.json",
    "trailing/slash/",
]


@pytest.mark.parametrize("key", KEYS)
def test_execution_name_is_valid_and_deterministic(key: str) -> None:
    name = execution_name(BUCKET, key, VERSION)
    assert VALID.match(name), name
    assert name == execution_name(BUCKET, key, VERSION)
    assert re.search(r"-[0-9a-f]{20}$", name)


@pytest.mark.parametrize(
    ("key", "slug"),
    [
        ("project/750101/upload_job.json", "project-750101"),
        ("upload_job.json", "root"),
        ("/upload_job.json", "root"),
        ("!!!/???/upload_job.json", "root"),
        ("a b/c d/upload_job.json", "a-b-c-d"),
        (
            "project/750101_2025-06-12_15-03-00/upload_job.json",
            "project-750101-2025-06-12-15-03-00",
        ),
        ("Ünïcødé/x/upload_job.json", "n-c-d-x"),
    ],
)
def test_execution_name_starts_with_a_readable_slug_of_the_session_folder(
    key: str, slug: str
) -> None:
    assert (
        execution_name(BUCKET, key, VERSION)
        == f"{slug}-{execution_name(BUCKET, key, VERSION)[-20:]}"
    )


def test_very_long_prefix_keeps_the_end_of_the_folder() -> None:
    name = execution_name(BUCKET, "x" * 1000 + "/session-42/upload_job.json", VERSION)
    assert len(name) <= 80
    assert "session-42" in name


def test_every_input_changes_the_name() -> None:
    key = "project/750101/upload_job.json"
    base = execution_name(BUCKET, key, VERSION)
    variants = {
        execution_name(BUCKET, key, VERSION + "x"),
        execution_name(BUCKET, key, "null"),
        execution_name(BUCKET, key, ""),
        execution_name("staging-2", key, VERSION),
        execution_name(BUCKET, "project/750102/upload_job.json", VERSION),
        # same folder slug, different key: the hash still tells them apart
        execution_name(BUCKET, "project/750101/../750101/upload_job.json", VERSION),
        execution_name(BUCKET, "project/750101/upload_job.json ", VERSION),
        execution_name(BUCKET, "project_750101/upload_job.json", VERSION),
        execution_name(BUCKET, "project 750101/upload_job.json", VERSION),
    }
    assert base not in variants
    assert len(variants) == 9


def test_field_boundaries_are_not_ambiguous() -> None:
    # the same concatenation split differently is a different object version
    assert execution_name("ab", "c/upload_job.json", "v") != execution_name(
        "a", "bc/upload_job.json", "v"
    )
    assert execution_name("b", "k/upload_job.json", "v1") != execution_name(
        "b", "k/upload_job.jsonv", "1"
    )


@settings(max_examples=100, deadline=None)
@given(
    bucket=st.text(min_size=1, max_size=63),
    key=st.text(min_size=1, max_size=1100),
    version=st.text(max_size=64),
    other_version=st.text(max_size=64),
)
def test_property_execution_name(bucket: str, key: str, version: str, other_version: str) -> None:
    name = execution_name(bucket, key, version)
    assert VALID.match(name), name
    assert name == execution_name(bucket, key, version)
    if other_version != version:
        assert execution_name(bucket, key, other_version) != name
