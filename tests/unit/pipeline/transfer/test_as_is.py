"""Store the smaller (issue 14, problem 10): a file zstd does not shrink is archived as is,
under its plain name, and its result says so; against moto's S3."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from upload_processor.domain.archive import as_is_key
from upload_processor.domain.plan import PlanItem, plan_item
from upload_processor.domain.units import MiB
from upload_processor.pipeline.archive_guard import reuse_verified
from upload_processor.pipeline.transfer import TransferResult, transfer, verify

STAGING = "staging-bucket"
ARCHIVE = "archive-bucket"
PREFIX = "uploads/session1"
ASSET = "750101_2025-06-12_15-03-00"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=STAGING)
        client.create_bucket(Bucket=ARCHIVE)
        yield client


def stage(s3: Any, relative: str, data: bytes) -> PlanItem:
    """Put `data` into staging and plan it the way the planner would."""
    key = f"{PREFIX}/{relative}"
    s3.put_object(Bucket=STAGING, Key=key, Body=data)
    head = s3.head_object(Bucket=STAGING, Key=key)
    return plan_item(
        prefix=PREFIX, key=key, size=head["ContentLength"], etag=head["ETag"], asset_name=ASSET
    )


def read_dest(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=ARCHIVE, Key=key)["Body"].read()


def dest_exists(s3: Any, key: str) -> bool:
    try:
        s3.head_object(Bucket=ARCHIVE, Key=key)
    except ClientError:
        return False
    return True


def open_uploads(s3: Any) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=ARCHIVE).get("Uploads", [])


def record_calls(s3: Any, operation: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    s3.meta.events.register(
        f"provide-client-params.s3.{operation}", lambda params, **_: calls.append(dict(params))
    )
    return calls


def noise(size: int, seed: int = 3) -> bytes:
    return random.Random(seed).randbytes(size)


def test_an_incompressible_file_is_stored_as_is_under_its_plain_name(s3: Any) -> None:
    data = noise(300_000)
    item = stage(s3, "ecephys/noise.dat", data)
    assert item.action == "compress" and item.dest_key.endswith(".zst")
    puts = record_calls(s3, "PutObject")

    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)

    assert result.dest_key == f"{ASSET}/ecephys/noise.dat"
    assert (result.action, result.codec, result.stored) == ("copy", None, "as_is")
    assert result.planned_key == item.dest_key and result.planned_dest_key == item.dest_key
    assert result.stored_reason is not None
    assert "zstd did not shrink it" in result.stored_reason
    assert f"for {len(data)} bytes" in result.stored_reason
    assert result.bytes_in == result.bytes_out == len(data)
    assert result.source_sha256 == hashlib.sha256(data).hexdigest()
    assert read_dest(s3, result.dest_key) == data
    assert not dest_exists(s3, item.dest_key)  # no .zst was ever written
    assert puts == []  # the one-part zstd output was never put
    verify(s3, result, dest_bucket=ARCHIVE)
    assert TransferResult.from_dict(result.to_dict()) == result


def test_an_incompressible_multipart_output_is_aborted_not_completed(s3: Any) -> None:
    data = noise(11 * MiB)
    item = stage(s3, "ecephys/big-noise.dat", data)
    completes = record_calls(s3, "CompleteMultipartUpload")
    aborts = record_calls(s3, "AbortMultipartUpload")

    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE, part_size=5 * MiB)

    assert result.stored == "as_is" and result.dest_key == f"{ASSET}/ecephys/big-noise.dat"
    assert completes == [] and len(aborts) == 1
    assert open_uploads(s3) == []
    assert not dest_exists(s3, item.dest_key)
    assert read_dest(s3, result.dest_key) == data


def test_a_compressible_file_stays_compressed_and_its_result_unchanged(s3: Any) -> None:
    data = b"0123456789" * 50_000
    item = stage(s3, "behavior/counts.txt", data)
    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert result.dest_key == item.dest_key and result.stored_as == "zstd"
    assert result.stored is None and "stored" not in result.to_dict()  # plain results as before


def test_a_reserved_plain_name_keeps_the_file_compressed(s3: Any) -> None:
    """A root-level JSON data file could not take its plain name (manifest.json is the
    asset's own): it stays compressed even though zstd made it larger."""
    assert as_is_key(f"{ASSET}/manifest.json.zst") is None
    assert as_is_key(f"{ASSET}/original_metadata/x.bin.zst") is None
    assert as_is_key(f"{ASSET}/ecephys/x.json.zst") == f"{ASSET}/ecephys/x.json"
    data = noise(5000)
    item = stage(s3, "manifest.json", data)
    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert result.dest_key == item.dest_key and result.stored_as == "zstd"
    assert result.bytes_out > len(data)


def test_a_resumed_job_keeps_what_an_earlier_attempt_stored_as_is(s3: Any) -> None:
    data = noise(200_000)
    item = stage(s3, "ecephys/noise.dat", data)
    first = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    before = s3.head_object(Bucket=ARCHIVE, Key=first.dest_key)["LastModified"]
    copies = record_calls(s3, "CopyObject")

    kept = reuse_verified(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)

    assert kept is not None and copies == []
    assert (kept.dest_key, kept.stored, kept.planned_key) == (
        first.dest_key,
        "as_is",
        item.dest_key,
    )
    assert s3.head_object(Bucket=ARCHIVE, Key=first.dest_key)["LastModified"] == before
    # another staged version of the file: what is archived is not it, so it is redone
    changed = stage(s3, "ecephys/noise.dat", noise(200_000, seed=4))
    assert reuse_verified(s3, changed, source_bucket=STAGING, dest_bucket=ARCHIVE) is None


@pytest.mark.parametrize("size", [1, 12])
def test_tiny_files_are_stored_as_is(s3: Any, size: int) -> None:
    """zstd's frame header and checksum outweigh a few bytes."""
    item = stage(s3, "behavior/tiny.txt", b"x" * size)
    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert result.stored == "as_is" and read_dest(s3, result.dest_key) == b"x" * size
