"""The registration steps run by RegisterFunction, on moto: skip, record, announce once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.paths import ROOT
from upload_processor.adapters.events import pattern
from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.domain.registration import RegistrationInput
from upload_processor.pipeline import registration
from upload_processor.settings import Settings
from upload_processor_tools.local.template import load_template

ASSET = "750101_2025-06-12_15-03-00"


def _table(client: Any, logical: str, name: str) -> None:
    props = load_template(ROOT / "template.yaml")["Resources"][logical]["Properties"]
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    )


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        clients = {
            s: boto3.client(s, region_name="us-east-1")
            for s in ("dynamodb", "s3", "sns", "sqs", "events")
        }
        _table(clients["dynamodb"], "JobsTable", "jobs")
        _table(clients["dynamodb"], "AssetsTable", "assets")
        clients["s3"].create_bucket(Bucket="archive")
        clients["s3"].put_object(
            Bucket="archive",
            Key=f"{ASSET}/metadata.nd.json",
            Body=json.dumps({"subject": {"subject_id": "750101"}}).encode(),
        )
        topic = clients["sns"].create_topic(Name="t")["TopicArn"]
        sqs = clients["sqs"]
        queue = sqs.create_queue(QueueName="events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        clients["events"].put_rule(Name="r", EventPattern=json.dumps(pattern("up")))
        clients["events"].put_targets(Rule="r", Targets=[{"Id": "q", "Arn": arn}])
        store = JobStore(clients["dynamodb"], "jobs")
        store.create({"job_id": "j", "status": "PROCESSING"})
        store.update("j", JobStatus.COMPLETE, asset_name=ASSET)
        settings = Settings(
            jobs_table="jobs",
            topic_arn=topic,
            archive_bucket="archive",
            state_machine_arn="",
            default_time_zone=None,
            assets_table="assets",
            event_source="up",
        )
        yield {**clients, "settings": settings, "store": store, "queue": queue}


def _request(step: str, **changes: Any) -> RegistrationInput:
    data: dict[str, Any] = {
        "step": step,
        "job_id": "j",
        "job": {
            "subject_id": "750101",
            "project_name": "P",
            "modalities": ["ecephys"],
            "acq_datetime": "2025-06-12T15:03:00-07:00",
        },
        "bucket": "staging",
        "prefix": "lab/s",
        "gather": {
            "status": "valid",
            "asset_name": ASSET,
            "reject": False,
            "report_key": "lab/s/upload_report.json",
            "summary": "",
            "archive_bucket": "archive",
        },
        "finalize": {
            "status": "COMPLETE",
            "asset_name": ASSET,
            "archive_uri": f"s3://archive/{ASSET}/",
            "files": 1,
        },
    }
    data.update(changes)
    return RegistrationInput.model_validate(data)


def _run(aws: dict[str, Any], request: RegistrationInput) -> dict[str, Any]:
    return registration.run(request, settings=aws["settings"], client=lambda s: aws[s])


def _events(aws: dict[str, Any]) -> list[dict[str, Any]]:
    out = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in out.get("Messages", [])]


def test_a_job_that_skips_the_task_skips_the_step(aws) -> None:
    job = {**_request("catalog").job, "tasks": {"register_data_asset": {"skip_task": True}}}
    out = _run(aws, _request("catalog", job=job))
    assert out["status"] == "SKIPPED" and "register_data_asset" in out["reason"]
    assert aws["store"].get("j")["registration"]["catalog"]["status"] == "SKIPPED"
    assert aws["dynamodb"].scan(TableName="assets")["Items"] == []


def test_a_caught_error_is_recorded_as_the_step_s_failure(aws) -> None:
    cause = json.dumps({"errorMessage": "Requested resource not found", "errorType": "X"})
    error = {"Error": "ResourceNotFoundException", "Cause": cause}
    out = _run(aws, _request("catalog", error=error))
    assert out["status"] == "FAILED"
    assert out["reason"] == "ResourceNotFoundException: Requested resource not found"
    assert aws["store"].get("j")["status"] == "COMPLETE"


def test_announce_sends_the_event_once_and_reports_the_steps(aws) -> None:
    assert _run(aws, _request("catalog"))["status"] == "OK"
    first = _run(aws, _request("announce"))
    again = _run(aws, _request("announce"))  # a retried Announce
    assert first["details"]["event_id"] and "event_id" not in again["details"]
    (event,) = _events(aws)
    assert event["detail-type"] == "Upload Asset Archived"
    assert event["source"] == "up"
    assert event["detail"]["registration"] == "OK"
    assert event["detail"]["acquisition_time"] == "2025-06-12T22:03:00Z"
    assert event["resources"] == [f"s3://archive/{ASSET}/"]


def test_a_failed_send_releases_the_claim_so_the_retry_sends(aws) -> None:
    class Refusing:
        def put_events(self, **_: Any) -> dict[str, Any]:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}

    clients = {**aws, "events": Refusing()}
    with pytest.raises(Exception, match="InternalFailure"):
        registration.run(
            _request("announce"), settings=aws["settings"], client=lambda s: clients[s]
        )
    assert "announced_at" not in aws["store"].get("j")
    assert _run(aws, _request("announce"))["status"] == "OK"
    assert len(_events(aws)) == 1


def test_a_noop_job_catalogues_and_announces_nothing(aws) -> None:
    finalize = {**_request("catalog").finalize.model_dump(), "noop": True}
    assert _run(aws, _request("catalog", finalize=finalize))["status"] == "SKIPPED"
    out = _run(aws, _request("announce", finalize=finalize))
    assert out["status"] == "OK" and "event_id" not in out["details"]
    assert _events(aws) == []
