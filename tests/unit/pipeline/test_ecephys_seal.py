"""The ecephys ranges through the real batch code on moto's S3, then the seal: the store's
metadata is written only once every range and chunk is there as recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from upload_processor.adapters.staging import LocalSession
from upload_processor.domain.contracts import TransferBatchInput
from upload_processor.domain.job_settings import TransformationSettings
from upload_processor.errors import TransferError, VerificationError
from upload_processor.pipeline import ecephys_plan, ecephys_seal
from upload_processor.pipeline.gather import batches, build_plan
from upload_processor.pipeline.transfer.batch import collect_results, run_batch
from upload_processor_tools.sample_ecephys import write_openephys

STAGING, ARCHIVE, ASSET, JOB = "staging", "archive", "750101_2025-06-12_15-03-00", "job-1"
CHANNELS = 8


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=STAGING)
        client.create_bucket(Bucket=ARCHIVE)
        yield client


def _job() -> dict[str, Any]:
    return {
        "tasks": {
            "modality_transformation_settings": {"ecephys": {"job_settings": {"codec": "flac"}}}
        }
    }


def _transferred(s3: Any, tmp_path: Path, scale: int = 1) -> tuple[list, dict[str, Any]]:
    """Stage a 3.5 s recording, plan it in ranges of 1 MiB (two chunks), run every batch."""
    written = write_openephys(tmp_path / "ecephys", 3.5, CHANNELS, scale=scale)
    source = LocalSession(tmp_path)
    for entry in source.entries():
        s3.upload_file(entry.key, STAGING, f"s/{entry.relative}")
    entries = [e for e in _staged(s3)]
    settings = ecephys_plan.ecephys_settings(_job())
    assert settings == TransformationSettings(codec="flac")
    streams = ecephys_plan.find_recordings(source, source.entries(), settings).streams
    plan = batches(build_plan("s", entries, ASSET, _job(), streams, ecephys_range_size=2**20))
    for batch in plan:
        run_batch(
            s3,
            TransferBatchInput(batch=batch, job_id=JOB, source_bucket=STAGING, dest_bucket=ARCHIVE),
        )
    return plan, written


def _staged(s3: Any) -> list:
    from upload_processor.adapters.staging import S3Session

    return S3Session(s3, STAGING, "s").entries()


def _keys(s3: Any, prefix: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=ARCHIVE, Prefix=prefix).get("Contents", [])}


def _seal(s3: Any, plan: list) -> ecephys_seal.SealedStreams:
    recorded = collect_results(s3, ARCHIVE, JOB)
    return ecephys_seal.seal_streams(s3, archive=ARCHIVE, job_id=JOB, plan=plan, recorded=recorded)


def test_the_seal_writes_the_metadata_last_and_the_store_reads_back(
    s3: Any, tmp_path: Path
) -> None:
    import zarr

    plan, written = _transferred(s3, tmp_path, scale=12)
    store = next(i["dest_key"] for b in plan for i in b if i["action"] == "encode_ecephys")
    assert f"{store}/.zattrs" not in _keys(s3, store)  # only chunks until the seal
    sealed = _seal(s3, plan)
    (entry,) = sealed.entries
    assert entry["chunks"] == 4 and entry["lsb_correction"] == {"lsb": 12, "offset": 0}
    assert _keys(s3, store) == sealed.keys
    local = tmp_path / "store.zarr"
    for key in sealed.keys:
        path = local / key[len(store) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=ARCHIVE, Key=key)["Body"].read())
    traces = zarr.open(str(local), mode="r")["traces_seg0"][:]
    assert np.array_equal(traces, written["samples"])


def test_a_missing_chunk_stops_the_seal_before_any_metadata(s3: Any, tmp_path: Path) -> None:
    plan, _ = _transferred(s3, tmp_path)
    store = next(i["dest_key"] for b in plan for i in b if i["action"] == "encode_ecephys")
    s3.delete_object(Bucket=ARCHIVE, Key=f"{store}/traces_seg0/2.0")
    with pytest.raises(VerificationError, match=r"traces_seg0/2\.0: not found"):
        _seal(s3, plan)
    assert not [k for k in _keys(s3, store) if "/traces_seg0/" not in k]


def test_a_range_without_its_result_stops_the_seal(s3: Any, tmp_path: Path) -> None:
    plan, _ = _transferred(s3, tmp_path)
    from upload_processor.domain.archive import results_key
    from upload_processor.pipeline.transfer.batch import batch_id

    # ranges of two 1 s chunks (480,000 bytes each, 1 MiB a range): 2 ranges
    last = next(b for b in plan if b[0].get("part_number") == 2)
    s3.delete_object(Bucket=ARCHIVE, Key=results_key(JOB, batch_id(last)))
    with pytest.raises(TransferError, match="range 2 of 2"):
        _seal(s3, plan)
    store = last[0]["dest_key"]
    assert not [k for k in _keys(s3, store) if "/traces_seg0/" not in k]
