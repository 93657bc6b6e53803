"""Transfer: compress (zstd, streaming), compress one range, or copy one batch of planned objects."""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.entrypoints.observability import log_keys, record_stage
from upload_processor.pipeline.transfer.batch import run_batch
from upload_processor.settings import mib

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: {"batch": [plan items], "job_id", "source_bucket", "dest_bucket", "verify"}.

    Output: a small summary; the per-object results go to the archive's work area.
    """
    logger.append_keys(**log_keys(event))
    started = time.monotonic()
    summary = run_batch(
        client("s3"),
        event["batch"],
        job_id=event["job_id"],
        source_bucket=event["source_bucket"],
        dest_bucket=event["dest_bucket"],
        verify_mode=event.get("verify") or "quick",
        copy_threshold=mib(os.environ.get("COPY_THRESHOLD_MIB")),
    )
    record_stage(metrics, "Transfer", time.monotonic() - started)
    if not summary["resumed"]:
        metrics.add_metric(
            name="ObjectsTransferred", unit=MetricUnit.Count, value=summary["objects"]
        )
    logger.info("batch transferred", extra=summary)
    return summary
