"""JobStore.record_registration and the announcement claim, on the template's jobs table."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.paths import ROOT
from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.domain.registration import Registration, StepOutcome
from upload_processor.errors import JobStateConflictError
from upload_processor_tools.local.template import load_template


@pytest.fixture
def store() -> Iterator[JobStore]:
    props = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="jobs",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        )
        jobs = JobStore(client, "jobs")
        jobs.create({"job_id": "j", "status": "PROCESSING"})
        jobs.update("j", JobStatus.COMPLETE, asset_name="a")
        yield jobs


def test_each_step_is_recorded_beside_the_others_and_the_job_stays_complete(
    store: JobStore,
) -> None:
    store.record_registration("j", "catalog", StepOutcome.ok(catalog_table="assets"))
    store.record_registration("j", "codeocean", StepOutcome.failed("401 Unauthorized"))
    store.record_registration("j", "catalog", StepOutcome.failed("table gone"))  # a redo
    record = store.get("j")
    assert record["status"] == "COMPLETE"
    steps = Registration.from_record(record).steps
    assert set(steps) == {"catalog", "codeocean"}
    assert steps["catalog"].reason == "table gone"
    assert steps["codeocean"].status == "FAILED"


def test_a_missing_job_is_not_created(store: JobStore) -> None:
    with pytest.raises(JobStateConflictError, match="no record"):
        store.record_registration("nope", "catalog", StepOutcome.ok())
    assert store.get("nope") is None


def test_the_announcement_is_claimed_once_and_released_on_failure(store: JobStore) -> None:
    assert store.claim_announcement("j") is True
    assert store.claim_announcement("j") is False
    store.release_announcement("j")
    assert store.claim_announcement("j") is True
    assert store.claim_announcement("nope") is False
