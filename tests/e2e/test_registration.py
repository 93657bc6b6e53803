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
    assert entered[-4:] == ["Catalog", "CatalogFailed", "Announce", "Registered"]
