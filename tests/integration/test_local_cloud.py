"""Local mode deploys exactly what template.yaml declares, and runs handlers in-process."""

from __future__ import annotations

import json
from pathlib import Path

from upload_processor_tools.local.template import load_template, translate

ROOT = Path(__file__).resolve().parents[2]


def test_every_translated_resource_is_created(cloud) -> None:
    translated = translate(
        ROOT / "template.yaml",
        region="us-east-1",
        account_id="123456789012",
        stack_name="upload-local",
    )
    created = set(cloud.deployment.physical)
    assert created == set(translated.resources) - {
        k for k, v in translated.resources.items() if v["Type"] == "AWS::Lambda::Permission"
    }
    s3 = cloud.client("s3")
    assert s3.get_bucket_versioning(Bucket=cloud.staging_bucket)["Status"] == "Enabled"
    for bucket in (cloud.archive_bucket, cloud.deployment.name("OpenArchiveBucket")):
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        assert rules["AbortStaleMultipartUploads"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": 3
        }
        work_area = rules["ExpireWorkAreaVersions"]
        assert work_area["Filter"] == {"Prefix": "_jobs/"}
        assert work_area["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    notification = s3.get_bucket_notification_configuration(Bucket=cloud.staging_bucket)
    (queue,) = notification["QueueConfigurations"]
    assert queue["Filter"]["Key"]["FilterRules"] == [
        {"Name": "Suffix", "Value": "upload_job.json"}
    ] or queue["Filter"]["Key"]["FilterRules"] == [{"Name": "suffix", "Value": "upload_job.json"}]
    sqs = cloud.client("sqs")
    attrs = sqs.get_queue_attributes(
        QueueUrl=cloud.deployment.name("IngestQueue"), AttributeNames=["All"]
    )
    assert json.loads(attrs["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"].endswith(
        "IngestDeadLetterQueue"
    )


def test_functions_get_the_template_environment(cloud) -> None:
    template = load_template(ROOT / "template.yaml")
    functions = {
        k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
    }
    assert functions == set(cloud.deployment.functions)
    ingest = cloud.deployment.functions["IngestFunction"]
    assert ingest.environment["STATE_MACHINE_ARN"] == cloud.state_machine_arn
    assert ingest.environment["JOBS_TABLE"] == cloud.jobs_table
    assert ingest.environment["DEFAULT_TIME_ZONE"] == "America/Los_Angeles"


def test_an_exception_in_a_handler_is_a_lambda_error_payload(cloud) -> None:
    payload, failed = cloud.invoke("FinalizeFunction", {"outcome": "nonsense", "job_id": "x"})
    assert failed
    assert payload["errorType"] == "ValueError"
    assert "unknown outcome" in payload["errorMessage"]
