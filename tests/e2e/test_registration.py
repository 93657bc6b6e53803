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
