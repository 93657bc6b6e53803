"""Operator commands on the local cloud: `retry` of a FAILED job (only missing work redone),
`cancel` of a running job (execution stopped, uploads aborted, staging untouched), the
refusals, and `redrive` of the ingest DLQ."""

from __future__ import annotations

import functools
import json
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import zstandard
from e2e_support import s3_event_body
from typer.testing import CliRunner

from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.domain.units import MiB
from upload_processor.operations.control import retry_name
from upload_processor.pipeline import gather
from upload_processor.pipeline.transfer import batch as transfer_batch
from upload_processor_tools.commands.operator import app as operator_app
from upload_processor_tools.commands.status import app as status_app
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.sample import build_session

ROOT = Path(__file__).resolve().parents[2]
ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
SMALL = {"ChunkThresholdMiB": 10, "RangeSizeMiB": 5, "CopyThresholdMiB": 5, "FilesWaitSeconds": 0}


@pytest.fixture
def small_cloud() -> Iterator[LocalCloud]:
    """The local cloud with low chunking thresholds: an 11 MiB file is two ranges."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with LocalCloud(ROOT, parameter_overrides=SMALL) as cloud:
        yield cloud


def _op(cloud: LocalCloud, *args: str) -> Any:
    return CliRunner().invoke(operator_app, [*args, "--table", cloud.jobs_table])


def _status(cloud: LocalCloud, job: str) -> dict[str, Any]:
    result = CliRunner().invoke(status_app, ["status", job, "--json", "--table", cloud.jobs_table])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _session_with_a_chunked_file(tmp: Path) -> tuple[Path, bytes]:
    session = build_session(tmp, acq_datetime=ACQ, data_mb_per_modality=0.05)
    zeros = bytes(11 * MiB)  # chunked: two ranges of a multipart upload opened by GatherMetadata
    (session / "ecephys" / "zeros.dat").write_bytes(zeros)
    return session, zeros


def _work_results(cloud: LocalCloud, job_id: str) -> list[str]:
    out = cloud.client("s3").list_objects_v2(
        Bucket=cloud.archive_bucket, Prefix=f"_jobs/{job_id}/results/"
    )
    return [o["Key"] for o in out.get("Contents", [])]


def test_retry_of_a_failed_job_redoes_only_the_missing_work(
    small_cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = small_cloud
    # batches of 2 objects, so that some batches finish before the injected fault
    monkeypatch.setattr(gather, "batches", functools.partial(gather.batches, size=2))
    real_transfer = transfer_batch.transfer
    transferred: list[tuple[str, int | None]] = []
    broken = {"on": True}

    def flaky(s3: Any, item: Any, **kwargs: Any) -> Any:
        transferred.append((item.source_key, item.part_number))
        if broken["on"] and item.action == "compress_range" and item.part_number == 2:
            raise RuntimeError("injected: the worker died compressing part 2")
        return real_transfer(s3, item, **kwargs)

    monkeypatch.setattr(transfer_batch, "transfer", flaky)
    session, zeros = _session_with_a_chunked_file(tmp_path / "s")
    cloud.upload_session(session, "rig-7/retry")
    (first,) = cloud.executions()
    assert cloud.wait(first["executionArn"])["status"] == "FAILED"
    job_id = first["name"]
    record = cloud.job(job_id)
    assert record["status"] == "FAILED" and record["error"]
    kept = _work_results(cloud, job_id)
    assert len(kept) >= 2  # the failed job's work area is kept, with what was done
    s3 = cloud.client("s3")
    assert s3.list_multipart_uploads(Bucket=cloud.archive_bucket).get("Uploads", []) == []
    first_run = list(transferred)

    broken["on"] = False
    transferred.clear()
    result = _op(cloud, "retry", job_id, "--json")
    assert result.exit_code == 0, result.output
    started = json.loads(result.stdout)
    assert started["execution_name"] == retry_name(job_id, 1) == f"{job_id}-retry-1"
    assert started["attempts"] == 2 and started["retry_of"] == first["executionArn"]
    assert started["dropped_batches"] == 1  # part 1's upload was aborted when the job failed
    assert started["kept_batches"] == len(kept) - 1
    execution = cloud.wait(started["execution_arn"])
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    original_input = json.loads(
        cloud.client("stepfunctions").describe_execution(executionArn=first["executionArn"])[
            "input"
        ]
    )
    assert json.loads(execution["input"]) == {**original_input, "retry_of": first["executionArn"]}

    record = cloud.job(job_id)
    assert record["status"] == "COMPLETE" and record["attempts"] == 2
    assert record["execution_arn"] == started["execution_arn"]
    assert record["previous_execution_arns"] == [first["executionArn"]]
    assert "error" not in record and record["last_error"]
    # only the chunked file's two ranges ran again: every batch already recorded was skipped
    assert sorted(transferred) == [
        ("rig-7/retry/ecephys/zeros.dat", 1),
        ("rig-7/retry/ecephys/zeros.dat", 2),
    ]
    assert len(first_run) == record["files"] + 1  # every object once, zeros.dat as two ranges
    body = s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/ecephys/zeros.dat.zst")
    reader = zstandard.ZstdDecompressor().stream_reader(body["Body"], read_across_frames=True)
    assert reader.read() == zeros
    detail = _status(cloud, job_id)
    assert detail["execution"]["arn"] == started["execution_arn"]
    assert [s["name"] for s in detail["execution"]["steps"]][-6:] == [
        "Finalize",
        "RegisterCodeOcean",
        "StartPipelines",
        "Catalog",
        "Announce",
        "Registered",
    ]

    result = _op(cloud, "retry", job_id)  # COMPLETE now: refused
    assert result.exit_code == 1
    assert "is COMPLETE, not FAILED" in result.stderr and result.stdout == ""


def test_cancel_stops_a_running_job_and_touches_no_staged_data(
    small_cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = small_cloud
    entered, release = threading.Event(), threading.Event()
    real_transfer = transfer_batch.transfer

    def stuck(s3: Any, item: Any, **kwargs: Any) -> Any:
        if not entered.is_set():  # the first transfer hangs until the test lets it go
            entered.set()
            release.wait(30)
            raise RuntimeError("the execution was stopped under this worker")
        return real_transfer(s3, item, **kwargs)

    monkeypatch.setattr(transfer_batch, "transfer", stuck)
    session, _ = _session_with_a_chunked_file(tmp_path / "s")
    try:
        cloud.upload_session(session, "rig-7/cancel")
        assert entered.wait(30), "the transfer never started"
        (execution,) = cloud.executions()
        job_id = execution["name"]
        assert cloud.job(job_id)["status"] == "PROCESSING"
        s3 = cloud.client("s3")
        assert len(s3.list_multipart_uploads(Bucket=cloud.archive_bucket)["Uploads"]) == 1
        versions = s3.list_object_versions(Bucket=cloud.staging_bucket, Prefix="rig-7/cancel/")
        staged = sorted((v["Key"], v["VersionId"], v["ETag"]) for v in versions["Versions"])

        result = _op(cloud, "cancel", job_id, "--reason", "wrong rig", "--json")
        assert result.exit_code == 0, result.output
        outcome = json.loads(result.stdout)
        assert outcome["execution_stopped"] is True and outcome["uploads_aborted"] == 1
    finally:
        release.set()
    assert cloud.wait(execution["executionArn"])["status"] == "ABORTED"
    record = cloud.job(job_id)
    assert record["status"] == "CANCELLED" and record["cancelled_at"]
    assert record["cancel_reason"] == "wrong rig"
    assert s3.list_multipart_uploads(Bucket=cloud.archive_bucket).get("Uploads", []) == []
    versions = s3.list_object_versions(Bucket=cloud.staging_bucket, Prefix="rig-7/cancel/")
    assert sorted((v["Key"], v["VersionId"], v["ETag"]) for v in versions["Versions"]) == staged
    assert not versions.get("DeleteMarkers")
    detail = _status(cloud, job_id)
    assert detail["execution"]["status"] == "ABORTED"
    assert detail["execution"]["steps"][-1]["outcome"] == "aborted"

    for command in ("cancel", "retry"):
        result = _op(cloud, command, job_id)
        assert result.exit_code == 1, result.output
        assert "is CANCELLED" in result.stderr and result.stderr.count("\n") == 1


def test_operator_commands_refuse_jobs_in_other_states(cloud: LocalCloud) -> None:
    store = JobStore(cloud.client("dynamodb"), cloud.jobs_table)
    for job_id, status in [
        ("done-1", "COMPLETE"),
        ("bad-1", "REJECTED"),
        ("failed-without-execution", "FAILED"),
        ("received-1", "RECEIVED"),
    ]:
        store.create({"job_id": job_id, "status": status, "staging_bucket": cloud.staging_bucket})
    cases = [
        (["retry", "done-1"], "is COMPLETE, not FAILED"),
        (["retry", "bad-1"], "fix the files named in its report"),
        (["retry", "received-1"], "only a FAILED job can be retried"),
        (["retry", "failed-without-execution"], "has no execution to retry"),
        (["cancel", "done-1"], "only a RECEIVED or PROCESSING job can be cancelled"),
        (["cancel", "bad-1"], "is REJECTED"),
        (["retry", "no-such-job"], "no job 'no-such-job'"),
        (["cancel", "no-such-job"], "no job 'no-such-job'"),
    ]
    for args, message in cases:
        result = _op(cloud, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert result.stdout == "" and result.stderr.count("\n") == 1
    assert store.get("done-1")["status"] == "COMPLETE"

    # a job that never started an execution is simply closed
    result = _op(cloud, "cancel", "received-1")
    assert result.exit_code == 0, result.output
    assert "no running execution" in result.stdout
    assert store.get("received-1")["status"] == str(JobStatus.CANCELLED)


def test_redrive_moves_dead_letters_back_to_ingest(cloud: LocalCloud, tmp_path: Path) -> None:
    s3, sqs = cloud.client("s3"), cloud.client("sqs")
    deployment = cloud.deployment
    queue, dlq = deployment.name("IngestQueue"), deployment.name("IngestDeadLetterQueue")
    # stage a session without its S3 notification: its event is the one in the DLQ
    s3.put_bucket_notification_configuration(
        Bucket=cloud.staging_bucket, NotificationConfiguration={}
    )
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02)
    cloud.upload_session(session, "rig-7/redrive")
    assert cloud.executions() == []
    key = "rig-7/redrive/upload_job.json"
    version = s3.head_object(Bucket=cloud.staging_bucket, Key=key)["VersionId"]
    sqs.send_message(QueueUrl=dlq, MessageBody=s3_event_body(cloud.staging_bucket, key, version))
    for n in range(2):
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps({"Event": "s3:TestEvent", "n": n}),
            MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
        )

    result = CliRunner().invoke(
        operator_app, ["redrive", "--queue-url", queue, "--dlq-url", dlq, "--wait", "0"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("moved 3 message(s)")
    assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
    (execution,) = cloud.executions()  # the ingest queue delivered the event: the job ran
    assert cloud.wait(execution["executionArn"])["status"] == "SUCCEEDED"
    assert cloud.job(execution["name"])["status"] == "COMPLETE"

    result = CliRunner().invoke(
        operator_app, ["redrive", "--queue-url", queue, "--dlq-url", dlq, "--wait", "0", "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["moved"] == 0


def test_redrive_needs_to_know_the_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "UPLOAD_PROCESSOR_INGEST_QUEUE_URL",
        "UPLOAD_PROCESSOR_INGEST_DLQ_URL",
        "UPLOAD_PROCESSOR_STACK",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(operator_app, ["redrive"])
    assert result.exit_code == 2
    assert "--queue-url URL" in result.stderr and result.stdout == ""


def test_a_cancelled_job_is_not_started_by_a_late_delivery(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """Ingest recorded the job, then crashed before starting it; an operator cancelled it;
    SQS redelivers the event: nothing starts."""
    from upload_processor.pipeline.ingest import execution_name

    s3, sqs = cloud.client("s3"), cloud.client("sqs")
    s3.put_bucket_notification_configuration(
        Bucket=cloud.staging_bucket, NotificationConfiguration={}
    )
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02)
    cloud.upload_session(session, "rig-7/late")
    key = "rig-7/late/upload_job.json"
    version = s3.head_object(Bucket=cloud.staging_bucket, Key=key)["VersionId"]
    job_id = execution_name(cloud.staging_bucket, key, version)
    store = JobStore(cloud.client("dynamodb"), cloud.jobs_table)
    store.create({"job_id": job_id, "status": "RECEIVED", "staging_bucket": cloud.staging_bucket})
    assert _op(cloud, "cancel", job_id).exit_code == 0
    sqs.send_message(
        QueueUrl=cloud.deployment.name("IngestQueue"),
        MessageBody=s3_event_body(cloud.staging_bucket, key, version),
    )
    assert cloud.executions() == []
    assert store.get(job_id)["status"] == "CANCELLED"


def test_redrive_of_poison_messages_ends_moving_each_once_and_reports_what_it_left(
    cloud: LocalCloud,
) -> None:
    """Messages ingest cannot process come straight back to the DLQ: redrive moves each once
    in a run, stops (count or time), and says what it moved and what it left."""
    sqs = cloud.client("sqs")
    deployment = cloud.deployment
    queue, dlq = deployment.name("IngestQueue"), deployment.name("IngestDeadLetterQueue")
    for n in range(7):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"not an S3 event {n}")

    args = ["redrive", "--queue-url", queue, "--dlq-url", dlq, "--wait", "0", "--json"]
    result = CliRunner().invoke(operator_app, [*args, "--max-seconds", "20"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # the 7 (and the deployment's S3 test event, which may land in the DLQ meanwhile), each
    # once: the run ended although ingest sends them straight back
    assert 7 <= out["moved"] <= 8 and out["stopped"] == "empty"
    assert out["returned"] > 0  # ingest failed them again: back in the DLQ, not moved again
    assert out["left"] == _queue_depth(sqs, dlq) >= out["returned"]

    for n in range(5):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"still not an S3 event {n}")
    limited = CliRunner().invoke(operator_app, [*args, "--max", "2", "--max-seconds", "20"])
    assert limited.exit_code == 0, limited.output
    out = json.loads(limited.stdout)
    assert out["moved"] == 2 and out["stopped"] == "max"

    timed = CliRunner().invoke(operator_app, [*args[:-1], "--max-seconds", "0"])
    assert timed.exit_code == 0, timed.output
    assert "moved 0 message(s)" in timed.stdout and "time limit" in timed.stdout
    assert "left" in timed.stdout


def _queue_depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_cancel_of_a_job_waiting_for_its_files_ends_it_aborted_within_seconds(
    tmp_path: Path,
) -> None:
    """Issue 14, problem 7: the job waits (bounded, here up to 120 s) for a file its
    upload_job.json lists; `cancel` stops it and says so once the execution has ended, long
    before the wait would have run out, and the staged data is as it was."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    job_file = session / "upload_job.json"
    job = json.loads(job_file.read_text())
    job["files"] = [{"path": "ecephys/still-uploading.dat", "size": 1234}]
    job_file.write_text(json.dumps(job))
    with LocalCloud(ROOT, parameter_overrides={"FilesWaitSeconds": 120}) as cloud:
        cloud.upload_session(session, "rig-7/late")
        s3 = cloud.client("s3")
        versions = s3.list_object_versions(Bucket=cloud.staging_bucket, Prefix="rig-7/late/")
        staged = sorted((v["Key"], v["VersionId"], v["ETag"]) for v in versions["Versions"])
        deadline = time.monotonic() + 30
        while not (cloud.executions() and cloud.job(cloud.executions()[0]["name"])):
            assert time.monotonic() < deadline, "no job started"
            time.sleep(0.1)
        (execution,) = cloud.executions()
        job_id = execution["name"]
        while cloud.job(job_id)["status"] != "PROCESSING":  # GatherMetadata is waiting
            assert time.monotonic() < deadline, "the job never reached PROCESSING"
            time.sleep(0.1)

        started = time.monotonic()
        result = _op(cloud, "cancel", job_id[:12], "--reason", "wrong rig", "--wait", "20")
        took = time.monotonic() - started

        assert result.exit_code == 0, result.output
        assert "state ABORTED" in result.stdout and "stopped at " in result.stdout
        assert "still" not in result.stdout
        assert took < 20  # well before the 120 s wait for the missing file runs out
        described = cloud.client("stepfunctions").describe_execution(
            executionArn=execution["executionArn"]
        )
        assert described["status"] == "ABORTED"
        stop = described["stopDate"].astimezone(UTC)
        assert f"stopped at {stop:%Y-%m-%d %H:%M:%S} UTC, state ABORTED" in result.stdout
        record = cloud.job(job_id)
        assert record["status"] == "CANCELLED" and record["cancel_reason"] == "wrong rig"
        versions = s3.list_object_versions(Bucket=cloud.staging_bucket, Prefix="rig-7/late/")
        after = sorted((v["Key"], v["VersionId"], v["ETag"]) for v in versions["Versions"])
        assert after == staged and not versions.get("DeleteMarkers")
        cloud.wait_idle(timeout=30)
        assert cloud.job(job_id)["status"] == "CANCELLED"  # nothing moved it afterwards
