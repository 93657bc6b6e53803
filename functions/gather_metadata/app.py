"""GatherMetadata: assemble and validate the session's metadata, save the report, plan the transfer."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.domain.contracts import ExecutionInput
from upload_processor.entrypoints.observability import handler_tracer, log_keys, record_stage
from upload_processor.pipeline import gather_stage
from upload_processor.settings import Settings

logger = Logger()
tracer = handler_tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: the execution input written by Ingest. Output: the report summary and the plan."""
    logger.append_keys(**log_keys(event))
    started = time.monotonic()
    request = ExecutionInput.model_validate(event)
    result = gather_stage.run(request, settings=Settings.from_env(), client=client)
    record_stage(metrics, "GatherMetadata", time.monotonic() - started)
    logger.info(
        "metadata gathered",
        extra=result.model_dump(mode="json", include={"status", "asset_name", "reject", "counts"}),
    )
    return result.model_dump(mode="json")
