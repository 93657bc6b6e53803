"""The catalog table as template.yaml declares it, on moto: puts by name, Query-only search."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.paths import ROOT
from upload_processor.adapters.catalog import CatalogStore
from upload_processor.domain.catalog import AssetQuery, CatalogEntry
from upload_processor_tools.local.template import load_template


@pytest.fixture
def store() -> Iterator[CatalogStore]:
    props = load_template(ROOT / "template.yaml")["Resources"]["AssetsTable"]["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="assets",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        )
        yield CatalogStore(_NoScan(client), "assets")


class _NoScan:
    """The client, refusing Scan: every search must be a Query on an index."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def scan(self, **_: Any) -> Any:
        raise AssertionError("the catalog scanned its table")

    def get_paginator(self, operation: str) -> Any:
        assert operation != "scan", "the catalog scanned its table"
        return self._client.get_paginator(operation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _entry(name: str, subject: str, when: str, modalities: list[str], **kw: Any) -> CatalogEntry:
    return CatalogEntry(
        asset_name=name,
        subject_id=subject,
        project_name=kw.pop("project", "P"),
        modalities=modalities,
        acquired_at=when,
        archive_uri=f"s3://a/{name}/",
        metadata_uri=f"s3://a/{name}/metadata.nd.json",
        manifest_uri=f"s3://a/{name}/manifest.json",
        job_id="j",
        **kw,
    )


def test_a_put_is_by_name_and_a_reput_replaces(store: CatalogStore) -> None:
    store.put(_entry("a", "1", "2025-06-12T22:03:00Z", ["behavior", "ecephys"]))
    store.put(_entry("a", "1", "2025-06-12T22:03:00Z", ["behavior", "ecephys"], files=3))
    assert store.get("a").files == 3
    assert [e.asset_name for e in store.search(AssetQuery.build(subject="1"))] == ["a"]
    assert [e.asset_name for e in store.search(AssetQuery.build(modality="behavior"))] == ["a"]
    assert store.get("missing") is None


def test_every_search_is_a_query_newest_first(store: CatalogStore) -> None:
    store.put(_entry("a", "1", "2025-06-12T22:03:00Z", ["behavior", "ecephys"]))
    store.put(_entry("b", "1", "2025-05-20T16:30:00Z", ["behavior"]))
    store.put(_entry("c", "2", "2025-06-15T18:00:00Z", ["ecephys"], project="Q"))
    store.put(_entry("d", "2", "2025-06-16T18:00:00Z", ["ecephys"], data_level="derived"))

    def names(**kw: Any) -> list[str]:
        return [e.asset_name for e in store.search(AssetQuery.build(**kw))]

    assert names(subject="1") == ["a", "b"]
    assert names(subject="1", modality="ecephys") == ["a"]
    assert names(modality="ecephys") == ["d", "c", "a"]
    assert names(modality="ecephys", since="2025-06-13", until="2025-06-15") == ["c"]
    assert names(project="Q") == ["c"]
    assert names(data_level="derived") == ["d"]
    assert names(since="2025-06-01") == ["d", "c", "a"]
    assert names() == ["d", "c", "a", "b"]
    assert names(until="2025-06-12", limit=1) == ["a"]
