"""Job status on the local cloud: a COMPLETE and a REJECTED job run through the real state
machine, then `upload-processor status` (list and detail, table and --json) and the status
API (its handler with API Gateway proxy events, and through Lambda: cloud.invoke)."""

from __future__ import annotations

import importlib.util
import json
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from upload_processor_tools.commands.status import app as status_app
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.sample import build_session

ROOT = Path(__file__).resolve().parents[2]
ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
BAD_ACQ = ACQ + timedelta(days=1)
BAD_ASSET = "750101_2025-06-13_15-03-00"
EMAIL = "scientist@example.org"


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, dict, dict]]:
    """One local cloud with a COMPLETE job and a REJECTED job (its report has errors)."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    tmp = tmp_path_factory.mktemp("sessions")
    with LocalCloud(ROOT) as cloud:
        good = build_session(tmp / "good", acq_datetime=ACQ, data_mb_per_modality=0.05)
        cloud.upload_session(good, "rig-7/good")
        bad = build_session(
            tmp / "bad",
            acq_datetime=BAD_ACQ,
            data_mb_per_modality=0.05,
            conflicting_subject_id="750999",
        )
        cloud.upload_session(bad, "rig-7/bad")
        cloud.wait_idle()
        records = {}
        for execution in cloud.executions():
            records[cloud.job(execution["name"])["status"]] = cloud.job(execution["name"])
        yield cloud, records["COMPLETE"], records["REJECTED"]


def _cli(cloud: LocalCloud, *args: str) -> Any:
    return CliRunner().invoke(status_app, ["status", *args, "--table", cloud.jobs_table])


def test_the_records_keep_locations_execution_and_counts(jobs) -> None:
    cloud, complete, rejected = jobs
    for record in (complete, rejected):
        assert record["execution_arn"].endswith(f":{record['job_id']}")
        assert record["staging_bucket"] == cloud.staging_bucket
        assert record["report_key"] == f"{record['staging_prefix']}/upload_report.json"
        assert record["archive_bucket"] == cloud.archive_bucket
        assert record["created_at"] == record["received_at"] <= record["processing_at"]
    assert complete["archive_uri"] == f"s3://{cloud.archive_bucket}/{ASSET}/"
    assert complete["files"] > 0 and complete["bytes_in"] > complete["bytes_out"] > 0
    assert complete["complete_at"] >= complete["processing_at"]
    assert rejected["rejected_at"] and rejected["asset_name"] == BAD_ASSET


def test_status_lists_jobs_newest_first_as_a_table_and_as_json(jobs) -> None:
    cloud, complete, rejected = jobs
    result = _cli(cloud, "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert [r["job_id"] for r in page["items"]] == [rejected["job_id"], complete["job_id"]]
    assert page["next_token"] is None

    result = _cli(cloud, "--json", "--limit", "1")
    first = json.loads(result.stdout)
    assert [r["job_id"] for r in first["items"]] == [rejected["job_id"]]
    result = _cli(cloud, "--json", "--limit", "1", "--next-token", first["next_token"])
    assert [r["job_id"] for r in json.loads(result.stdout)["items"]] == [complete["job_id"]]

    for args, expected in [
        (["--state", "complete"], [complete]),
        (["--state", "REJECTED", "--user", EMAIL], [rejected]),
        (["--user", "someone@example.org"], []),
        (["--job-type", "default", "--since", "1h"], [rejected, complete]),
        (["--since", "2999-01-01"], []),
    ]:
        result = _cli(cloud, "--json", *args)
        assert result.exit_code == 0, (args, result.output)
        ids = [r["job_id"] for r in json.loads(result.stdout)["items"]]
        assert ids == [r["job_id"] for r in expected], args

    result = CliRunner().invoke(
        status_app, ["status", "--table", cloud.jobs_table], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert complete["job_id"] in result.stdout and "COMPLETE" in result.stdout
    assert rejected["job_id"] in result.stdout and "REJECTED" in result.stdout
    assert ASSET in result.stdout and EMAIL in result.stdout


def test_status_of_a_complete_job_shows_its_steps_and_report(jobs) -> None:
    cloud, complete, _ = jobs
    result = _cli(cloud, complete["job_id"], "--json")
    assert result.exit_code == 0, result.output
    detail = json.loads(result.stdout)
    assert detail["job"] == complete
    execution = detail["execution"]
    assert execution["status"] == "SUCCEEDED" and execution["arn"] == complete["execution_arn"]
    steps = {s["name"]: s for s in execution["steps"]}
    assert [s["name"] for s in execution["steps"]] == [
        "GatherMetadata",
        "IsRejected",
        "TransferFiles",
        "Finalize",
        "RegisterCodeOcean",
        "StartPipelines",
        "Catalog",
        "Announce",
        "Registered",
    ]
    for name in ("GatherMetadata", "TransferFiles", "Finalize", "Catalog", "Announce"):
        step = steps[name]
        assert step["outcome"] == "succeeded", step
        assert step["started_at"] <= step["ended_at"] and step["duration_s"] >= 0
    assert steps["TransferFiles"]["type"] == "Map"
    report = detail["report"]
    assert report["status"] == "valid" and report["errors"] == 0
    assert report["uri"] == f"s3://{cloud.staging_bucket}/{complete['report_key']}"
    registration = detail["registration"]
    assert registration["summary"] == "OK"
    assert [(s["step"], s["status"]) for s in registration["steps"]] == [
        ("codeocean", "SKIPPED"),  # the local deployment names no Code Ocean domain
        ("pipelines", "SKIPPED"),
        ("catalog", "OK"),
        ("announce", "OK"),
    ]

    by_asset = json.loads(_cli(cloud, ASSET, "--json").stdout)  # an asset name works too
    assert by_asset["job"]["job_id"] == complete["job_id"]

    result = CliRunner().invoke(
        status_app,
        ["status", complete["job_id"], "--table", cloud.jobs_table],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for text in ("GatherMetadata", "TransferFiles", "Finalize", "succeeded", "Report valid"):
        assert text in result.stdout, text
    for text in ("Registration OK", "catalog", "announce", "event_id="):
        assert text in result.stdout, text


def test_status_of_a_rejected_job_shows_the_reject_step_and_the_problems(jobs) -> None:
    cloud, _, rejected = jobs
    detail = json.loads(_cli(cloud, rejected["job_id"], "--json").stdout)
    names = [s["name"] for s in detail["execution"]["steps"]]
    assert names == ["GatherMetadata", "IsRejected", "Reject"]
    assert all(s["outcome"] == "succeeded" for s in detail["execution"]["steps"])
    report = detail["report"]
    assert report["status"] == "invalid" and report["errors"] >= 1
    assert any("750999" in i["message"] for i in report["issues"])

    result = CliRunner().invoke(
        status_app,
        ["status", BAD_ASSET, "--table", cloud.jobs_table],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Reject" in result.stdout and "Report invalid" in result.stdout
    assert "750999" in result.stdout


def test_status_errors_are_one_line_with_exit_codes(jobs, monkeypatch) -> None:
    cloud, complete, _ = jobs
    cases = [
        (["nope-job"], 1, "no job 'nope-job'"),
        ([complete["job_id"], "--state", "FAILED"], 2, "--state filter the listing"),
        (["--state", "DONE"], 2, "unknown state 'DONE'"),
        (["--since", "yesterday"], 2, "neither an ISO date"),
        (["--next-token", "xyz"], 2, "not one this listing returned"),
    ]
    for args, code, message in cases:
        result = _cli(cloud, *args)
        assert result.exit_code == code, (args, result.output)
        assert result.stdout == ""
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    for name in ("UPLOAD_PROCESSOR_JOBS_TABLE", "UPLOAD_PROCESSOR_STACK", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(status_app, ["status"])
    assert result.exit_code == 2 and "--table NAME" in result.stderr
    result = CliRunner().invoke(status_app, ["status", "--table", "no-such-table"])
    assert result.exit_code == 3 and "no-such-table" in result.stderr


# --------------------------------------------------------------------------- the status API
def _api_event(path: str, resource: str, path_parameters=None, query=None) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, IAM-authorised."""
    headers = {"Accept": "application/json", "Host": "abcdef1234.execute-api.amazonaws.com"}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "httpMethod": "GET",
            "identity": {
                "accountId": "123456789012",
                "userArn": "arn:aws:iam::123456789012:user/operator",
                "sourceIp": "192.0.2.10",
            },
            "path": f"/v1{path}",
            "requestId": str(uuid.uuid4()),
            "resourcePath": resource,
            "stage": "v1",
        },
        "body": None,
        "isBase64Encoded": False,
    }


class _Context:
    function_name = "upload-local-StatusFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = 512
    aws_request_id = "3c1b9a4e-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(scope="module")
def handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_status_app_under_test", ROOT / "functions" / "status" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_status_api_serves_the_same_data(jobs, handler, monkeypatch) -> None:
    cloud, complete, rejected = jobs
    monkeypatch.setenv("JOBS_TABLE", cloud.jobs_table)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def call(*args: Any, **kwargs: Any) -> tuple[int, Any]:
        out = handler.lambda_handler(_api_event(*args, **kwargs), _Context())
        return out["statusCode"], json.loads(out["body"])

    status, page = call("/jobs", "/jobs")
    assert status == 200
    assert [r["job_id"] for r in page["items"]] == [rejected["job_id"], complete["job_id"]]
    cli_page = json.loads(_cli(cloud, "--json").stdout)
    assert page == cli_page

    status, page = call("/jobs", "/jobs", query={"state": "REJECTED", "limit": "5"})
    assert [r["job_id"] for r in page["items"]] == [rejected["job_id"]]
    status, first = call("/jobs", "/jobs", query={"limit": "1", "user": EMAIL})
    assert first["next_token"]
    status, second = call(
        "/jobs", "/jobs", query={"limit": "1", "user": EMAIL, "next_token": first["next_token"]}
    )
    assert [r["job_id"] for r in second["items"]] == [complete["job_id"]]

    job_id = complete["job_id"]
    status, detail = call(f"/jobs/{job_id}", "/jobs/{id}", {"id": job_id})
    assert status == 200
    assert detail == json.loads(_cli(cloud, job_id, "--json").stdout)
    assert [s["name"] for s in detail["execution"]["steps"]][-3:] == [
        "Catalog",
        "Announce",
        "Registered",
    ]

    status, body = call("/jobs/nope", "/jobs/{id}", {"id": "nope"})
    assert status == 404 and "nope" in body["message"]
    for query in ({"state": "DONE"}, {"since": "soon"}, {"limit": "x"}, {"limit": "1000"}):
        status, body = call("/jobs", "/jobs", query=query)
        assert status == 400, query
        assert body["message"]


def test_the_status_function_answers_through_lambda(jobs) -> None:
    cloud, complete, rejected = jobs
    payload, failed = cloud.invoke("StatusFunction", _api_event("/jobs", "/jobs"))
    assert not failed, payload
    assert payload["statusCode"] == 200
    ids = [r["job_id"] for r in json.loads(payload["body"])["items"]]
    assert ids == [rejected["job_id"], complete["job_id"]]
    job_id = rejected["job_id"]
    payload, failed = cloud.invoke(
        "StatusFunction", _api_event(f"/jobs/{job_id}", "/jobs/{id}", {"id": job_id})
    )
    assert not failed and payload["statusCode"] == 200
    detail = json.loads(payload["body"])
    assert detail["report"]["status"] == "invalid"
    assert [s["name"] for s in detail["execution"]["steps"]][-1] == "Reject"


def _role_allows(cloud: LocalCloud, action: str, resource: str) -> bool:
    """The status function's role allows action on resource (its inline policies)."""
    import fnmatch

    iam = cloud.client("iam")
    role = cloud.deployment.name("StatusFunctionRole")
    verdict = False
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions) and any(
                fnmatch.fnmatchcase(resource, r) for r in resources
            ):
                if statement["Effect"] == "Deny":
                    return False
                verdict = True
    return verdict


def test_the_status_api_is_iam_authorised_and_its_role_read_only(jobs) -> None:
    from upload_processor_tools.local.template import load_template

    cloud, complete, _ = jobs
    resources = load_template(ROOT / "template.yaml")["Resources"]
    assert resources["StatusApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    events = resources["StatusFunction"]["Properties"]["Events"].values()
    assert {(e["Properties"]["Path"], e["Properties"]["Method"]) for e in events} == {
        ("/jobs", "get"),
        ("/jobs/{id}", "get"),
        ("/assets", "get"),
        ("/assets/{name}", "get"),
    }

    table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{cloud.jobs_table}"
    for action in ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"):
        assert _role_allows(cloud, action, table), action
    assert _role_allows(cloud, "dynamodb:Query", f"{table}/index/status-created_at")
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert not _role_allows(cloud, action, table), action
    registry = f"arn:aws:dynamodb:us-east-1:123456789012:table/{cloud.registry_table}"
    assert not _role_allows(cloud, "dynamodb:GetItem", registry)
    assets = f"arn:aws:dynamodb:us-east-1:123456789012:table/{cloud.assets_table}"
    assert _role_allows(cloud, "dynamodb:Query", f"{assets}/index/subject-acquired_at")
    assert not _role_allows(cloud, "dynamodb:PutItem", assets)

    staging = f"arn:aws:s3:::{cloud.staging_bucket}"
    report = f"{staging}/{complete['report_key']}"
    assert _role_allows(cloud, "s3:GetObject", report)
    assert not _role_allows(cloud, "s3:GetObject", f"{staging}/rig-7/good/ecephys/continuous.dat")
    assert not _role_allows(cloud, "s3:PutObject", report)
    assert not _role_allows(cloud, "s3:GetObject", f"arn:aws:s3:::{cloud.archive_bucket}/x")

    execution = complete["execution_arn"]
    assert _role_allows(cloud, "states:GetExecutionHistory", execution)
    assert _role_allows(cloud, "states:DescribeExecution", execution)
    for action in ("states:StopExecution", "states:StartExecution"):
        assert not _role_allows(cloud, action, execution), action
        assert not _role_allows(cloud, action, cloud.state_machine_arn), action
    other = execution.replace(":upload-local-upload:", ":another-machine:")
    assert not _role_allows(cloud, "states:GetExecutionHistory", other)
