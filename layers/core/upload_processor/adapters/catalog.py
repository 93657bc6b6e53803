"""The catalog of archived assets in DynamoDB (template.yaml: AssetsTable).

Per asset one item `(asset_name, "asset")` holding the record (domain.catalog.CatalogEntry),
and one item `(asset_name, "modality#<m>")` per modality. The record items carry `kind`,
`subject_id`, `project_name` and `data_level`; only the modality items carry `modality`:
so each index is sparse and every search is one Query (never a Scan):

    subject-acquired_at     subject_id   → the asset items of a subject, by time
    project-acquired_at     project_name → of a project
    modality-acquired_at    modality     → the modality items (the asset's name, its time)
    data_level-acquired_at  data_level   → of a data level
    kind-acquired_at        kind="asset" → every asset, by time (a search by date only)

A search queries the most selective index its conditions allow (subject, then modality,
project, data level, time) with the time range as the key condition; the other conditions
filter the page. Writes are puts by asset name: a re-run replaces the record, never adds one.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from upload_processor.adapters.jobs import plain
from upload_processor.domain.catalog import AssetQuery, CatalogEntry

_SER = TypeSerializer()
_DES = TypeDeserializer()
RECORD = "asset"
MODALITY_PREFIX = "modality#"
INDEXES = {
    "subject": ("subject-acquired_at", "subject_id"),
    "modality": ("modality-acquired_at", "modality"),
    "project": ("project-acquired_at", "project_name"),
    "data_level": ("data_level-acquired_at", "data_level"),
}
ALL_INDEX = ("kind-acquired_at", "kind")


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in values.items() if v not in (None, "")}


class CatalogStore:
    """Writes and searches the catalog; takes a boto3 DynamoDB client (moto in tests)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, entry: CatalogEntry) -> None:
        """Write (or replace) the asset's record and its modality items: PutItem by key, so a
        re-run replaces them and never adds one. A sealed asset never changes (the archive is
        write-once), so its modalities, and so its items' keys, are the same on every run:
        nothing is ever deleted (no role of the stack may delete catalog items)."""
        record = entry.model_dump(mode="json")
        items = [_item({**record, "item": RECORD, "kind": RECORD})]
        for modality in entry.modalities:
            items.append(
                _item(
                    {
                        "asset_name": entry.asset_name,
                        "item": f"{MODALITY_PREFIX}{modality}",
                        "modality": modality,
                        "acquired_at": entry.acquired_at,
                    }
                )
            )
        for item in items:
            self._client.put_item(TableName=self._table, Item=item)

    def get(self, asset_name: str) -> CatalogEntry | None:
        """The asset's record, or None."""
        out = self._client.get_item(
            TableName=self._table,
            Key={"asset_name": {"S": asset_name}, "item": {"S": RECORD}},
            ConsistentRead=True,
        )
        item = out.get("Item")
        return CatalogEntry.model_validate(self._record(item)) if item else None

    @staticmethod
    def _record(item: dict[str, Any]) -> dict[str, Any]:
        return plain({k: _DES.deserialize(v) for k, v in item.items()})

    def search(self, query: AssetQuery) -> list[CatalogEntry]:
        """The assets matching every condition, newest acquisition first (at most `limit`)."""
        if query.subject:
            index, attr, value = *INDEXES["subject"], query.subject
        elif query.modality:
            index, attr, value = *INDEXES["modality"], query.modality
        elif query.project:
            index, attr, value = *INDEXES["project"], query.project
        elif query.data_level:
            index, attr, value = *INDEXES["data_level"], query.data_level
        else:
            index, attr, value = *ALL_INDEX, RECORD
        names = {"#k": attr}
        values: dict[str, Any] = {":k": {"S": value}}
        key = "#k = :k"
        if query.since or query.until:
            names["#t"] = "acquired_at"
        if query.since and query.until:
            key += " AND #t BETWEEN :lo AND :hi"
            values[":lo"], values[":hi"] = {"S": query.since}, {"S": query.until}
        elif query.since:
            key += " AND #t >= :lo"
            values[":lo"] = {"S": query.since}
        elif query.until:
            key += " AND #t <= :hi"
            values[":hi"] = {"S": query.until}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": key,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        found: list[CatalogEntry] = []
        for page in self._client.get_paginator("query").paginate(**kwargs):
            for item in page.get("Items", []):
                if attr == "modality":  # a modality item: its asset's record holds the rest
                    entry = self.get(item["asset_name"]["S"])
                else:
                    entry = CatalogEntry.model_validate(self._record(item))
                if entry is not None and query.matches(entry):
                    found.append(entry)
                    if len(found) == query.limit:
                        return found
        return found
