"""staging_cleanup: which staged objects a sealed manifest lets a job remove, and removing them
against moto's versioned S3 (current versions only, only while they keep the archived ETag)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from upload_processor.pipeline.staging_cleanup import (
    CleanupResult,
    StagedObject,
    cleanup_requested,
    remove_staged,
    same_etag,
    staged_objects,
)

STAGING = "staging-bucket"
PREFIX = "rig-7/session-1"
REPORT = f"{PREFIX}/upload_report.json"


# --- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({"tasks": {"remove_source_folders": {"skip_task": False}}}, True),
        ({"tasks": {"remove_source_folders": {"skip_task": True}}}, False),
        ({"tasks": {"remove_source_folders": {}}}, False),  # never on by omission
        ({"tasks": {"gather_final_metadata": {"skip_task": False}}}, False),
        ({"tasks": {}}, False),
        ({}, False),  # an execution from before the task existed
        ({"tasks": {"remove_source_folders": {"skip_task": "false"}}}, False),
    ],
)
def test_cleanup_requested(job: dict[str, Any], expected: bool) -> None:
    assert cleanup_requested(job) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ('"abc"', "abc", True),
        ("abc", '"abc"', True),
        ('"abc-3"', "abc-3", True),
        ('"abc"', '"abd"', False),
        ("", "", False),  # nothing recorded is never a match
        (None, "abc", False),
    ],
)
def test_same_etag(a: str | None, b: str | None, expected: bool) -> None:
    assert same_etag(a, b) is expected


def test_staged_objects_are_what_the_manifest_records_within_the_prefix() -> None:
    manifest = {
        "objects": [
            {"source_key": f"{PREFIX}/ecephys/b.dat", "source_etag": "e-b"},
            {"source_key": f"{PREFIX}/behavior/a.csv", "source_etag": '"e-a"'},
            {"source_key": f"{PREFIX}/ecephys/b.dat", "source_etag": "e-b"},  # twice: once
            {"source_key": f"{PREFIX}/ecephys/no-etag.bin", "source_etag": ""},
            {"source_key": "rig-7/other-session/x.dat", "source_etag": "e-x"},  # not ours
            {"source_key": REPORT, "source_etag": "e-r"},  # never the report
        ],
        "staged_metadata": [
            {
                "source_key": f"{PREFIX}/subject.json",
                "source_etag": "e-s",
                "source_version_id": "v1",
            },
            {
                "source_key": f"{PREFIX}/upload_job.json",
                "source_etag": "e-j",
                "source_version_id": "v2",
            },
        ],
        "metadata": [f"{PREFIX}/should-not-matter.json"],  # archive keys: never staging
    }
    found = staged_objects(manifest, prefix=PREFIX, exclude={REPORT})
    assert found == [
        StagedObject(f"{PREFIX}/behavior/a.csv", "e-a"),
        StagedObject(f"{PREFIX}/ecephys/b.dat", "e-b"),
        StagedObject(f"{PREFIX}/ecephys/no-etag.bin", ""),
        StagedObject(f"{PREFIX}/subject.json", "e-s", "v1"),
        StagedObject(f"{PREFIX}/upload_job.json", "e-j", "v2"),
    ]
    # the prefix is a folder: a sibling whose name merely starts the same is not in it
    assert (
        staged_objects(
            {"objects": [{"source_key": f"{PREFIX}-b/x.dat", "source_etag": "e"}]}, prefix=PREFIX
        )
        == []
    )
    assert staged_objects({}, prefix=PREFIX) == []


def test_summary_stays_small_whatever_the_count() -> None:
    result = CleanupResult(
        removed=[f"k{i}" for i in range(5000)],
        kept=[{"key": f"kept-{i:03d}", "reason": "changed"} for i in range(120, 0, -1)],
        absent=["gone"],
    )
    summary = result.summary(shown=10)
    assert summary["removed"] == 5000
    assert summary["kept_count"] == 120 and summary["absent"] == 1
    assert [k["key"] for k in summary["kept"]] == [f"kept-{i:03d}" for i in range(1, 11)]


# --- against moto's versioned S3 -------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=STAGING)
        client.put_bucket_versioning(Bucket=STAGING, VersioningConfiguration={"Status": "Enabled"})
        yield client


def _put(s3: Any, key: str, body: bytes) -> tuple[str, str]:
    out = s3.put_object(Bucket=STAGING, Key=key, Body=body)
    return out["ETag"].strip('"'), out["VersionId"]


def _versions(s3: Any) -> dict[str, list[tuple[str, bool]]]:
    """key -> [(version id or DELETE, is latest)]"""
    out: dict[str, list[tuple[str, bool]]] = {}
    listing = s3.list_object_versions(Bucket=STAGING)
    for v in listing.get("Versions", []):
        out.setdefault(v["Key"], []).append((v["VersionId"], v["IsLatest"]))
    for d in listing.get("DeleteMarkers", []):
        out.setdefault(d["Key"], []).append(("DELETE", d["IsLatest"]))
    return out


def test_removes_current_versions_that_keep_their_archived_etag_and_nothing_else(
    s3: Any,
) -> None:
    data, data_version = _put(s3, f"{PREFIX}/ecephys/a.dat", b"a" * 1000)
    meta, meta_version = _put(s3, f"{PREFIX}/subject.json", b"{}")
    archived_changed, _ = _put(s3, f"{PREFIX}/behavior/b.csv", b"first")
    _put(s3, f"{PREFIX}/behavior/b.csv", b"re-uploaded, other bytes")  # since archived
    same_bytes, old_version = _put(s3, f"{PREFIX}/upload_job.json", b'{"job": 1}')
    _, new_version = _put(s3, f"{PREFIX}/upload_job.json", b'{"job": 1}')  # another version
    _put(s3, REPORT, b"{}")
    objects = [
        StagedObject(f"{PREFIX}/ecephys/a.dat", data),
        StagedObject(f"{PREFIX}/subject.json", meta, meta_version),
        StagedObject(f"{PREFIX}/behavior/b.csv", archived_changed),
        StagedObject(f"{PREFIX}/upload_job.json", same_bytes, old_version),
        StagedObject(f"{PREFIX}/never-staged.dat", "e-gone"),
        StagedObject(f"{PREFIX}/no-etag.dat", ""),
    ]

    result = remove_staged(s3, STAGING, objects, workers=3)

    assert sorted(result.removed) == [f"{PREFIX}/ecephys/a.dat", f"{PREFIX}/subject.json"]
    assert result.absent == [f"{PREFIX}/never-staged.dat"]
    kept = {k["key"]: k["reason"] for k in result.kept}
    assert set(kept) == {
        f"{PREFIX}/behavior/b.csv",
        f"{PREFIX}/upload_job.json",
        f"{PREFIX}/no-etag.dat",
    }
    assert "changed since it was archived" in kept[f"{PREFIX}/behavior/b.csv"]
    assert archived_changed in kept[f"{PREFIX}/behavior/b.csv"]
    assert new_version in kept[f"{PREFIX}/upload_job.json"]
    assert "no archived ETag" in kept[f"{PREFIX}/no-etag.dat"]

    versions = _versions(s3)
    # a removed object: a delete marker on top, the archived version still there
    for key, version in (
        (f"{PREFIX}/ecephys/a.dat", data_version),
        (f"{PREFIX}/subject.json", meta_version),
    ):
        assert sorted(versions[key]) == sorted([("DELETE", True), (version, False)])
        body = s3.get_object(Bucket=STAGING, Key=key, VersionId=version)["Body"].read()
        assert body
    # kept objects: no delete marker at all; the report untouched
    for key in (f"{PREFIX}/behavior/b.csv", f"{PREFIX}/upload_job.json", REPORT):
        assert all(v != "DELETE" for v, _ in versions[key]), key
    assert len(versions[f"{PREFIX}/behavior/b.csv"]) == 2
    assert s3.get_object(Bucket=STAGING, Key=REPORT)["Body"].read() == b"{}"


def test_an_object_re_uploaded_between_the_check_and_the_delete_is_kept(s3: Any) -> None:
    """The delete is conditional (If-Match): a re-upload after the HEAD is not removed."""
    key = f"{PREFIX}/ecephys/a.dat"
    etag, _ = _put(s3, key, b"archived bytes")
    other = boto3.client("s3", region_name="us-east-1")

    def reupload(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == key:
            other.put_object(Bucket=STAGING, Key=key, Body=b"new bytes, uploaded meanwhile")

    s3.meta.events.register("before-parameter-build.s3.DeleteObject", reupload)
    result = remove_staged(s3, STAGING, [StagedObject(key, etag)])

    assert result.removed == [] and result.absent == []
    assert [k["key"] for k in result.kept] == [key]
    assert "changed while being removed" in result.kept[0]["reason"]
    assert s3.get_object(Bucket=STAGING, Key=key)["Body"].read() == b"new bytes, uploaded meanwhile"


def test_a_delete_that_s3_refuses_is_kept_with_its_reason_and_the_rest_goes_on(
    s3: Any,
) -> None:
    refused = f"{PREFIX}/ecephys/locked.dat"
    fine = f"{PREFIX}/ecephys/fine.dat"
    refused_etag, _ = _put(s3, refused, b"locked")
    fine_etag, _ = _put(s3, fine, b"fine")

    def deny(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == refused:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "injected"}}, "DeleteObject"
            )

    s3.meta.events.register("before-parameter-build.s3.DeleteObject", deny)
    result = remove_staged(
        s3, STAGING, [StagedObject(refused, refused_etag), StagedObject(fine, fine_etag)]
    )

    assert result.removed == [fine]
    assert result.kept == [{"key": refused, "reason": "could not remove it (AccessDenied)"}]
    assert s3.get_object(Bucket=STAGING, Key=refused)["Body"].read() == b"locked"


def test_nothing_to_remove_makes_no_request(s3: Any) -> None:
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    assert remove_staged(s3, STAGING, []).summary() == {
        "removed": 0,
        "kept": [],
        "kept_count": 0,
        "absent": 0,
    }
    assert calls == []
