"""The job record in DynamoDB: one item per job, id = the execution name."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_SER = TypeSerializer()
_DES = TypeDeserializer()


class JobStatus(StrEnum):
    """Where a job is; RECEIVED → PROCESSING → COMPLETE | REJECTED | FAILED."""

    RECEIVED = "RECEIVED"
    PROCESSING = "PROCESSING"
    COMPLETE = "COMPLETE"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


def now_iso() -> str:
    """UTC now, ISO 8601 with milliseconds: sortable as a string (the status index's range key)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """DynamoDB returns Decimals; give callers ints (or floats) so records dump as JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if type(value).__name__ == "Decimal":
        return int(value) if value == int(value) else float(value)
    return value


class JobStore:
    """Reads and writes job records; takes a boto3 DynamoDB client so tests and moto share it."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, record: dict[str, Any]) -> bool:
        """Insert a new record; False when a record with this job_id already exists."""
        item = {"created_at": now_iso(), **record}
        item.setdefault("updated_at", item["created_at"])
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
        return _plain({k: _DES.deserialize(v) for k, v in item.items()}) if item else None

    def update(self, job_id: str, status: JobStatus | None = None, **fields: Any) -> None:
        """Set the status (with its timestamp) and any other fields; None values are skipped."""
        values = {k: v for k, v in fields.items() if v is not None}
        stamp = now_iso()
        values["updated_at"] = stamp
        if status is not None:
            values["status"] = str(status)
            values[f"{str(status).lower()}_at"] = stamp
        names = {f"#f{i}": k for i, k in enumerate(values)}
        expr = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values)))
        self._client.update_item(
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression=expr,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                f":v{i}": _SER.serialize(v) for i, v in enumerate(values.values())
            },
        )

    def list_by_status(self, status: JobStatus, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, from the status index."""
        out = self._client.query(
            TableName=self._table,
            IndexName="status-created_at",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": str(status)}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [
            _plain({k: _DES.deserialize(v) for k, v in it.items()}) for it in out.get("Items", [])
        ]
