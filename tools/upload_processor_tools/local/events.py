"""Sample events for every function, against the sample session staged in the local cloud.

`events/*.json` are generated from here (`upload-processor local events --write events`) and a
test checks they still match, so they cannot drift from the code. `seed` stages the same sample
session that the events name, with the bucket's notifications paused so nothing runs until an
event is invoked.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from upload_processor.adapters.staging import Entry, md5_etag
from upload_processor.domain.job_types import resolve
from upload_processor.domain.upload_job import JOB_FILENAME, parse_upload_job
from upload_processor.pipeline.gather import batches, build_plan
from upload_processor_tools.sample import build_session, project_record

SAMPLE_PREFIX = "sample/750101_2025-06-12_15-03-00"
SAMPLE_JOB_ID = "sample-750101-2025-06-12-15-03-00-local"
# the job of the registration sample: seeded COMPLETE, as Finalize leaves a job
SAMPLE_SEALED_JOB_ID = "sample-750101-2025-06-12-15-03-00-sealed"
SAMPLE_ASSET = "750101_2025-06-12_15-03-00"
SAMPLE_DATA_MB = 0.25
STAGING = "upload-local-staging-123456789012"
ARCHIVE = "upload-local-archive-123456789012"
REGION = "us-east-1"
ACCOUNT = "123456789012"


def build_sample(folder: Path) -> Path:
    """The session the sample events are about (deterministic bytes, so deterministic ETags)."""
    return build_session(folder, data_mb_per_modality=SAMPLE_DATA_MB)


def seed(cloud: Any) -> Path:
    """Stage the sample session in the local cloud without triggering ingest."""
    s3 = cloud.client("s3")
    notifications = s3.get_bucket_notification_configuration(Bucket=cloud.staging_bucket)
    notifications.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(
        Bucket=cloud.staging_bucket, NotificationConfiguration={}
    )
    try:
        folder = build_sample(Path(tempfile.mkdtemp(prefix="upload-sample-")) / "session")
        cloud.upload_session(folder, SAMPLE_PREFIX)
        cloud.registry.put(
            "instrument", json.loads((folder / "instrument_ecephys.json").read_text())
        )
        cloud.registry.put("project", project_record())
        _seed_sealed_job(cloud)
    finally:
        s3.put_bucket_notification_configuration(
            Bucket=cloud.staging_bucket, NotificationConfiguration=notifications
        )
    return folder


def _seed_sealed_job(cloud: Any) -> None:
    """The job record the registration sample names, COMPLETE as Finalize leaves it."""
    from upload_processor.adapters.jobs import JobStore

    JobStore(cloud.client("dynamodb"), cloud.jobs_table).create(
        {
            "job_id": SAMPLE_SEALED_JOB_ID,
            "status": "COMPLETE",
            "asset_name": SAMPLE_ASSET,
            "archive_uri": f"s3://{ARCHIVE}/{SAMPLE_ASSET}/",
        }
    )


def _resolved_job(folder: Path) -> dict[str, Any]:
    job, _ = parse_upload_job((folder / JOB_FILENAME).read_bytes())
    return resolve(job)


def _entries(folder: Path) -> list[Entry]:
    """The sample's data files as the staging bucket lists them (sizes and MD5 ETags)."""
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if "/" in rel:
            out.append(
                Entry(
                    rel, path.stat().st_size, md5_etag(path.read_bytes()), f"{SAMPLE_PREFIX}/{rel}"
                )
            )
    return out


def sample_events() -> dict[str, dict[str, Any]]:
    """One working event per function, keyed by file name."""
    folder = build_sample(Path(tempfile.mkdtemp(prefix="upload-sample-")) / "session")
    job = _resolved_job(folder)
    asset = "750101_2025-06-12_15-03-00"
    plan = batches(build_plan(SAMPLE_PREFIX, _entries(folder), asset, job))
    base = {"job_id": SAMPLE_JOB_ID, "job": job, "bucket": STAGING, "prefix": SAMPLE_PREFIX}
    return {
        "ingest_sqs.json": _ingest_sqs_event(),
        "gather_metadata.json": {
            **base,
            "job_key": f"{SAMPLE_PREFIX}/{JOB_FILENAME}",
            "job_notes": [],
        },
        "transfer.json": {
            "batch": plan[0],
            "job_id": SAMPLE_JOB_ID,
            "source_bucket": STAGING,
            "dest_bucket": ARCHIVE,
            "verify": "full",
        },
        "registry_post_instrument.json": _api_event(
            "POST", "/instruments", json.loads((folder / "instrument_behavior.json").read_text())
        ),
        "registry_get_instrument.json": _api_event(
            "GET", "/instruments/{id}", None, {"id": "447-EPHYS-1"}
        ),
        "status_list_jobs.json": _api_event("GET", "/jobs", None),
        "register_catalog.json": {
            **base,
            "job_id": SAMPLE_SEALED_JOB_ID,
            "step": "catalog",
            "gather": {
                "status": "valid",
                "asset_name": asset,
                "reject": False,
                "report_key": f"{SAMPLE_PREFIX}/upload_report.json",
                "summary": "valid",
                "archive_bucket": ARCHIVE,
            },
            "finalize": {
                "status": "COMPLETE",
                "asset_name": asset,
                "archive_uri": f"s3://{ARCHIVE}/{asset}/",
                "files": len(_entries(folder)),
            },
        },
        "finalize_failed.json": {
            **base,
            "outcome": "failed",
            "error": {
                "Error": "TransferError",
                "Cause": json.dumps(
                    {
                        "errorMessage": "sample: the staged object changed after it was planned",
                        "errorType": "TransferError",
                    }
                ),
            },
        },
    }


def _ingest_sqs_event() -> dict[str, Any]:
    """What ingest receives: the staging bucket's S3 notification of the sample's job file,
    delivered through the ingest queue."""
    s3_event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2025-06-12T22:30:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "upload-job",
                    "bucket": {"name": STAGING, "arn": f"arn:aws:s3:::{STAGING}"},
                    "object": {"key": f"{SAMPLE_PREFIX}/{JOB_FILENAME}"},
                },
            }
        ]
    }
    return {
        "Records": [
            {
                "messageId": "4f8c1f9e-0000-4000-8000-000000000001",
                "receiptHandle": "sample-receipt-handle",
                "body": json.dumps(s3_event),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1749767400000",
                    "SenderId": "s3.amazonaws.com",
                    "ApproximateFirstReceiveTimestamp": "1749767400000",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:upload-local-IngestQueue",
                "awsRegion": REGION,
            }
        ]
    }


def _api_event(
    method: str, resource: str, body: Any, path_parameters: dict[str, str] | None = None
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, IAM-authorised, as the registry API receives it."""
    path = resource
    for key, value in (path_parameters or {}).items():
        path = path.replace("{" + key + "}", value)
    host = "abcdef1234.execute-api.us-east-1.amazonaws.com"
    headers = {"Accept": "application/json", "Content-Type": "application/json", "Host": host}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abcdef1234",
            "domainName": host,
            "httpMethod": method,
            "identity": {
                "accountId": ACCOUNT,
                "userArn": f"arn:aws:iam::{ACCOUNT}:user/rig-operator",
                "sourceIp": "192.0.2.10",
            },
            "path": f"/v1{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "resourcePath": resource,
            "stage": "v1",
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


EVENT_FUNCTIONS = {
    "status_list_jobs.json": "StatusFunction",
    "registry_post_instrument.json": "RegistryFunction",
    "registry_get_instrument.json": "RegistryFunction",
    "ingest_sqs.json": "IngestFunction",
    "gather_metadata.json": "GatherMetadataFunction",
    "transfer.json": "TransferFunction",
    "finalize_failed.json": "FinalizeFunction",
    "register_catalog.json": "RegisterFunction",
}


def write_events(folder: Path) -> list[Path]:
    """(Re)write events/*.json."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, event in sample_events().items():
        path = folder / name
        path.write_text(json.dumps(event, indent=2) + "\n")
        written.append(path)
    return written
