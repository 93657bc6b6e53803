"""Transfer: compress (zstd, streaming), compress one range, or copy one batch of planned objects."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.domain.contracts import TransferBatchInput
from upload_processor.entrypoints.observability import handler_tracer, log_keys, record_stage
from upload_processor.pipeline.transfer.batch import run_batch
from upload_processor.settings import Settings

logger = Logger()
tracer = handler_tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: one Map item (TransferBatchInput). Output: a small summary (TransferBatchResult);
    the per-object results go to the archive's work area."""
    logger.append_keys(**log_keys(event))
    started = time.monotonic()
    request = TransferBatchInput.model_validate(event)
    summary = run_batch(client("s3"), request, copy_threshold=Settings.from_env().copy_threshold)
    record_stage(metrics, "Transfer", time.monotonic() - started)
    if not summary.resumed:
        metrics.add_metric(name="ObjectsTransferred", unit=MetricUnit.Count, value=summary.objects)
    result = summary.model_dump(mode="json")
    logger.info("batch transferred", extra=result)
    return result
