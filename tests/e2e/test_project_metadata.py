"""On the local cloud: a session without data_description.json gets one built by the pipeline,
with the funding and investigators registered for its project in the stack's own registry."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aind_data_schema.core.data_description import DataDescription

from upload_processor_tools.sample import build_session

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
PROJECT = {
    "project_name": "Example Foraging Project",
    "funding_source": [
        {
            "funder": {"name": "National Institute of Mental Health", "abbreviation": "NIMH"},
            "grant_number": "R01MH000001",
            "fundee": [{"name": "Jane Doe"}],
        },
        {"funder": {"name": "Allen Institute", "abbreviation": "AI"}},
    ],
    "investigators": [
        {"name": "Jane Doe", "registry_identifier": "0000-0002-1825-0097"},
        {"name": "John Roe"},
    ],
}


def test_archived_data_description_carries_the_registered_project(cloud, tmp_path: Path) -> None:
    registered = cloud.registry.put("project", PROJECT).record.document
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02, data_description=False
    )
    cloud.upload_session(session, "rig-7/session-1")
    [execution] = cloud.executions()
    out = cloud.wait(execution["executionArn"])
    assert out["status"] == "SUCCEEDED", out.get("cause")
    assert cloud.job(execution["name"])["status"] == "COMPLETE"

    s3 = cloud.client("s3")
    body = s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/data_description.json")
    described = json.loads(body["Body"].read())
    assert described["name"] == ASSET
    assert described["project_name"] == "Example Foraging Project"
    assert described["funding_source"] == registered["funding_source"]
    assert described["investigators"] == registered["investigators"]
    assert [f["grant_number"] for f in described["funding_source"]] == ["R01MH000001", None]
    assert DataDescription.model_validate(described).investigators[1].name == "John Roe"

    nd = json.loads(
        s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/metadata.nd.json")["Body"].read()
    )
    assert nd["data_description"]["investigators"] == registered["investigators"]
