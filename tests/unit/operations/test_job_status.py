"""Job records and their listing (moto DynamoDB, the table as template.yaml defines it), the
`--since` parser and the grouping of a Step Functions history into steps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from tests.paths import ROOT
from upload_processor.adapters.jobs import JobStatus, JobStore, iso
from upload_processor.errors import InvalidQueryError, JobStateConflictError
from upload_processor.operations.status import execution_steps, list_page, parse_since
from upload_processor_tools.local.template import load_template

TABLE = "jobs-test"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class _Spy:
    """A DynamoDB client that counts the operations it forwards."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name in ("query", "scan"):

            def counted(**kwargs: Any) -> Any:
                self.calls.append(name)
                return attr(**kwargs)

            return counted
        if name == "get_paginator":

            def paginator(op: str) -> Any:
                self.calls.append(op)
                return attr(op)

            return paginator
        return attr


@pytest.fixture
def store() -> Iterator[JobStore]:
    """A jobs table created from template.yaml's JobsTable definition."""
    import boto3

    props = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        )
        yield JobStore(_Spy(client), TABLE)


USERS = ["a@example.org", "b@example.org"]
TYPES = ["ecephys", "behavior", "default"]
STATES = [JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.REJECTED, JobStatus.PROCESSING]


def _fill(store: JobStore, n: int = 24) -> list[dict[str, Any]]:
    """n records one hour apart (job-00 oldest), cycling users, job types and states."""
    records = []
    for i in range(n):
        record = {
            "job_id": f"job-{i:02d}",
            "status": str(STATES[i % len(STATES)]),
            "created_at": iso(T0 + timedelta(hours=i)),
            "user_email": USERS[i % 2],
            "job_type": TYPES[i % 3],
            "asset_name": f"asset-{i % 5}",
        }
        assert store.create(record)
        records.append(record)
    return records


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [r["job_id"] for r in items]


def _all_pages(store: JobStore, **filters: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    token, pages = None, 0
    while True:
        items, token = store.list_jobs(next_token=token, **filters)
        ids += _ids(items)
        pages += 1
        if token is None:
            return ids, pages
        assert pages < 50


def _expected(records: list[dict[str, Any]], **match: Any) -> list[str]:
    out = [r for r in records if all(r[k] == v for k, v in match.items())]
    return [r["job_id"] for r in sorted(out, key=lambda r: r["created_at"], reverse=True)]


def test_create_stamps_the_initial_status_and_update_stamps_each_next(store: JobStore) -> None:
    store.create({"job_id": "j1", "status": "RECEIVED"})
    record = store.get("j1")
    assert record["received_at"] == record["created_at"] == record["updated_at"]
    store.update("j1", JobStatus.PROCESSING, execution_arn="arn:x")
    store.update("j1", JobStatus.COMPLETE, files=3, bytes_in=10, bytes_out=5)
    record = store.get("j1")
    assert record["status"] == "COMPLETE"
    assert record["processing_at"] <= record["complete_at"]
    assert (record["files"], record["bytes_in"], record["bytes_out"]) == (3, 10, 5)


def test_conditional_update_and_remove(store: JobStore) -> None:
    store.create({"job_id": "j1", "status": "FAILED", "error": "boom"})
    with pytest.raises(JobStateConflictError, match="j1 is FAILED, not PROCESSING"):
        store.update("j1", JobStatus.CANCELLED, expected=[JobStatus.PROCESSING])
    store.update("j1", JobStatus.PROCESSING, expected=[JobStatus.FAILED], remove=["error"])
    record = store.get("j1")
    assert record["status"] == "PROCESSING" and "error" not in record
    with pytest.raises(JobStateConflictError, match="missing"):
        store.update("nope", JobStatus.CANCELLED, expected=[JobStatus.PROCESSING])
    assert store.get("nope") is None  # a conditional update never creates a record


def test_listing_without_a_state_scans_and_sorts_newest_first(store: JobStore) -> None:
    records = _fill(store)
    store._client.calls.clear()
    items, token = store.list_jobs(limit=5)
    assert _ids(items) == ["job-23", "job-22", "job-21", "job-20", "job-19"]
    assert token
    assert "scan" in store._client.calls and "query" not in store._client.calls
    ids, pages = _all_pages(store, limit=5)
    assert ids == _expected(records) and pages == 5


def test_listing_by_state_queries_the_status_index(store: JobStore) -> None:
    records = _fill(store)
    store._client.calls.clear()
    items, token = store.list_jobs(state="failed", limit=2)
    assert store._client.calls == ["query"]  # one index query, no scan
    assert token
    assert _ids(items) == _expected(records, status="FAILED")[:2] == ["job-21", "job-17"]
    ids, _ = _all_pages(store, state=JobStatus.FAILED, limit=2)
    assert ids == _expected(records, status="FAILED")
    assert "scan" not in store._client.calls


@pytest.mark.parametrize("state", [None, "COMPLETE"])
def test_filters_by_user_job_type_and_since(store: JobStore, state: str | None) -> None:
    records = _fill(store)
    match = {"status": state} if state else {}
    ids, _ = _all_pages(store, state=state, user=USERS[0], limit=3)
    assert ids == _expected(records, user_email=USERS[0], **match)
    ids, _ = _all_pages(store, state=state, job_type="ecephys", limit=2)
    assert ids == _expected(records, job_type="ecephys", **match)
    ids, _ = _all_pages(store, state=state, user=USERS[0], job_type="default", limit=1)
    assert ids == _expected(records, user_email=USERS[0], job_type="default", **match)
    since = iso(T0 + timedelta(hours=12))
    ids, _ = _all_pages(store, state=state, since=since, limit=4)
    expected = [i for i in _expected(records, **match) if int(i[-2:]) >= 12]
    assert ids == expected and ids
    ids, _ = _all_pages(store, state=state, user="nobody@example.org")
    assert ids == []


def test_an_exact_last_page_has_no_token(store: JobStore) -> None:
    _fill(store, n=8)  # 2 of each state
    items, token = store.list_jobs(state="COMPLETE", limit=2)
    assert len(items) == 2 and token is None
    items, token = store.list_jobs(limit=8)
    assert len(items) == 8 and token is None


def test_bad_listing_requests_are_refused_clearly(store: JobStore) -> None:
    _fill(store, n=6)
    with pytest.raises(InvalidQueryError, match="unknown state 'DONE'"):
        store.list_jobs(state="DONE")
    with pytest.raises(InvalidQueryError, match="not one this listing returned"):
        store.list_jobs(next_token="garbage!")
    _, token = store.list_jobs(state="COMPLETE", limit=1)
    with pytest.raises(InvalidQueryError, match="another state filter"):
        store.list_jobs(state="FAILED", next_token=token)
    with pytest.raises(InvalidQueryError, match="limit"):
        store.list_jobs(limit=0)


def test_find_by_job_id_or_newest_job_of_an_asset(store: JobStore) -> None:
    _fill(store)
    assert store.find("job-03")["job_id"] == "job-03"
    assert store.find("asset-2")["job_id"] == "job-22"  # asset-2: jobs 2, 7, 12, 17, 22
    assert store.find("asset-9") is None


def test_list_page_parses_since(store: JobStore) -> None:
    _fill(store)
    now = T0 + timedelta(hours=23, minutes=30)
    page = list_page(store, since="2h", now=now)
    assert _ids(page["items"]) == ["job-23", "job-22"] and page["next_token"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", "2025-06-01T12:00:00.000Z"),
        ("7d", "2025-05-26T12:00:00.000Z"),
        ("30m", "2025-06-02T11:30:00.000Z"),
        ("1w", "2025-05-26T12:00:00.000Z"),
        ("2025-06-01", "2025-06-01T00:00:00.000Z"),
        ("2025-06-01T15:00:00Z", "2025-06-01T15:00:00.000Z"),
        ("2025-06-01T08:00:00-07:00", "2025-06-01T15:00:00.000Z"),
        ("", None),
    ],
)
def test_parse_since(text: str, expected: str | None) -> None:
    assert parse_since(text, now=datetime(2025, 6, 2, 12, 0, tzinfo=UTC)) == expected


def test_parse_since_refuses_nonsense() -> None:
    with pytest.raises(InvalidQueryError, match="neither an ISO date"):
        parse_since("yesterday")


def _ev(n: int, kind: str, second: float, **details: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": n,
        "type": kind,
        "timestamp": T0 + timedelta(seconds=second),
    }
    if details:
        key = {
            "Entered": "stateEnteredEventDetails",
            "Exited": "stateExitedEventDetails",
        }.get(kind[-7:], f"{kind[0].lower()}{kind[1:]}EventDetails")
        event[key] = details
    return event


def test_steps_group_a_history_with_a_retry_a_catch_and_a_fail_state() -> None:
    events = [
        _ev(1, "ExecutionStarted", 0),
        _ev(2, "TaskStateEntered", 0, name="GatherMetadata"),
        _ev(3, "TaskScheduled", 0),
        _ev(4, "TaskFailed", 1, error="TransientError", cause='{"errorMessage": "slow down"}'),
        _ev(5, "TaskScheduled", 3),
        _ev(6, "TaskSucceeded", 4),
        _ev(7, "TaskStateExited", 4, name="GatherMetadata"),
        _ev(8, "MapStateEntered", 4, name="TransferFiles"),
        _ev(9, "MapRunStarted", 4, mapRunArn="arn:maprun"),
        _ev(10, "MapRunFailed", 9, error="States.ExceedToleratedFailureThreshold"),
        _ev(11, "MapStateExited", 9, name="TransferFiles"),
        _ev(12, "TaskStateEntered", 9, name="MarkFailed"),
        _ev(13, "TaskScheduled", 9),
        _ev(14, "TaskSucceeded", 10),
        _ev(15, "TaskStateExited", 10, name="MarkFailed"),
        _ev(16, "FailStateEntered", 10, name="Failed"),
        _ev(17, "ExecutionFailed", 10, error="UploadFailed"),
    ]
    steps = execution_steps(events)
    assert [(s["name"], s["type"], s["outcome"]) for s in steps] == [
        ("GatherMetadata", "Task", "succeeded"),
        ("TransferFiles", "Map", "failed"),
        ("MarkFailed", "Task", "succeeded"),
        ("Failed", "Fail", "failed"),
    ]
    gather, transfer = steps[0], steps[1]
    assert gather["retries"] == 1 and gather["error"] is None and gather["duration_s"] == 4.0
    assert transfer["error"] == "States.ExceedToleratedFailureThreshold"
    assert transfer["map_run_arn"] == "arn:maprun"
    assert transfer["started_at"] == "2025-06-01T12:00:04.000Z"


def test_steps_of_a_stopped_execution_end_aborted() -> None:
    events = [
        _ev(1, "ExecutionStarted", 0),
        _ev(2, "TaskStateEntered", 0, name="GatherMetadata"),
        _ev(3, "TaskScheduled", 0),
        _ev(4, "ExecutionAborted", 5),
    ]
    (step,) = execution_steps(events)
    assert step["outcome"] == "aborted" and step["ended_at"] == "2025-06-01T12:00:05.000Z"
    running = execution_steps(events[:3])
    assert running[0]["outcome"] == "running" and running[0]["ended_at"] is None


def test_retry_execution_names_fit_step_functions() -> None:
    from upload_processor.operations.control import retry_name

    assert retry_name("rig-7-s1-0123", 1) == "rig-7-s1-0123-retry-1"
    long_id = "x" * 50 + "-" + "a" * 20
    for n in (1, 12, 345):
        name = retry_name(long_id, n)
        assert len(name) <= 80 and name.endswith("a" * 20 + f"-retry-{n}")


def test_the_locator_prefers_options_then_env_then_stack_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from upload_processor.errors import NotLocatedError
    from upload_processor_tools.commands.locate import Locator

    for name in (
        "UPLOAD_PROCESSOR_JOBS_TABLE",
        "UPLOAD_PROCESSOR_STACK",
        "UPLOAD_PROCESSOR_INGEST_QUEUE_URL",
        "UPLOAD_PROCESSOR_INGEST_DLQ_URL",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    outputs = {
        "JobsTableName": "stack-jobs",
        "IngestQueueUrl": "q",
        "IngestDeadLetterQueueUrl": "d",
    }
    where = Locator(stack="my-stack", _outputs=outputs)
    assert where.jobs_table() == "stack-jobs"
    assert where.jobs_table("given") == "given"
    assert where.ingest_queues() == ("q", "d")
    assert where.ingest_queues(dlq="other") == ("q", "other")
    monkeypatch.setenv("UPLOAD_PROCESSOR_JOBS_TABLE", "from-env")
    assert where.jobs_table() == "from-env"
    with pytest.raises(NotLocatedError, match="no output IngestQueueUrl"):
        Locator(stack="s", _outputs={}).ingest_queues()
    with pytest.raises(NotLocatedError, match="--queue-url URL"):
        Locator().ingest_queues()
