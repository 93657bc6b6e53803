"""Each notification event end to end on the local cloud, read through SQS subscriptions with
the filter policies `upload-processor notifications subscribe` sets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from upload_processor.adapters.notify import subscription_filter
from upload_processor_tools.sample import build_session

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
ALICE = "alice@example.org"
BOB = "bob@example.org"


def _session(tmp_path: Path, name: str, **job_changes: object) -> Path:
    session = build_session(
        tmp_path / name, acq_datetime=ACQ, data_mb_per_modality=0.05, user_email=ALICE
    )
    job = json.loads((session / "upload_job.json").read_text())
    job.update(job_changes)
    (session / "upload_job.json").write_text(json.dumps(job))
    return session


def _events(messages: list[dict]) -> list[str]:
    return [m["MessageAttributes"]["event"]["Value"] for m in messages]


def _wait_all(cloud) -> None:
    for execution in cloud.executions():
        cloud.wait(execution["executionArn"])


def test_begin_and_end_reach_only_the_user_who_asked(cloud, tmp_path: Path) -> None:
    alice = cloud.subscribe_queue("alice", subscription_filter(ALICE))
    bob = cloud.subscribe_queue("bob", subscription_filter(BOB))
    operator = cloud.subscribe_queue("ops", subscription_filter(None))
    cloud.upload_session(
        _session(tmp_path, "s", email_notification_types=["begin", "end"]), "lab/ok"
    )
    _wait_all(cloud)
    messages = cloud.messages(alice)
    assert _events(messages) == ["begin", "end"]
    begin, end = messages
    assert begin["Subject"] == f"Upload started: {ASSET}"
    assert end["Subject"] == f"Upload complete: {ASSET}"
    assert f"s3://{cloud.archive_bucket}/{ASSET}/" in end["Message"]
    details = json.loads(end["Message"].split("--- details (JSON) ---", 1)[1])
    assert details["counts"]["files"] > 0
    assert cloud.messages(bob) == []
    assert cloud.messages(operator) == []


def test_default_types_send_a_successful_job_nothing(cloud, tmp_path: Path) -> None:
    alice = cloud.subscribe_queue("alice", subscription_filter(ALICE))
    cloud.upload_session(_session(tmp_path, "s"), "lab/quiet")
    _wait_all(cloud)
    assert cloud.messages(alice) == []


def test_fail_reaches_the_operator_and_the_user_with_step_and_advice(cloud, tmp_path: Path) -> None:
    alice = cloud.subscribe_queue("alice", subscription_filter(ALICE))
    operator = cloud.subscribe_queue("ops", subscription_filter(None))
    cloud.upload_session(_session(tmp_path, "a"), "lab/first")
    _wait_all(cloud)
    second = _session(tmp_path, "b")
    (second / "behavior" / "trials.csv").write_text("trial\n1\n")  # differs from the asset
    cloud.upload_session(second, "lab/second")  # the asset now exists
    _wait_all(cloud)
    (fail,) = cloud.messages(operator)
    assert _events([fail]) == ["fail"]
    assert "in step GatherMetadata" in fail["Message"]
    assert "Is a retry safe? not until the conflict is resolved" in fail["Message"]
    assert _events(cloud.messages(alice)) == ["fail"]  # default types: fail


def test_job_without_a_usable_email_goes_to_the_operator(cloud, tmp_path: Path) -> None:
    operator = cloud.subscribe_queue("ops", subscription_filter(None))
    session = _session(tmp_path, "s", email_notification_types=["all"])
    job = json.loads((session / "upload_job.json").read_text())
    del job["user_email"]
    (session / "upload_job.json").write_text(json.dumps(job))
    cloud.upload_session(session, "lab/anonymous")
    _wait_all(cloud)
    assert _events(cloud.messages(operator)) == ["begin", "end"]


def test_rejection_body_names_every_problem_of_the_report(cloud, tmp_path: Path) -> None:
    alice = cloud.subscribe_queue("alice", subscription_filter(ALICE, ["rejected"]))
    session = _session(tmp_path, "s")
    acquisition = json.loads((session / "acquisition_ecephys.json").read_text())
    acquisition["subject_id"] = "750999"
    (session / "acquisition_ecephys.json").write_text(json.dumps(acquisition))
    (session / "procedures.json").write_text("{not json")
    cloud.upload_session(session, "lab/bad")
    _wait_all(cloud)
    (message,) = cloud.messages(alice)
    report = json.loads(
        cloud.client("s3")
        .get_object(Bucket=cloud.staging_bucket, Key="lab/bad/upload_report.json")["Body"]
        .read()
    )
    errors = [i for i in report["issues"] if i["severity"] == "error"]
    assert len(errors) >= 2
    for issue in errors:
        assert issue["message"] in message["Message"]
    assert f"{len(errors)} problems" in message["Subject"]


def test_a_new_job_for_a_failed_asset_sends_retry(tmp_path: Path) -> None:
    import warnings

    from upload_processor_tools.local import LocalCloud

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    root = Path(__file__).resolve().parents[2]
    with LocalCloud(root, parameter_overrides={"FilesWaitSeconds": 0}) as cloud:
        alice = cloud.subscribe_queue("alice", subscription_filter(ALICE))
        session = _session(tmp_path, "s", email_notification_types=["retry", "fail", "end"])
        job = json.loads((session / "upload_job.json").read_text())
        late = session / "behavior" / "late.csv"
        job["files"] = [{"path": "behavior/late.csv", "size": 5}]
        (session / "upload_job.json").write_text(json.dumps(job))
        cloud.upload_session(session, "lab/retry")  # late.csv is not there yet: the job fails
        _wait_all(cloud)
        assert _events(cloud.messages(alice)) == ["fail"]
        late.write_bytes(b"t,x\n1")  # the 5 bytes upload_job.json lists
        s3 = cloud.client("s3")
        s3.upload_file(str(late), cloud.staging_bucket, "lab/retry/behavior/late.csv")
        s3.upload_file(
            str(session / "upload_job.json"), cloud.staging_bucket, "lab/retry/upload_job.json"
        )
        _wait_all(cloud)
        messages = cloud.messages(alice)
        assert _events(messages) == ["retry", "end"]
        assert "previous job" in messages[0]["Message"]
        records = sorted(
            (cloud.job(e["name"]) for e in cloud.executions()), key=lambda r: r["created_at"]
        )
        assert [r["status"] for r in records] == ["FAILED", "COMPLETE"]
        assert records[1]["retry_of_job"] == records[0]["job_id"]
