"""Finding archived assets: the catalog's search and one asset's record, as the CLI
(`upload-processor assets`) and the status API (`GET /assets`, `GET /assets/{name}`) give them.
"""

from __future__ import annotations

from typing import Any

from upload_processor.adapters.catalog import CatalogStore
from upload_processor.domain.catalog import AssetQuery

MAX_API_LIMIT = 200


def search_assets(
    store: CatalogStore,
    *,
    subject: str | None = None,
    project: str | None = None,
    modality: str | None = None,
    data_level: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """`{"query": {...}, "items": [record, ...]}`, newest acquisition first. A bad date or
    limit is an InvalidQueryError naming it."""
    query = AssetQuery.build(
        subject=subject,
        project=project,
        modality=modality,
        data_level=data_level,
        since=since,
        until=until,
        limit=limit,
    )
    entries = store.search(query)
    return {
        "query": query.model_dump(exclude_none=True),
        "items": [e.model_dump(mode="json") for e in entries],
    }


def asset_record(store: CatalogStore, name: str) -> dict[str, Any] | None:
    """One asset's catalog record, or None."""
    entry = store.get(name)
    return entry.model_dump(mode="json") if entry else None
