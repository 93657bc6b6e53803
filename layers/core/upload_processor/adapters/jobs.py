"""The job record in DynamoDB: one item per job, id = the (first) execution name.

Every status a record reaches is stamped `<status>_at` (`received_at`, `processing_at`, ...),
beside `created_at` and `updated_at`. Its status moves only along this table, enforced by
`JobStore.update` with a condition on the stored status (so every call site stays a plain
update, and a late or repeated writer can never move a job where it may not go):

    from         may become                                  written by
    (no record)  RECEIVED | REJECTED (create), or any status  ingest; `local invoke`'s events
    RECEIVED     PROCESSING | REJECTED | FAILED | CANCELLED   GatherMetadata, Reject,
                                                              MarkFailed, cancel
    PROCESSING   PROCESSING | COMPLETE | REJECTED | FAILED |  a retried step (the same
                 CANCELLED                                    status again), Finalize, Reject,
                                                              MarkFailed, cancel
    FAILED       PROCESSING | FAILED                          retry; a retried MarkFailed
    COMPLETE     COMPLETE                                     a retried Finalize
    REJECTED     REJECTED                                     a retried Reject
    CANCELLED    (nothing)

A cancelled job stays CANCELLED: a GatherMetadata invocation still running when its execution
was stopped fails its first write (JobStateConflictError) before it writes anything else,
and the asset lease of a job that is no longer RECEIVED or PROCESSING is stale
(pipeline.archive_guard), so it never blocks the next upload. Updates without a status
(fields only) are not conditional. Fields, and who writes them:

- ingest: `job_id`, `status`, `staging_bucket`, `staging_prefix`, `job_key`,
  `job_version_id`, `job_type`, `user_email`, `subject_id`, `execution_arn`
  (a job file rejected at ingest: `report_key` and `error` instead of an execution);
- GatherMetadata: `asset_name`, `report_key` (the validation report, beside the staged data:
  s3://`staging_bucket`/`report_key`), `archive_bucket`;
- Finalize: COMPLETE with `archive_uri` and the counts `files`, `bytes_in`, `bytes_out`
  (and `staging_cleanup` when the job asked for it: upload_processor.pipeline.staging_cleanup);
  REJECTED or FAILED with `error`;
- registration (the states after Finalize: upload_processor.domain.registration):
  `registration.<step>` = a StepOutcome map (`record_registration`, no status change: the
  job stays COMPLETE whatever a step says), and `announced_at` (`claim_announcement`: the
  asset's event and `end` notification are sent once);
- operators (`operations.py`): `attempts`, `retry_of`, `previous_execution_arns`,
  `last_error` (retry); `cancel_reason` (cancel).

Listing: by status through the `status-created_at` index (a Query: it reads only the page it
returns), otherwise a Scan sorted here (it reads the whole table on every page: fine for
thousands of records; past that, give a state or add an index). See `JobStore.list_jobs`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from upload_processor.domain.registration import StepOutcome
from upload_processor.errors import InvalidQueryError, JobStateConflictError

_SER = TypeSerializer()
_DES = TypeDeserializer()

ASSET_INDEX = "asset_name-created_at"
STATUS_INDEX = "status-created_at"
MAX_LIMIT = 1000


class JobStatus(StrEnum):
    """Where a job is; RECEIVED → PROCESSING → COMPLETE | REJECTED | FAILED | CANCELLED."""

    RECEIVED = "RECEIVED"
    PROCESSING = "PROCESSING"
    COMPLETE = "COMPLETE"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE = (JobStatus.RECEIVED, JobStatus.PROCESSING)

# The statuses each status may become (the module docstring's table).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.RECEIVED: frozenset(
        {JobStatus.PROCESSING, JobStatus.REJECTED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.PROCESSING: frozenset(
        {
            JobStatus.PROCESSING,
            JobStatus.COMPLETE,
            JobStatus.REJECTED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.FAILED: frozenset({JobStatus.PROCESSING, JobStatus.FAILED}),
    JobStatus.COMPLETE: frozenset({JobStatus.COMPLETE}),
    JobStatus.REJECTED: frozenset({JobStatus.REJECTED}),
    JobStatus.CANCELLED: frozenset(),
}


def may_become(status: JobStatus) -> list[JobStatus]:
    """The statuses a record may hold for `status` to be written over it, in table order."""
    return [s for s in JobStatus if status in TRANSITIONS[s]]


def now_iso() -> str:
    """UTC now, ISO 8601 with milliseconds: sortable as a string (the status index's range key)."""
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    """A datetime in the records' format (UTC, milliseconds, `Z`); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_status(value: str | JobStatus) -> JobStatus:
    """A status from user input (any case); InvalidQueryError names the valid ones."""
    try:
        return JobStatus(str(value).strip().upper())
    except ValueError:
        valid = ", ".join(s.value for s in JobStatus)
        raise InvalidQueryError(f"unknown state {value!r}; expected one of {valid}") from None


def plain(value: Any) -> Any:
    """DynamoDB returns Decimals; give callers ints (or floats) so records dump as JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if type(value).__name__ == "Decimal":
        return int(value) if value == int(value) else float(value)
    return value


def _record(item: dict[str, Any]) -> dict[str, Any]:
    return plain({k: _DES.deserialize(v) for k, v in item.items()})


def _encode_token(record: dict[str, Any], state: JobStatus | None) -> str:
    cursor = {"c": record["created_at"], "j": record["job_id"], "s": str(state or "")}
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


def _decode_token(token: str | None, state: JobStatus | None) -> dict[str, str] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor = json.loads(raw)
        if not (isinstance(cursor, dict) and {"c", "j", "s"} <= set(cursor)):
            raise ValueError("not a cursor")
        if not all(isinstance(cursor[k], str) for k in ("c", "j", "s")):
            raise ValueError("not a cursor")
    except (ValueError, UnicodeDecodeError):
        raise InvalidQueryError(
            "the next token is not one this listing returned; start again without it"
        ) from None
    if cursor["s"] != str(state or ""):
        raise InvalidQueryError(
            "the next token belongs to a listing with another state filter; "
            "repeat the same filters with it"
        )
    return cursor


def _status_condition(status: JobStatus | None, wanted: list[str] | None) -> tuple[str, list[str]]:
    """The ConditionExpression (on `#cs`, values `:c0`...) for writing `status`, and the
    statuses it allows: those that may become `status`, narrowed to `wanted`; a missing
    record only without `wanted`."""
    allowed = [str(s) for s in may_become(status)] if status is not None else None
    if wanted is not None:
        allowed = [s for s in (allowed if allowed is not None else wanted) if s in wanted]
    options = ", ".join(f":c{i}" for i in range(len(allowed or [])))
    matches = f"#cs IN ({options})" if allowed else "attribute_not_exists(job_id)"
    if wanted is not None:
        return f"attribute_exists(job_id) AND {matches}", allowed or []
    return f"attribute_not_exists(job_id) OR {matches}", allowed or []


class JobStore:
    """Reads and writes job records; takes a boto3 DynamoDB client so tests and moto share it."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @property
    def table_name(self) -> str:
        """The table this store reads and writes."""
        return self._table

    def create(self, record: dict[str, Any]) -> bool:
        """Insert a new record; False when a record with this job_id already exists.

        The record's initial status is stamped like any later one (`received_at`, ...).
        """
        item = {"created_at": now_iso(), **record}
        item.setdefault("updated_at", item["created_at"])
        if item.get("status"):
            item.setdefault(f"{str(item['status']).lower()}_at", item["created_at"])
        try:
            self._client.put_item(
                TableName=self._table,
                Item={k: _SER.serialize(v) for k, v in item.items() if v is not None},
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The record, or None."""
        out = self._client.get_item(
            TableName=self._table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        item = out.get("Item")
        return _record(item) if item else None

    def update(
        self,
        job_id: str,
        status: JobStatus | None = None,
        *,
        expected: Iterable[JobStatus] | None = None,
        remove: Iterable[str] = (),
        **fields: Any,
    ) -> None:
        """Set the status (with its timestamp) and any other fields; None values are skipped.

        A status is written only over one that may become it (TRANSITIONS; a missing record
        is created), else JobStateConflictError. `expected`: only if the record exists and
        its status is one of these too (an operator's change never races a handler's
        silently). `remove`: attributes to delete.
        """
        values = {k: v for k, v in fields.items() if v is not None}
        stamp = now_iso()
        values["updated_at"] = stamp
        if status is not None:
            values["status"] = str(status)
            values[f"{str(status).lower()}_at"] = stamp
        names = {f"#f{i}": k for i, k in enumerate(values)}
        attr_values = {f":v{i}": _SER.serialize(v) for i, v in enumerate(values.values())}
        expr = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values)))
        removed = [k for k in remove if k not in values]
        if removed:
            names.update({f"#r{i}": k for i, k in enumerate(removed)})
            expr += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        kwargs: dict[str, Any] = {}
        wanted = [str(s) for s in expected] if expected is not None else None
        if status is not None or wanted is not None:
            condition, allowed = _status_condition(status, wanted)
            if allowed:
                names["#cs"] = "status"
            attr_values.update({f":c{i}": {"S": s} for i, s in enumerate(allowed)})
            kwargs["ConditionExpression"] = condition
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=expr,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attr_values,
                **kwargs,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            current = self.get(job_id)
            now = current.get("status") if current else "missing"
            if wanted is not None and now not in wanted:
                raise JobStateConflictError(
                    f"job {job_id} is {now}, not {' or '.join(wanted)}: it changed meanwhile"
                ) from None
            raise JobStateConflictError(
                f"job {job_id} is {now}; a {now} job never becomes {status}, so nothing was "
                "written (it was cancelled or finished meanwhile)"
            ) from None

    def record_registration(self, job_id: str, step: str, outcome: StepOutcome) -> None:
        """Set `registration.<step>` to `outcome` (a map); the status is never touched.

        One UpdateItem on a record that already has a `registration` map (every record past
        its first step); the first step's write creates the map instead (conditional on it
        being absent, so two steps racing never drop each other's outcome). A missing job
        is a JobStateConflictError (nothing is created).
        """
        value = _SER.serialize(outcome.model_dump(mode="json"))
        stamp = {"S": now_iso()}
        exceptions = self._client.exceptions
        for _ in range(3):
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"job_id": {"S": job_id}},
                    UpdateExpression="SET #r.#s = :o, #u = :u",
                    ConditionExpression="attribute_exists(job_id) AND attribute_exists(#r)",
                    ExpressionAttributeNames={"#r": "registration", "#s": step, "#u": "updated_at"},
                    ExpressionAttributeValues={":o": value, ":u": stamp},
                )
                return
            except exceptions.ConditionalCheckFailedException:
                pass
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"job_id": {"S": job_id}},
                    UpdateExpression="SET #r = :m, #u = :u",
                    ConditionExpression="attribute_exists(job_id) AND attribute_not_exists(#r)",
                    ExpressionAttributeNames={"#r": "registration", "#u": "updated_at"},
                    ExpressionAttributeValues={":m": {"M": {step: value}}, ":u": stamp},
                )
                return
            except exceptions.ConditionalCheckFailedException:
                if self.get(job_id) is None:
                    raise JobStateConflictError(
                        f"job {job_id} has no record; registration step {step} was not recorded"
                    ) from None
        raise JobStateConflictError(f"job {job_id}: could not record registration step {step}")

    def claim_announcement(self, job_id: str) -> bool:
        """Mark the job announced (`announced_at`) unless it already is; True if this call did.

        The asset's event and `end` notification go out only after a successful claim, so a
        retried Announce never sends them twice (`release_announcement` undoes a claim whose
        sending failed, so the retry sends them).
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET #a = :a",
                ConditionExpression="attribute_exists(job_id) AND attribute_not_exists(#a)",
                ExpressionAttributeNames={"#a": "announced_at"},
                ExpressionAttributeValues={":a": {"S": now_iso()}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_announcement(self, job_id: str) -> None:
        """Undo `claim_announcement` (the sending failed: the next attempt sends)."""
        self._client.update_item(
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="REMOVE #a",
            ExpressionAttributeNames={"#a": "announced_at"},
        )

    def list_by_status(self, status: JobStatus, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, from the status index."""
        return self.list_jobs(state=status, limit=limit)[0]

    def list_jobs(
        self,
        state: JobStatus | str | None = None,
        since: str | None = None,
        user: str | None = None,
        job_type: str | None = None,
        limit: int = 50,
        next_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of records, newest first, and the token of the next page (None: no more).

        `since` is a created_at lower bound in the records' format (`iso()`); `user` matches
        user_email and `job_type` the job type, exactly.

        With a state, a Query on the `status-created_at` index, newest first: it reads the
        page (plus what the user/job-type filters drop) and no more. Without one, a Scan of
        the whole table, sorted here: every page reads (and is billed for) every record, so
        it suits tables of thousands of jobs; past that, list by state. A next token may
        lead to an empty last page.
        """
        status = parse_status(state) if state else None
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise InvalidQueryError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        cursor = _decode_token(next_token, status)
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters: list[str] = []
        if user:
            names["#u"], values[":u"] = "user_email", {"S": user}
            filters.append("#u = :u")
        if job_type:
            names["#t"], values[":t"] = "job_type", {"S": job_type}
            filters.append("#t = :t")
        if status is not None:
            return self._query(status, since, cursor, names, values, filters, int(limit))
        return self._scan(since, cursor, names, values, filters, int(limit))

    def _query(
        self,
        status: JobStatus,
        since: str | None,
        cursor: dict[str, str] | None,
        names: dict[str, str],
        values: dict[str, Any],
        filters: list[str],
        limit: int,
    ) -> tuple[list[dict[str, Any]], str | None]:
        names["#s"] = "status"
        values[":s"] = {"S": str(status)}
        key = "#s = :s"
        if since:  # DynamoDB refuses names and values an expression does not use
            names["#c"] = "created_at"
            key += " AND #c >= :since"
            values[":since"] = {"S": since}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": key,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            # with filters, DynamoDB's Limit counts the items it reads, not those it returns
            "Limit": min(MAX_LIMIT, limit * 4 if filters else limit + 1),
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if cursor:
            kwargs["ExclusiveStartKey"] = {
                "job_id": {"S": cursor["j"]},
                "status": {"S": str(status)},
                "created_at": {"S": cursor["c"]},
            }
        items: list[dict[str, Any]] = []
        while True:
            out = self._client.query(**kwargs)
            page = [_record(i) for i in out.get("Items", [])]
            more_pages = "LastEvaluatedKey" in out
            for n, record in enumerate(page):
                items.append(record)
                if len(items) == limit:
                    more = n < len(page) - 1 or more_pages
                    return items, _encode_token(record, status) if more else None
            if not more_pages:
                return items, None
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def _scan(
        self,
        since: str | None,
        cursor: dict[str, str] | None,
        names: dict[str, str],
        values: dict[str, Any],
        filters: list[str],
        limit: int,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if since or cursor:
            names["#c"] = "created_at"
        if since:
            values[":since"] = {"S": since}
            filters.append("#c >= :since")
        if cursor:
            values[":cur"] = {"S": cursor["c"]}
            filters.append("#c <= :cur")
        kwargs: dict[str, Any] = {"TableName": self._table}
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
            kwargs["ExpressionAttributeNames"] = names
            kwargs["ExpressionAttributeValues"] = values
        found = [
            _record(item)
            for page in self._client.get_paginator("scan").paginate(**kwargs)
            for item in page.get("Items", [])
        ]
        order = sorted(
            found, key=lambda r: (r.get("created_at", ""), r.get("job_id", "")), reverse=True
        )
        if cursor:
            after = (cursor["c"], cursor["j"])
            order = [r for r in order if (r.get("created_at", ""), r["job_id"]) < after]
        items = order[:limit]
        more = len(order) > limit
        return items, _encode_token(items[-1], None) if more else None

    def find(self, job_or_asset: str) -> dict[str, Any] | None:
        """The job with this id, else the newest job for an asset of this name, else None.

        By asset name it queries the asset index (newest first).
        """
        record = self.get(job_or_asset)
        if record is not None:
            return record
        jobs = self.for_asset(job_or_asset, limit=1)
        if jobs:
            return jobs[0]
        return self._scan_for_asset(job_or_asset)

    def for_asset(self, asset_name: str, limit: int = 20) -> list[dict[str, Any]]:
        """The jobs for an asset, newest first (the asset_name-created_at index)."""
        try:
            out = self._client.query(
                TableName=self._table,
                IndexName=ASSET_INDEX,
                KeyConditionExpression="#a = :a",
                ExpressionAttributeNames={"#a": "asset_name"},
                ExpressionAttributeValues={":a": {"S": asset_name}},
                ScanIndexForward=False,
                Limit=limit,
            )
        except self._client.exceptions.ClientError as exc:
            if "index" not in str(exc).lower():
                raise
            return []  # a table made before the index existed: callers fall back to a scan
        return [_record(item) for item in out.get("Items", [])]

    def _scan_for_asset(self, job_or_asset: str) -> dict[str, Any] | None:
        kwargs = {
            "TableName": self._table,
            "FilterExpression": "#a = :a",
            "ExpressionAttributeNames": {"#a": "asset_name"},
            "ExpressionAttributeValues": {":a": {"S": job_or_asset}},
        }
        found = [
            _record(item)
            for page in self._client.get_paginator("scan").paginate(**kwargs)
            for item in page.get("Items", [])
        ]
        if not found:
            return None
        return max(found, key=lambda r: (r.get("created_at", ""), r.get("job_id", "")))
