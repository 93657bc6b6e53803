"""Register: one registration state after Finalize (catalog, announce, ...), by `step`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.domain.registration import RegistrationInput
from upload_processor.entrypoints.observability import log_keys
from upload_processor.pipeline import registration
from upload_processor.settings import Settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: domain.registration.RegistrationInput ({"step", job_id, job, gather, finalize,
    error?}); output: the step's recorded outcome."""
    logger.append_keys(**log_keys(event), step=event.get("step"))
    request = RegistrationInput.model_validate(event)
    result = registration.run(request, settings=Settings.from_env(), client=client)
    logger.info("registration step done", extra=result)
    return result
