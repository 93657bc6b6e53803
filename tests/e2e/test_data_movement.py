"""Data movement through the whole local flow: the plan in S3 read by the Distributed Map,
chunked parallel compression, UploadPartCopy, the open archive, listed files, clean failure."""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
import zstandard
from e2e_support import Staged, keys

from benchmarks.scale import Job as ScaleJob
from benchmarks.scale import s3_requests
from upload_processor.adapters.notify import subscription_filter
from upload_processor.domain.units import MiB
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.local.seam import ACCOUNT_ID
from upload_processor_tools.sample import build_session

ROOT = Path(__file__).resolve().parents[2]
ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
SMALL = {"ChunkThresholdMiB": 10, "RangeSizeMiB": 5, "CopyThresholdMiB": 5, "FilesWaitSeconds": 0}


@pytest.fixture
def small_cloud() -> Iterator[LocalCloud]:
    """The local cloud with thresholds lowered (they are template parameters)."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with LocalCloud(ROOT, parameter_overrides=SMALL) as cloud:
        yield cloud


def _semi_compressible(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.getrandbits(8) for _ in range(16)) for _ in range(64)]
    out = bytearray()
    while len(out) < size:
        out += (
            rng.choice(words)
            if rng.random() < 0.7
            else bytes(rng.getrandbits(8) for _ in range(16))
        )
    return bytes(out[:size])


def _only(cloud: LocalCloud) -> dict:
    (execution,) = cloud.executions()
    return cloud.wait(execution["executionArn"])


def _body(cloud: LocalCloud, bucket: str, key: str) -> bytes:
    return cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def _decompress(body: bytes) -> bytes:
    return (
        zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True).read()
    )


def test_large_files_are_chunked_and_copied_in_parts(
    small_cloud: LocalCloud, tmp_path: Path
) -> None:
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.2, write_job=False
    )
    big = _semi_compressible(17 * MiB + 12345, seed=1)  # 4 ranges of 5 MiB; the tail folds in
    zeros = bytes(11 * MiB)  # compresses to a few bytes a range: every part is padded to 5 MiB
    movie = random.Random(2).randbytes(7 * MiB)  # already compressed: copied with UploadPartCopy
    (session / "ecephys" / "big.dat").write_bytes(big)
    (session / "ecephys" / "zeros.dat").write_bytes(zeros)
    (session / "behavior" / "movie.avi").write_bytes(movie)
    # a Zarr store: its chunks (no extension) are compressed by the store's codec: copied
    store = session / "ecephys" / "traces.zarr" / "data"
    store.mkdir(parents=True)
    chunk = zstandard.ZstdCompressor().compress(big[:65536])
    (store / "0.0").write_bytes(chunk)
    (store / ".zarray").write_text('{"zarr_format": 2, "compressor": {"id": "zstd"}}')
    build_session(tmp_path / "job", acq_datetime=ACQ, data_mb_per_modality=0)
    (session / "upload_job.json").write_bytes((tmp_path / "job" / "upload_job.json").read_bytes())
    small_cloud.upload_session(session, "rig-7/large")

    execution = _only(small_cloud)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    record = small_cloud.job(execution["name"])
    assert record["status"] == "COMPLETE"
    archive = small_cloud.archive_bucket
    assert _decompress(_body(small_cloud, archive, f"{ASSET}/ecephys/big.dat.zst")) == big
    assert _decompress(_body(small_cloud, archive, f"{ASSET}/ecephys/zeros.dat.zst")) == zeros
    assert _body(small_cloud, archive, f"{ASSET}/behavior/movie.avi") == movie
    assert _body(small_cloud, archive, f"{ASSET}/ecephys/traces.zarr/data/0.0") == chunk

    manifest = json.loads(_body(small_cloud, archive, f"{ASSET}/manifest.json"))
    objects = {o["dest_key"]: o for o in manifest["objects"]}
    chunked = objects[f"{ASSET}/ecephys/big.dat.zst"]
    assert chunked["source_sha256"].startswith("tree-sha256:")
    assert len(chunked["range_sha256s"]) == 3
    expected = [
        hashlib.sha256(big[i * 5 * MiB : (i + 1) * 5 * MiB if i < 2 else None]).hexdigest()
        for i in range(3)
    ]
    assert chunked["range_sha256s"] == expected
    plain = objects[f"{ASSET}/ecephys/continuous.dat.zst"]
    assert (
        plain["source_sha256"]
        == hashlib.sha256((session / "ecephys" / "continuous.dat").read_bytes()).hexdigest()
    )
    s3 = small_cloud.client("s3")
    head = s3.head_object(Bucket=archive, Key=f"{ASSET}/behavior/movie.avi")
    assert head["ETag"].strip('"').endswith("-2") or "-" in head["ETag"]  # a multipart (part) copy
    assert s3.list_multipart_uploads(Bucket=archive).get("Uploads", []) == []
    # the work area is cleared once the asset is sealed
    assert s3.list_objects_v2(Bucket=archive, Prefix="_jobs/").get("KeyCount", 0) == 0


def test_a_failed_part_leaves_no_object_and_no_upload(
    small_cloud: LocalCloud, tmp_path: Path
) -> None:
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.1, write_job=False
    )
    (session / "ecephys" / "big.dat").write_bytes(_semi_compressible(16 * MiB, seed=3))
    build_session(tmp_path / "job", acq_datetime=ACQ, data_mb_per_modality=0)

    def fail_second_part(params: dict, **_: object) -> None:
        if params.get("PartNumber") == 2:
            raise RuntimeError("injected: the worker died uploading part 2")

    events = boto3._get_default_session().events
    events.register("before-parameter-build.s3.UploadPart", fail_second_part)
    try:
        small_cloud.upload_session(session, "rig-7/broken")
        small_cloud.client("s3").upload_file(
            str(tmp_path / "job" / "upload_job.json"),
            small_cloud.staging_bucket,
            "rig-7/broken/upload_job.json",
        )
        execution = _only(small_cloud)
    finally:
        events.unregister("before-parameter-build.s3.UploadPart", fail_second_part)
    assert execution["status"] == "FAILED"
    record = small_cloud.job(execution["name"])
    assert record["status"] == "FAILED"
    # moto's Distributed Map may carry on past a failed iteration; Finalize then refuses to
    # complete an upload with a missing part. Either way the job fails naming the file.
    assert "big.dat" in record["error"] or "part 2" in record["error"]
    s3 = small_cloud.client("s3")
    archive = small_cloud.archive_bucket
    assert s3.list_multipart_uploads(Bucket=archive).get("Uploads", []) == []
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=archive, Prefix=f"{ASSET}/").get("Contents", [])
    ]
    assert f"{ASSET}/ecephys/big.dat.zst" not in keys
    assert f"{ASSET}/manifest.json" not in keys
    # staged data untouched
    assert (
        _body(small_cloud, small_cloud.staging_bucket, "rig-7/broken/ecephys/big.dat")
        == (session / "ecephys" / "big.dat").read_bytes()
    )


def test_open_bucket_jobs_go_to_the_open_archive(small_cloud: LocalCloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    job = json.loads((session / "upload_job.json").read_text())
    job["s3_bucket"] = "open"
    (session / "upload_job.json").write_text(json.dumps(job))
    small_cloud.upload_session(session, "rig-7/open")
    assert _only(small_cloud)["status"] == "SUCCEEDED"
    open_bucket = small_cloud.deployment.name("OpenArchiveBucket")
    s3 = small_cloud.client("s3")
    assert s3.head_object(Bucket=open_bucket, Key=f"{ASSET}/manifest.json")
    assert s3.list_objects_v2(Bucket=small_cloud.archive_bucket).get("KeyCount", 0) == 0


def test_listed_files_that_never_arrive_fail_the_job_with_the_list(
    small_cloud: LocalCloud, tmp_path: Path
) -> None:
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    job = json.loads((session / "upload_job.json").read_text())
    files = sorted(p for p in session.rglob("*") if p.is_file() and p.name != "upload_job.json")
    job["files"] = [
        {"path": p.relative_to(session).as_posix(), "size": p.stat().st_size} for p in files
    ]
    job["files"].append({"path": "ecephys/late.dat", "size": 1000})
    (session / "upload_job.json").write_text(json.dumps(job))
    small_cloud.upload_session(session, "rig-7/partial")
    execution = _only(small_cloud)
    assert execution["status"] == "FAILED"
    record = small_cloud.job(execution["name"])
    assert record["error"].startswith("FilesMissingError")
    assert "ecephys/late.dat (missing)" in record["error"]


def _stage_directly(bucket: str, keys_and_bodies: Iterable[tuple[str, bytes]]) -> None:
    """Stage objects straight into moto's S3 backend: the user's upload is not under test, and
    10,000 PutObjects through botocore take minutes. No event fires (only upload_job.json's
    matters, and it is uploaded the ordinary way)."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT_ID]["aws"]
    for key, body in keys_and_bodies:
        backend.put_object(bucket, key, body, disable_notification=True)


def test_a_plan_of_ten_thousand_objects_runs_through_the_map(
    small_cloud: LocalCloud, tmp_path: Path
) -> None:
    """The 10,000-object plan runs through the Distributed Map, and the S3 requests the
    handlers make are, operation by operation, the scale model's count (docs/scale.md)."""
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0, write_job=False
    )
    s3 = small_cloud.client("s3")
    staging = small_cloud.staging_bucket
    staged = sorted(p for p in session.rglob("*") if p.is_file())
    for path in staged:
        s3.upload_file(str(path), staging, f"rig-7/many/{path.relative_to(session).as_posix()}")
    count = 10_000
    # tiny frames of a "camera": already compressed, so the Map copies them server-side
    _stage_directly(
        staging, ((f"rig-7/many/behavior/frames/{i:05d}.png", b"%d" % i) for i in range(count))
    )
    build_session(tmp_path / "job", acq_datetime=ACQ, data_mb_per_modality=0)
    requests: Counter[str] = Counter()
    # every client the handlers make from here on comes from boto3's default session
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session_events = boto3.DEFAULT_SESSION

    def hook(model: Any, **_: Any) -> None:
        requests.update([model.name])

    session_events.events.register("before-call.s3", hook)
    try:
        s3.upload_file(
            str(tmp_path / "job" / "upload_job.json"), staging, "rig-7/many/upload_job.json"
        )
        execution = _only(small_cloud)
    finally:
        session_events.events.unregister("before-call.s3", hook)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    record = small_cloud.job(execution["name"])
    assert record["status"] == "COMPLETE"
    data = [p for p in staged if "/" in p.relative_to(session).as_posix()]
    others = len(data)
    assert record["files"] == count + others
    manifest = json.loads(_body(small_cloud, small_cloud.archive_bucket, f"{ASSET}/manifest.json"))
    assert len(manifest["objects"]) == count + others
    keys = 0
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=small_cloud.archive_bucket, Prefix=f"{ASSET}/behavior/frames/"
    ):
        keys += page.get("KeyCount", 0)
    assert keys == count
    # the state carried no plan: the execution input/output stays small
    assert len(execution.get("output", "")) < 64 * 1024

    actions = Counter(o["action"] for o in manifest["objects"])
    # files zstd does not shrink are stored as is: read (compressed), then copied under their name
    as_is = sum(1 for o in manifest["objects"] if o.get("stored_reason"))
    job = ScaleJob(
        "this test",
        compressed=actions["compress"],
        copied=actions["copy"] - as_is,
        as_is=as_is,
        file_bytes=max(p.stat().st_size for p in data),
        metadata=len(staged) - others,
    )
    assert actions["copy"] - as_is == count + 1  # the frames and the sample's video
    assert dict(requests) == s3_requests(job)


def test_a_file_overwritten_between_its_ranges_fails_the_job_quoting_the_change(
    small_cloud: LocalCloud, tmp_path: Path
) -> None:
    """A user overwrites a chunked file (a new version of the staged object) after
    GatherMetadata planned it, while its ranges are being transferred: nothing is sealed, and
    the job's error and its `fail` message quote the recorded cause (which file, that it
    changed during the transfer, what to do), not the completion's "missing parts"."""
    cloud = small_cloud
    operator = cloud.subscribe_queue("ops", subscription_filter(None))
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05, write_job=True
    )
    (session / "ecephys" / "big.dat").write_bytes(_semi_compressible(12 * MiB, seed=4))
    staged = Staged(cloud, session, "rig-7/overwritten")
    big = "rig-7/overwritten/ecephys/big.dat"
    s3 = cloud.client("s3")
    overwrites: list[str] = []
    first_range_read = threading.Event()

    def first_part_sent(params: dict, **_: object) -> None:
        if params.get("Key") == f"{ASSET}/ecephys/big.dat.zst" and params.get("PartNumber") == 1:
            first_range_read.set()

    def overwrite_before_the_second_range(params: dict, **_: object) -> None:
        """Once range 1 is read, the GetObject of range 2 finds a new version of the file."""
        if params.get("Key") != big or str(params.get("Range", "bytes=0-")).startswith("bytes=0-"):
            return
        first_range_read.wait(timeout=30)  # ranges run in parallel: range 1 is archived first
        if not overwrites:
            out = s3.put_object(Bucket=cloud.staging_bucket, Key=big, Body=b"x" * (12 * MiB))
            overwrites.append(out["VersionId"])
            staged.before[big] = sorted([*staged.before[big], (out["VersionId"], out["ETag"])])

    hooks = {
        "before-parameter-build.s3.UploadPart": first_part_sent,
        "before-parameter-build.s3.GetObject": overwrite_before_the_second_range,
    }
    events = boto3._get_default_session().events
    for event, hook in hooks.items():
        events.register(event, hook)
    try:
        record = staged.run()
    finally:
        for event, hook in hooks.items():
            events.unregister(event, hook)

    assert overwrites, "the second range was never read"
    assert record["status"] == "FAILED", record
    error = record["error"]
    assert error.startswith("SourceChangedError: "), error
    assert f"s3://{cloud.staging_bucket}/{big}" in error  # which file
    assert "changed while this job was transferring it" in error
    assert "expected parts" not in error
    (fail,) = cloud.messages(operator)
    assert fail["MessageAttributes"]["event"]["Value"] == "fail"
    details = json.loads(fail["Message"].split("--- details (JSON) ---", 1)[1])
    assert details["error"] == "SourceChangedError"
    assert "changed while this job was transferring it" in details["cause"]
    assert f"s3://{cloud.staging_bucket}/{big}" in fail["Message"]
    assert "staged data was not changed" not in fail["Message"]
    assert (
        "Is a retry safe? yes, once the upload of the changed file is complete" in (fail["Message"])
    )
    assert "a retry archives its new version" in fail["Message"]
    # nothing sealed, nothing partial; staging holds only what the user (and the report) wrote
    archive = cloud.archive_bucket
    assert f"{ASSET}/manifest.json" not in keys(cloud, archive, "")
    assert f"{ASSET}/ecephys/big.dat.zst" not in keys(cloud, archive, "")
    assert s3.list_multipart_uploads(Bucket=archive).get("Uploads", []) == []
    staged.assert_untouched()
