"""Job status, as the `status` command and the status API show it (the same data for both).

- `list_page`: one page of job records, newest first, with the filters of `JobStore.list_jobs`
  (state, since, user, job type) and an opaque next token.
- `job_detail`: one job (by id, or the newest job of an asset name): its record, its execution
  (status, and each state it went through with start, end and outcome, read from the Step
  Functions history) and the summary of its validation report (read from staging).

Only reads: the jobs table, `*upload_report.json` in staging, `GetExecutionHistory` and
`DescribeExecution` on the upload state machine's executions.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from upload_processor.adapters.jobs import JobStore, iso
from upload_processor.domain.registration import Registration
from upload_processor.domain.report import Report
from upload_processor.errors import InvalidQueryError

REPORT_ISSUES_SHOWN = 50
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# History events that end a state's attempt in failure (Task, Lambda, Map, Map Run, Parallel)
_FAILURES = ("Failed", "TimedOut", "Aborted")


def parse_since(text: str | None, now: datetime | None = None) -> str | None:
    """`--since` / `?since=`: an ISO date or date-time (naive = UTC), or a relative age such
    as `30m`, `24h`, `7d`, `2w`; returns the created_at bound in the records' format."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return iso((now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount}))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidQueryError(
            f"since {text!r} is neither an ISO date/time (2025-06-12, 2025-06-12T15:00:00Z) "
            "nor a relative age (30m, 24h, 7d, 2w)"
        ) from None
    return iso(moment)


def list_page(
    store: JobStore,
    *,
    state: str | None = None,
    since: str | None = None,
    user: str | None = None,
    job_type: str | None = None,
    limit: int = 50,
    next_token: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`{"items": [records], "next_token": str | None}`; InvalidQueryError for bad filters."""
    items, token = store.list_jobs(
        state=state or None,
        since=parse_since(since, now),
        user=user or None,
        job_type=job_type or None,
        limit=limit,
        next_token=next_token or None,
    )
    return {"items": items, "next_token": token}


def _stamp(value: Any) -> str | None:
    if isinstance(value, datetime):
        return iso(value)
    return str(value) if value else None


def _cause(cause: Any) -> str:
    """A Lambda error's cause is JSON with a stack trace: keep its message."""
    text = str(cause or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:1000]
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("errorType") or parsed)[:1000]
    return str(parsed)[:1000]


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def execution_steps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group a Step Functions history into steps: one per state entered, in order.

    Each step: `name`, `type` (Task, Choice, Map, ...), `started_at`, `ended_at`,
    `duration_s`, `outcome` (succeeded | failed | running | aborted), `error`, `cause`,
    `retries` (Task attempts after the first) and, for a Distributed Map, `map_run_arn`.
    A failure event belongs to the innermost state still open; a later success (a retry that
    worked) clears it. A failure a Catch routed elsewhere leaves the state `failed`.
    """
    steps: list[dict[str, Any]] = []
    open_steps: list[dict[str, Any]] = []
    ended = None
    for event in sorted(events, key=lambda e: e.get("id", 0)):
        kind = str(event.get("type", ""))
        at = _stamp(event.get("timestamp"))
        details = _details(event)
        if kind.endswith("StateEntered"):
            step = _entered(kind, at, details)
            steps.append(step)
            if step["outcome"] == "running":
                open_steps.append(step)
        elif kind.endswith("StateExited"):
            _exited(open_steps, details.get("name"), at)
        elif kind.startswith("Execution"):
            if kind.endswith(_FAILURES):
                ended = (at, "aborted" if kind != "ExecutionFailed" else "failed", details)
        elif open_steps:
            _in_state(open_steps[-1], kind, at, details)
    for step in open_steps:  # states the execution was still in, or stopped in
        if ended is not None:
            step["ended_at"] = step.get("failed_at") or ended[0]
            if step["outcome"] == "running":
                step["outcome"] = "aborted" if ended[1] == "aborted" else "failed"
    for step in steps:
        _settle(step)
    return steps


def _entered(kind: str, at: str | None, details: dict[str, Any]) -> dict[str, Any]:
    """The step a `<Type>StateEntered` event opens; a Fail state never exits, so entering it
    is its outcome (it comes back already `failed`, never open)."""
    step: dict[str, Any] = {
        "name": details.get("name"),
        "type": kind[: -len("StateEntered")],
        "started_at": at,
        "ended_at": None,
        "duration_s": None,
        "outcome": "running",
        "error": None,
        "cause": None,
    }
    if step["type"] == "Fail":
        step.update(ended_at=at, duration_s=0.0, outcome="failed")
        step.update(error=details.get("error"), cause=details.get("cause"))
    return step


def _exited(open_steps: list[dict[str, Any]], name: Any, at: str | None) -> None:
    """Close the innermost open step of that name; one not failed by then succeeded."""
    for step in reversed(open_steps):
        if step["name"] == name:
            open_steps.remove(step)
            step["ended_at"] = at
            if step["outcome"] == "running":
                step["outcome"] = "succeeded"
            return


def _in_state(step: dict[str, Any], kind: str, at: str | None, details: dict[str, Any]) -> None:
    """Apply a task or Map event to the innermost open step: its map run, its attempts, a
    failure (kept until a later success of a retry clears it)."""
    if kind == "MapRunStarted":
        step["map_run_arn"] = details.get("mapRunArn")
    elif kind == "TaskScheduled":
        step["attempts"] = step.get("attempts", 0) + 1
    elif kind.endswith(_FAILURES):
        step["outcome"] = "failed"
        step["error"] = details.get("error") or kind
        step["cause"] = _cause(details.get("cause")) or None
        step["failed_at"] = at
    elif kind.endswith("Succeeded"):  # a retry succeeded after a failed attempt
        step.update(outcome="running", error=None, cause=None, failed_at=None)


def _settle(step: dict[str, Any]) -> None:
    """Turn a step's working fields into its reported ones: retries, and its duration."""
    step.pop("failed_at", None)
    step["retries"] = max(0, step.pop("attempts", 1) - 1)
    if step["ended_at"] and step["started_at"]:
        start = datetime.fromisoformat(step["started_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(step["ended_at"].replace("Z", "+00:00"))
        step["duration_s"] = round((end - start).total_seconds(), 3)


def execution_info(sfn: Any, execution_arn: str | None) -> dict[str, Any] | None:
    """The execution's status and steps; an unreadable history is reported, not raised."""
    if not execution_arn:
        return None
    info: dict[str, Any] = {"arn": execution_arn, "status": None, "steps": []}
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
        info.update(
            status=described.get("status"),
            started_at=_stamp(described.get("startDate")),
            stopped_at=_stamp(described.get("stopDate")),
        )
        if described.get("error"):
            info.update(error=described.get("error"), cause=_cause(described.get("cause")))
        events: list[dict[str, Any]] = []
        paginator = sfn.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn, includeExecutionData=False):
            events += page.get("events", [])
        info["steps"] = execution_steps(events)
    except Exception as exc:  # no history (expired, other account, denied): say so
        info["history_error"] = f"{type(exc).__name__}: {exc}"[:500]
    return info


def report_summary(s3: Any, record: dict[str, Any]) -> dict[str, Any] | None:
    """The validation report's verdict and its first problems (None: the job has no report)."""
    bucket, key = record.get("staging_bucket"), record.get("report_key")
    if not bucket or not key:
        return None
    summary: dict[str, Any] = {"uri": f"s3://{bucket}/{key}"}
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        report = Report.model_validate_json(body)
    except Exception as exc:  # missing, denied, not a report: say so, show the rest
        summary["error"] = f"cannot read the report: {type(exc).__name__}: {exc}"[:500]
        return summary
    summary.update(
        status=report.status,
        asset_name=report.asset_name,
        errors=len(report.errors),
        warnings=len(report.warnings),
        merged_from=report.merged_from.model_dump(mode="json"),
        issues=[i.model_dump(mode="json") for i in report.issues[:REPORT_ISSUES_SHOWN]],
        issues_truncated=len(report.issues) > REPORT_ISSUES_SHOWN,
    )
    return summary


def registration_summary(record: dict[str, Any]) -> dict[str, Any] | None:
    """What the registration states after Finalize recorded: `{"summary": "OK" | "FAILED
    (step: reason)" | ..., "steps": [{"step", "status", "reason", "details", "at"}]}` in the
    state machine's order; None when none has run (a job not COMPLETE, or still running)."""
    registration = Registration.from_record(record)
    if not registration.steps:
        return None
    return {
        "summary": registration.summary(),
        "steps": [
            {"step": name, **outcome.model_dump(mode="json")}
            for name, outcome in registration.ordered()
        ],
    }


def job_detail(store: JobStore, *, sfn: Any, s3: Any, job_or_asset: str) -> dict[str, Any] | None:
    """`{"job": record, "execution": {...} | None, "report": {...} | None, "registration":
    {...} | None}`, or None."""
    record = store.find(job_or_asset)
    if record is None:
        return None
    return {
        "job": record,
        "execution": execution_info(sfn, record.get("execution_arn")),
        "report": report_summary(s3, record),
        "registration": registration_summary(record),
    }
