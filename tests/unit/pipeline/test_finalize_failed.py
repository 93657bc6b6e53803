"""Finalize's `failed` outcome after a failed Map: the message quotes the batch failures.

On AWS a Distributed Map whose iteration fails ends with its own generic error
(States.ExceedToleratedFailureThreshold); the Transfer batches record which object failed and
why (transfer.batch), and the `fail` message must say that, not only the Map's words. (moto's
Map tolerates failed iterations, so the local flow never takes this route: tested here.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.paths import ROOT
from upload_processor.adapters.jobs import JobStore
from upload_processor.domain.archive import failure_key, results_key
from upload_processor.domain.contracts import FailedInput, StateError
from upload_processor.domain.plan import PlanItem
from upload_processor.errors import SourceChangedError
from upload_processor.pipeline import finalize, seal
from upload_processor.pipeline.transfer import TransferResult
from upload_processor.pipeline.transfer.batch import _record_failure
from upload_processor_tools.local.template import load_template

ARCHIVE = "archive-test"
MAP_ERROR = {
    "Error": "States.ExceedToleratedFailureThreshold",
    "Cause": "The specified tolerated failure threshold was exceeded",
}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
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
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=ARCHIVE)
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        store = JobStore(dynamodb, "jobs")
        store.create(
            {
                "job_id": "job-1",
                "status": "PROCESSING",
                "asset_name": "750101_2025-06-12_15-03-00",
                "archive_bucket": ARCHIVE,
            }
        )
        yield {"s3": s3, "sns": sns, "sqs": sqs, "queue": queue, "topic": topic, "store": store}


def _fail(aws: dict[str, Any], step: str, error: dict[str, Any]) -> tuple[dict, list[str]]:
    finalize.failed(
        s3=aws["s3"],
        sns=aws["sns"],
        store=aws["store"],
        topic_arn=aws["topic"],
        event=FailedInput(
            outcome="failed",
            job_id="job-1",
            bucket="staging",
            prefix="rig-7/s",
            job={"user_email": "scientist@example.org"},
            error=StateError.model_validate(error),
            step=step,
        ),
    )
    got = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)
    return aws["store"].get("job-1"), [m["Body"] for m in got.get("Messages", [])]


def _record(s3: Any, batch: str, message: str) -> None:
    body = json.dumps({"error": "ClientError", "message": message}).encode()
    s3.put_object(Bucket=ARCHIVE, Key=failure_key("job-1", batch), Body=body)


def test_a_failed_map_names_the_object_and_the_s3_error(aws: dict[str, Any]) -> None:
    _record(aws["s3"], "b1", "asset/ecephys/continuous.dat.zst: SlowDown: reduce your rate")
    record, messages = _fail(aws, "TransferFiles", MAP_ERROR)
    assert record["status"] == "FAILED"
    assert record["failed_step"] == "TransferFiles"
    assert "continuous.dat.zst: SlowDown" in record["error"]
    assert "tolerated failure threshold" in record["error"]  # the Map's own words, after
    (body,) = messages
    assert "continuous.dat.zst: SlowDown" in body


def test_a_batch_that_later_succeeded_is_not_quoted(aws: dict[str, Any]) -> None:
    _record(aws["s3"], "b1", "asset/a.zst: SlowDown")
    aws["s3"].put_object(Bucket=ARCHIVE, Key=results_key("job-1", "b1"), Body=b"[]")
    record, _ = _fail(aws, "TransferFiles", MAP_ERROR)
    assert "a.zst" not in record["error"]
    assert record["error"].startswith("States.ExceedToleratedFailureThreshold")


def test_many_failures_are_counted_not_all_quoted(aws: dict[str, Any]) -> None:
    for n in range(8):
        _record(aws["s3"], f"b{n}", f"asset/f{n}.zst: AccessDenied")
    record, _ = _fail(aws, "TransferFiles", MAP_ERROR)
    assert "f4.zst" in record["error"] and "f5.zst" not in record["error"]
    assert "and 3 more" in record["error"]


def test_other_steps_keep_their_own_cause(aws: dict[str, Any]) -> None:
    _record(aws["s3"], "b1", "asset/a.zst: SlowDown")
    error = {"Error": "AssetExistsError", "Cause": json.dumps({"errorMessage": "exists"})}
    record, _ = _fail(aws, "GatherMetadata", error)
    assert record["error"] == "AssetExistsError: exists"


def _record_changed(s3: Any, batch: str, dest_key: str) -> None:
    error = SourceChangedError(
        "the staged file changed while this job was transferring it (it no longer has the "
        "planned ETag abc-2): nothing of it was archived",
        source="s3://staging/rig-7/s/ecephys/big.dat",
        dest=f"s3://{ARCHIVE}/{dest_key}",
    )
    item = PlanItem(
        source_key="rig-7/s/ecephys/big.dat",
        dest_key=dest_key,
        size=1,
        etag="abc-2",
        action="compress",
    )
    _record_failure(s3, ARCHIVE, failure_key("job-1", batch), error, item)


def test_a_changed_staged_file_names_the_failed_map_with_its_own_retry_advice(
    aws: dict[str, Any],
) -> None:
    """Both ranges of one overwritten file failed alike: quoted once, as SourceChangedError,
    and the fail message does not claim the staged data was not changed."""
    for batch in ("b1", "b2"):
        _record_changed(aws["s3"], batch, "asset/ecephys/big.dat.zst")
    record, (body,) = _fail(aws, "TransferFiles", MAP_ERROR)
    assert record["error"].startswith("SourceChangedError: s3://staging/rig-7/s/ecephys/big.dat")
    assert record["error"].count("changed while this job was transferring it") == 1
    assert "staged data was not changed" not in body
    assert "Is a retry safe? yes, once the upload of the changed file is complete" in body
    assert "upload-processor retry job-1" in body


def test_a_chunked_completion_after_a_range_failed_raises_the_recorded_cause(
    aws: dict[str, Any],
) -> None:
    """moto's Map carries on past a failed range: completing the file then finds a part
    missing, and Finalize raises what the range recorded instead."""
    s3, dest_key = aws["s3"], "asset/ecephys/big.dat.zst"
    upload = s3.create_multipart_upload(Bucket=ARCHIVE, Key=dest_key)["UploadId"]
    part = TransferResult(
        source_key="rig-7/s/ecephys/big.dat",
        dest_key=dest_key,
        action="compress_range",
        codec="zstd",
        bytes_in=5,
        bytes_out=5,
        source_sha256="0" * 64,
        part_number=1,
        etag="e",
        part_checksum="c",
        upload_id=upload,
        range_start=0,
        range_end=5,
        part_count=2,
    )
    s3.put_object(Bucket=ARCHIVE, Key=results_key("job-1", "b1"), Body=json.dumps([part.to_dict()]))
    _record_changed(s3, "b2", dest_key)
    plan = [[{"dest_key": dest_key}]]
    with pytest.raises(SourceChangedError) as raised:
        seal.seal_transfers(s3, archive=ARCHIVE, job_id="job-1", plan=plan, verify_mode="quick")
    assert "changed while this job was transferring it" in str(raised.value)
    assert "expected parts" not in str(raised.value)
    assert s3.list_multipart_uploads(Bucket=ARCHIVE).get("Uploads", []) == []


class _ThrottledSns:
    """An SNS client whose Publish fails with `code` (after the client's own retries)."""

    def __init__(self, code: str, status: int) -> None:
        self.code, self.status = code, status

    def publish(self, **_: Any) -> None:
        from botocore.exceptions import ClientError

        response = {
            "Error": {"Code": self.code},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }
        raise ClientError(response, "Publish")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "retried"),
    [
        ("ThrottlingException", 400, True),
        ("InternalError", 500, True),
        ("AuthorizationError", 403, False),
    ],
)
def test_marking_failed_raises_only_transient_faults_as_retryable(
    aws: dict[str, Any], code: str, status: int, retried: bool
) -> None:
    """MarkFailed's Retry names TransientError only: throttling and 5xx become it, a
    permanent refusal stays what it is (and is not retried)."""
    from botocore.exceptions import ClientError

    from upload_processor.errors import TransientError

    expected = TransientError if retried else ClientError
    with pytest.raises(expected, match=code) as raised:
        _fail({**aws, "sns": _ThrottledSns(code, status)}, "GatherMetadata", MAP_ERROR)
    assert isinstance(raised.value, TransientError) == retried
