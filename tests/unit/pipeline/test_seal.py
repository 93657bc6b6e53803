"""Finalize's quick verification checks from the transfer results it has (issue 17): one
listing of the asset instead of a request per object, and still catches an object lost or
replaced after its transfer (moto S3, the real batch and finalize code)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from upload_processor.domain.contracts import TransferBatchInput
from upload_processor.domain.plan import plan_item
from upload_processor.errors import VerificationError
from upload_processor.pipeline import seal
from upload_processor.pipeline.gather import batches
from upload_processor.pipeline.transfer.batch import run_batch

STAGING, ARCHIVE, PREFIX, ASSET, JOB = "staging", "archive", "rig/s1", "asset-1", "job-1"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=STAGING)
        client.create_bucket(Bucket=ARCHIVE)
        yield client


def _transferred(s3: Any, count: int) -> list[list[dict[str, Any]]]:
    """`count` small files (logs compressed, videos copied) staged and run through the batch."""
    items = []
    for i in range(count):
        key = (
            f"{PREFIX}/behavior/{'v' if i % 4 == 0 else 'log'}_{i}.{'mp4' if i % 4 == 0 else 'csv'}"
        )
        etag = s3.put_object(Bucket=STAGING, Key=key, Body=f"{i},x\n".encode() * 50)["ETag"]
        items.append(
            plan_item(
                prefix=PREFIX, key=key, size=len(f"{i},x\n") * 50, etag=etag, asset_name=ASSET
            )
        )
    plan = batches(items)
    for batch in plan:
        run_batch(
            s3,
            TransferBatchInput(batch=batch, job_id=JOB, source_bucket=STAGING, dest_bucket=ARCHIVE),
        )
    return plan


def _seal(s3: Any, plan: list[list[dict[str, Any]]]) -> Any:
    return seal.seal_transfers(s3, archive=ARCHIVE, job_id=JOB, plan=plan, verify_mode="quick")


def test_quick_verification_lists_the_asset_instead_of_heading_every_object(s3: Any) -> None:
    plan = _transferred(s3, 120)
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    sealed = _seal(s3, plan)
    assert len(sealed) == 120 and all(r.etag for r in sealed)
    # the recorded results (a listing, one GET per batch), then one listing of the asset
    assert calls == ["ListObjectsV2"] + ["GetObject"] * len(plan) + ["ListObjectsV2"] * math.ceil(
        120 / 1000
    )


@pytest.mark.parametrize("damage", ["replaced, same size", "deleted", "truncated"])
def test_an_object_changed_after_its_transfer_fails_the_seal(s3: Any, damage: str) -> None:
    plan = _transferred(s3, 8)
    victim = plan[0][3]["dest_key"]
    stored = s3.get_object(Bucket=ARCHIVE, Key=victim)["Body"].read()
    if damage == "deleted":
        s3.delete_object(Bucket=ARCHIVE, Key=victim)
    elif damage == "truncated":
        s3.put_object(Bucket=ARCHIVE, Key=victim, Body=stored[:-1])
    else:
        s3.put_object(Bucket=ARCHIVE, Key=victim, Body=bytes(b ^ 1 for b in stored))
    with pytest.raises(VerificationError) as raised:
        _seal(s3, plan)
    assert victim in str(raised.value)
    expected = {"deleted": "not found", "truncated": "bytes", "replaced, same size": "ETag"}
    assert expected[damage] in str(raised.value)


def test_a_result_without_an_etag_is_still_checked_by_its_head(s3: Any) -> None:
    """Results recorded before the ETag was (a resumed job's) fall back to HeadObject."""
    plan = _transferred(s3, 4)
    from upload_processor.pipeline.transfer.batch import collect_results

    results = collect_results(s3, ARCHIVE, JOB)
    bare = [r.__class__(**{**r.__dict__, "etag": None}) for r in results]
    s3.put_object(Bucket=ARCHIVE, Key=bare[1].dest_key, Body=b"other")
    with pytest.raises(VerificationError, match="bytes"):
        seal.check_stored(s3, bare[1], dest_bucket=ARCHIVE)
    assert plan
