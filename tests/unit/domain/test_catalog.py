"""A catalog record from an asset's metadata, and what a search accepts."""

from __future__ import annotations

import pytest

from upload_processor.domain.catalog import AssetQuery, entry_from_metadata, utc_key
from upload_processor.errors import InvalidQueryError

JOB = {
    "subject_id": "750101",
    "project_name": "From the job",
    "modalities": ["behavior"],
    "acq_datetime": "2025-06-12T15:03:00-07:00",
}


def _entry(metadata):
    return entry_from_metadata(
        metadata,
        JOB,
        asset_name="750101_2025-06-12_15-03-00",
        archive_uri="s3://a/x/",
        metadata_uri="s3://a/x/metadata.nd.json",
        manifest_uri="s3://a/x/manifest.json",
        job_id="j",
        counts={"files": 2, "bytes_in": 10, "bytes_out": 5},
    )


def test_the_metadata_wins_over_the_job() -> None:
    entry = _entry(
        {
            "subject": {"subject_id": "750101"},
            "data_description": {
                "project_name": "Metadata project",
                "modalities": [
                    {"name": "Extracellular electrophysiology", "abbreviation": "ecephys"}
                ],
                "data_level": "raw",
            },
            "acquisition": {"acquisition_start_time": "2025-06-12T15:03:00-07:00"},
        }
    )
    assert entry.project_name == "Metadata project"
    assert entry.modalities == ["ecephys"]
    assert entry.acquired_at == "2025-06-12T22:03:00Z"
    assert entry.acquisition_time == "2025-06-12T15:03:00-07:00"
    assert entry.files == 2


def test_without_metadata_the_job_says() -> None:
    entry = _entry(None)
    assert (entry.subject_id, entry.project_name, entry.modalities) == (
        "750101",
        "From the job",
        ["behavior"],
    )
    assert entry.data_level == "raw"


def test_a_date_bound_covers_its_whole_day() -> None:
    query = AssetQuery.build(since="2025-06-01", until="2025-06-12", modality="ECEPHYS")
    assert (query.since, query.until, query.modality) == (
        "2025-06-01T00:00:00Z",
        "2025-06-12T23:59:59Z",
        "ecephys",
    )
    assert AssetQuery.build(since="2025-06-12T15:00:00-07:00").since == "2025-06-12T22:00:00Z"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"since": "June"}, "since 'June'"),
        ({"since": "2025-06-12", "until": "2025-06-01"}, "after until"),
        ({"limit": 0}, "limit"),
    ],
)
def test_a_bad_query_names_its_problem(kwargs, words) -> None:
    with pytest.raises(InvalidQueryError, match=words):
        AssetQuery.build(**kwargs)


def test_utc_key_treats_naive_as_utc() -> None:
    assert utc_key("2025-06-12T15:03:00") == "2025-06-12T15:03:00Z"
