"""The registration outcomes: each step's line, the job's summary, which task skips a step."""

from __future__ import annotations

import pytest

from upload_processor.domain.registration import (
    Registration,
    RegistrationInput,
    StepOutcome,
    skipped_by,
)


def test_the_summary_names_every_failed_step_and_its_reason() -> None:
    registration = Registration(
        steps={
            "announce": StepOutcome.ok(event_id="e-1"),
            "codeocean": StepOutcome.failed("401 Unauthorized"),
            "catalog": StepOutcome.failed("ResourceNotFoundException: no table"),
        }
    )
    assert registration.summary() == (
        "FAILED (codeocean: 401 Unauthorized; catalog: ResourceNotFoundException: no table)"
    )
    assert [name for name, _ in registration.ordered()] == ["codeocean", "catalog", "announce"]


@pytest.mark.parametrize(
    ("steps", "summary"),
    [
        ({}, "PENDING"),
        ({"catalog": StepOutcome.ok()}, "OK"),
        ({"catalog": StepOutcome.ok(), "codeocean": StepOutcome.skipped("no token")}, "OK"),
        ({"catalog": StepOutcome.skipped("task register_data_asset")}, "SKIPPED"),
    ],
)
def test_the_summary_of_steps_that_did_not_fail(steps, summary) -> None:
    assert Registration(steps=steps).summary() == summary


def test_announce_summarises_the_steps_before_it() -> None:
    registration = Registration(
        steps={"catalog": StepOutcome.ok(), "announce": StepOutcome.failed("throttled")}
    )
    assert registration.summary(ignore=("announce",)) == "OK"
    assert registration.summary() == "FAILED (announce: throttled)"


def test_a_record_round_trips_through_the_job_record_shape() -> None:
    outcome = StepOutcome.failed("boom", codeocean_asset_id="abc")
    record = {"registration": {"codeocean": outcome.model_dump(mode="json")}}
    back = Registration.from_record(record).steps["codeocean"]
    assert back == outcome
    assert back.line() == "FAILED (boom)"
    assert Registration.from_record(None).steps == {}


def test_a_step_is_skipped_by_any_of_its_tasks() -> None:
    job = {"tasks": {"update_docdb_record": {"skip_task": True}}}
    assert skipped_by(job, "catalog") == "update_docdb_record"
    assert skipped_by({"tasks": {"register_data_asset": {"skip_task": False}}}, "catalog") is None
    assert skipped_by({}, "catalog") is None
    assert skipped_by(job, "announce") is None


def test_the_input_derives_the_asset_keys() -> None:
    request = RegistrationInput.model_validate(
        {
            "step": "catalog",
            "job_id": "j-1",
            "job": {},
            "bucket": "staging",
            "prefix": "lab/s",
            "gather": {
                "status": "valid",
                "asset_name": "750101_2025-06-12_15-03-00",
                "reject": False,
                "report_key": "lab/s/upload_report.json",
                "summary": "",
                "archive_bucket": "archive",
            },
            "finalize": {
                "status": "COMPLETE",
                "asset_name": "750101_2025-06-12_15-03-00",
                "archive_uri": "s3://archive/750101_2025-06-12_15-03-00/",
                "files": 3,
            },
        }
    )
    assert request.manifest_key == "750101_2025-06-12_15-03-00/manifest.json"
    assert request.metadata_key == "750101_2025-06-12_15-03-00/metadata.nd.json"
    assert request.archive_bucket == "archive"
    assert "error" not in request.model_dump()
