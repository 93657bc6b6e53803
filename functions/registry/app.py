"""Registry: the metadata registry's REST API (API Gateway, IAM-signed requests only).

POST /instruments | /subjects | /procedures | /projects  register a document (?replace=true)
GET  /instruments/{id} | /subjects/{subject_id} | ...  the latest version (?version=... for one)
GET  .../{id}/versions                                  every version, newest first

The logic lives in upload_processor.adapters.registry; this only routes and shapes responses.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.adapters.registry import RegistryStore, kind_spec
from upload_processor.entrypoints.api import install_error_routes, json_response
from upload_processor.entrypoints.observability import handler_tracer
from upload_processor.errors import RegistryConflictError, RegistryValidationError
from upload_processor.settings import Settings

logger = Logger()
tracer = handler_tracer()
app = APIGatewayRestResolver()

_TRUE = {"1", "true", "yes", "on"}


def _store() -> RegistryStore:
    return RegistryStore(client("dynamodb"), Settings.from_env().require("registry_table"))


def _post(kind: str) -> Response:
    try:
        document = app.current_event.json_body
    except ValueError as exc:
        raise RegistryValidationError(
            f"the request body is not JSON: {exc}",
            [{"loc": [], "field": "(body)", "msg": str(exc), "type": "json_invalid"}],
        ) from None
    replace = (app.current_event.get_query_string_value("replace") or "").lower() in _TRUE
    result = _store().put(kind, document, replace=replace)
    logger.info("registered", extra=result.record.summary() | {"replaced": result.replaced})
    return json_response(201 if result.created else 200, result.to_dict())


def _get(kind: str, record_id: str) -> Response:
    spec = kind_spec(kind)
    record_id = unquote(record_id)
    version = app.current_event.get_query_string_value("version")
    store = _store()
    record = store.get(kind, record_id, version) if version else store.get_latest(kind, record_id)
    if record is None:
        what = f"{kind} {record_id!r}" + (f" version {version}" if version else "")
        return json_response(
            404,
            {"message": f"{what} is not registered (register it with POST /{spec.plural})"},
        )
    return Response(
        status_code=200,
        content_type="application/json",
        body=json.dumps(record.document),
        headers={"X-Registry-Version": record.version, "X-Registry-Sha256": record.sha256},
    )


def _versions(kind: str, record_id: str) -> Response:
    spec = kind_spec(kind)
    record_id = unquote(record_id)
    versions = _store().versions(kind, record_id)
    if not versions:
        return json_response(
            404,
            {
                "message": f"{kind} {record_id!r} is not registered (register it with POST /{spec.plural})"
            },
        )
    return json_response(200, {"kind": kind, "id": record_id, "versions": versions})


@app.post("/instruments")
def post_instrument() -> Response:
    """Register an instrument (version = its modification_date)."""
    return _post("instrument")


@app.get("/instruments/<instrument_id>")
def get_instrument(instrument_id: str) -> Response:
    """The instrument with the latest modification_date."""
    return _get("instrument", instrument_id)


@app.get("/instruments/<instrument_id>/versions")
def get_instrument_versions(instrument_id: str) -> Response:
    """Every registered modification_date of an instrument."""
    return _versions("instrument", instrument_id)


@app.post("/subjects")
def post_subject() -> Response:
    """Register a subject."""
    return _post("subject")


@app.get("/subjects/<subject_id>")
def get_subject(subject_id: str) -> Response:
    """The subject's latest version."""
    return _get("subject", subject_id)


@app.get("/subjects/<subject_id>/versions")
def get_subject_versions(subject_id: str) -> Response:
    """Every version of a subject."""
    return _versions("subject", subject_id)


@app.post("/procedures")
def post_procedures() -> Response:
    """Register a subject's procedures."""
    return _post("procedures")


@app.get("/procedures/<subject_id>")
def get_procedures(subject_id: str) -> Response:
    """The latest procedures of a subject."""
    return _get("procedures", subject_id)


@app.get("/procedures/<subject_id>/versions")
def get_procedures_versions(subject_id: str) -> Response:
    """Every version of a subject's procedures."""
    return _versions("procedures", subject_id)


@app.post("/projects")
def post_project() -> Response:
    """Register a project's funding and investigators."""
    return _post("project")


@app.get("/projects/<project_name>")
def get_project(project_name: str) -> Response:
    """The project's latest funding and investigators."""
    return _get("project", project_name)


@app.get("/projects/<project_name>/versions")
def get_project_versions(project_name: str) -> Response:
    """Every version of a project's record."""
    return _versions("project", project_name)


@app.exception_handler(RegistryValidationError)
def _invalid(exc: RegistryValidationError) -> Response:
    return json_response(400, exc.to_dict())


@app.exception_handler(RegistryConflictError)
def _conflict(exc: RegistryConflictError) -> Response:
    return json_response(
        409, {"message": str(exc), "kind": exc.kind, "id": exc.id, "version": exc.version}
    )


install_error_routes(app, logger, "registry")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway (REST, proxy integration) → the resolver."""
    return app.resolve(event, context)
