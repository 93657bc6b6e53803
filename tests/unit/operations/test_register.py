"""`register JOB` (operations.register): only a COMPLETE job is registered, and a job whose
steps are all OK or SKIPPED runs nothing (no execution history is even read)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.paths import ROOT
from upload_processor.adapters.jobs import JobStore
from upload_processor.domain.registration import STEPS, StepOutcome
from upload_processor.errors import JobNotFoundError, OperationRefusedError
from upload_processor.operations import register
from upload_processor.settings import Settings
from upload_processor_tools.local.template import load_template

SETTINGS = Settings(
    jobs_table="jobs",
    topic_arn="",
    archive_bucket="a",
    state_machine_arn="",
    default_time_zone=None,
)


@pytest.fixture
def store() -> Iterator[JobStore]:
    props = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="jobs",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        )
        yield JobStore(dynamodb, "jobs")


def _redo(store: JobStore, job: str) -> dict[str, Any]:
    def no_client(service: str) -> Any:
        raise AssertionError(f"no {service} call expected")

    return register.redo(store, sfn=None, job=job, settings=SETTINGS, client=no_client)


def test_an_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError, match="no job or asset named 'nope'"):
        _redo(store, "nope")


@pytest.mark.parametrize("status", ["FAILED", "PROCESSING", "REJECTED"])
def test_only_a_complete_job_is_registered(store: JobStore, status: str) -> None:
    store.create({"job_id": "j", "status": status, "asset_name": "a"})
    with pytest.raises(OperationRefusedError, match=f"job j is {status}: only a COMPLETE"):
        _redo(store, "j")


def test_a_job_with_every_step_done_runs_nothing(store: JobStore) -> None:
    store.create({"job_id": "j", "status": "COMPLETE", "asset_name": "a"})
    for step in STEPS:
        store.record_registration("j", step, StepOutcome.skipped("off"))
    store.record_registration("j", "codeocean", StepOutcome.ok(codeocean_asset_id="x"))
    result = _redo(store, "j")
    assert result["ran"] == []
    assert result["kept"] == list(STEPS)
    assert result["registration"] == "OK"
