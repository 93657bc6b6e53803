"""The DocDB backend: aind-data-access-api's own MetadataDbClient, its HTTP answered by a fake
of the DocDB REST API (a requests transport adapter), so the client's requests are real."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from upload_processor.adapters.catalog_docdb import DocDbCatalog
from upload_processor.domain.catalog import CatalogEntry
from upload_processor.errors import ConfigurationError, RegistrationError, TransientError


class FakeDocDb(BaseAdapter):
    """update_one with upsert, as the REST API in front of DocDB answers it."""

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status = status
        self.records: dict[str, dict[str, Any]] = {}
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        self.requests.append(request)
        response = requests.Response()
        response.request, response.url = request, str(request.url)
        response.status_code = self.status
        if self.status == 200:
            body = json.loads(request.body or "{}")
            assert body["upsert"] == "True" and set(body["update"]) == {"$set"}
            record_id = body["filter"]["_id"]
            self.records[record_id] = {**self.records.get(record_id, {}), **body["update"]["$set"]}
            response._content = json.dumps({"upserted_id": record_id}).encode()
        else:
            response._content = b'{"message": "nope"}'
        return response

    def close(self) -> None:
        pass


def _catalog(fake: FakeDocDb) -> DocDbCatalog:
    session = requests.Session()
    session.mount("https://", fake)
    return DocDbCatalog.from_url("https://docdb.example.org/", session=session)


ENTRY = CatalogEntry(
    asset_name="750101_2025-06-12_15-03-00",
    subject_id="750101",
    acquired_at="2025-06-12T22:03:00Z",
    archive_uri="s3://archive/750101_2025-06-12_15-03-00/",
    metadata_uri="s3://archive/750101_2025-06-12_15-03-00/metadata.nd.json",
    manifest_uri="s3://archive/750101_2025-06-12_15-03-00/manifest.json",
    job_id="j",
)


def test_the_record_is_upserted_once_by_a_stable_id(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    fake = FakeDocDb()
    catalog = _catalog(fake)
    metadata = {"subject": {"subject_id": "750101"}}
    first = catalog.upsert(ENTRY, metadata)
    again = catalog.upsert(ENTRY, metadata)  # a re-run updates the same record
    assert first == again and list(fake.records) == [first]
    record = fake.records[first]
    assert record["name"] == ENTRY.asset_name and record["location"] == ENTRY.archive_uri
    assert record["subject"] == {"subject_id": "750101"}
    (request, _) = fake.requests
    assert request.url == "https://docdb.example.org/v1/metadata_index/data_assets/update_one"
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256")  # SigV4-signed
    assert catalog.upsert(ENTRY, {"_id": "given-id"}) == "given-id"


@pytest.mark.parametrize(("status", "error"), [(403, RegistrationError), (503, TransientError)])
def test_an_http_error_names_its_status(monkeypatch, status, error) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(error, match=f"DocDB answered {status}"):
        _catalog(FakeDocDb(status)).upsert(ENTRY, None)


def test_a_backend_that_is_not_https_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="docdb:https://HOST"):
        DocDbCatalog.from_url("docdb.example.org")
