"""Ingest: S3 `upload_job.json` events arrive through SQS; each becomes a job and an execution."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.s3_event import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.adapters.jobs import JobStore
from upload_processor.entrypoints.observability import handler_tracer
from upload_processor.pipeline.ingest import Ingest
from upload_processor.settings import Settings

logger = Logger()
tracer = handler_tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
INGEST_METRICS = {
    "started": "UploadsReceived",
    "rejected": "UploadsRejected",
    "duplicate": "DuplicateDeliveries",
}


def _ingest() -> Ingest:
    settings = Settings.from_env()
    return Ingest(
        s3=client("s3"),
        sfn=client("stepfunctions"),
        sns=client("sns"),
        store=JobStore(client("dynamodb"), settings.require("jobs_table")),
        settings=settings,
    )


@tracer.capture_method
def record_handler(record: SQSRecord) -> list[dict[str, str]]:
    """One SQS message holds one S3 event (or S3's test event, which is ignored)."""
    body = json.loads(record.body)
    if body.get("Event") == "s3:TestEvent":
        return []
    ingest = _ingest()
    outcomes = []
    for s3_record in S3Event(body).records:
        key = unquote_plus(s3_record.s3.get_object.key)
        outcome = ingest.handle(s3_record.s3.bucket.name, key, s3_record.s3.get_object.version_id)
        logger.info("upload_job.json ingested", extra={"key": key, **outcome.to_dict()})
        name = INGEST_METRICS.get(outcome.action)
        if name:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        outcomes.append(outcome.to_dict())
    return outcomes


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS batch: a record that fails is reported back for redelivery (then the DLQ)."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
