"""What the REST handlers (registry, status) share: JSON responses and the common error routes."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response


def json_response(status: int, body: Any) -> Response:
    """A JSON response."""
    return Response(
        status_code=status, content_type="application/json", body=json.dumps(body, default=str)
    )


def install_error_routes(app: APIGatewayRestResolver, logger: Logger, what: str) -> None:
    """A JSON 404 for unknown routes and a JSON 500 naming the request id for any fault."""

    @app.exception_handler(Exception)
    def _internal(exc: Exception) -> Response:
        logger.exception(f"{what} request failed")
        request_id = app.current_event.request_context.request_id
        return json_response(
            500, {"message": f"internal error ({type(exc).__name__}); request id {request_id}"}
        )

    @app.not_found
    def _not_found(_: Exception) -> Response:
        event = app.current_event
        return json_response(404, {"message": f"no route {event.http_method} {event.path}"})
