"""SNS notifications: filterable attributes, SNS limits, readable bodies, no stack traces."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from upload_processor.adapters import notify
from upload_processor.domain.report import Issue, Report

SNS_MAX_MESSAGE = 256 * 1024  # bytes
SNS_MAX_SUBJECT = 100  # characters, exclusive
JOB = {"job_type": "default", "user_email": "scientist@example.org"}
STAGING = "s3://staging/project/750101/"
REPORT_URI = "s3://staging/project/750101/upload_report.json"
MESSAGE = "archive object ecephys/a.bin has size 10, expected 12"
LAMBDA_CAUSE = json.dumps(
    {
        "errorMessage": MESSAGE,
        "errorType": "VerificationError",
        "requestId": "6f1c5c1e-0000-4000-8000-000000000000",
        "stackTrace": [
            '  File "/var/task/app.py", line 40, in handler\n    return verify(event)\n',
            '  File "/opt/python/upload_processor/finalize.py", line 9, in verify\n    raise X\n',
        ],
    }
)


def _issue(n: int, severity: str = "error", field: str | None = "subject_id") -> Issue:
    return Issue(
        severity=severity,
        file=f"subject_{n}.json",
        field=field,
        rule="merge.unique_id",
        message=f"problem number {n}: subject_id differs from subject.json; make them equal",
    )


def _report(issues: list[Issue], asset_name: str | None = "750101_2025-06-12_15-03-00") -> Report:
    return Report.from_issues(issues, asset_name=asset_name)


def _rejection(report: Report, job: dict[str, Any] | None = None) -> notify.Notification:
    return notify.rejection(
        job=JOB if job is None else job, report=report, staging_uri=STAGING, report_uri=REPORT_URI
    )


def _check_sns_limits(n: notify.Notification) -> None:
    assert len(n.subject) < SNS_MAX_SUBJECT
    assert n.subject.isprintable(), "no line breaks or control characters"
    assert all(isinstance(v, str | list) and v for v in n.attributes.values())
    size = len(notify.render(n).encode()) + sum(
        len(k.encode()) + len(json.dumps(v).encode()) + len(b"String.Array")
        for k, v in n.attributes.items()
    )
    assert size < SNS_MAX_MESSAGE


# --- rejection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asset_name", "n_issues"),
    [
        ("750101_2025-06-12_15-03-00", 1),
        ("750101_2025-06-12_15-03-00", 3),
        ("x" * 500 + "_2025-06-12_15-03-00", 1),
        ("x" * 500 + "_2025-06-12_15-03-00", 10_000),
        (None, 2),  # named after the staging location instead
    ],
)
def test_rejection_subject_is_short(asset_name: str | None, n_issues: int) -> None:
    n = _rejection(_report([_issue(i) for i in range(n_issues)], asset_name))
    _check_sns_limits(n)
    assert n.subject.startswith("Upload rejected: ")
    assert n.event == "rejected"
    if len(n.subject) < 90:
        assert n.subject.endswith(f"{n_issues} problem{'s' if n_issues != 1 else ''}")


def test_rejection_subject_strips_line_breaks_and_control_characters() -> None:
    report = _report([_issue(1)], asset_name=None)
    n = notify.rejection(
        job=JOB, report=report, staging_uri="s3://staging/a\nb\tc\x07d\x00e/", report_uri=None
    )
    _check_sns_limits(n)
    assert "\n" not in n.subject and "\x07" not in n.subject


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (JOB, {"event": "rejected", "job_type": "default", "user_email": "scientist@example.org"}),
        ({"job_type": "ecephys"}, {"event": "rejected", "job_type": "ecephys"}),
        ({"job_type": "ecephys", "user_email": None}, {"event": "rejected", "job_type": "ecephys"}),
        ({"job_type": "ecephys", "user_email": ""}, {"event": "rejected", "job_type": "ecephys"}),
        ({}, {"event": "rejected", "job_type": "unknown"}),
        ({"job_type": None, "user_email": None}, {"event": "rejected", "job_type": "unknown"}),
    ],
)
def test_rejection_attributes_never_empty(job: dict[str, Any], expected: dict[str, str]) -> None:
    n = _rejection(_report([_issue(1)]), job)
    audience = ["user"] if "user_email" in expected else ["operator"]
    assert n.attributes == {
        **expected,
        "asset_name": "750101_2025-06-12_15-03-00",
        "audience": audience,
    }
    assert all(n.attributes.values())


def test_rejection_body_lists_every_error_with_file_and_field() -> None:
    errors = [_issue(i) for i in range(30)]
    errors.append(_issue(99, field=None))
    warnings = [_issue(1000 + i, severity="warning") for i in range(3)]
    n = _rejection(_report(errors + warnings))
    lines = n.body.splitlines()
    for issue in errors:
        where = issue.file + (f", field {issue.field}" if issue.field else "")
        assert f"  * {where}: {issue.message}" in lines
    assert "Warnings (not blocking):" in lines
    for issue in warnings:
        assert any(issue.message in line for line in lines)
    assert "31 problems" in n.subject  # warnings are not problems
    assert STAGING in n.body
    assert REPORT_URI in n.body
    assert "upload_job.json" in n.body  # says what to do next


def test_rejection_details_hold_the_structured_report() -> None:
    report = _report([_issue(1), _issue(2, severity="warning")])
    n = _rejection(report)
    rendered = notify.render(n)
    head, _, payload = rendered.partition("--- details (JSON) ---\n")
    assert head.startswith(n.body)
    details = json.loads(payload)
    assert details["event"] == "rejected"
    assert details["report_uri"] == REPORT_URI
    assert Report.model_validate(details["report"]) == report


def test_render_stays_under_the_sns_limit_with_5000_issues() -> None:
    report = _report([_issue(i) for i in range(5000)])
    n = _rejection(report)
    assert len(n.body.encode()) + len(json.dumps(n.details).encode()) > SNS_MAX_MESSAGE
    rendered = notify.render(n)
    _check_sns_limits(n)
    assert rendered.startswith(n.body[:1000])
    assert "truncated" in rendered


def test_render_with_multibyte_text_stays_valid_utf8_under_the_limit() -> None:
    issues = [
        Issue(severity="error", file="ü.json", field=None, rule="r", message="é—ß😀" * 50)
        for _ in range(2000)
    ]
    rendered = notify.render(_rejection(_report(issues)))
    encoded = rendered.encode()  # would raise on a split surrogate
    assert len(encoded) < SNS_MAX_MESSAGE


# --- wants ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("types", "event", "expected"),
    [
        (None, "fail", True),
        (None, "begin", False),
        (None, "end", False),
        (None, "retry", False),
        (None, "rejected", True),
        (["fail"], "fail", True),
        (["fail"], "end", False),
        (["begin", "end"], "begin", True),
        (["begin", "end"], "end", True),
        (["begin", "end"], "fail", False),
        (["begin", "end"], "rejected", True),
        (["retry"], "retry", True),
        (["all"], "begin", True),
        (["all"], "end", True),
        (["all"], "fail", True),
        (["all"], "retry", True),
        (["all"], "rejected", True),
    ],
)
def test_wants(types: list[str] | None, event: notify.Event, expected: bool) -> None:
    job: dict[str, Any] = {"job_type": "default"}
    if types is not None:
        job["email_notification_types"] = types
    assert notify.wants(job, event) is expected


# --- failure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ({"Error": "VerificationError", "Cause": LAMBDA_CAUSE}, MESSAGE),
        ({"error": "VerificationError", "cause": LAMBDA_CAUSE}, MESSAGE),
        (
            {
                "Error": "KeyError",
                "Cause": json.dumps({"errorType": "KeyError", "stackTrace": ["x"]}),
            },
            "KeyError",
        ),
        (
            {
                "Error": "KeyError",
                "Cause": json.dumps(
                    {"errorMessage": "", "errorType": "KeyError", "stackTrace": ["  File a"]}
                ),
            },
            "KeyError",
        ),
        (
            {"Error": "States.Timeout", "Cause": "Task timed out after 900 seconds"},
            "Task timed out after 900 seconds",
        ),
        ({"Error": "States.Timeout"}, ""),
        ({}, ""),
    ],
)
def test_failure_cause_is_the_error_message_without_stack_trace(
    error: dict[str, Any], cause: str
) -> None:
    n = notify.failure(
        job=JOB,
        job_id="job-1",
        asset_name="750101_2025-06-12_15-03-00",
        staging_uri=STAGING,
        error=error,
    )
    _check_sns_limits(n)
    rendered = notify.render(n)
    for trace in ("stackTrace", "Traceback", 'File "', "line 40", "requestId"):
        assert trace not in rendered
    assert n.details["cause"] == cause
    assert f"Cause: {cause}" in n.body.splitlines()
    assert n.event == "fail"
    assert n.attributes["event"] == "fail"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        ("TransientError", True),
        ("Lambda.ServiceException", True),
        ("States.Timeout", True),
        ("AssetExistsError", False),
        ("States.TaskFailed", False),
    ],
)
def test_failure_advice_depends_on_transience(error: str, transient: bool) -> None:
    n = notify.failure(
        job=JOB, job_id="j", asset_name=None, staging_uri=STAGING, error={"Error": error}
    )
    assert ("looks transient" in n.body) is transient
    assert n.subject == f"Upload failed: j — {error}"


def test_failure_without_user_email_or_asset_has_no_empty_attributes() -> None:
    n = notify.failure(
        job={"job_type": None},
        job_id="j" * 300,
        asset_name=None,
        staging_uri=STAGING,
        error={"Error": "X" * 300, "Cause": "y" * 100_000},
    )
    _check_sns_limits(n)
    assert n.attributes == {"event": "fail", "job_type": "unknown", "audience": ["operator"]}
    assert len(n.details["cause"]) <= 2000


def test_completion_message() -> None:
    n = notify.completion(
        job=JOB,
        asset_name="750101_2025-06-12_15-03-00",
        archive_uri="s3://archive/750101_2025-06-12_15-03-00/",
        counts={"files": 3, "bytes_in": 30, "bytes_out": 20},
    )
    _check_sns_limits(n)
    assert n.event == "end"
    assert n.attributes["event"] == "end"
    assert "Files: 3" in n.body


# --- publish through SNS with per-user filter policies ---------------------------------------


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@mock_aws
def test_publish_delivers_only_to_the_matching_subscriber() -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="upload-notifications")["TopicArn"]
    queues = {}
    policies = {
        "alice": {"user_email": ["alice@example.org"]},
        "bob": {"user_email": ["bob@example.org"]},
        "operator": {"event": ["fail"]},
    }
    for name, policy in policies.items():
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps(policy)},
        )
        queues[name] = url

    report = _report([_issue(i) for i in range(5000)])  # the big one: must still go through
    rejected = _rejection(report, {"job_type": "default", "user_email": "alice@example.org"})
    message_id = notify.publish(sns, topic, rejected)
    assert message_id

    got = {name: _drain(sqs, url) for name, url in queues.items()}
    assert [len(got[n]) for n in ("alice", "bob", "operator")] == [1, 0, 0]
    (envelope,) = got["alice"]
    assert envelope["MessageId"] == message_id
    assert envelope["Subject"] == rejected.subject
    assert envelope["Message"] == notify.render(rejected)
    assert envelope["MessageAttributes"]["user_email"] == {
        "Type": "String",
        "Value": "alice@example.org",
    }
    assert envelope["MessageAttributes"]["event"]["Value"] == "rejected"

    failed = notify.failure(
        job={"job_type": "ecephys", "user_email": "bob@example.org"},
        job_id="job-2",
        asset_name=None,
        staging_uri=STAGING,
        error={"Error": "VerificationError", "Cause": LAMBDA_CAUSE},
    )
    notify.publish(sns, topic, failed)
    # a job without a user: only the operator hears of it (and publish does not choke on it)
    anonymous = notify.failure(
        job={}, job_id="job-3", asset_name=None, staging_uri=STAGING, error={"Error": "X"}
    )
    notify.publish(sns, topic, anonymous)

    got = {name: _drain(sqs, url) for name, url in queues.items()}
    assert [len(got[n]) for n in ("alice", "bob", "operator")] == [0, 1, 2]
    assert got["bob"][0]["Subject"] == failed.subject
    assert "stackTrace" not in got["bob"][0]["Message"]
    assert {e["Subject"] for e in got["operator"]} == {failed.subject, anonymous.subject}
