"""The metadata registry: its REST API through the Lambda handler (API Gateway REST proxy
events) on moto DynamoDB, the store underneath, and the `registry` CLI on a table."""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from tests.paths import ROOT
from upload_processor.adapters.registry import RegistryStore
from upload_processor_tools.commands.registry import registry_app
from upload_processor_tools.sample import build_session

TABLE = "registry-test"
INSTRUMENT_ID = "447-EPHYS-1"
SUBJECT_ID = "750101"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample session: real, valid instrument / subject / procedures files."""
    return build_session(tmp_path_factory.mktemp("session"), data_mb_per_modality=0.01)


def _doc(session: Path, name: str) -> dict[str, Any]:
    return json.loads((session / name).read_text())


@pytest.fixture(scope="module")
def handler_module() -> ModuleType:
    path = ROOT / "functions" / "registry" / "app.py"
    spec = importlib.util.spec_from_file_location("_registry_app_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def create_table(client: Any, name: str = TABLE) -> None:
    """The registry table, keyed as template.yaml's RegistryTable."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "kind_id", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "kind_id", "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
    )


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3

    monkeypatch.setenv("REGISTRY_TABLE", TABLE)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        yield client


class _Context:
    function_name = "upload-local-RegistryFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = 1024
    aws_request_id = "3c1b9a4e-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def api_event(
    method: str,
    resource: str,
    path_parameters: dict[str, str] | None = None,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy integration event, IAM-authorised."""
    path = resource
    for key, value in (path_parameters or {}).items():
        path = path.replace("{" + key + "}", value)
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "pytest",
        "X-Amz-Date": "20250612T150300Z",
    }
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "extendedRequestId": "extended-id",
            "httpMethod": method,
            "identity": {
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "accountId": "123456789012",
                "caller": "AIDAEXAMPLE",
                "sourceIp": "192.0.2.10",
                "user": "AIDAEXAMPLE",
                "userAgent": "pytest",
                "userArn": "arn:aws:iam::123456789012:user/scientist",
            },
            "path": f"/v1{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": "12/Jun/2025:15:03:00 +0000",
            "requestTimeEpoch": 1749740580000,
            "resourceId": "res123",
            "resourcePath": resource,
            "stage": "v1",
        },
        "body": body,
        "isBase64Encoded": False,
    }


@pytest.fixture
def call(handler_module: ModuleType, dynamodb: Any) -> Any:
    """call(method, resource, path_params, query=..., body=...) -> (status, headers, json body)."""

    def _call(*args: Any, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        out = handler_module.lambda_handler(api_event(*args, **kwargs), _Context())
        body = json.loads(out["body"]) if out.get("body") else None
        headers = {k.lower(): v for k, v in (out.get("headers") or {}).items()}
        for key, values in (out.get("multiValueHeaders") or {}).items():
            headers.setdefault(key.lower(), values[-1])
        return out["statusCode"], headers, body

    return _call


def _instrument(session: Path, modification_date: str | None = None) -> dict[str, Any]:
    doc = _doc(session, "instrument_ecephys.json")
    if modification_date:
        doc = copy.deepcopy(doc)
        doc["modification_date"] = modification_date
    return doc


# --------------------------------------------------------------------------- instruments
def test_post_instrument_then_get_it(call: Any, session: Path) -> None:
    doc = _instrument(session)
    status, _, body = call("POST", "/instruments", body=doc)
    assert status == 201, body
    assert body["kind"] == "instrument" and body["id"] == INSTRUMENT_ID
    assert body["version"] == doc["modification_date"] == "2025-06-09"
    assert body["created"] is True and body["replaced"] is False
    assert body["location"] == f"/instruments/{INSTRUMENT_ID}"

    status, headers, got = call("GET", "/instruments/{id}", {"id": INSTRUMENT_ID})
    assert status == 200
    assert got == doc  # the sample is already in canonical form
    assert headers["x-registry-version"] == "2025-06-09"


def test_post_instrument_twice_is_a_conflict_unless_replace(call: Any, session: Path) -> None:
    doc = _instrument(session)
    assert call("POST", "/instruments", body=doc)[0] == 201

    status, _, body = call("POST", "/instruments", body=doc)
    assert status == 409
    assert INSTRUMENT_ID in body["message"] and "2025-06-09" in body["message"]
    assert "?replace=true" in body["message"]  # says how to replace
    assert body["version"] == "2025-06-09"

    changed = copy.deepcopy(doc)
    changed["notes"] = "recalibrated the manipulator"
    status, _, body = call("POST", "/instruments", query={"replace": "true"}, body=changed)
    assert status == 200, body
    assert body["replaced"] is True and body["created"] is False
    _, _, got = call("GET", "/instruments/{id}", {"id": INSTRUMENT_ID})
    assert got["notes"] == "recalibrated the manipulator"
    _, _, versions = call("GET", "/instruments/{id}/versions", {"id": INSTRUMENT_ID})
    assert [v["version"] for v in versions["versions"]] == ["2025-06-09"]  # overwritten


def test_replace_true_on_a_new_instrument_creates_it(call: Any, session: Path) -> None:
    status, _, body = call(
        "POST", "/instruments", query={"replace": "true"}, body=_instrument(session)
    )
    assert status == 201 and body["created"] is True and body["replaced"] is False


def test_invalid_instrument_is_400_with_field_errors(call: Any, session: Path) -> None:
    doc = _instrument(session)
    del doc["instrument_id"]
    doc["modification_date"] = "last tuesday"
    status, _, body = call("POST", "/instruments", body=doc)
    assert status == 400
    fields = {e["field"]: e for e in body["errors"]}
    assert set(fields) == {"instrument_id", "modification_date"}
    assert fields["instrument_id"]["loc"] == ["instrument_id"]
    assert fields["instrument_id"]["msg"] == "Field required"
    assert "date" in fields["modification_date"]["msg"]
    assert "instrument_id" in body["message"]
    # nothing was stored
    assert call("GET", "/instruments/{id}", {"id": INSTRUMENT_ID})[0] == 404


def test_a_subject_posted_as_an_instrument_says_where_it_belongs(call: Any, session: Path) -> None:
    status, _, body = call("POST", "/instruments", body=_doc(session, "subject.json"))
    assert status == 400
    assert body["errors"][0]["field"] == "object_type"
    assert "/subjects" in body["message"]


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "null"])
def test_a_body_that_is_not_a_json_object_is_400(call: Any, raw: str) -> None:
    status, _, body = call("POST", "/instruments", body=raw)
    assert status == 400
    assert body["message"] and body["errors"]


def test_get_latest_picks_the_latest_modification_date(call: Any, session: Path) -> None:
    for day in ("2025-06-09", "2025-07-01", "2024-01-15"):  # the latest is not the last posted
        assert call("POST", "/instruments", body=_instrument(session, day))[0] == 201

    status, headers, got = call("GET", "/instruments/{id}", {"id": INSTRUMENT_ID})
    assert status == 200 and got["modification_date"] == "2025-07-01"
    assert headers["x-registry-version"] == "2025-07-01"

    status, _, body = call("GET", "/instruments/{id}/versions", {"id": INSTRUMENT_ID})
    assert status == 200
    assert body["kind"] == "instrument" and body["id"] == INSTRUMENT_ID
    assert [v["version"] for v in body["versions"]] == ["2025-07-01", "2025-06-09", "2024-01-15"]
    assert all(
        v["registered_at"].endswith("Z") and len(v["sha256"]) == 64 for v in body["versions"]
    )

    status, _, got = call(
        "GET", "/instruments/{id}", {"id": INSTRUMENT_ID}, query={"version": "2024-01-15"}
    )
    assert status == 200 and got["modification_date"] == "2024-01-15"


def test_unknown_instrument_is_404_json(call: Any) -> None:
    status, headers, body = call("GET", "/instruments/{id}", {"id": "NO-SUCH-RIG"})
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert "NO-SUCH-RIG" in body["message"] and "POST /instruments" in body["message"]
    status, _, body = call("GET", "/instruments/{id}/versions", {"id": "NO-SUCH-RIG"})
    assert status == 404 and "NO-SUCH-RIG" in body["message"]


def test_unknown_route_is_404_json(call: Any) -> None:
    status, _, body = call("GET", "/rigs/{id}", {"id": "x"})
    assert status == 404 and "/rigs/x" in body["message"]


# --------------------------------------------------------------------------- subjects, procedures
@pytest.mark.parametrize(
    ("collection", "param", "file_name"),
    [("subjects", "subject_id", "subject.json"), ("procedures", "subject_id", "procedures.json")],
)
def test_subjects_and_procedures(
    call: Any, session: Path, collection: str, param: str, file_name: str
) -> None:
    doc = _doc(session, file_name)
    item = f"/{collection}/{{{param}}}"
    kind = "subject" if collection == "subjects" else "procedures"

    assert call("GET", item, {param: SUBJECT_ID})[0] == 404

    status, _, body = call("POST", f"/{collection}", body=doc)
    assert status == 201, body
    assert (body["kind"], body["id"], body["version"]) == (kind, SUBJECT_ID, "000001")

    status, _, body = call("POST", f"/{collection}", body=doc)
    assert status == 409 and "?replace=true" in body["message"]

    changed = copy.deepcopy(doc)
    changed["notes"] = "second version"
    status, _, body = call("POST", f"/{collection}", query={"replace": "true"}, body=changed)
    assert status == 201 and body["version"] == "000002" and body["replaced"] is True

    status, _, got = call("GET", item, {param: SUBJECT_ID})
    assert status == 200 and got["notes"] == "second version"
    status, _, body = call("GET", item + "/versions", {param: SUBJECT_ID})
    assert status == 200 and [v["version"] for v in body["versions"]] == ["000002", "000001"]
    status, _, got = call("GET", item, {param: SUBJECT_ID}, query={"version": "000001"})
    assert status == 200 and got == doc

    invalid = copy.deepcopy(doc)
    del invalid["subject_id"]
    status, _, body = call("POST", f"/{collection}", body=invalid)
    assert status == 400 and "subject_id" in {e["field"] for e in body["errors"]}

    assert call("GET", item, {param: "999999"})[0] == 404


# --------------------------------------------------------------------------- projects
PROJECT = "Example Foraging Project"


def _project() -> dict[str, Any]:
    """A project's funding and investigators (valid aind-data-schema Funding / Person)."""
    return {
        "project_name": PROJECT,
        "funding_source": [
            {
                "funder": {"name": "National Institute of Mental Health", "abbreviation": "NIMH"},
                "grant_number": "R01MH000001",
                "fundee": [{"name": "Jane Doe"}],
            }
        ],
        "investigators": [{"name": "Jane Doe", "registry_identifier": "0000-0002-1825-0097"}],
    }


def test_projects(call: Any) -> None:
    item = "/projects/{project_name}"
    encoded = {"project_name": "Example%20Foraging%20Project"}
    assert call("GET", item, encoded)[0] == 404

    status, _, body = call("POST", "/projects", body=_project())
    assert status == 201, body
    assert (body["kind"], body["id"], body["version"]) == ("project", PROJECT, "000001")
    assert body["location"] == "/projects/Example%20Foraging%20Project"

    status, headers, got = call("GET", item, encoded)
    assert status == 200 and headers["x-registry-version"] == "000001"
    # stored in canonical form: validated with aind-data-schema's Funding and Person
    assert got["object_type"] == "Project"
    assert got["funding_source"][0]["object_type"] == "Funding"
    assert got["funding_source"][0]["funder"]["registry_identifier"]  # NIMH's ROR id
    assert got["funding_source"][0]["fundee"][0]["object_type"] == "Person"
    assert got["investigators"][0]["registry_identifier"] == "0000-0002-1825-0097"

    status, _, body = call("POST", "/projects", body=_project())
    assert status == 409
    assert "project record for project 'Example Foraging Project'" in body["message"]
    assert "?replace=true" in body["message"]

    changed = _project()
    changed["investigators"].append({"name": "John Roe"})
    status, _, body = call("POST", "/projects", query={"replace": "true"}, body=changed)
    assert status == 201 and body["version"] == "000002"
    status, _, got = call("GET", item, {"project_name": PROJECT})  # unencoded works too
    assert status == 200 and [p["name"] for p in got["investigators"]] == ["Jane Doe", "John Roe"]
    status, _, body = call("GET", item + "/versions", encoded)
    assert status == 200 and [v["version"] for v in body["versions"]] == ["000002", "000001"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"investigators": []}, "investigators"),
        ({"funding_source": []}, "funding_source"),
        ({"funding_source": [{"funder": "Somebody"}]}, "funding_source.0.funder"),
        ({"investigators": [{"orcid": "x"}]}, "investigators.0.name"),
        ({"project_name": ""}, "project_name"),
        ({"grant": "R01"}, "grant"),
    ],
)
def test_invalid_project_is_400_naming_the_field(
    call: Any, change: dict[str, Any], field: str
) -> None:
    status, _, body = call("POST", "/projects", body={**_project(), **change})
    assert status == 400, body
    assert any(e["field"].startswith(field) for e in body["errors"]), body["errors"]


def test_a_subject_posted_as_a_project_says_where_it_belongs(call: Any, session: Path) -> None:
    status, _, body = call("POST", "/projects", body=_doc(session, "subject.json"))
    assert status == 400 and "POST /subjects" in body["message"]


# --------------------------------------------------------------------------- the store itself
def test_store_keeps_kinds_apart_and_compresses(dynamodb: Any, session: Path) -> None:
    store = RegistryStore(dynamodb, TABLE)
    store.put("subject", _doc(session, "subject.json"))
    store.put("procedures", _doc(session, "procedures.json"))
    assert store.get_latest("subject", SUBJECT_ID).document["object_type"] == "Subject"
    assert store.get_latest("procedures", SUBJECT_ID).document["object_type"] == "Procedures"
    assert store.get_latest("instrument", SUBJECT_ID) is None
    item = dynamodb.get_item(
        TableName=TABLE, Key={"kind_id": {"S": "subject#750101"}, "version": {"S": "000001"}}
    )["Item"]
    assert "B" in item["document"] and item["kind"]["S"] == "subject"


# --------------------------------------------------------------------------- the CLI on a table
def test_cli_put_and_get_on_a_table(dynamodb: Any, session: Path) -> None:
    runner = CliRunner()
    instrument = str(session / "instrument_ecephys.json")

    result = runner.invoke(registry_app, ["put", "instrument", instrument, "--table", TABLE])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == "2025-06-09"

    result = runner.invoke(registry_app, ["put", "instrument", instrument, "--table", TABLE])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "already registered" in result.stderr and "--replace" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    result = runner.invoke(
        registry_app, ["put", "instrument", instrument, "--table", TABLE, "--replace"]
    )
    assert result.exit_code == 0, result.output

    result = runner.invoke(registry_app, ["get", "instrument", INSTRUMENT_ID, "--table", TABLE])
    assert result.exit_code == 0 and json.loads(result.stdout)["instrument_id"] == INSTRUMENT_ID
    result = runner.invoke(
        registry_app, ["get", "instrument", INSTRUMENT_ID, "--versions", "--table", TABLE]
    )
    assert [v["version"] for v in json.loads(result.stdout)["versions"]] == ["2025-06-09"]

    result = runner.invoke(registry_app, ["get", "subject", "123", "--table", TABLE])
    assert result.exit_code == 1 and "not registered" in result.stderr

    # a subject file registered as an instrument: a one-line refusal
    result = runner.invoke(
        registry_app, ["put", "instrument", str(session / "subject.json"), "--table", TABLE]
    )
    assert result.exit_code == 1 and "subject" in result.stderr.lower()


def test_cli_put_and_get_a_project_on_a_table(dynamodb: Any, tmp_path: Path) -> None:
    from upload_processor_tools.sample import project_record

    runner = CliRunner()
    path = tmp_path / "project.json"
    path.write_text(json.dumps(project_record()))
    result = runner.invoke(registry_app, ["put", "project", str(path), "--table", TABLE])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == "Example Foraging Project"

    result = runner.invoke(registry_app, ["get", "project", PROJECT, "--table", TABLE])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["funding_source"] == project_record()["funding_source"]
    assert got["investigators"] == project_record()["investigators"]

    path.write_text(json.dumps({**project_record(), "investigators": []}))
    result = runner.invoke(registry_app, ["put", "project", str(path), "--table", TABLE])
    assert result.exit_code == 1 and "investigators" in result.stderr


def test_cli_usage_errors_exit_2(session: Path) -> None:
    runner = CliRunner()
    instrument = str(session / "instrument_ecephys.json")
    result = runner.invoke(registry_app, ["put", "instrument", instrument])
    assert result.exit_code == 2 and "--registry" in result.stderr
    result = runner.invoke(
        registry_app, ["put", "instrument", instrument, "--table", "t", "--registry", "https://x"]
    )
    assert result.exit_code == 2 and "not both" in result.stderr
    result = runner.invoke(registry_app, ["put", "rig", instrument, "--table", "t"])
    assert result.exit_code == 2
    result = runner.invoke(
        registry_app, ["put", "instrument", "/no/such/file.json", "--table", "t"]
    )
    assert result.exit_code == 2
    result = runner.invoke(registry_app, ["get", "instrument", "X", "--registry", "ftp://x"])
    assert result.exit_code == 2
