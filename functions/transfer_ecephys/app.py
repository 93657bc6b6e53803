"""EcephysTransfer: encode one time range of an ecephys stream into its Zarr chunks.

The same batch code as Transfer (`run_batch`: results recorded in the work area, failures
recorded, a retried batch not redone); this function differs by its layer: the ecephys layer
ships the codec (numcodecs, FLAC) the `encode_ecephys` items need. The Map routes a batch here
when its item's action is `encode_ecephys` (statemachine/upload.asl.json, `RouteBatch`).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.domain.contracts import TransferBatchInput
from upload_processor.entrypoints.observability import log_keys, record_stage
from upload_processor.pipeline.transfer.batch import run_batch

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: one Map item (TransferBatchInput) of encode_ecephys ranges. Output: a small
    summary (TransferBatchResult); the per-range results go to the archive's work area."""
    logger.append_keys(**log_keys(event))
    started = time.monotonic()
    request = TransferBatchInput.model_validate(event)
    summary = run_batch(client("s3"), request)
    record_stage(metrics, "EcephysTransfer", time.monotonic() - started)
    if not summary.resumed:
        metrics.add_metric(
            name="EcephysRangesEncoded", unit=MetricUnit.Count, value=summary.objects
        )
    result = summary.model_dump(mode="json")
    logger.info("ecephys ranges encoded", extra=result)
    return result
