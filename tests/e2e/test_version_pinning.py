"""Version pinning through the local cloud: the deploy publishes the pipeline functions, ingest
resolves each job's image_version pins against what it published, the state machine invokes
the resolved versions; an unknown version or mixed per-modality pins are rejected at ingest."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from upload_processor import __version__
from upload_processor.adapters.versions import ALIAS
from upload_processor_tools.local.seam import RUNNER
from upload_processor_tools.sample import build_session

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
EMAIL = "scientist@example.org"
PIPELINE = ("GatherMetadataFunction", "TransferFunction", "FinalizeFunction", "RegisterFunction")


def _session(tmp_path: Path, name: str, tasks: dict[str, Any] | None) -> Path:
    session = build_session(tmp_path / name, acq_datetime=ACQ, data_mb_per_modality=0.05)
    if tasks is not None:
        job = json.loads((session / "upload_job.json").read_text())
        job["tasks"] = tasks
        (session / "upload_job.json").write_text(json.dumps(job))
    return session


def _run(cloud, session: Path, prefix: str) -> tuple[dict, list]:
    """Upload the session; its (finished) execution and the pipeline invocations it made."""
    before = len(RUNNER.calls)
    cloud.upload_session(session, prefix)
    (execution,) = [e for e in cloud.executions() if e["name"].startswith(prefix.replace("/", "-"))]
    described = cloud.wait(execution["executionArn"])
    calls = [c for c in RUNNER.calls[before:] if c.logical_id in PIPELINE]
    return described, calls


def _scheduled(cloud, execution_arn: str) -> list[str]:
    """The FunctionName of every Lambda task the execution scheduled (its history)."""
    sfn = cloud.client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    out = []
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and details.get("resourceType") == "lambda":
            out.append(json.loads(details["parameters"])["FunctionName"])
    return out


def _fn(cloud, logical: str) -> str:
    return cloud.deployment.functions[logical].arn


def test_the_deploy_publishes_each_pipeline_function_with_its_code_version(cloud) -> None:
    awslambda = cloud.client("lambda")
    for logical in PIPELINE:
        name = cloud.deployment.functions[logical].name
        versions = awslambda.list_versions_by_function(FunctionName=name)["Versions"]
        published = [
            (v["Version"], v["Description"]) for v in versions if v["Version"] != "$LATEST"
        ]
        assert published == [("1", f"upload-processor {__version__}")], logical
        alias = awslambda.get_alias(FunctionName=name, Name=ALIAS)
        assert alias["FunctionVersion"] == "1"


def test_a_job_without_a_pin_runs_on_the_alias(cloud, tmp_path: Path) -> None:
    # a later deploy (another code version) moves live: an unpinned job follows it
    cloud.publish_version("GatherMetadataFunction", "0.2.0")
    execution, calls = _run(cloud, _session(tmp_path, "s", None), "rig-7/unpinned")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    record = cloud.job(execution["name"])
    assert record["status"] == "COMPLETE"
    expected = {
        "gather": f"{_fn(cloud, 'GatherMetadataFunction')}:{ALIAS}",
        "transfer": f"{_fn(cloud, 'TransferFunction')}:{ALIAS}",
        "finalize": f"{_fn(cloud, 'FinalizeFunction')}:{ALIAS}",
        "registration": f"{_fn(cloud, 'RegisterFunction')}:{ALIAS}",
    }
    assert record["functions"] == expected
    assert json.loads(execution["input"])["functions"] == expected
    scheduled = _scheduled(cloud, execution["executionArn"])
    assert scheduled[0] == expected["gather"] and scheduled[-1] == expected["registration"]
    # live points at the newest gather version (2) and at version 1 of the others
    versions = {(c.logical_id, c.version) for c in calls}
    assert versions == {
        ("GatherMetadataFunction", "2"),
        ("TransferFunction", "1"),
        ("FinalizeFunction", "1"),
        ("RegisterFunction", "1"),
    }
    assert not any(c.errored for c in calls)


def test_a_job_pinned_to_the_published_version_runs_on_that_version(cloud, tmp_path: Path) -> None:
    # live has moved on to 0.2.0 (version 2); the pin keeps gather on this package's version (1)
    cloud.publish_version("GatherMetadataFunction", "0.2.0")
    tasks = {
        "gather_preliminary_metadata": {"image_version": f"v{__version__}"},
        "modality_transformation_settings": {"image_version": __version__},
    }
    execution, calls = _run(cloud, _session(tmp_path, "s", tasks), "rig-7/pinned")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert cloud.job(execution["name"])["status"] == "COMPLETE"
    gather_v1 = f"{_fn(cloud, 'GatherMetadataFunction')}:1"
    transfer_v1 = f"{_fn(cloud, 'TransferFunction')}:1"
    functions = json.loads(execution["input"])["functions"]
    assert functions == {
        "gather": gather_v1,
        "transfer": transfer_v1,
        "finalize": f"{_fn(cloud, 'FinalizeFunction')}:{ALIAS}",
        "registration": f"{_fn(cloud, 'RegisterFunction')}:{ALIAS}",
    }
    scheduled = _scheduled(cloud, execution["executionArn"])
    assert scheduled[0] == gather_v1
    # the Transfer tasks run in the Map's child executions; the invocations show their ARN
    gathers = [c for c in calls if c.logical_id == "GatherMetadataFunction"]
    transfers = [c for c in calls if c.logical_id == "TransferFunction"]
    assert [(c.arn, c.version) for c in gathers] == [(gather_v1, "1")]
    assert transfers and {(c.arn, c.version) for c in transfers} == {(transfer_v1, "1")}


def _rejected(cloud, tmp_path: Path, tasks: dict[str, Any], prefix: str) -> tuple[dict, dict]:
    inbox = cloud.subscribe_queue(prefix.replace("/", "-"), {"user_email": [EMAIL]})
    cloud.upload_session(_session(tmp_path, prefix.replace("/", "-"), tasks), prefix)
    assert cloud.executions() == []  # rejected at ingest: nothing started
    s3 = cloud.client("s3")
    report = json.loads(
        s3.get_object(Bucket=cloud.staging_bucket, Key=f"{prefix}/upload_report.json")[
            "Body"
        ].read()
    )
    (message,) = cloud.messages(inbox)
    return report, message


def _record(cloud, prefix: str) -> dict:
    from upload_processor.pipeline.ingest import execution_name

    s3 = cloud.client("s3")
    key = f"{prefix}/upload_job.json"
    version = s3.head_object(Bucket=cloud.staging_bucket, Key=key)["VersionId"]
    return cloud.job(execution_name(cloud.staging_bucket, key, version))


def test_a_job_pinned_to_an_unknown_version_is_rejected_with_the_available_ones(
    cloud, tmp_path: Path
) -> None:
    tasks = {"gather_preliminary_metadata": {"image_version": "v9.9.9"}}
    report, message = _rejected(cloud, tmp_path, tasks, "rig-7/unknown")
    (issue,) = [i for i in report["issues"] if i["severity"] == "error"]
    assert issue["rule"] == "job.unknown_version"
    assert issue["field"] == "tasks.gather_preliminary_metadata.image_version"
    assert f"available: v{__version__}" in issue["message"]

    record = _record(cloud, "rig-7/unknown")
    assert record["status"] == "REJECTED"
    assert "v9.9.9" in record["error"] and f"v{__version__}" in record["error"]
    assert record["report_key"] == "rig-7/unknown/upload_report.json"
    assert "execution_arn" not in record

    attributes = {k: v["Value"] for k, v in message["MessageAttributes"].items()}
    assert attributes["event"] == "rejected" and attributes["user_email"] == EMAIL
    assert "v9.9.9" in message["Message"] and f"v{__version__}" in message["Message"]


def test_mixed_per_modality_pins_are_rejected(cloud, tmp_path: Path) -> None:
    tasks = {
        "modality_transformation_settings": {
            "behavior": {"image_version": f"v{__version__}"},
            "ecephys": {"job_settings": {"level": 5}},
        }
    }
    report, message = _rejected(cloud, tmp_path, tasks, "rig-7/mixed")
    (issue,) = [i for i in report["issues"] if i["severity"] == "error"]
    assert issue["rule"] == "job.mixed_version_pins"
    assert "behavior" in issue["message"] and "ecephys" in issue["message"]
    assert _record(cloud, "rig-7/mixed")["status"] == "REJECTED"
    assert "image_version" in message["Message"]
