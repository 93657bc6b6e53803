"""Issue 13's timing and trust defects, each reproduced on the local cloud.

- GatherMetadata sends the role's SigV4 credentials only to the deployment's own registry
  API: a service a job names (from a stored job type) is called unsigned;
- a job cancelled before GatherMetadata's first write stays CANCELLED, and its asset's lease
  does not block the next upload of the session.
"""

from __future__ import annotations

import json
from typing import Any

from e2e_support import ROOT, LocalHttpService
from typer.testing import CliRunner

from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.pipeline.ingest import execution_name
from upload_processor_tools.commands.operator import app as operator_app
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.local.events import sample_events, seed

SECRET_HEADERS = ("authorization", "x-amz-security-token", "x-amz-date")


def _gather_event(service: str | None) -> dict[str, Any]:
    """The sample GatherMetadata event, its job naming `service` (as a stored job type may)."""
    event = sample_events()["gather_metadata.json"]
    settings = event["job"]["tasks"]["gather_preliminary_metadata"]["job_settings"]
    if service is not None:
        settings["metadata_service"] = service
    return event


def test_credentials_go_only_to_the_deployments_own_registry(no_metrics_warning: None) -> None:
    with (
        LocalHttpService() as own,
        LocalHttpService() as other,
        LocalCloud(
            ROOT, parameter_overrides={"FilesWaitSeconds": 0, "MetadataService": own.url}
        ) as cloud,
    ):
        seed(cloud)
        cloud.invoke("GatherMetadataFunction", _gather_event(other.url))
        assert other.headers, "the job's service was not called"
        for headers in other.headers:
            assert not set(SECRET_HEADERS) & set(headers), headers

        cloud.invoke("GatherMetadataFunction", _gather_event(None))
        assert own.headers, "the deployment's registry was not called"
        assert all("authorization" in h for h in own.headers)  # the stack's own API: signed


def test_a_job_naming_a_plain_http_service_elsewhere_fails_without_calling_it(
    no_metrics_warning: None,
) -> None:
    with LocalCloud(ROOT, parameter_overrides={"FilesWaitSeconds": 0}) as cloud:
        seed(cloud)
        payload, errored = cloud.invoke(
            "GatherMetadataFunction", _gather_event("http://169.254.169.254/latest")
        )
        assert errored
        assert "use https" in json.dumps(payload), payload


def test_a_job_cancelled_before_gather_stays_cancelled_and_frees_its_asset(
    no_metrics_warning: None,
) -> None:
    """Cancel lands before GatherMetadata's first write: GatherMetadata stops without writing
    (no PROCESSING, no report, no lease), and the next upload of the session completes."""
    with LocalCloud(ROOT, parameter_overrides={"FilesWaitSeconds": 0}) as cloud:
        seed(cloud)
        event = _gather_event(None)
        job_id = event["job_id"]
        store = JobStore(cloud.client("dynamodb"), cloud.jobs_table)
        store.create({"job_id": job_id, "status": str(JobStatus.RECEIVED)})
        cancelled = CliRunner().invoke(
            operator_app, ["cancel", job_id, "--table", cloud.jobs_table]
        )
        assert cancelled.exit_code == 0, cancelled.output

        payload, errored = cloud.invoke("GatherMetadataFunction", event)  # the late invocation
        assert errored and "JobStateConflictError" in json.dumps(payload), payload
        assert store.get(job_id)["status"] == "CANCELLED"
        archive = cloud.client("s3").list_objects_v2(Bucket=cloud.archive_bucket)
        assert archive.get("KeyCount", 0) == 0  # no lease, no work area

        s3 = cloud.client("s3")
        key = f"{event['prefix']}/upload_job.json"
        body = s3.get_object(Bucket=cloud.staging_bucket, Key=key)["Body"].read()
        version = s3.put_object(Bucket=cloud.staging_bucket, Key=key, Body=body)["VersionId"]
        record = cloud.job(execution_name(cloud.staging_bucket, key, version))
        assert record is not None
        cloud.wait(record["execution_arn"])
        assert cloud.job(record["job_id"])["status"] == "COMPLETE"
