"""Status: the read-only job status API (API Gateway, IAM-signed requests only).

GET /jobs        recent jobs, newest first: ?state= &since= &user= &job_type= &limit= &next_token=
GET /jobs/{id}   one job (a job id, or an asset name: its newest job): the record, its
                 execution's steps (Step Functions history), its report's summary and its
                 registration steps' outcomes
GET /assets      the catalog: ?subject= &project= &modality= &data_level= &since= &until=
                 &limit= (upload_processor.operations.catalog)
GET /assets/{name}  one asset's catalog record

The same data as `upload-processor status` (upload_processor.operations.status); this only routes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_processor.adapters.aws import client
from upload_processor.adapters.catalog import CatalogStore
from upload_processor.adapters.jobs import JobStore
from upload_processor.entrypoints.api import install_error_routes, json_response
from upload_processor.errors import InvalidQueryError
from upload_processor.operations.catalog import asset_record, search_assets
from upload_processor.operations.status import job_detail, list_page
from upload_processor.settings import Settings

logger = Logger()
tracer = Tracer()
app = APIGatewayRestResolver()

DEFAULT_LIMIT = 50
MAX_API_LIMIT = 200


def _store() -> JobStore:
    return JobStore(client("dynamodb"), Settings.from_env().require("jobs_table"))


def _catalog() -> CatalogStore:
    return CatalogStore(client("dynamodb"), Settings.from_env().require("assets_table"))


def _limit() -> int:
    raw_limit = app.current_event.get_query_string_value("limit") or str(DEFAULT_LIMIT)
    try:
        limit = int(raw_limit)
    except ValueError:
        raise InvalidQueryError(f"limit must be a whole number, got {raw_limit!r}") from None
    if not 1 <= limit <= MAX_API_LIMIT:
        raise InvalidQueryError(f"limit must be between 1 and {MAX_API_LIMIT}, got {limit}")
    return limit


@app.get("/jobs")
def list_jobs() -> Response:
    """One page of jobs; `next_token` (null on the last page) asks for the next one."""
    query = app.current_event.get_query_string_value
    limit = _limit()
    page = list_page(
        _store(),
        state=query("state"),
        since=query("since"),
        user=query("user"),
        job_type=query("job_type"),
        limit=limit,
        next_token=query("next_token"),
    )
    return json_response(200, page)


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """The job's record, execution steps and report summary."""
    job_id = unquote(job_id)
    detail = job_detail(_store(), sfn=client("stepfunctions"), s3=client("s3"), job_or_asset=job_id)
    if detail is None:
        return json_response(
            404, {"message": f"no job {job_id!r} (neither a job id nor an asset name)"}
        )
    return json_response(200, detail)


@app.get("/assets")
def search() -> Response:
    """The archived assets matching every condition given, newest acquisition first."""
    query = app.current_event.get_query_string_value
    page = search_assets(
        _catalog(),
        subject=query("subject"),
        project=query("project"),
        modality=query("modality"),
        data_level=query("data_level"),
        since=query("since"),
        until=query("until"),
        limit=_limit(),
    )
    return json_response(200, page)


@app.get("/assets/<name>")
def get_asset(name: str) -> Response:
    """One asset's catalog record."""
    name = unquote(name)
    record = asset_record(_catalog(), name)
    if record is None:
        return json_response(404, {"message": f"no asset {name!r} in the catalog"})
    return json_response(200, record)


@app.exception_handler(InvalidQueryError)
def _invalid(exc: InvalidQueryError) -> Response:
    return json_response(400, {"message": str(exc)})


install_error_routes(app, logger, "status")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway (REST, proxy integration) → the resolver."""
    return app.resolve(event, context)
