"""The five guarantees of README "Operating", each proved on the whole local flow by injecting
the fault and then checking both buckets and the job table:

1. staged data is read-only to the pipeline (every object version compared before/after);
2. the archive is never overwritten (identical session: a no-op; different: AssetExistsError
   listing what differs; a failed job's remains: resumed; two jobs racing: the asset's lease);
3. one execution per upload_job.json version (concurrent and retried ingest);
4. crash-safe transfer (a worker dying mid-upload: no partial object, no dangling upload, and
   rerunning produces the same bytes);
5. transient faults retried (S3 SlowDown in Transfer and in GatherMetadata), a message that
   keeps failing ingest lands in the DLQ (receives driven here: moto has no poller).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import zstandard
from botocore.exceptions import ClientError
from e2e_support import ACQ, ASSET, JOB, REPORT, Staged, archived_data, s3_event_body, session_data
from e2e_support import body as _body
from e2e_support import decompress as _decompress
from e2e_support import keys as _keys
from e2e_support import versions as _versions

from upload_processor.adapters.jobs import JobStatus, JobStore
from upload_processor.domain.archive import lock_key
from upload_processor.domain.plan import PlanItem
from upload_processor.domain.units import MiB
from upload_processor.pipeline.ingest import Ingest, execution_name
from upload_processor.pipeline.transfer import transfer
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.local.seam import RUNNER
from upload_processor_tools.sample import build_session

# --- helpers -------------------------------------------------------------------------------


def _uploads(cloud: LocalCloud) -> list[dict]:
    return cloud.client("s3").list_multipart_uploads(Bucket=cloud.archive_bucket).get("Uploads", [])


def _raise_once(
    operation: str, matches: Callable[[dict], bool], error: Exception, times: int = 1
) -> Callable[..., None]:
    """A botocore hook for the handlers' clients (boto3's default session) that raises
    `error` for the first `times` calls of `operation` whose parameters match."""
    left = {"n": times}

    def hook(params: dict, **_: object) -> None:
        if left["n"] > 0 and matches(params):
            left["n"] -= 1
            raise error

    hook.left = left  # type: ignore[attr-defined]
    boto3._get_default_session().events.register(f"before-parameter-build.{operation}", hook)
    return hook


def _unhook(operation: str, hook: Callable[..., None]) -> None:
    boto3._get_default_session().events.unregister(f"before-parameter-build.{operation}", hook)


def _client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


# --- guarantee 2: never overwritten ---------------------------------------------------------


def test_an_identical_session_again_is_a_no_op_that_writes_nothing(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    first = Staged(cloud, session, "rig-7/first").run()
    assert first["status"] == "COMPLETE"
    asset_before = _versions(cloud, cloud.archive_bucket, f"{ASSET}/")

    # the same bytes again, under another prefix; one file re-uploaded as a multipart object
    # (another ETag), so that the check falls back to comparing checksums
    second = Staged(cloud, session, "rig-7/second")
    s3 = cloud.client("s3")
    key = "rig-7/second/ecephys/continuous.dat"
    upload = s3.create_multipart_upload(Bucket=cloud.staging_bucket, Key=key)["UploadId"]
    part = s3.upload_part(
        Bucket=cloud.staging_bucket,
        Key=key,
        UploadId=upload,
        PartNumber=1,
        Body=(session / "ecephys" / "continuous.dat").read_bytes(),
    )
    s3.complete_multipart_upload(
        Bucket=cloud.staging_bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    second.before = _versions(cloud, cloud.staging_bucket, "rig-7/second/")
    record = second.run()

    assert record["status"] == "COMPLETE", record
    assert "already holds this exact session" in record["note"]
    assert record["files"] == 0 and record["archive_uri"] == f"s3://{cloud.archive_bucket}/{ASSET}/"
    # not one version added under the asset; no work area, no lease, no upload left
    assert _versions(cloud, cloud.archive_bucket, f"{ASSET}/") == asset_before
    assert _keys(cloud, cloud.archive_bucket, "_jobs/") == set()
    assert _uploads(cloud) == []
    second.assert_untouched()
    report = json.loads(_body(cloud, cloud.staging_bucket, f"rig-7/second/{REPORT}"))
    assert [i["rule"] for i in report["issues"]] == ["asset.identical"]
    assert report["status"] == "valid"


def test_a_different_session_for_a_complete_asset_fails_listing_what_differs(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    assert Staged(cloud, session, "rig-7/first").run()["status"] == "COMPLETE"
    asset_before = _versions(cloud, cloud.archive_bucket, f"{ASSET}/")

    (session / "ecephys" / "sync_messages.txt").write_text("another session\n")
    (session / "behavior" / "extra.csv").write_text("a,b\n")
    (session / "ecephys" / "settings.json").unlink()
    second = Staged(cloud, session, "rig-7/second")
    record = second.run()

    assert record["status"] == "FAILED"
    error = record["error"]
    assert error.startswith("AssetExistsError")
    assert "never overwritten" in error
    assert "behavior/extra.csv: staged, not in the asset" in error
    assert "ecephys/settings.json: in the asset, not staged" in error
    assert "ecephys/sync_messages.txt: " in error
    assert "ecephys/continuous.dat" not in error  # identical files are not listed
    assert _versions(cloud, cloud.archive_bucket, f"{ASSET}/") == asset_before
    assert _keys(cloud, cloud.archive_bucket, "_jobs/") == set()
    second.assert_untouched()


def test_a_worker_dying_mid_upload_leaves_nothing_partial_and_the_next_job_resumes(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    """Guarantees 1, 2 and 4: Transfer raises between two parts of a multipart upload."""
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    big = random.Random(7).randbytes(20 * MiB)  # incompressible: two parts of 16 MiB max
    (session / "ecephys" / "big.dat").write_bytes(big)
    staged = Staged(cloud, session, "rig-7/crash")
    hook = _raise_once(
        "s3.UploadPart",
        lambda p: p.get("Key", "").endswith("big.dat.zst") and p.get("PartNumber") == 2,
        RuntimeError("injected: the transfer worker died between parts 1 and 2"),
    )
    try:
        failed = staged.run()
    finally:
        _unhook("s3.UploadPart", hook)
    assert failed["status"] == "FAILED"
    # moto's Distributed Map may carry on past a failed iteration; Finalize then refuses to
    # seal an asset with objects missing. Either way the job fails naming the cause.
    assert "injected: the transfer worker died" in failed["error"] or (
        failed["error"].startswith("VerificationError") and "big.dat.zst" in failed["error"]
    )
    assert failed["failed_step"] in ("TransferFiles", "Finalize")
    archive = cloud.archive_bucket
    left = _keys(cloud, archive, f"{ASSET}/")
    # the objects before big.dat in the batch were completed; big.dat has no partial object
    assert left == {
        f"{ASSET}/behavior/behavior_32.bin.zst",
        f"{ASSET}/behavior/trials.csv.zst",
        f"{ASSET}/behavior/video.mp4",
    }
    assert _uploads(cloud) == []
    assert _keys(cloud, archive, "_jobs/locks/") == set()  # the lease was released
    staged.assert_untouched()
    kept = _versions(cloud, archive, f"{ASSET}/")

    # a new job for the same session (upload_job.json again): it resumes the remains
    record = staged.run()
    assert record["status"] == "COMPLETE", record
    assert record["retry_of_job"] == failed["job_id"]
    staged.assert_untouched()
    now = _versions(cloud, archive, f"{ASSET}/")
    for key, versions in kept.items():  # verified objects were kept, not written again
        assert now[key] == versions, key
    # zstd does not shrink random bytes: the interrupted .zst was never completed, and the
    # resumed job stored big.dat as is (the smaller)
    assert _body(cloud, archive, f"{ASSET}/ecephys/big.dat") == big
    assert f"{ASSET}/ecephys/big.dat.zst" not in _keys(cloud, archive, f"{ASSET}/")
    assert archived_data(cloud, ASSET) == session_data(session)  # read as the manifest says
    manifest = json.loads(_body(cloud, archive, f"{ASSET}/manifest.json"))
    assert len(manifest["objects"]) == record["files"] == 7
    report = json.loads(_body(cloud, archive, f"{ASSET}/{REPORT}"))
    assert "asset.resumed" in [i["rule"] for i in report["issues"]]
    assert _uploads(cloud) == []
    # the new job's work area is cleared and the lease released; the failed job's work area
    # is kept, as for any failed job (an operator's `retry` reuses it)
    assert {k.split("/")[1] for k in _keys(cloud, archive, "_jobs/")} == {failed["job_id"]}

    # rerunning the step produces the same bytes
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="scratch-rerun")
    item = PlanItem(
        source_key="rig-7/crash/ecephys/big.dat",
        size=len(big),
        etag=s3.head_object(Bucket=cloud.staging_bucket, Key="rig-7/crash/ecephys/big.dat")[
            "ETag"
        ].strip('"'),
        dest_key=f"{ASSET}/ecephys/big.dat.zst",
        action="compress",
        codec="zstd",
        level=3,
    )
    rerun = transfer(s3, item, source_bucket=cloud.staging_bucket, dest_bucket="scratch-rerun")
    assert rerun.dest_key == f"{ASSET}/ecephys/big.dat"  # the same decision, the same bytes
    assert _body(cloud, "scratch-rerun", rerun.dest_key) == _body(cloud, archive, rerun.dest_key)


def test_a_tampered_leftover_is_redone_and_a_stray_one_removed(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    """An incomplete asset's objects are kept only when verified to hold the planned source."""
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    s3 = cloud.client("s3")
    archive = cloud.archive_bucket
    # remains of an earlier job: a .zst of other bytes whose metadata claims the staged
    # trials.csv as its source, and a file the session does not have
    trials = (session / "behavior" / "trials.csv").read_bytes()
    fake = zstandard.ZstdCompressor().compress(b"not the staged bytes")
    claimed = {
        "source-etag": hashlib.md5(trials, usedforsecurity=False).hexdigest(),
        "source-size": str(len(trials)),
        "codec": "zstd",
        "zstd-level": "3",
    }
    s3.put_object(
        Bucket=archive, Key=f"{ASSET}/behavior/trials.csv.zst", Body=fake, Metadata=claimed
    )
    s3.put_object(Bucket=archive, Key=f"{ASSET}/ecephys/old.dat.zst", Body=b"stray")
    record = Staged(cloud, session, "rig-7/tampered").run()
    assert record["status"] == "COMPLETE", record
    assert (
        _decompress(_body(cloud, archive, f"{ASSET}/behavior/trials.csv.zst"))
        == (session / "behavior" / "trials.csv").read_bytes()
    )
    assert f"{ASSET}/ecephys/old.dat.zst" not in _keys(cloud, archive, f"{ASSET}/")
    manifest = json.loads(_body(cloud, archive, f"{ASSET}/manifest.json"))
    assert manifest["removed_leftovers"] == [f"{ASSET}/ecephys/old.dat.zst"]


def test_a_job_for_an_asset_another_job_holds_fails_without_writing(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    s3 = cloud.client("s3")
    store = JobStore(cloud.client("dynamodb"), cloud.jobs_table)
    # another job is writing the asset: its record is PROCESSING and it holds the lease
    store.create({"job_id": "other-job", "status": "PROCESSING", "asset_name": ASSET})
    lease = json.dumps({"asset_name": ASSET, "job_id": "other-job", "acquired_at": "now"})
    s3.put_object(Bucket=cloud.archive_bucket, Key=lock_key(ASSET), Body=lease.encode())
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    staged = Staged(cloud, session, "rig-7/racer")
    record = staged.run()

    assert record["status"] == "FAILED"
    assert record["error"].startswith("AssetLockedError")
    assert "being written by job other-job" in record["error"]
    assert "stopped before writing anything" in record["error"]
    assert _keys(cloud, cloud.archive_bucket, "") == {lock_key(ASSET)}
    assert _body(cloud, cloud.archive_bucket, lock_key(ASSET)) == lease.encode()  # not released
    staged.assert_untouched()
    assert store.get("other-job")["status"] == "PROCESSING"

    # the other job is cancelled: its lease is stale, the next job takes it over and completes
    store.update("other-job", JobStatus.CANCELLED)
    record = staged.run()
    assert record["status"] == "COMPLETE", record
    assert _keys(cloud, cloud.archive_bucket, "_jobs/") == set()


def test_two_jobs_racing_for_one_asset_leave_exactly_one_of_them_archived(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    a = build_session(tmp_path / "a", acq_datetime=ACQ, data_mb_per_modality=0.05)
    b = build_session(tmp_path / "b", acq_datetime=ACQ, data_mb_per_modality=0.05)
    (b / "behavior" / "trials.csv").write_text("trial\n2\n")  # another session, same asset name
    first, second = Staged(cloud, a, "rig-7/a"), Staged(cloud, b, "rig-7/b")
    ids = [first.trigger(), second.trigger()]  # back to back: the executions overlap
    for job_id in ids:
        cloud.wait(cloud.job(job_id)["execution_arn"])
    records = [cloud.job(i) for i in ids]
    statuses = sorted(r["status"] for r in records)
    assert statuses == ["COMPLETE", "FAILED"], records
    loser = next(r for r in records if r["status"] == "FAILED")
    assert loser["error"].startswith(("AssetLockedError", "AssetExistsError"))
    winner = a if records[0]["status"] == "COMPLETE" else b
    body = _body(cloud, cloud.archive_bucket, f"{ASSET}/behavior/trials.csv.zst")
    assert _decompress(body) == (winner / "behavior" / "trials.csv").read_bytes()
    assert all(len(v) == 1 for v in _versions(cloud, cloud.archive_bucket, f"{ASSET}/").values())
    first.assert_untouched()
    second.assert_untouched()


# --- guarantee 1: rejections, retries ---------------------------------------------------------


def test_a_rejected_session_touches_no_staged_object_and_archives_nothing(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05, conflicting_subject_id="7"
    )
    (session / "ecephys" / "big.dat").write_bytes(bytes(1024))
    staged = Staged(cloud, session, "rig-7/rejected")
    record = staged.run()
    assert record["status"] == "REJECTED"
    staged.assert_untouched()
    assert _keys(cloud, cloud.archive_bucket, "") == set()  # no lease, no plan, no object
    assert _versions(cloud, cloud.archive_bucket, f"{ASSET}/") == {}  # ever
    assert _uploads(cloud) == []


# --- guarantee 5: transient faults retried ---------------------------------------------------


def test_s3_slowdown_in_transfer_and_gather_is_retried_and_the_job_completes(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    staging = cloud.staging_bucket
    data_hook = _raise_once(
        "s3.GetObject",
        lambda p: (
            p.get("Bucket") == staging and p.get("Key", "").endswith("ecephys/continuous.dat")
        ),
        _client_error("SlowDown", 503, "GetObject"),
    )
    meta_hook = _raise_once(
        "s3.GetObject",
        lambda p: p.get("Bucket") == staging and p.get("Key", "").endswith("subject.json"),
        _client_error("SlowDown", 503, "GetObject"),
    )
    calls = len(RUNNER.calls)
    staged = Staged(cloud, session, "rig-7/slow")
    try:
        record = staged.run()
    finally:
        _unhook("s3.GetObject", data_hook)
        _unhook("s3.GetObject", meta_hook)
    assert data_hook.left["n"] == 0 and meta_hook.left["n"] == 0  # both faults did happen
    assert record["status"] == "COMPLETE", record
    errored = [c.logical_id for c in RUNNER.calls[calls:] if c.errored]
    assert sorted(errored) == ["GatherMetadataFunction", "TransferFunction"]  # each retried once
    staged.assert_untouched()
    assert _uploads(cloud) == []
    body = _body(cloud, cloud.archive_bucket, f"{ASSET}/ecephys/continuous.dat.zst")
    assert _decompress(body) == (session / "ecephys" / "continuous.dat").read_bytes()


def _sqs_event(cloud: LocalCloud, body: str, message_id: str = "m-1") -> dict[str, Any]:
    queue_arn = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.deployment.name("IngestQueue"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def _stage_silently(cloud: LocalCloud, session: Path, prefix: str) -> tuple[str, str]:
    """Stage a session with the bucket's notifications paused; returns (job key, version)."""
    s3 = cloud.client("s3")
    s3.put_bucket_notification_configuration(
        Bucket=cloud.staging_bucket, NotificationConfiguration={}
    )
    cloud.upload_session(session, prefix)
    key = f"{prefix}/{JOB}"
    return key, s3.head_object(Bucket=cloud.staging_bucket, Key=key)["VersionId"]


def test_a_message_that_keeps_failing_ingest_lands_in_the_dlq_and_redrives_once(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    sqs = cloud.client("sqs")
    queue = cloud.deployment.name("IngestQueue")
    dlq = cloud.deployment.name("IngestDeadLetterQueue")
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02)
    key, version = _stage_silently(cloud, session, "rig-7/dlq")
    job_id = execution_name(cloud.staging_bucket, key, version)
    hook = _raise_once(
        "sfn.StartExecution",
        lambda p: True,
        _client_error("ServiceUnavailable", 503, "StartExecution"),
        times=1000,
    )
    try:
        # the queue's own delivery (moto invokes the function on send): receive 1, it fails
        sqs.send_message(
            QueueUrl=queue, MessageBody=s3_event_body(cloud.staging_bucket, key, version)
        )
        max_receives = json.loads(
            sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])[
                "Attributes"
            ]["RedrivePolicy"]
        )["maxReceiveCount"]
        receives = 1
        while True:  # the poller moto does not have
            got = sqs.receive_message(
                QueueUrl=queue, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"]
            ).get("Messages", [])
            if not got:
                break
            if json.loads(got[0]["Body"]).get("Event") == "s3:TestEvent":
                # S3 announces a notification configuration change with a test event
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=got[0]["ReceiptHandle"])
                continue
            receives += 1
            payload, errored = cloud.invoke(
                "IngestFunction", _sqs_event(cloud, got[0]["Body"], got[0]["MessageId"])
            )
            assert errored, payload  # every record failed: the batch fails, the message stays
    finally:
        _unhook("sfn.StartExecution", hook)
    assert receives == max_receives == 5
    (dead,) = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0).get("Messages", [])
    assert json.loads(dead["Body"])["Records"][0]["s3"]["object"]["versionId"] == version
    # the record was created on the first attempt, never a second one; nothing started
    assert cloud.executions() == []
    items = cloud.client("dynamodb").scan(TableName=cloud.jobs_table)["Items"]
    assert [i["job_id"]["S"] for i in items] == [job_id]
    assert cloud.job(job_id)["status"] == "RECEIVED" and "execution_arn" not in cloud.job(job_id)
    # the DLQ is alarmed
    alarms = cloud.client("cloudwatch").describe_alarms()["MetricAlarms"]
    dlq_name = dlq.rsplit("/", 1)[1]
    assert any(
        a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and {"Name": "QueueName", "Value": dlq_name} in a["Dimensions"]
        for a in alarms
    )
    # the fault is gone: redelivered from the DLQ, the retried ingest starts exactly one job
    payload, errored = cloud.invoke("IngestFunction", _sqs_event(cloud, dead["Body"], "m-2"))
    assert not errored, payload
    (execution,) = cloud.executions()
    assert execution["name"] == job_id
    assert cloud.wait(execution["executionArn"])["status"] == "SUCCEEDED"
    assert cloud.job(job_id)["status"] == "COMPLETE"
    assert len(cloud.client("dynamodb").scan(TableName=cloud.jobs_table)["Items"]) == 1


# --- guarantee 3: one execution per upload_job.json version ----------------------------------


def test_concurrent_duplicate_deliveries_start_one_execution_with_one_record(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02)
    key, version = _stage_silently(cloud, session, "rig-7/twice")
    event = _sqs_event(cloud, s3_event_body(cloud.staging_bucket, key, version))
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def deliver() -> None:
        start.wait(timeout=30)
        outcomes.append(cloud.invoke("IngestFunction", event))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [errored for _, errored in outcomes] == [False, False]
    (execution,) = cloud.executions()
    job_id = execution_name(cloud.staging_bucket, key, version)
    assert execution["name"] == job_id
    assert cloud.wait(execution["executionArn"])["status"] == "SUCCEEDED"
    items = cloud.client("dynamodb").scan(TableName=cloud.jobs_table)["Items"]
    assert [i["job_id"]["S"] for i in items] == [job_id]
    assert cloud.job(job_id)["status"] == "COMPLETE"


def test_two_ingests_racing_past_the_record_check_still_start_one_execution(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    """The local runner serialises invocations; here two Ingests run truly at once, both
    past `store.get` (no record yet) before either creates the record."""
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02)
    key, version = _stage_silently(cloud, session, "rig-7/race")
    functions = cloud.deployment.functions
    env = functions["IngestFunction"].environment
    from upload_processor.settings import Settings

    settings = Settings(
        jobs_table=cloud.jobs_table,
        topic_arn=cloud.topic_arn,
        archive_bucket=cloud.archive_bucket,
        state_machine_arn=cloud.state_machine_arn,
        default_time_zone=env.get("DEFAULT_TIME_ZONE") or None,
        job_types_prefix=env.get("JOB_TYPES_PREFIX") or None,
    )
    names = Settings.from_env(env).pipeline_functions()
    both_checked = threading.Barrier(2)

    def meet(params: dict, **_: object) -> None:
        if params.get("TableName") == cloud.jobs_table:
            both_checked.wait(timeout=30)

    # Step Functions refuses a second execution of one name atomically; moto's check-then-insert
    # is not, so the second StartExecution waits for the first to be answered (as Step Functions does).
    first_answered = threading.Event()
    arrivals = itertools.count()

    def one_at_a_time(**_: object) -> None:
        if next(arrivals) > 0:
            first_answered.wait(timeout=60)

    def answered(**_: object) -> None:
        first_answered.set()

    events = boto3._get_default_session().events
    hooks = [
        ("before-parameter-build.dynamodb.PutItem", meet),
        ("before-call.sfn.StartExecution", one_at_a_time),
        ("after-call.sfn.StartExecution", answered),
    ]
    for name, hook in hooks:
        events.register(name, hook)
    outcomes: list[str] = []
    faults: list[BaseException] = []

    def deliver() -> None:
        ingest = Ingest(
            s3=boto3.client("s3"),
            sfn=boto3.client("stepfunctions"),
            sns=boto3.client("sns"),
            store=JobStore(boto3.client("dynamodb"), cloud.jobs_table),
            settings=settings,
            awslambda=boto3.client("lambda"),
            function_names=names,
        )
        try:
            outcomes.append(ingest.handle(cloud.staging_bucket, key, version).action)
        except BaseException as exc:
            faults.append(exc)

    try:
        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for name, hook in hooks:
            events.unregister(name, hook)
    assert faults == []
    assert outcomes == ["started", "started"]  # both got past the check; one really started it
    (execution,) = cloud.executions()
    job_id = execution_name(cloud.staging_bucket, key, version)
    assert cloud.wait(execution["executionArn"])["status"] == "SUCCEEDED"
    items = cloud.client("dynamodb").scan(TableName=cloud.jobs_table)["Items"]
    assert [i["job_id"]["S"] for i in items] == [job_id]
    assert cloud.job(job_id)["status"] == "COMPLETE"


def test_a_retried_ingest_after_the_record_was_created_starts_the_job_once(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02)
    key, version = _stage_silently(cloud, session, "rig-7/crashed-ingest")
    job_id = execution_name(cloud.staging_bucket, key, version)
    store = JobStore(cloud.client("dynamodb"), cloud.jobs_table)
    # ingest created the record, then died before StartExecution
    assert store.create(
        {"job_id": job_id, "status": "RECEIVED", "staging_bucket": cloud.staging_bucket}
    )
    event = _sqs_event(cloud, s3_event_body(cloud.staging_bucket, key, version))
    for _ in range(2):  # the redelivery, and one more duplicate
        payload, errored = cloud.invoke("IngestFunction", event)
        assert not errored, payload
    (execution,) = cloud.executions()
    assert execution["name"] == job_id
    assert cloud.wait(execution["executionArn"])["status"] == "SUCCEEDED"
    assert len(cloud.client("dynamodb").scan(TableName=cloud.jobs_table)["Items"]) == 1
    assert store.get(job_id)["status"] == "COMPLETE"
