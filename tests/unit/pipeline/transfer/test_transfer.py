"""The transfer package (transfer, verify) against moto's S3: round trips, server-side copies, clean failure, verification."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import zstandard
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

import upload_processor.pipeline.transfer.compress as compress_module
from upload_processor.domain.archive import (
    META_SOURCE_SHA256,
    META_SOURCE_SIZE,
    ZSTD_CONTENT_TYPE,
    failure_key,
)
from upload_processor.domain.contracts import TransferBatchInput
from upload_processor.domain.plan import PlanItem, plan_item
from upload_processor.domain.units import MiB
from upload_processor.errors import (
    SourceChangedError,
    TransferError,
    TransientError,
    VerificationError,
    is_transient,
)
from upload_processor.pipeline.transfer import ZSTD_WORKERS, TransferResult, transfer, verify
from upload_processor.pipeline.transfer.batch import batch_id, run_batch

STAGING = "staging-bucket"
ARCHIVE = "archive-bucket"
PREFIX = "uploads/session1"
ASSET = "750101_2025-06-12_15-03-00"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=STAGING)
        client.create_bucket(Bucket=ARCHIVE)
        yield client


def stage(s3: Any, relative: str, data: bytes, **put_args: Any) -> PlanItem:
    """Put `data` into staging and plan it the way the planner would."""
    key = f"{PREFIX}/{relative}"
    s3.put_object(Bucket=STAGING, Key=key, Body=data, **put_args)
    head = s3.head_object(Bucket=STAGING, Key=key)
    return plan_item(
        prefix=PREFIX, key=key, size=head["ContentLength"], etag=head["ETag"], asset_name=ASSET
    )


def semi_compressible(size: int, seed: int = 7) -> bytes:
    """Roughly 3/4 random bytes, 1/4 zeros: zstd shrinks it, but not below a few parts."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(3072)
        out += bytes(1024)
    return bytes(out[:size])


def read_dest(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=ARCHIVE, Key=key)["Body"].read()


def decompress_all(blob: bytes) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True)
    return reader.read()


def open_uploads(s3: Any) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=ARCHIVE).get("Uploads", [])


def dest_exists(s3: Any, key: str) -> bool:
    try:
        s3.head_object(Bucket=ARCHIVE, Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("404", "NoSuchKey")
        return False
    return True


def record_calls(s3: Any, operation: str) -> list[dict[str, Any]]:
    """Record the parameters of every `operation` call the client makes."""
    calls: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    s3.meta.events.register(f"provide-client-params.s3.{operation}", spy)
    return calls


# --- compress ---------------------------------------------------------------------------


def test_small_file_round_trips_in_one_put(s3: Any) -> None:
    data = b"time,lick,reward\n" + b"".join(f"{i},0,1\n".encode() for i in range(20_000))
    item = stage(s3, "behavior/licks.csv", data)
    creates = record_calls(s3, "CreateMultipartUpload")

    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)

    assert result.dest_key == f"{ASSET}/behavior/licks.csv.zst"
    assert (result.action, result.codec) == ("compress", "zstd")
    assert result.bytes_in == len(data)
    assert result.source_sha256 == hashlib.sha256(data).hexdigest()
    stored = read_dest(s3, result.dest_key)
    assert len(stored) == result.bytes_out < len(data)
    assert zstandard.ZstdDecompressor().decompress(stored) == data
    head = s3.head_object(Bucket=ARCHIVE, Key=result.dest_key)
    assert head["ContentType"] == ZSTD_CONTENT_TYPE
    assert head["Metadata"][META_SOURCE_SHA256] == result.source_sha256
    assert head["Metadata"][META_SOURCE_SIZE] == str(len(data))
    assert creates == []
    verify(s3, result, dest_bucket=ARCHIVE, expected_sha256=result.source_sha256)


def test_multipart_round_trip_is_exact(s3: Any) -> None:
    data = semi_compressible(12 * MiB)
    item = stage(s3, "ecephys/probe_a.dat", data)
    parts = record_calls(s3, "UploadPart")
    creates = record_calls(s3, "CreateMultipartUpload")

    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE, part_size=5 * MiB)

    assert len(parts) >= 2
    assert all(len(p["Body"]) == 5 * MiB for p in parts[:-1])
    assert creates[0]["ChecksumAlgorithm"] == "SHA256"
    assert all(p["ChecksumSHA256"] for p in parts)
    stored = read_dest(s3, result.dest_key)
    assert len(stored) == result.bytes_out == sum(len(p["Body"]) for p in parts)
    assert decompress_all(stored) == data
    assert result.source_sha256 == hashlib.sha256(data).hexdigest()
    head = s3.head_object(Bucket=ARCHIVE, Key=result.dest_key)
    assert head["ETag"].strip('"').endswith(f"-{len(parts)}")
    assert head["Metadata"][META_SOURCE_SIZE] == str(len(data))
    assert open_uploads(s3) == []
    verify(s3, result, dest_bucket=ARCHIVE, expected_sha256=hashlib.sha256(data).hexdigest())


def test_compressed_bytes_depend_on_the_source_and_level_only(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # zstd compresses on a worker thread (ZSTD_WORKERS): rerunning a step must still write
    # the same bytes, whatever the read sizes, the part size and the timing.
    data = semi_compressible(20 * MiB)
    item = stage(s3, "ecephys/probe_d.dat", data)
    first = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE, part_size=5 * MiB)
    stored = read_dest(s3, first.dest_key)
    monkeypatch.setattr(compress_module, "READ_CHUNK", 777_777)
    again = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE, part_size=6 * MiB)

    assert read_dest(s3, again.dest_key) == stored
    one_shot = zstandard.ZstdCompressor(level=3, write_checksum=True, threads=ZSTD_WORKERS)
    assert stored == one_shot.compress(data)


def test_zero_byte_file_is_stored_as_is(s3: Any) -> None:
    """A zstd frame of nothing is longer than nothing: the empty file is archived as it is."""
    item = stage(s3, "behavior/empty.log", b"")

    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)

    assert result.dest_key == f"{ASSET}/behavior/empty.log"
    assert read_dest(s3, result.dest_key) == b""
    assert (result.bytes_in, result.bytes_out, result.stored) == (0, 0, "as_is")
    assert result.source_sha256 == hashlib.sha256(b"").hexdigest()
    assert not dest_exists(s3, item.dest_key)
    verify(s3, result, dest_bucket=ARCHIVE, expected_sha256=hashlib.sha256(b"").hexdigest())


def test_level_from_the_plan_is_used(s3: Any) -> None:
    data = b"abc" * 100_000
    item = stage(s3, "behavior/a.txt", data).model_copy(update={"level": 19})
    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert s3.head_object(Bucket=ARCHIVE, Key=result.dest_key)["Metadata"]["zstd-level"] == "19"

    bad = item.model_copy(update={"level": 99})
    with pytest.raises(TransferError, match="invalid zstd level 99"):
        transfer(s3, bad, source_bucket=STAGING, dest_bucket=ARCHIVE)


# --- verify -----------------------------------------------------------------------------


def test_verify_reads_every_frame(s3: Any) -> None:
    first, second = b"first frame " * 5_000, b"second frame " * 5_000
    compressor = zstandard.ZstdCompressor()
    blob = compressor.compress(first) + compressor.compress(second)
    # One-shot decompress stops after the first frame: it would miss the tail silently.
    assert zstandard.ZstdDecompressor().decompress(blob) == first
    s3.put_object(Bucket=ARCHIVE, Key=f"{ASSET}/x.bin.zst", Body=blob)
    whole = first + second
    result = TransferResult(
        source_key=f"{PREFIX}/x.bin",
        dest_key=f"{ASSET}/x.bin.zst",
        action="compress",
        codec="zstd",
        bytes_in=len(whole),
        bytes_out=len(blob),
        source_sha256=hashlib.sha256(whole).hexdigest(),
    )

    verify(s3, result, dest_bucket=ARCHIVE, expected_sha256=hashlib.sha256(whole).hexdigest())


def test_verify_rejects_a_missing_tail_frame(s3: Any) -> None:
    first, second = b"first frame " * 5_000, b"second frame " * 5_000
    blob = zstandard.ZstdCompressor().compress(first)
    s3.put_object(Bucket=ARCHIVE, Key=f"{ASSET}/x.bin.zst", Body=blob)
    result = TransferResult(
        source_key=f"{PREFIX}/x.bin",
        dest_key=f"{ASSET}/x.bin.zst",
        action="compress",
        codec="zstd",
        bytes_in=len(first + second),
        bytes_out=len(blob),
        source_sha256=hashlib.sha256(first + second).hexdigest(),
    )
    with pytest.raises(VerificationError, match="decompresses to 60000 bytes"):
        verify(s3, result, dest_bucket=ARCHIVE)


def test_verify_rejects_other_content_and_non_zstd(s3: Any) -> None:
    data = b"original " * 10_000
    item = stage(s3, "behavior/a.txt", data)
    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)

    other = zstandard.ZstdCompressor().compress(b"tampered " * 10_000)
    s3.put_object(Bucket=ARCHIVE, Key=result.dest_key, Body=other)
    with pytest.raises(VerificationError, match="SHA-256") as excinfo:
        verify(s3, item, dest_bucket=ARCHIVE, expected_sha256=result.source_sha256)
    assert item.source_key in str(excinfo.value) and result.dest_key in str(excinfo.value)

    s3.put_object(Bucket=ARCHIVE, Key=result.dest_key, Body=b"not zstd at all")
    with pytest.raises(VerificationError, match="not a valid zstd stream"):
        verify(s3, item, dest_bucket=ARCHIVE, expected_sha256=result.source_sha256)

    s3.delete_object(Bucket=ARCHIVE, Key=result.dest_key)
    with pytest.raises(VerificationError, match="does not exist"):
        verify(s3, result, dest_bucket=ARCHIVE)


def test_result_survives_json(s3: Any) -> None:
    item = stage(s3, "behavior/a.txt", b"hello")
    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert TransferResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# --- copy -------------------------------------------------------------------------------


def test_copy_is_server_side_and_exact(s3: Any) -> None:
    data = random.Random(1).randbytes(300_000)
    item = stage(
        s3,
        "behavior-videos/cam0.mp4",
        data,
        ContentType="video/mp4",
        Metadata={"rig": "447"},
    )
    assert item.action == "copy"
    gets = record_calls(s3, "GetObject")

    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    verify(s3, result, dest_bucket=ARCHIVE)
    verify(s3, item, dest_bucket=ARCHIVE)

    assert gets == []  # neither the copy nor its verification downloaded a byte
    assert result.dest_key == f"{ASSET}/behavior-videos/cam0.mp4"
    assert (result.action, result.codec) == ("copy", None)
    assert result.bytes_in == result.bytes_out == len(data)
    # S3 computed the SHA-256 while copying (ChecksumAlgorithm on CopyObject).
    assert result.source_sha256 == hashlib.sha256(data).hexdigest()
    head = s3.head_object(Bucket=ARCHIVE, Key=result.dest_key)
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"rig": "447"}
    assert read_dest(s3, result.dest_key) == data


def test_large_copy_uses_upload_part_copy(s3: Any) -> None:
    data = random.Random(2).randbytes(11 * MiB)
    item = stage(s3, "ecephys/raw.zip", data, ContentType="application/zip")
    gets = record_calls(s3, "GetObject")
    part_copies = record_calls(s3, "UploadPartCopy")

    result = transfer(
        s3,
        item,
        source_bucket=STAGING,
        dest_bucket=ARCHIVE,
        copy_threshold=5 * MiB,
        copy_part_size=5 * MiB,
    )

    assert gets == []
    assert [p["CopySourceRange"] for p in part_copies] == [
        f"bytes=0-{5 * MiB - 1}",
        f"bytes={5 * MiB}-{10 * MiB - 1}",
        f"bytes={10 * MiB}-{11 * MiB - 1}",
    ]
    assert s3.head_object(Bucket=ARCHIVE, Key=item.dest_key)["ContentType"] == "application/zip"
    assert result.source_sha256 == ""  # no full-object SHA-256 without a download
    verify(s3, result, dest_bucket=ARCHIVE)
    assert read_dest(s3, item.dest_key) == data
    assert open_uploads(s3) == []


def test_copy_verify_catches_a_wrong_size(s3: Any) -> None:
    item = stage(s3, "videos/a.mp4", b"0123456789")
    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    s3.put_object(Bucket=ARCHIVE, Key=item.dest_key, Body=b"01234")
    with pytest.raises(VerificationError, match="5 bytes, expected 10"):
        verify(s3, result, dest_bucket=ARCHIVE)


# --- failures ---------------------------------------------------------------------------


def test_failure_mid_upload_leaves_nothing_behind(s3: Any) -> None:
    data = semi_compressible(12 * MiB)
    item = stage(s3, "ecephys/probe_b.dat", data)
    calls = {"UploadPart": 0}

    def fail_second_part(**_: Any) -> None:
        calls["UploadPart"] += 1
        if calls["UploadPart"] == 2:
            raise ConnectionError("network dropped on part 2")

    s3.meta.events.register("before-call.s3.UploadPart", fail_second_part)
    aborts = record_calls(s3, "AbortMultipartUpload")

    with pytest.raises(ConnectionError, match="part 2"):
        transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE, part_size=5 * MiB)

    assert len(aborts) == 1
    assert not dest_exists(s3, item.dest_key)
    assert open_uploads(s3) == []


def test_size_mismatch_is_a_transfer_error(s3: Any) -> None:
    item = stage(s3, "behavior/a.txt", b"x" * 1000)
    wrong = item.model_copy(update={"size": 999})
    with pytest.raises(TransferError, match="has 1000 bytes but was planned with 999") as excinfo:
        transfer(s3, wrong, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert f"s3://{STAGING}/{item.source_key}" in str(excinfo.value)
    assert f"s3://{ARCHIVE}/{item.dest_key}" in str(excinfo.value)
    assert not dest_exists(s3, item.dest_key)


class _GrowingSource:
    """A client whose GetObject stream holds more bytes than its headers announce, as when a
    source is rewritten while it is read."""

    def __init__(self, client: Any, extra: bytes) -> None:
        self._client = client
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        response = self._client.get_object(**kwargs)
        body = io.BytesIO(response["Body"].read() + self._extra)
        return {**response, "Body": body}


def test_stream_longer_than_planned_aborts_the_upload(s3: Any) -> None:
    # Long enough that parts go out before the end whatever the timing: zstd's worker thread
    # holds a few 8 MiB jobs of input at most, then the reader waits for (and uploads) output.
    data = semi_compressible(40 * MiB)
    item = stage(s3, "ecephys/probe_c.dat", data)
    parts = record_calls(s3, "UploadPart")

    with pytest.raises(SourceChangedError, match="changed while this job was transferring it"):
        transfer(
            _GrowingSource(s3, b"late bytes"),
            item,
            source_bucket=STAGING,
            dest_bucket=ARCHIVE,
            part_size=5 * MiB,
        )

    assert parts  # the mismatch showed only after a part was already uploaded
    assert not dest_exists(s3, item.dest_key)
    assert open_uploads(s3) == []


@pytest.mark.parametrize(
    ("relative", "operations"),
    [
        ("behavior/a.txt", ["GetObject", "PutObject"]),
        ("videos/a.mp4", ["CopyObject"]),
    ],
)
def test_a_small_file_costs_one_request_each_way(
    s3: Any, relative: str, operations: list[str]
) -> None:
    """Issue 17: no HeadObject before a GET (it is conditioned on the planned ETag) or before
    a single CopyObject (CopySourceIfMatch), one PutObject with its checksum for the output."""
    item = stage(s3, relative, b"data " * 100)
    seen: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: seen.append(model.name))
    result = transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert seen == operations
    assert result.etag == s3.head_object(Bucket=ARCHIVE, Key=item.dest_key)["ETag"]


@pytest.mark.parametrize("action", ["compress", "copy"])
def test_source_changed_or_gone_is_a_transfer_error(s3: Any, action: str) -> None:
    name = "behavior/a.txt" if action == "compress" else "videos/a.mp4"
    item = stage(s3, name, b"version one")
    s3.put_object(Bucket=STAGING, Key=item.source_key, Body=b"version two")
    with pytest.raises(TransferError, match="no longer has the planned ETag"):
        transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert not dest_exists(s3, item.dest_key)  # (a copy moto made despite the condition: removed)

    s3.delete_object(Bucket=STAGING, Key=item.source_key)
    with pytest.raises(TransferError, match="does not exist"):
        transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert not dest_exists(s3, item.dest_key)


def test_transient_errors_are_not_transfer_errors(s3: Any) -> None:
    item = stage(s3, "behavior/a.txt", b"data")

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "Reduce"}}, "GetObject")

    s3.meta.events.register("before-call.s3.GetObject", throttle)
    with pytest.raises(TransientError) as excinfo:
        transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert not isinstance(excinfo.value, TransferError)
    assert isinstance(excinfo.value.__cause__, ClientError)


def _fail_with(s3: Any, operation: str, code: str, status: int, only: str = "") -> None:
    """Make every call of `operation` (on a key containing `only`) answer an S3 error `code`
    with HTTP `status`."""

    def fail(params: dict[str, Any], **_: Any) -> None:
        if only not in params["url_path"]:
            return
        error = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {}}
        error["ResponseMetadata"]["HTTPStatusCode"] = status
        raise ClientError(error, operation)  # type: ignore[arg-type]

    s3.meta.events.register(f"before-call.s3.{operation}", fail)


@pytest.mark.parametrize(
    ("operation", "relative", "code", "status"),
    [
        ("GetObject", "behavior/a.txt", "SlowDown", 503),  # compress: reading the source
        ("PutObject", "behavior/a.txt", "InternalError", 500),  # compress: writing the output
        ("CopyObject", "videos/a.mp4", "SlowDown", 503),  # copy: the copy itself
    ],
)
def test_a_throttled_s3_call_raises_transient_error(
    s3: Any, operation: str, relative: str, code: str, status: int
) -> None:
    item = stage(s3, relative, b"data " * 100)
    _fail_with(s3, operation, code, status)
    with pytest.raises(TransientError, match=code) as excinfo:
        transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert item.dest_key in str(excinfo.value)  # the message names the object
    assert "Contents" not in s3.list_objects_v2(Bucket=ARCHIVE)  # nothing left behind
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=ARCHIVE)


def test_a_dropped_connection_raises_transient_error(s3: Any) -> None:
    item = stage(s3, "behavior/a.txt", b"data")

    def drop(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    s3.meta.events.register("before-call.s3.GetObject", drop)
    with pytest.raises(TransientError):
        transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)


@pytest.mark.parametrize("operation", ["GetObject", "PutObject"])
def test_access_denied_is_permanent_not_transient(s3: Any, operation: str) -> None:
    item = stage(s3, "behavior/a.txt", b"data" * 1000)  # compressible: written by PutObject
    _fail_with(s3, operation, "AccessDenied", 403)
    with pytest.raises(ClientError) as excinfo:
        transfer(s3, item, source_bucket=STAGING, dest_bucket=ARCHIVE)
    assert not isinstance(excinfo.value, TransientError)
    assert not is_transient(excinfo.value)


def test_a_batch_names_access_denied_as_a_transfer_error_and_records_it(s3: Any) -> None:
    item = stage(s3, "behavior/a.txt", b"data")
    _fail_with(s3, "GetObject", "AccessDenied", 403, only=item.source_key)
    batch = [item.model_dump()]
    with pytest.raises(TransferError, match="S3 refused the transfer") as excinfo:
        run_batch(s3, _batch_input(batch))
    assert not isinstance(excinfo.value, TransientError)
    record = s3.get_object(Bucket=ARCHIVE, Key=failure_key("job-1", batch_id(batch)))
    assert json.loads(record["Body"].read())["error"] == "TransferError"


def test_a_throttled_batch_raises_transient_error_and_records_the_cause(s3: Any) -> None:
    item = stage(s3, "behavior/a.txt", b"data" * 1000)
    _fail_with(s3, "PutObject", "SlowDown", 503)
    batch = [item.model_dump()]
    with pytest.raises(TransientError, match="SlowDown"):
        run_batch(s3, _batch_input(batch))
    # the record itself is a PutObject too, throttled here: best effort, never the error seen


def test_refuses_to_overwrite_its_own_source(s3: Any) -> None:
    item = stage(s3, "videos/a.mp4", b"data")
    same = item.model_copy(update={"dest_key": item.source_key})
    with pytest.raises(TransferError, match="destination is the source"):
        transfer(s3, same, source_bucket=STAGING, dest_bucket=STAGING)


def _batch_input(batch: list[dict]) -> TransferBatchInput:
    return TransferBatchInput(
        batch=batch, job_id="job-1", source_bucket=STAGING, dest_bucket=ARCHIVE
    )
