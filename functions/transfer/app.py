"""Transfer: compress (zstd, streaming) or copy one batch of planned objects into the archive."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.clients import client
from upload_processor.plan import PlanItem
from upload_processor.transfer import transfer

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: {"items": [plan items], "source_bucket", "dest_bucket"}. Output: one result each."""
    s3 = client("s3")
    results = []
    for raw in event["items"]:
        item = PlanItem.model_validate(raw)
        result = transfer(
            s3, item, source_bucket=event["source_bucket"], dest_bucket=event["dest_bucket"]
        )
        logger.info(
            "transferred",
            extra={
                "source_key": item.source_key,
                "action": item.action,
                "bytes_in": result.bytes_in,
                "bytes_out": result.bytes_out,
            },
        )
        results.append(result.to_dict())
    return {"results": results}
