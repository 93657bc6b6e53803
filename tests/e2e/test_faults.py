"""Guarantee 5 of README "Operating": transient faults are retried, permanent ones reported once.

Each test injects its fault at the AWS or HTTP edge (a botocore hook on boto3's default session,
which the handlers' clients and moto's Step Functions interpreter both use; or a local HTTP
metadata service), runs the whole flow on the local cloud and then checks the job record, the
staging bucket (untouched), the archive (no partial object, no open multipart upload) and the
notifications.

moto's interpreter really sleeps the ASL Retry intervals (IntervalSeconds 2, BackoffRate 2,
JitterStrategy FULL: a uniform wait in [0, 2 * 2^n] s), and the template has no parameter for
them: a test that exhausts Transfer's four retries waits about 15 s on average, 30 s at most.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from e2e_support import ACQ, ASSET, ROOT, LocalHttpService, Staged, archived_data, session_data
from e2e_support import body as _body
from e2e_support import decompress as _decompress
from e2e_support import keys as _keys
from e2e_support import versions as _versions

from upload_processor.adapters.notify import subscription_filter
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.local.seam import RUNNER
from upload_processor_tools.sample import SAMPLE_PROJECT_NAME, build_session, project_record

# --- the fault edge ----------------------------------------------------------------------------


class Fault:
    """A botocore hook on boto3's default session, while in its `with` block: raises `error`
    for the first `times` calls of `operation` whose parameters match (`raised`); counts every
    matching call (`seen`)."""

    def __init__(
        self, operation: str, matches: Callable[[dict], bool], error: Exception, times: int = 1
    ) -> None:
        self.event = f"before-parameter-build.{operation}"
        self.matches, self.error, self.times = matches, error, times
        self.raised = self.seen = 0

    def __call__(self, params: dict, **_: object) -> None:
        if not self.matches(params):
            return
        self.seen += 1
        if self.raised < self.times:
            self.raised += 1
            raise self.error

    def __enter__(self) -> Fault:
        boto3._get_default_session().events.register(self.event, self)
        return self

    def __exit__(self, *_: object) -> None:
        boto3._get_default_session().events.unregister(self.event, self)


def _client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected"},
        },
        operation,
    )


def _uploads(cloud: LocalCloud) -> list[dict]:
    return cloud.client("s3").list_multipart_uploads(Bucket=cloud.archive_bucket).get("Uploads", [])


def _events(messages: list[dict]) -> list[str]:
    return [m["MessageAttributes"]["event"]["Value"] for m in messages]


def _details(message: dict) -> dict[str, Any]:
    return json.loads(message["Message"].split("--- details (JSON) ---", 1)[1])


def _assert_archived(cloud: LocalCloud, session: Path) -> None:
    """Every data file of the session is in the asset, byte for byte, and the asset sealed."""
    archive = cloud.archive_bucket
    data = sorted(
        p for p in session.rglob("*") if p.is_file() and "/" in str(p.relative_to(session))
    )
    assert archived_data(cloud, ASSET) == session_data(session)  # read as the manifest says
    manifest = json.loads(_body(cloud, archive, f"{ASSET}/manifest.json"))
    assert len(manifest["objects"]) == len(data)
    assert _uploads(cloud) == []
    assert _keys(cloud, archive, "_jobs/") == set()  # work area cleared, lease released


# --- a. Lambda throttling ----------------------------------------------------------------------


def test_a_throttled_transfer_invocation_is_retried_and_the_job_completes(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    """Lambda answers Invoke with 429 TooManyRequestsException: moto's interpreter names that
    `Lambda.TooManyRequestsException`, as Step Functions does, and Transfer's Retry matches it.

    A throttled invocation never runs the function, so RUNNER.calls (what ran) shows one
    successful Transfer; the hook counts the two Invoke requests (throttled, then retried)."""
    cloud = quick_cloud
    operator = cloud.subscribe_queue("ops", subscription_filter(None))
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    transfer = cloud.deployment.functions["TransferFunction"].name
    throttle = Fault(
        "lambda.Invoke",
        lambda p: transfer in str(p.get("FunctionName")),
        _client_error("TooManyRequestsException", 429, "Invoke"),
    )
    staged = Staged(cloud, session, "rig-7/throttled")
    calls = len(RUNNER.calls)
    with throttle:
        record = staged.run()
    assert throttle.raised == 1 and throttle.seen == 2  # throttled once, then invoked again
    assert record["status"] == "COMPLETE", record
    ran = [(c.logical_id, c.errored) for c in RUNNER.calls[calls:]]
    assert ran.count(("TransferFunction", False)) == 1
    assert not any(errored for _, errored in ran)
    staged.assert_untouched()
    _assert_archived(cloud, session)
    assert cloud.messages(operator) == []  # nothing failed: the operator hears nothing


# --- b. metadata service 5xx, then the records ---------------------------------------------------


class MetadataServer(LocalHttpService):
    """An AIND-compatible metadata service on 127.0.0.1: answers 503 to the first `failures`
    subject requests, then the records it holds."""

    def __init__(self, records: dict[str, Any], failures: int) -> None:
        super().__init__()
        self.records, self.failures = records, failures
        self.requests: list[tuple[str, int]] = []

    def answer(self, path: str) -> tuple[int, Any]:
        failing = path.startswith("/api/v2/subject/") and self.failures > 0
        if failing:
            self.failures -= 1
        status, payload = (
            (503, {"message": "injected: service unavailable"})
            if failing
            else (200, self.records[path])
            if path in self.records
            else (404, {"message": "Not found"})
        )
        self.requests.append((path, status))
        return status, payload


@pytest.mark.parametrize(
    ("failures", "gather_errors"),
    [
        (1, 0),  # absorbed by the client's own retries, inside one GatherMetadata invocation
        (5, 1),  # every attempt of one invocation fails: MetadataServiceError, the ASL retries
    ],
)
def test_metadata_service_5xx_is_retried_and_the_job_completes(
    tmp_path: Path, no_metrics_warning: None, failures: int, gather_errors: int
) -> None:
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02, data_description=False
    )
    # the subject and procedures are registered, not staged: GatherMetadata must fetch them
    subject = json.loads((session / "subject.json").read_text())
    procedures = json.loads((session / "procedures.json").read_text())
    (session / "subject.json").unlink()
    (session / "procedures.json").unlink()
    project = project_record()
    name = SAMPLE_PROJECT_NAME.replace(" ", "%20")
    records = {
        "/api/v2/subject/750101": subject,
        "/api/v2/procedures/750101": procedures,
        f"/api/v2/funding/{name}": project["funding_source"],
        f"/api/v2/investigators/{name}": project["investigators"],
    }
    with (
        MetadataServer(records, failures) as service,
        LocalCloud(
            ROOT,
            parameter_overrides={"FilesWaitSeconds": 0, "MetadataService": f"aind:{service.url}"},
        ) as cloud,
    ):
        operator = cloud.subscribe_queue("ops", subscription_filter(None))
        staged = Staged(cloud, session, "rig-7/service")
        calls = len(RUNNER.calls)
        record = staged.run()

        subject_requests = [s for p, s in service.requests if p.startswith("/api/v2/subject/")]
        assert subject_requests == [503] * failures + [200]
        assert record["status"] == "COMPLETE", record
        gathers = [
            c.errored for c in RUNNER.calls[calls:] if c.logical_id == "GatherMetadataFunction"
        ]
        assert gathers == [True] * gather_errors + [False]
        staged.assert_untouched()
        _assert_archived(cloud, session)
        nd = json.loads(_body(cloud, cloud.archive_bucket, f"{ASSET}/metadata.nd.json"))
        assert nd["subject"]["subject_id"] == "750101"  # the service's records were used
        assert nd["procedures"]["subject_id"] == "750101"
        assert nd["data_description"]["investigators"] == project["investigators"]
        assert cloud.messages(operator) == []


# --- c. a transient fault that does not go away ----------------------------------------------


def test_a_persistent_s3_slowdown_fails_the_job_once_with_its_cause(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    """S3 answers SlowDown to every write of one file's archive object: Transfer's retries run
    out, the job ends FAILED naming the step and the cause, and the archive keeps nothing
    partial (no open multipart upload, no manifest)."""
    cloud = quick_cloud
    operator = cloud.subscribe_queue("ops", subscription_filter(None))
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    archive = cloud.archive_bucket
    target = f"{ASSET}/ecephys/continuous.dat.zst"

    def writes_target(p: dict) -> bool:
        return p.get("Bucket") == archive and p.get("Key") == target

    staged = Staged(cloud, session, "rig-7/slow")
    calls = len(RUNNER.calls)
    with (
        Fault(
            "s3.PutObject", writes_target, _client_error("SlowDown", 503, "PutObject"), 1000
        ) as put,
        Fault(
            "s3.UploadPart", writes_target, _client_error("SlowDown", 503, "UploadPart"), 1000
        ) as part,
    ):
        record = staged.run()

    assert put.raised + part.raised >= 5  # the first attempt and Transfer's four retries
    assert record["status"] == "FAILED", record
    assert record["failed_step"] in ("TransferFiles", "Finalize")
    assert "SlowDown" in record["error"]
    transfers = [c.errored for c in RUNNER.calls[calls:] if c.logical_id == "TransferFunction"]
    assert transfers.count(True) == 5, transfers
    staged.assert_untouched()
    # what the batch wrote before the fault are whole objects; the faulted one is not there
    left = _keys(cloud, archive, f"{ASSET}/")
    assert target not in left
    for key in left:
        rel = key.removeprefix(f"{ASSET}/")
        source = (session / rel.removesuffix(".zst")).read_bytes()
        got = _body(cloud, archive, key)
        assert (_decompress(got) if key.endswith(".zst") else got) == source, key
    assert f"{ASSET}/manifest.json" not in _keys(cloud, archive, "")
    assert _uploads(cloud) == []
    assert _keys(cloud, archive, "_jobs/locks/") == set()  # the lease was released
    (fail,) = cloud.messages(operator)  # reported once
    assert _events([fail]) == ["fail"]
    details = _details(fail)
    assert details["step"] == record["failed_step"]
    assert f"in step {details['step']}." in fail["Message"]
    assert "SlowDown" in fail["Message"]
    assert "Is a retry safe? yes" in fail["Message"]


# --- d. Finalize throttled while recording a failure -------------------------------------------


def _recording_failure_faults(cloud: LocalCloud) -> dict[str, Fault]:
    finalize = cloud.deployment.functions["FinalizeFunction"].name

    def invokes_failed_outcome(p: dict) -> bool:
        if finalize not in str(p.get("FunctionName")):
            return False
        payload = p.get("Payload") or b"{}"
        return json.loads(payload).get("outcome") == "failed"

    def sets_failed(p: dict) -> bool:
        """An update that writes FAILED (not one that only allows it as the status before)."""
        names, values = p.get("ExpressionAttributeNames") or {}, p.get("ExpressionAttributeValues")
        written = [
            (values or {}).get(f":v{name[2:]}")
            for name, field in names.items()
            if field == "status" and name.startswith("#f")
        ]
        return p.get("TableName") == cloud.jobs_table and {"S": "FAILED"} in written

    return {
        # Lambda refuses the invocation: Step Functions sees Lambda.TooManyRequestsException
        "lambda-throttled": Fault(
            "lambda.Invoke",
            invokes_failed_outcome,
            _client_error("TooManyRequestsException", 429, "Invoke"),
        ),
        # the function runs, DynamoDB throttles past the client's own retries: ClientError
        "dynamodb-throttled": Fault(
            "dynamodb.UpdateItem",
            sets_failed,
            _client_error("ProvisionedThroughputExceededException", 400, "UpdateItem"),
        ),
    }


@pytest.mark.parametrize("fault", ["lambda-throttled", "dynamodb-throttled"])
def test_a_throttled_finalize_still_records_the_failure_and_notifies_once(
    quick_cloud: LocalCloud, tmp_path: Path, fault: str
) -> None:
    """MarkFailed is retried: a job that fails (the asset exists and differs) ends FAILED, not
    PROCESSING, even when recording the failure is throttled once; the message goes out once."""
    cloud = quick_cloud
    operator = cloud.subscribe_queue("ops", subscription_filter(None))
    user = cloud.subscribe_queue("user", subscription_filter("scientist@example.org"))
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02)
    assert Staged(cloud, session, "rig-7/first").run()["status"] == "COMPLETE"
    asset_before = _versions(cloud, cloud.archive_bucket, f"{ASSET}/")
    (session / "behavior" / "trials.csv").write_text("trial\n1\n")  # differs from the asset
    second = Staged(cloud, session, "rig-7/second")
    calls = len(RUNNER.calls)
    with _recording_failure_faults(cloud)[fault] as injected:
        record = second.run()

    assert injected.raised == 1
    assert record["status"] == "FAILED", record
    assert record["failed_step"] == "GatherMetadata"
    assert record["error"].startswith("AssetExistsError")
    assert second.execution["status"] == "FAILED"  # the Fail state, after MarkFailed succeeded
    finalizes = [c.errored for c in RUNNER.calls[calls:] if c.logical_id == "FinalizeFunction"]
    # a throttled invocation never ran; a throttled UpdateItem failed the run that made it
    assert finalizes == ([False] if fault == "lambda-throttled" else [True, False])
    (fail,) = cloud.messages(operator)  # exactly once, despite the retry
    assert _events([fail]) == ["fail"]
    assert "in step GatherMetadata" in fail["Message"]
    assert "Is a retry safe? not until the conflict is resolved" in fail["Message"]
    assert _events(cloud.messages(user)) == ["fail"]
    second.assert_untouched()
    assert _versions(cloud, cloud.archive_bucket, f"{ASSET}/") == asset_before
    assert _keys(cloud, cloud.archive_bucket, "_jobs/") == set()
    assert _uploads(cloud) == []


def test_a_throttled_reject_is_retried_and_the_rejection_sent_once(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    """Reject is retried too: throttled once, the job still ends REJECTED with one message."""
    cloud = quick_cloud
    user = cloud.subscribe_queue("user", subscription_filter("scientist@example.org"))
    operator = cloud.subscribe_queue("ops", subscription_filter(None))
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.02, conflicting_subject_id="7"
    )
    finalize = cloud.deployment.functions["FinalizeFunction"].name
    throttle = Fault(
        "lambda.Invoke",
        lambda p: (
            finalize in str(p.get("FunctionName"))
            and json.loads(p.get("Payload") or b"{}").get("outcome") == "rejected"
        ),
        _client_error("TooManyRequestsException", 429, "Invoke"),
    )
    staged = Staged(cloud, session, "rig-7/rejected")
    with throttle:
        record = staged.run()
    assert throttle.raised == 1 and throttle.seen == 2
    assert record["status"] == "REJECTED", record
    assert _events(cloud.messages(user)) == ["rejected"]
    assert cloud.messages(operator) == []  # not turned into a failure
    staged.assert_untouched()
    assert _keys(cloud, cloud.archive_bucket, "") == set()
    assert _uploads(cloud) == []
