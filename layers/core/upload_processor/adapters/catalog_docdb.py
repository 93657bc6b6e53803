"""The catalog's second backend: AIND's DocDB, through its own client (aind-data-access-api's
MetadataDbClient: the REST API in front of DocDB, SigV4-signed with the function's role).

When the deployment's CatalogBackend is `docdb:https://<host>`, the Catalog state also upserts
the asset's record there: the asset's `metadata.nd.json` as AIND's DocDB holds it (`_id`,
`name`, `location` = the asset's s3:// prefix), filtered by `_id`, so a re-run updates the
same record. `_id` is the document's own when it has one, else a UUID derived from the
asset's location (stable across re-runs). The stack's own catalog table is written either way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from upload_processor.domain.catalog import CatalogEntry
from upload_processor.errors import ConfigurationError, RegistrationError


def record_id(entry: CatalogEntry, metadata: Mapping[str, Any] | None) -> str:
    """The DocDB `_id` of the asset's record: the document's own, else stable from its place."""
    given = (metadata or {}).get("_id")
    return str(given) if given else str(uuid.uuid5(uuid.NAMESPACE_URL, entry.archive_uri))


def docdb_record(entry: CatalogEntry, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """What DocDB holds for the asset: its metadata document with `_id`, `name`, `location`."""
    record = json.loads(json.dumps(dict(metadata or {}), default=str))
    record.update(
        {"_id": record_id(entry, metadata), "name": entry.asset_name, "location": entry.archive_uri}
    )
    return record


class DocDbCatalog:
    """Upserts catalog records into AIND's DocDB with MetadataDbClient (`client` injected in
    tests: the real client class with a fake HTTP session)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_url(cls, url: str, session: Any = None) -> DocDbCatalog:
        """`https://host[/...]`: MetadataDbClient on that host (its default database and
        collection, `metadata_index` / `data_assets`)."""
        from aind_data_access_api.document_db import MetadataDbClient

        if not url.startswith("https://") or len(url) <= len("https://"):
            raise ConfigurationError(
                f"CatalogBackend docdb:{url}: give the DocDB REST API as docdb:https://HOST"
            )
        host = url.removeprefix("https://").strip("/")
        return cls(MetadataDbClient(host=host, session=session))

    def upsert(self, entry: CatalogEntry, metadata: Mapping[str, Any] | None) -> str:
        """Insert or update the asset's record; its `_id`. An HTTP error is a
        RegistrationError naming the status (a 5xx or 429: TransientError, retried)."""
        from requests import HTTPError

        from upload_processor.errors import TransientError

        record = docdb_record(entry, metadata)
        try:
            self._client.upsert_one_docdb_record(record)
        except HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            text = f"DocDB answered {status} for {entry.asset_name}: {exc}"
            if status == 429 or status >= 500:
                raise TransientError(text) from exc
            raise RegistrationError(text) from exc
        return str(record["_id"])
