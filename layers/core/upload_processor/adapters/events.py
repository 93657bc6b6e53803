"""EventBridge: the stack's events on the default bus, for anything downstream to subscribe.

Three detail-types share one `source` (template parameter `EventSource`, the `AssetEventPattern`
output): `Upload Asset Archived` (Announce, once per sealed asset), `Upload Job Rejected`
(Reject) and `Upload Job Failed` (MarkFailed). A subscriber writes a rule with that pattern.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from upload_processor.errors import EventPublishError

DetailType = Literal["Upload Asset Archived", "Upload Job Rejected", "Upload Job Failed"]
ARCHIVED: DetailType = "Upload Asset Archived"
REJECTED: DetailType = "Upload Job Rejected"
FAILED: DetailType = "Upload Job Failed"
DETAIL_TYPES: tuple[DetailType, ...] = (ARCHIVED, REJECTED, FAILED)
BUS = "default"


def pattern(source: str) -> dict[str, Any]:
    """The event pattern matching every event of a stack whose events carry `source`."""
    return {"source": [source], "detail-type": list(DETAIL_TYPES)}


def put_event(
    events: Any, *, source: str, detail_type: DetailType, detail: dict[str, Any], resource: str
) -> str:
    """Put one event on the default bus; its EventBridge id. A refused entry raises
    EventPublishError with EventBridge's code and message (throttling and 5xx are the
    client's to retry, then `errors.is_transient`'s)."""
    out = events.put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, default=str),
                "Resources": [resource] if resource else [],
                "EventBusName": BUS,
            }
        ]
    )
    entry = (out.get("Entries") or [{}])[0]
    if out.get("FailedEntryCount") or not entry.get("EventId"):
        raise EventPublishError(
            f"EventBridge refused the {detail_type!r} event: "
            f"{entry.get('ErrorCode', 'no event id')}: {entry.get('ErrorMessage', '')}".rstrip(": ")
        )
    return str(entry["EventId"])
