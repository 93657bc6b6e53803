"""After the archive, on the local cloud: the Catalog and Announce states, the EventBridge
events a subscriber's rule receives, the catalog's queries through the CLI and the API, and a
registration failure that leaves the job COMPLETE and the asset intact."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from upload_processor.adapters.catalog import CatalogStore
from upload_processor.adapters.events import pattern
from upload_processor.adapters.notify import subscription_filter
from upload_processor.domain.catalog import AssetQuery
from upload_processor_tools.sample import build_session

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
ALICE = "alice@example.org"


def _session(tmp_path: Path, name: str, **job_changes: object) -> Path:
    session = build_session(
        tmp_path / name, acq_datetime=ACQ, data_mb_per_modality=0.05, user_email=ALICE
    )
    job = json.loads((session / "upload_job.json").read_text())
    job.update(job_changes)
    (session / "upload_job.json").write_text(json.dumps(job))
    return session


def _run(cloud, session: Path, prefix: str) -> dict:
    cloud.upload_session(session, prefix)
    done = None
    for execution in cloud.executions():
        done = cloud.wait(execution["executionArn"])
    assert done is not None
    return done


def test_a_sealed_asset_is_catalogued_and_announced_once(cloud, tmp_path: Path) -> None:
    inbox = cloud.event_queue("subscriber", pattern("upload-processor"))
    alice = cloud.subscribe_queue("alice", subscription_filter(ALICE))
    execution = _run(cloud, _session(tmp_path, "s", email_notification_types=["end"]), "lab/ok")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    record = cloud.job(execution["name"])
    assert record["status"] == "COMPLETE"
    steps = record["registration"]
    assert steps["catalog"]["status"] == "OK", steps
    assert steps["announce"]["status"] == "OK", steps

    received = cloud.events_received(inbox)
    assert [e["detail-type"] for e in received] == ["Upload Asset Archived"]
    (event,) = received
    assert event["source"] == "upload-processor"
    detail = event["detail"]
    assert detail["asset_name"] == ASSET
    assert detail["archive_uri"] == f"s3://{cloud.archive_bucket}/{ASSET}/"
    assert detail["job_id"] == execution["name"]
    assert detail["subject_id"] == "750101"
    assert detail["manifest_key"] == f"{ASSET}/manifest.json"
    assert detail["registration"] == "OK"
    assert detail["bytes_in"] > 0

    entry = CatalogStore(cloud.client("dynamodb"), cloud.assets_table).get(ASSET)
    assert entry is not None
    assert entry.subject_id == "750101"
    assert entry.metadata_uri == f"s3://{cloud.archive_bucket}/{ASSET}/metadata.nd.json"
    assert entry.acquired_at == "2025-06-12T22:03:00Z"

    (end,) = cloud.messages(alice)
    assert "Registration: OK" in end["Message"]


def _catalog(cloud) -> CatalogStore:
    return CatalogStore(cloud.client("dynamodb"), cloud.assets_table)


def _items(cloud, asset: str) -> list[str]:
    out = cloud.client("dynamodb").query(
        TableName=cloud.assets_table,
        KeyConditionExpression="asset_name = :a",
        ExpressionAttributeValues={":a": {"S": asset}},
    )
    return sorted(i["item"]["S"] for i in out["Items"])


def test_a_rejected_job_is_announced_and_catalogues_nothing(cloud, tmp_path: Path) -> None:
    inbox = cloud.event_queue("subscriber", pattern("upload-processor"))
    session = _session(tmp_path, "s")
    acquisition = json.loads((session / "acquisition_ecephys.json").read_text())
    acquisition["subject_id"] = "750999"
    (session / "acquisition_ecephys.json").write_text(json.dumps(acquisition))
    execution = _run(cloud, session, "lab/bad")
    record = cloud.job(execution["name"])
    assert record["status"] == "REJECTED"
    assert "registration" not in record
    received = cloud.events_received(inbox)
    assert [e["detail-type"] for e in received] == ["Upload Job Rejected"]
    detail = received[0]["detail"]
    assert detail["job_id"] == execution["name"]
    assert detail["report_uri"] == f"s3://{cloud.staging_bucket}/lab/bad/upload_report.json"
    assert detail["errors"] >= 1 and detail["problems"]
    assert _items(cloud, ASSET) == []
    assert _catalog(cloud).search(AssetQuery.build(subject="750101")) == []


def test_a_rerun_never_duplicates_the_record(cloud, tmp_path: Path) -> None:
    inbox = cloud.event_queue("subscriber", pattern("upload-processor"))
    session = _session(tmp_path, "s")
    first = _run(cloud, session, "lab/one")
    assert cloud.job(first["name"])["status"] == "COMPLETE"
    # the same session staged again: the archive already holds it (a no-op job)
    cloud.upload_session(session, "lab/two")
    second = next(
        cloud.wait(e["executionArn"]) for e in cloud.executions() if e["name"] != first["name"]
    )
    record = cloud.job(second["name"])
    assert record["status"] == "COMPLETE"
    assert record["registration"]["catalog"]["status"] == "SKIPPED"
    # and the first job's Catalog step run again (an operator redoing registration)
    state = json.loads(first["output"])  # the registration states keep the state as it was
    out, errored = cloud.invoke(
        "RegisterFunction",
        {
            "step": "catalog",
            "job_id": first["name"],
            "job": state["job"],
            "bucket": state["bucket"],
            "prefix": state["prefix"],
            "gather": state["gather"]["result"],
            "finalize": state["finalize"]["result"],
        },
    )
    assert not errored, out
    assert out["status"] == "OK"
    assert _items(cloud, ASSET) == ["asset", "modality#behavior", "modality#ecephys"]
    assert [e.asset_name for e in _catalog(cloud).search(AssetQuery.build(subject="750101"))] == [
        ASSET
    ]
    # one event: the no-op job sealed nothing
    assert [e["detail-type"] for e in cloud.events_received(inbox)] == ["Upload Asset Archived"]


def test_a_catalog_that_is_down_leaves_the_job_complete_and_says_so(cloud, tmp_path: Path) -> None:
    inbox = cloud.event_queue("subscriber", pattern("upload-processor"))
    alice = cloud.subscribe_queue("alice", subscription_filter(ALICE))
    cloud.client("dynamodb").delete_table(TableName=cloud.assets_table)
    execution = _run(cloud, _session(tmp_path, "s", email_notification_types=["end"]), "lab/ok")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    record = cloud.job(execution["name"])
    assert record["status"] == "COMPLETE"
    catalog = record["registration"]["catalog"]
    assert catalog["status"] == "FAILED"
    assert "ResourceNotFoundException" in catalog["reason"]
    assert record["registration"]["announce"]["status"] == "OK"

    (end,) = cloud.messages(alice)
    assert "Registration: FAILED (catalog: ResourceNotFoundException" in end["Message"]
    assert "archived and intact" in end["Message"]
    (event,) = cloud.events_received(inbox)
    assert event["detail"]["registration"].startswith("FAILED (catalog: ")
    # the asset is sealed and whole: its manifest lists every object, each one present
    s3 = cloud.client("s3")
    manifest = json.loads(
        s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/manifest.json")["Body"].read()
    )
    for obj in manifest["objects"]:
        s3.head_object(Bucket=cloud.archive_bucket, Key=obj["dest_key"])
    history = cloud.client("stepfunctions").get_execution_history(
        executionArn=execution["executionArn"]
    )["events"]
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")
    ]
    assert entered[-6:] == [
        "RegisterCodeOcean",
        "StartPipelines",
        "Catalog",
        "CatalogFailed",
        "Announce",
        "Registered",
    ]


def _api_event(path: str, resource: str, path_parameters=None, query=None) -> dict:
    """An API Gateway REST proxy event (IAM-authorised), as the status API receives it."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "httpMethod": "GET",
            "identity": {"userArn": "arn:aws:iam::123456789012:user/operator"},
            "path": f"/v1{path}",
            "requestId": "c0ffee00-0000-4000-8000-000000000001",
            "resourcePath": resource,
            "stage": "v1",
        },
        "body": None,
        "isBase64Encoded": False,
    }


def _api(cloud, path: str, resource: str, path_parameters=None, query=None) -> tuple[int, dict]:
    payload, failed = cloud.invoke(
        "StatusFunction", _api_event(path, resource, path_parameters, query)
    )
    assert not failed, payload
    return payload["statusCode"], json.loads(payload["body"])


def _cli(cloud, *args: str):
    from typer.testing import CliRunner

    from upload_processor_tools.cli import app

    return CliRunner().invoke(app, ["assets", *args, "--assets-table", cloud.assets_table])


def test_the_catalog_answers_the_cli_and_the_api(cloud, tmp_path: Path) -> None:
    sessions = {
        "a": ("750101", datetime(2025, 6, 12, 15, 3, tzinfo=ACQ.tzinfo)),
        "b": ("750101", datetime(2025, 5, 20, 9, 30, tzinfo=ACQ.tzinfo)),
        "c": ("750102", datetime(2025, 6, 15, 11, 0, tzinfo=ACQ.tzinfo)),
    }
    for key, (subject, when) in sessions.items():
        session = build_session(
            tmp_path / key, subject_id=subject, acq_datetime=when, data_mb_per_modality=0.02
        )
        cloud.upload_session(session, f"lab/{key}")
    cloud.wait_idle()
    statuses = [cloud.job(e["name"])["status"] for e in cloud.executions()]
    assert statuses == ["COMPLETE"] * 3
    a, b, c = (
        "750101_2025-06-12_15-03-00",
        "750101_2025-05-20_09-30-00",
        "750102_2025-06-15_11-00-00",
    )

    def names(result) -> list[str]:
        assert result.exit_code == 0, result.output
        return [i["asset_name"] for i in json.loads(result.stdout)["items"]]

    args = ["search", "--subject", "750101", "--modality", "ecephys", "--since", "2025-06-01"]
    assert names(_cli(cloud, *args, "--json")) == [a]
    assert names(_cli(cloud, "search", "--subject", "750101", "--json")) == [a, b]
    assert names(_cli(cloud, "search", "--modality", "behavior", "--json")) == [c, a, b]
    assert names(_cli(cloud, "search", "--until", "2025-06-12", "--json")) == [a, b]
    assert names(_cli(cloud, "search", "--data-level", "raw", "--json")) == [c, a, b]
    assert names(_cli(cloud, "search", "--data-level", "derived", "--json")) == []
    project = "Example Foraging Project"
    assert names(
        _cli(cloud, "search", "--project", project, "--since", "2025-06-13", "--json")
    ) == [c]
    table = _cli(cloud, *args)
    assert table.exit_code == 0 and a in table.stdout and b not in table.stdout
    bad = _cli(cloud, "search", "--since", "June")
    assert bad.exit_code == 2 and "since 'June'" in bad.output
    shown = _cli(cloud, "show", a, "--json")
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.stdout)
    assert record["metadata_uri"] == f"s3://{cloud.archive_bucket}/{a}/metadata.nd.json"
    assert _cli(cloud, "show", "nope").exit_code == 1

    status, page = _api(
        cloud,
        "/assets",
        "/assets",
        query={"subject": "750101", "modality": "ecephys", "since": "2025-06-01"},
    )
    assert status == 200
    assert page == json.loads(_cli(cloud, *args, "--json").stdout)
    status, one = _api(cloud, f"/assets/{a}", "/assets/{name}", {"name": a})
    assert status == 200 and one == record
    status, body = _api(cloud, "/assets/nope", "/assets/{name}", {"name": "nope"})
    assert status == 404 and "nope" in body["message"]
    status, body = _api(cloud, "/assets", "/assets", query={"until": "tomorrow"})
    assert status == 400 and "until" in body["message"]


def test_a_failed_job_is_announced_as_failed(cloud, tmp_path: Path) -> None:
    session = _session(tmp_path, "s")
    first = _run(cloud, session, "lab/one")
    assert cloud.job(first["name"])["status"] == "COMPLETE"
    inbox = cloud.event_queue("subscriber", pattern("upload-processor"))
    (session / "behavior" / "trials.csv").write_text("trial\n1\n")  # differs from the asset
    cloud.upload_session(session, "lab/two")
    second = next(
        cloud.wait(e["executionArn"]) for e in cloud.executions() if e["name"] != first["name"]
    )
    record = cloud.job(second["name"])
    assert record["status"] == "FAILED" and "registration" not in record
    (event,) = cloud.events_received(inbox)
    assert event["detail-type"] == "Upload Job Failed"
    detail = event["detail"]
    assert detail["job_id"] == second["name"]
    assert detail["step"] == "GatherMetadata"
    assert detail["error"] == "AssetExistsError"
    assert ASSET in detail["cause"]
    assert detail["staging_uri"] == f"s3://{cloud.staging_bucket}/lab/two/"
