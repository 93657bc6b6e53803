"""GatherMetadata: assemble and validate the session's metadata, save the report, plan the transfer."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters import notify
from upload_processor.adapters.aws import client
from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.adapters.metadata_service import service_from_environment, service_from_spec
from upload_processor.entrypoints.observability import log_keys, record_stage
from upload_processor.pipeline.gather import gather, gather_settings
from upload_processor.settings import Settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: the execution input written by Ingest. Output: the report summary and the plan."""
    logger.append_keys(**log_keys(event))
    started = time.monotonic()
    settings = Settings.from_env()
    store = JobStore(client("dynamodb"), settings.require("jobs_table"))
    store.update(event["job_id"], JobStatus.PROCESSING)
    job_service = gather_settings(event["job"]).get("metadata_service")
    service = (
        service_from_spec(job_service, dynamodb=client("dynamodb"))
        if job_service
        else service_from_environment(dynamodb=client("dynamodb"))
    )
    result = gather(
        client("s3"),
        bucket=event["bucket"],
        prefix=event.get("prefix") or "",
        job=event["job"],
        archive_bucket=settings.archive_for(event["job"].get("s3_bucket", "default")),
        job_id=event["job_id"],
        job_notes=event.get("job_notes"),
        service=service,
        job_key=event.get("job_key"),
        job_version_id=event.get("job_version_id"),
        files_wait_seconds=settings.files_wait_seconds,
        chunk_threshold=settings.chunk_threshold,
        range_size=settings.range_size,
    )
    store.update(
        event["job_id"],
        asset_name=result["asset_name"],
        report_key=result["report_key"],
        archive_bucket=result["archive_bucket"],
    )
    if not result["reject"]:
        job = event["job"]
        prefix = event.get("prefix") or ""
        notify.publish(
            client("sns"),
            settings.require("topic_arn"),
            notify.beginning(
                job=job,
                job_id=event["job_id"],
                asset_name=result["asset_name"],
                staging_uri=f"s3://{event['bucket']}/{prefix}/",
            ),
        )
    record_stage(metrics, "GatherMetadata", time.monotonic() - started)
    logger.info(
        "metadata gathered",
        extra={k: result[k] for k in ("status", "asset_name", "reject", "counts")},
    )
    return result
