"""Finalize: close the job (complete, rejected or failed), write the asset's metadata, notify."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.domain.contracts import parse_finalize_input
from upload_processor.entrypoints.observability import (
    handler_tracer,
    log_keys,
    record_outcome,
    record_stage,
)
from upload_processor.pipeline import finalize
from upload_processor.settings import Settings

logger = Logger()
tracer = handler_tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: {"outcome": "complete" | "rejected" | "failed", job_id, job, bucket, prefix, ...}
    (domain.contracts.FinalizeInput)."""
    logger.append_keys(**log_keys(event), outcome=event.get("outcome"))
    started = time.monotonic()
    request = parse_finalize_input(event)
    result = finalize.run(request, settings=Settings.from_env(), client=client)
    record_outcome(metrics, result)
    record_stage(metrics, "Finalize", time.monotonic() - started)
    logger.info("job closed", extra=result)
    return result
