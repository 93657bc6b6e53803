"""The whole flow on the local cloud: S3 drop → SQS → Ingest → Step Functions (real ASL on moto's
interpreter) → GatherMetadata → Map(Transfer) → Finalize, and the rejection path to SNS."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aind_data_schema.core.acquisition import Acquisition
from aind_data_schema.core.data_description import DataDescription
from aind_data_schema.core.instrument import Instrument
from aind_data_schema.core.metadata import Metadata
from aind_data_schema.core.procedures import Procedures
from aind_data_schema.core.subject import Subject
from e2e_support import archived_data, archived_key, s3_event_body, session_data

from upload_processor_tools.sample import build_session

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
CORE_MODELS = {
    "data_description": DataDescription,
    "subject": Subject,
    "procedures": Procedures,
    "instrument": Instrument,
    "acquisition": Acquisition,
}
EMAIL = "scientist@example.org"


def _staged(cloud, prefix: str) -> dict[str, str]:
    s3 = cloud.client("s3")
    out = s3.list_objects_v2(Bucket=cloud.staging_bucket, Prefix=prefix + "/").get("Contents", [])
    return {o["Key"]: o["ETag"] for o in out}


def _only_execution(cloud) -> dict:
    executions = cloud.executions()
    assert len(executions) == 1, executions
    return cloud.wait(executions[0]["executionArn"])


def test_valid_session_is_archived_verified_and_complete(cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=1.0)
    inbox = cloud.subscribe_queue("inbox", {"user_email": [EMAIL]})
    cloud.upload_session(session, "rig-7/session-1")

    execution = _only_execution(cloud)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    record = cloud.job(execution["name"])
    assert record["status"] == "COMPLETE"
    assert record["asset_name"] == ASSET
    assert record["archive_uri"] == f"s3://{cloud.archive_bucket}/{ASSET}/"
    for stamp in ("created_at", "processing_at", "complete_at"):
        assert record[stamp]

    s3 = cloud.client("s3")
    keys = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=cloud.archive_bucket, Prefix=f"{ASSET}/")["Contents"]
    }
    data_files = sorted(
        p for p in session.rglob("*") if p.is_file() and "/" in p.relative_to(session).as_posix()
    )
    expected_data = set()
    for path in data_files:
        rel = path.relative_to(session).as_posix()
        expected_data.add(archived_key(ASSET, rel))  # the smaller: .zst, or as is
    metadata_names = sorted(
        p.name for p in session.iterdir() if p.is_file() and p.name != "upload_job.json"
    )
    expected = expected_data | {
        f"{ASSET}/metadata.nd.json",
        f"{ASSET}/manifest.json",
        f"{ASSET}/upload_report.json",
        *(
            f"{ASSET}/{t}.json"
            for t in ("instrument", "acquisition", "subject", "procedures", "data_description")
        ),
        *(f"{ASSET}/original_metadata/{n}" for n in metadata_names),
    }
    assert keys == expected

    # every archived data object holds exactly the staged bytes, read as the manifest says
    assert archived_data(cloud, ASSET) == session_data(session)

    # originals are byte-identical; metadata.nd.json validates with aind-data-schema
    for name in metadata_names:
        body = s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/original_metadata/{name}")[
            "Body"
        ].read()
        assert body == (session / name).read_bytes()
    nd = json.loads(
        s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/metadata.nd.json")["Body"].read()
    )
    metadata = Metadata.model_validate(nd)
    # Metadata only warns about an invalid core file: each must validate with its own model
    for field, model in CORE_MODELS.items():
        assert nd.get(field) is not None, field
        model.model_validate(nd[field])
    assert metadata.name == ASSET
    assert metadata.location == f"s3://{cloud.archive_bucket}/{ASSET}"
    assert metadata.subject.subject_id == "750101"
    harps = [c for c in metadata.instrument.components if c.name == "Harp Behavior"]
    assert len(harps) == 1

    manifest = json.loads(
        s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/manifest.json")["Body"].read()
    )
    assert {o["dest_key"] for o in manifest["objects"]} == expected_data
    assert manifest["counts"]["files"] == len(data_files) == record["files"]
    assert all(o["source_sha256"] for o in manifest["objects"] if o["action"] == "compress")

    # default notification types are {fail}: a successful job sends the user nothing
    assert cloud.messages(inbox) == []


def test_invalid_session_is_rejected_with_a_message_and_nothing_is_lost(
    cloud, tmp_path: Path
) -> None:
    session = build_session(
        tmp_path / "bad",
        acq_datetime=ACQ,
        data_mb_per_modality=0.2,
        conflicting_subject_id="750999",
    )
    mine = cloud.subscribe_queue("mine", {"user_email": [EMAIL]})
    other = cloud.subscribe_queue("other", {"user_email": ["someone.else@example.org"]})
    cloud.upload_session(session, "rig-7/bad")
    staged_before = _staged(cloud, "rig-7/bad")

    execution = _only_execution(cloud)
    assert execution["status"] == "SUCCEEDED"
    record = cloud.job(execution["name"])
    assert record["status"] == "REJECTED"
    assert record["report_key"] == "rig-7/bad/upload_report.json"

    (message,) = cloud.messages(mine)
    assert cloud.messages(other) == []
    attributes = {k: v["Value"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {
        "event": "rejected",
        "job_type": "default",
        "user_email": EMAIL,
        "asset_name": ASSET,
        "audience": '["user"]',
    }
    assert message["Subject"].startswith(f"Upload rejected: {ASSET}")
    assert len(message["Subject"]) < 100
    body = message["Message"]
    assert "acquisition_ecephys.json" in body and "subject_id" in body and "750999" in body
    assert "untouched" in body and "upload_report.json" in body
    details = json.loads(body.split("--- details (JSON) ---", 1)[1])
    assert details["report"]["status"] == "invalid"

    # nothing archived, staged data untouched: the report is the one object added
    s3 = cloud.client("s3")
    assert s3.list_objects_v2(Bucket=cloud.archive_bucket).get("KeyCount", 0) == 0
    staged_after = _staged(cloud, "rig-7/bad")
    assert {k: v for k, v in staged_after.items() if not k.endswith("upload_report.json")} == {
        k: v for k, v in staged_before.items() if not k.endswith("upload_report.json")
    }
    report = json.loads(
        s3.get_object(Bucket=cloud.staging_bucket, Key="rig-7/bad/upload_report.json")[
            "Body"
        ].read()
    )
    assert report["status"] == "invalid"
    assert any(
        i["file"] == "acquisition_ecephys.json" and i["field"] == "subject_id"
        for i in report["issues"]
    )

    # fix the file, upload upload_job.json again: a new version, hence a new job, which completes
    fixed = build_session(tmp_path / "fixed", acq_datetime=ACQ, data_mb_per_modality=0.2)
    s3.upload_file(
        str(fixed / "acquisition_ecephys.json"),
        cloud.staging_bucket,
        "rig-7/bad/acquisition_ecephys.json",
    )
    s3.upload_file(
        str(fixed / "upload_job.json"), cloud.staging_bucket, "rig-7/bad/upload_job.json"
    )
    executions = cloud.executions()
    assert len(executions) == 2
    second = next(e for e in executions if e["name"] != execution["name"])
    assert cloud.wait(second["executionArn"])["status"] == "SUCCEEDED"
    assert cloud.job(second["name"])["status"] == "COMPLETE"


def test_duplicate_s3_event_starts_no_second_execution(cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.1)
    cloud.upload_session(session, "rig-7/dup")
    first = _only_execution(cloud)

    s3, sqs = cloud.client("s3"), cloud.client("sqs")
    head = s3.head_object(Bucket=cloud.staging_bucket, Key="rig-7/dup/upload_job.json")
    body = s3_event_body(cloud.staging_bucket, "rig-7/dup/upload_job.json", head["VersionId"])
    from upload_processor_tools.local.seam import RUNNER

    ingests_before = sum(1 for name, _ in RUNNER.invocations if name == "IngestFunction")
    # the same notification delivered twice more (S3 and SQS are at-least-once)
    for _ in range(2):
        sqs.send_message(QueueUrl=cloud.deployment.name("IngestQueue"), MessageBody=body)
    assert (
        sum(1 for name, _ in RUNNER.invocations if name == "IngestFunction") == ingests_before + 2
    )
    assert [e["name"] for e in cloud.executions()] == [first["name"]]
    assert cloud.job(first["name"])["status"] == "COMPLETE"
    # and the queue holds nothing: the duplicates were consumed, not failed
    attrs = sqs.get_queue_attributes(
        QueueUrl=cloud.deployment.name("IngestQueue"), AttributeNames=["All"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


@pytest.mark.parametrize(
    ("job_body", "rule", "words"),
    [
        (b"{not json", "job.malformed", "not valid JSON"),
        (
            json.dumps(
                {
                    "job_type": "no-such-type",
                    "project_name": "P",
                    "subject_id": "750101",
                    "acq_datetime": "2025-06-12T15:03:00-07:00",
                    "modalities": ["behavior"],
                    "user_email": EMAIL,
                }
            ).encode(),
            "job.unknown_job_type",
            "unknown job_type 'no-such-type'",
        ),
    ],
)
def test_bad_upload_job_is_rejected_at_ingest(
    cloud, tmp_path: Path, job_body: bytes, rule: str, words: str
) -> None:
    operator = cloud.subscribe_queue("all-events")
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05, write_job=False
    )
    cloud.upload_session(session, "rig-7/badjob")
    s3 = cloud.client("s3")
    s3.put_object(Bucket=cloud.staging_bucket, Key="rig-7/badjob/upload_job.json", Body=job_body)

    assert cloud.executions() == []
    records = cloud.client("dynamodb").scan(TableName=cloud.jobs_table)["Items"]
    assert len(records) == 1
    record = cloud.job(records[0]["job_id"]["S"])
    assert record["status"] == "REJECTED"
    assert words in record["error"]
    report = json.loads(
        s3.get_object(Bucket=cloud.staging_bucket, Key="rig-7/badjob/upload_report.json")[
            "Body"
        ].read()
    )
    assert [i["rule"] for i in report["issues"]] == [rule]
    (message,) = cloud.messages(operator)
    assert message["MessageAttributes"]["event"]["Value"] == "rejected"
    assert words in message["Message"]
    assert "Traceback" not in message["Message"]


def test_fault_is_caught_job_failed_and_operator_notified(cloud, tmp_path: Path) -> None:
    """The session uploaded again under a second prefix with one data file changed: the asset
    exists and differs, the archive is not overwritten, the job goes FAILED and the `fail`
    message names the cause and what differs. (An identical session is a no-op:
    tests/e2e/test_guarantees.py.)"""
    operator = cloud.subscribe_queue("operator", {"event": ["fail"]})
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.1)
    cloud.upload_session(session, "rig-7/first")
    first = _only_execution(cloud)
    assert cloud.job(first["name"])["status"] == "COMPLETE"
    s3 = cloud.client("s3")
    manifest_before = s3.head_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/manifest.json")[
        "ETag"
    ]

    (session / "behavior" / "trials.csv").write_text("trial,outcome\n1,changed\n")
    cloud.upload_session(session, "rig-7/second")
    second = next(e for e in cloud.executions() if e["name"] != first["name"])
    described = cloud.wait(second["executionArn"])
    assert described["status"] == "FAILED"
    record = cloud.job(second["name"])
    assert record["status"] == "FAILED"
    assert record["error"].startswith("AssetExistsError")
    assert "behavior/trials.csv: " in record["error"]
    assert (
        s3.head_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/manifest.json")["ETag"]
        == manifest_before
    )
    (message,) = cloud.messages(operator)
    assert message["MessageAttributes"]["event"]["Value"] == "fail"
    assert "AssetExistsError" in message["Subject"]
    assert "never overwritten" in message["Message"]
    assert "Traceback" not in message["Message"]


def _job_with_instrument(session: Path, instrument_id: str) -> None:
    job = json.loads((session / "upload_job.json").read_text())
    job["tasks"] = {
        "gather_preliminary_metadata": {
            "job_settings": {"instrument_settings": {"instrument_id": instrument_id}}
        }
    }
    (session / "upload_job.json").write_text(json.dumps(job))


def test_registered_instrument_subject_and_procedures_join_the_asset(cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.1)
    for name, kind in (
        ("instrument_ecephys.json", "instrument"),
        ("subject.json", "subject"),
        ("procedures.json", "procedures"),
    ):
        cloud.registry.put(kind, json.loads((session / name).read_text()))
        (session / name).unlink()
    _job_with_instrument(session, "447-EPHYS-1")
    cloud.upload_session(session, "rig-7/registered")
    staged = _staged(cloud, "rig-7/registered")

    execution = _only_execution(cloud)
    assert execution["status"] == "SUCCEEDED"
    record = cloud.job(execution["name"])
    assert record["status"] == "COMPLETE", record
    s3 = cloud.client("s3")
    report = json.loads(
        s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/upload_report.json")["Body"].read()
    )
    assert "instrument@registry:447-EPHYS-1" in report["merged_from"]["instrument"]
    nd = Metadata.model_validate(
        json.loads(
            s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/metadata.nd.json")[
                "Body"
            ].read()
        )
    )
    assert nd.instrument.instrument_id == "447-EPHYS-1_447-FORAGING-1"
    assert nd.subject.subject_id == "750101"
    # the registry's documents never enter the staging prefix: only the report was added
    assert set(_staged(cloud, "rig-7/registered")) - set(staged) == {
        "rig-7/registered/upload_report.json"
    }


def test_unregistered_instrument_rejects_the_session(cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    _job_with_instrument(session, "NO-SUCH-RIG")
    inbox = cloud.subscribe_queue("inbox", {"user_email": [EMAIL]})
    cloud.upload_session(session, "rig-7/unregistered")
    execution = _only_execution(cloud)
    assert cloud.job(execution["name"])["status"] == "REJECTED"
    (message,) = cloud.messages(inbox)
    assert "NO-SUCH-RIG" in message["Message"] and "registry put instrument" in message["Message"]


def test_upload_job_at_the_bucket_root_is_rejected(cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    inbox = cloud.subscribe_queue("inbox", {"user_email": [EMAIL]})
    cloud.client("s3").upload_file(
        str(session / "upload_job.json"), cloud.staging_bucket, "upload_job.json"
    )
    assert cloud.executions() == []
    (message,) = cloud.messages(inbox)
    assert "root of the bucket" in message["Message"]
    assert "asset_name" not in message["MessageAttributes"]
