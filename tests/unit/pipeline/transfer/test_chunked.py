"""Large files in parallel: byte ranges, one zstd frame per part, one multipart upload (moto S3).

Every step runs as the state machine runs it, one stateless invocation each: the plan items
and the results go through JSON between `start_chunked`, the Map iterations (`transfer` of
each `compress_range` item) and `complete_chunked`. Thresholds and range sizes are lowered to
a few MiB so that the whole file holds a handful of ranges.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import random
import shutil
import struct
import subprocess
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import zstandard
from botocore.exceptions import ClientError
from moto import mock_aws

from upload_processor.domain.archive import (
    META_RANGE_SIZE,
    META_SOURCE_SIZE,
    SKIPPABLE_MAGIC,
    ZSTD_CONTENT_TYPE,
    parse_tree_sha256,
    skippable_frame,
    tree_sha256,
)
from upload_processor.domain.plan import (
    CHUNK_THRESHOLD,
    DEFAULT_RANGE_SIZE,
    MAX_PARTS,
    MIN_RANGE_SIZE,
    TIME_BUDGET_S,
    ZSTD_MB_PER_S,
    PlanItem,
    chunk_ranges,
    chunk_threshold_for,
    needs_chunks,
    plan_item,
    range_size_for,
    seconds_per_mb,
)
from upload_processor.domain.units import MiB
from upload_processor.errors import TransferError, TransientError, VerificationError
from upload_processor.pipeline.transfer import (
    TransferResult,
    abort_chunked,
    complete_chunked,
    start_chunked,
    transfer,
    verify,
    verify_part,
)

STAGING = "staging-bucket"
ARCHIVE = "archive-bucket"
PREFIX = "uploads/session1"
ASSET = "750101_2025-06-12_15-03-00"
RANGE = 6 * MiB  # test range size: three ranges of 6, 6 and 5 MiB for a 17 MiB file
THRESHOLD = 10 * MiB  # test chunk threshold
ZSTD_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=STAGING)
        client.create_bucket(Bucket=ARCHIVE)
        yield client


def stage(s3: Any, relative: str, data: bytes) -> PlanItem:
    key = f"{PREFIX}/{relative}"
    s3.put_object(Bucket=STAGING, Key=key, Body=data)
    head = s3.head_object(Bucket=STAGING, Key=key)
    return plan_item(
        prefix=PREFIX, key=key, size=head["ContentLength"], etag=head["ETag"], asset_name=ASSET
    )


def as_json(value: Any) -> Any:
    """What a value looks like after crossing a Step Functions state boundary."""
    return json.loads(json.dumps(value))


def start(s3: Any, item: PlanItem, range_size: int = RANGE) -> list[dict[str, Any]]:
    """The start step: the range items, as the Map receives them."""
    ranges = start_chunked(
        s3, item, dest_bucket=ARCHIVE, range_size=range_size, source_bucket=STAGING
    )
    return as_json([r.model_dump(mode="json") for r in ranges])


def iterate(s3: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """One Map iteration: a fresh PlanItem from JSON in, a JSON result out."""
    result = transfer(s3, PlanItem.model_validate(raw), source_bucket=STAGING, dest_bucket=ARCHIVE)
    return as_json(result.to_dict())


def run_chunked(
    s3: Any, item: PlanItem, range_size: int = RANGE, order: list[int] | None = None
) -> TransferResult:
    items = start(s3, item, range_size)
    order = order if order is not None else list(range(len(items)))
    results = [iterate(s3, items[i]) for i in order]
    done = complete_chunked(s3, results, dest_bucket=ARCHIVE)
    return TransferResult.from_dict(as_json(done.to_dict()))


def read_dest(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=ARCHIVE, Key=key)["Body"].read()


def decompress_all(blob: bytes) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True)
    out = bytearray()
    while chunk := reader.read(MiB):
        out += chunk
    return bytes(out)


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
    """The parameters of every `operation` call; a file-like Body is recorded as its bytes."""
    calls: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        recorded = dict(params)
        body = params.get("Body")
        if hasattr(body, "read"):
            position = body.tell()
            recorded["Body"] = body.read()
            body.seek(position)
        calls.append(recorded)

    s3.meta.events.register(f"provide-client-params.s3.{operation}", spy)
    return calls


def part_body(params: dict[str, Any]) -> bytes:
    body = params["Body"]
    assert isinstance(body, bytes)
    return body


def zeros(size: int) -> bytes:
    return bytes(size)


def random_bytes(size: int) -> bytes:
    return random.Random(11).randbytes(size)


# --- sizing -----------------------------------------------------------------------------


def test_chunk_ranges_cover_the_file_and_fold_a_short_tail() -> None:
    assert chunk_ranges(17 * MiB, RANGE) == [(0, RANGE), (RANGE, 2 * RANGE), (2 * RANGE, 17 * MiB)]
    assert chunk_ranges(12 * MiB, RANGE) == [(0, RANGE), (RANGE, 12 * MiB)]
    # A tail of exactly 5 MiB stays its own range; one byte less is folded in.
    assert chunk_ranges(2 * RANGE + MIN_RANGE_SIZE, RANGE)[-1] == (2 * RANGE, 17 * MiB)
    assert chunk_ranges(2 * RANGE + MIN_RANGE_SIZE - 1, RANGE) == [
        (0, RANGE),
        (RANGE, 2 * RANGE + MIN_RANGE_SIZE - 1),
    ]
    assert chunk_ranges(MiB, RANGE) == [(0, MiB)]
    assert chunk_ranges(RANGE + 1, RANGE) == [(0, RANGE + 1)]
    assert chunk_ranges(0, RANGE) == []
    with pytest.raises(ValueError, match="at least"):
        chunk_ranges(100 * MiB, MIN_RANGE_SIZE - 1)
    with pytest.raises(ValueError, match="10000"):
        chunk_ranges((MAX_PARTS + 1) * MIN_RANGE_SIZE, MIN_RANGE_SIZE)


def test_range_size_fits_the_time_budget_at_every_level() -> None:
    assert range_size_for(3) == DEFAULT_RANGE_SIZE == 1024 * MiB
    assert chunk_threshold_for(3) == CHUNK_THRESHOLD == 4096 * MiB
    assert range_size_for(19) == 64 * MiB
    previous = DEFAULT_RANGE_SIZE
    for level in range(-5, 23):
        size = range_size_for(level)
        assert size <= previous  # slower levels never get larger ranges
        assert seconds_per_mb(level) * size / 1e6 <= TIME_BUDGET_S
        assert seconds_per_mb(level) * chunk_threshold_for(level) / 1e6 <= TIME_BUDGET_S
        previous = size
    assert max(ZSTD_MB_PER_S) >= 22
    # S3's largest object at level 3 stays well under the 10,000-part limit ...
    assert len(chunk_ranges(5 * 1024**4, range_size_for(3))) == 5120
    # ... and a huge file at a slow level gets ranges large enough to fit in it.
    assert len(chunk_ranges(5 * 1024**4, range_size_for(19, size=5 * 1024**4))) <= MAX_PARTS


def test_a_file_under_the_threshold_goes_the_plain_path(s3: Any) -> None:
    data = zeros(THRESHOLD - 1)  # compressible: random bytes would be stored as is
    item = stage(s3, "ecephys/small.dat", data)
    assert not needs_chunks(item, threshold=THRESHOLD)
    assert needs_chunks(item.model_copy(update={"size": THRESHOLD + 1}), threshold=THRESHOLD)
    assert not needs_chunks(item.model_copy(update={"action": "copy", "size": 10 * THRESHOLD}))
    creates = record_calls(s3, "CreateMultipartUpload")

    result = TransferResult.from_dict(as_json(iterate(s3, item.model_dump(mode="json"))))

    assert result.action == "compress"
    assert result.source_sha256 == hashlib.sha256(data).hexdigest()
    assert result.range_sha256s is None and result.part_count is None
    assert creates == []  # one streaming compress, one PutObject: no upload, no ranges
    assert set(result.to_dict()) == {
        "source_key",
        "dest_key",
        "action",
        "codec",
        "bytes_in",
        "bytes_out",
        "source_sha256",
        "etag",  # S3's answer to the PutObject, which Finalize checks the object still has
    }
    assert result.etag == s3.head_object(Bucket=ARCHIVE, Key=result.dest_key)["ETag"]
    assert decompress_all(read_dest(s3, result.dest_key)) == data
    verify(s3, result, dest_bucket=ARCHIVE)


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("make", [zeros, random_bytes], ids=["zeros", "random"])
def test_chunked_round_trip_is_byte_identical(s3: Any, make: Any) -> None:
    data = make(17 * MiB)
    item = stage(s3, "ecephys/probe_a.dat", data)
    assert needs_chunks(item, threshold=THRESHOLD)
    creates = record_calls(s3, "CreateMultipartUpload")
    parts = record_calls(s3, "UploadPart")
    gets = record_calls(s3, "GetObject")

    result = run_chunked(s3, item)

    ranges = [(0, RANGE), (RANGE, 2 * RANGE), (2 * RANGE, len(data))]
    assert [g["Range"] for g in gets] == [f"bytes={a}-{b - 1}" for a, b in ranges]
    assert all(g["IfMatch"] == f'"{item.etag}"' for g in gets)
    assert creates[0]["ChecksumAlgorithm"] == "SHA256"
    assert creates[0]["ContentType"] == ZSTD_CONTENT_TYPE
    bodies = [part_body(p) for p in parts]
    assert [p["PartNumber"] for p in parts] == [1, 2, 3]
    assert all(len(b) >= 5 * MiB for b in bodies[:-1])  # S3's minimum for all but the last
    assert all(b.startswith(ZSTD_FRAME_MAGIC) for b in bodies)
    for body, (a, b) in zip(bodies, ranges, strict=True):
        # Each part is an independent frame holding exactly its range, with its size.
        assert zstandard.frame_content_size(body) == b - a
        assert decompress_all(body) == data[a:b]

    stored = read_dest(s3, result.dest_key)
    assert decompress_all(stored) == data
    assert len(stored) == result.bytes_out == sum(len(b) for b in bodies)
    assert result.bytes_in == len(data)
    assert (result.action, result.codec, result.part_count) == ("compress", "zstd", 3)
    range_hashes = [hashlib.sha256(data[a:b]).hexdigest() for a, b in ranges]
    assert list(result.range_sha256s or ()) == range_hashes
    joined = b"".join(bytes.fromhex(h) for h in range_hashes)
    assert result.source_sha256 == f"tree-sha256:{hashlib.sha256(joined).hexdigest()}:{RANGE}"
    assert parse_tree_sha256(result.source_sha256) == (hashlib.sha256(joined).hexdigest(), RANGE)
    assert list(result.part_checksums or ()) == [p["ChecksumSHA256"] for p in parts]
    assert (result.checksum_sha256 or "").endswith("-3")
    head = s3.head_object(Bucket=ARCHIVE, Key=result.dest_key, ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentType"] == ZSTD_CONTENT_TYPE
    assert head["Metadata"][META_SOURCE_SIZE] == str(len(data))
    assert head["Metadata"][META_RANGE_SIZE] == str(RANGE)
    assert head["ChecksumSHA256"].split("-")[0] == (result.checksum_sha256 or "").split("-")[0]
    assert open_uploads(s3) == []
    verify(s3, result, dest_bucket=ARCHIVE)
    verify(s3, item, dest_bucket=ARCHIVE, expected_sha256=result.source_sha256)


def test_highly_compressible_parts_are_padded_with_a_skippable_frame(s3: Any) -> None:
    data = zeros(17 * MiB)
    item = stage(s3, "ecephys/flat.dat", data)
    parts = record_calls(s3, "UploadPart")

    result = run_chunked(s3, item)

    bodies = [part_body(p) for p in parts]
    assert [len(b) for b in bodies[:-1]] == [5 * MiB, 5 * MiB]  # padded to exactly 5 MiB
    assert len(bodies[-1]) < 1024  # the last part may be small: not padded
    for body in bodies[:-1]:
        reader = zstandard.ZstdDecompressor().decompressobj()
        assert reader.decompress(body) == bytes(RANGE)
        padding = reader.unused_data  # what follows the data frame: the skippable frame
        magic, length = struct.unpack("<II", padding[:8])
        assert magic == SKIPPABLE_MAGIC and length == len(padding) - 8

    stored = read_dest(s3, result.dest_key)
    # zstandard 0.25 skips the padding frames when it reads across frames ...
    assert decompress_all(stored) == data
    # ... so does the zstd command-line tool, which also checks every frame's checksum.
    if shutil.which("zstd") is None:
        pytest.skip("the zstd CLI is not installed")
    decoded = subprocess.run(["zstd", "-d", "-c"], input=stored, capture_output=True, check=True)
    assert decoded.stdout == data
    subprocess.run(["zstd", "-t", "-q"], input=stored, capture_output=True, check=True)


def test_skippable_frame_is_exact_and_ignored() -> None:
    frame = skippable_frame(100)
    assert len(frame) == 100 and frame[:4] == struct.pack("<I", SKIPPABLE_MAGIC)
    assert len(skippable_frame(8)) == 8
    with pytest.raises(ValueError):
        skippable_frame(7)
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    blob = compressor.compress(b"a" * 1000) + skippable_frame(8) + compressor.compress(b"b" * 10)
    assert decompress_all(blob) == b"a" * 1000 + b"b" * 10


def test_a_too_small_last_range_is_folded_into_the_previous_one(s3: Any) -> None:
    data = random_bytes(2 * RANGE + MiB)  # a 1 MiB tail: under the 5 MiB minimum
    item = stage(s3, "ecephys/probe_b.dat", data)

    items = start(s3, item)

    assert [(i["part_number"], i["range_start"], i["range_end"]) for i in items] == [
        (1, 0, RANGE),
        (2, RANGE, len(data)),
    ]
    assert {i["part_count"] for i in items} == {2}
    assert {i["action"] for i in items} == {"compress_range"}
    # A plain item still dumps without the range fields: plans and events are unchanged.
    assert "part_number" not in item.model_dump(mode="json")
    assert len({i["upload_id"] for i in items}) == 1
    results = [iterate(s3, i) for i in items]
    assert [r["bytes_in"] for r in results] == [RANGE, RANGE + MiB]
    done = complete_chunked(s3, results, dest_bucket=ARCHIVE)
    assert decompress_all(read_dest(s3, done.dest_key)) == data
    verify(s3, done, dest_bucket=ARCHIVE)


def test_one_range_file_still_round_trips(s3: Any) -> None:
    data = random_bytes(RANGE + 2 * MiB)  # folds into a single range
    item = stage(s3, "ecephys/probe_c.dat", data)
    result = run_chunked(s3, item)
    assert result.part_count == 1
    assert result.source_sha256.endswith(f":{len(data)}")
    assert decompress_all(read_dest(s3, result.dest_key)) == data
    verify(s3, result, dest_bucket=ARCHIVE)


def test_parts_can_arrive_in_any_order(s3: Any) -> None:
    data = random_bytes(4 * RANGE) + zeros(RANGE)
    item = stage(s3, "ecephys/probe_d.dat", data)
    in_order = run_chunked(s3, item)
    first_object = read_dest(s3, item.dest_key)

    # The Map runs its iterations in any order, and returns them in any order too.
    items = start(s3, item)
    results = [iterate(s3, items[i]) for i in (4, 1, 3, 0, 2)]
    random.Random(3).shuffle(results)
    shuffled = complete_chunked(s3, results, dest_bucket=ARCHIVE)

    assert read_dest(s3, item.dest_key) == first_object  # zstd is deterministic
    assert shuffled.source_sha256 == in_order.source_sha256
    assert shuffled.range_sha256s == in_order.range_sha256s
    assert decompress_all(first_object) == data
    verify(s3, shuffled, dest_bucket=ARCHIVE)


def test_result_survives_json(s3: Any) -> None:
    item = stage(s3, "ecephys/probe_e.dat", zeros(2 * RANGE))
    items = start(s3, item)
    part = TransferResult.from_dict(iterate(s3, items[0]))
    assert TransferResult.from_dict(as_json(part.to_dict())) == part
    assert part.action == "compress_range" and part.part_number == 1 and part.etag
    done = complete_chunked(s3, [part, iterate(s3, items[1])], dest_bucket=ARCHIVE)
    assert TransferResult.from_dict(as_json(done.to_dict())) == done


# --- failures ---------------------------------------------------------------------------


def test_failed_part_then_abort_leaves_nothing(s3: Any) -> None:
    data = random_bytes(17 * MiB)
    item = stage(s3, "ecephys/probe_f.dat", data)
    items = start(s3, item)
    calls = {"UploadPart": 0}

    def fail_second_part(**_: Any) -> None:
        calls["UploadPart"] += 1
        if calls["UploadPart"] == 2:
            raise ConnectionError("network dropped on part 2")

    s3.meta.events.register("before-call.s3.UploadPart", fail_second_part)
    results = [iterate(s3, items[0])]
    with pytest.raises(ConnectionError, match="part 2"):
        iterate(s3, items[1])
    results.append(iterate(s3, items[2]))  # the other iterations go on
    # A transient fault leaves the upload open for the Map's Retry ...
    assert len(open_uploads(s3)) == 1
    # ... and when the retries run out, the Catch aborts it.
    upload_id = items[0]["upload_id"]
    assert abort_chunked(s3, dest_bucket=ARCHIVE, dest_key=item.dest_key, upload_id=upload_id)
    assert not abort_chunked(s3, dest_bucket=ARCHIVE, dest_key=item.dest_key, upload_id=upload_id)

    assert not dest_exists(s3, item.dest_key)
    assert open_uploads(s3) == []
    with pytest.raises(TransferError, match=r"missing \[2\]"):
        complete_chunked(s3, results, dest_bucket=ARCHIVE)
    assert not dest_exists(s3, item.dest_key)


def test_a_changed_source_fails_the_range_and_aborts_the_upload(s3: Any) -> None:
    item = stage(s3, "ecephys/probe_g.dat", random_bytes(2 * RANGE))
    items = start(s3, item)
    iterate(s3, items[0])
    s3.put_object(Bucket=STAGING, Key=item.source_key, Body=b"rewritten")

    with pytest.raises(TransferError, match="no longer has the planned ETag"):
        iterate(s3, items[1])

    assert open_uploads(s3) == []  # aborted at once: the other ranges stop early
    assert not dest_exists(s3, item.dest_key)


def test_stale_plan_opens_no_upload(s3: Any) -> None:
    item = stage(s3, "ecephys/probe_h.dat", random_bytes(2 * RANGE))
    s3.put_object(Bucket=STAGING, Key=item.source_key, Body=b"rewritten")
    with pytest.raises(TransferError, match="no longer has the planned ETag"):
        start(s3, item)
    assert open_uploads(s3) == []
    with pytest.raises(ValueError, match="only a compress item"):
        start_chunked(s3, item.model_copy(update={"action": "copy"}), dest_bucket=ARCHIVE)
    with pytest.raises(ValueError, match="empty"):
        start_chunked(s3, item.model_copy(update={"size": 0}), dest_bucket=ARCHIVE)


@pytest.mark.parametrize("defect", ["missing", "duplicate", "foreign"])
def test_complete_rejects_an_incomplete_set_and_aborts(s3: Any, defect: str) -> None:
    item = stage(s3, "ecephys/probe_i.dat", random_bytes(17 * MiB))
    items = start(s3, item)
    results = [iterate(s3, i) for i in items]
    if defect == "missing":
        results = [results[0], results[2]]
    elif defect == "duplicate":
        results = [results[0], results[1], results[1]]
    else:
        results[1] = {**results[1], "upload_id": "another-upload"}

    with pytest.raises(TransferError, match="cannot complete"):
        complete_chunked(s3, results, dest_bucket=ARCHIVE)

    assert not dest_exists(s3, item.dest_key)
    assert open_uploads(s3) == []


def test_transient_error_on_complete_keeps_the_upload_for_a_retry(s3: Any) -> None:
    item = stage(s3, "ecephys/probe_j.dat", zeros(2 * RANGE))
    results = [iterate(s3, i) for i in start(s3, item)]
    calls = {"n": 0}

    def throttle_once(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            error = {"Error": {"Code": "SlowDown", "Message": "Reduce your request rate"}}
            raise ClientError(error, "CompleteMultipartUpload")

    s3.meta.events.register("before-call.s3.CompleteMultipartUpload", throttle_once)
    with pytest.raises(TransientError) as excinfo:
        complete_chunked(s3, results, dest_bucket=ARCHIVE)
    assert not isinstance(excinfo.value, TransferError)
    assert len(open_uploads(s3)) == 1

    done = complete_chunked(s3, results, dest_bucket=ARCHIVE)
    verify(s3, done, dest_bucket=ARCHIVE)
    assert open_uploads(s3) == []


def test_complete_retried_after_a_lost_response_is_idempotent(s3: Any) -> None:
    item = stage(s3, "ecephys/probe_k.dat", zeros(2 * RANGE))
    results = [iterate(s3, i) for i in start(s3, item)]
    first = complete_chunked(s3, results, dest_bucket=ARCHIVE)

    def gone(**_: Any) -> None:
        error = {"Error": {"Code": "NoSuchUpload", "Message": "The upload does not exist"}}
        raise ClientError(error, "CompleteMultipartUpload")

    # Real S3 answers NoSuchUpload to a second completion; moto would complete again.
    s3.meta.events.register("before-call.s3.CompleteMultipartUpload", gone)
    again = complete_chunked(s3, results, dest_bucket=ARCHIVE)

    assert dataclasses.replace(again, etag=first.etag) == first
    assert dest_exists(s3, item.dest_key)
    verify(s3, again, dest_bucket=ARCHIVE)


def test_a_wrong_checksum_on_completion_takes_the_object_down(s3: Any) -> None:
    item = stage(s3, "ecephys/probe_n.dat", zeros(2 * RANGE))
    results = [iterate(s3, i) for i in start(s3, item)]

    def tamper(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChecksumSHA256"] = base64.b64encode(bytes(32)).decode() + "-2"

    s3.meta.events.register("after-call.s3.CompleteMultipartUpload", tamper)
    with pytest.raises(VerificationError, match="the parts give"):
        complete_chunked(s3, results, dest_bucket=ARCHIVE)
    assert not dest_exists(s3, item.dest_key)


# --- verify -----------------------------------------------------------------------------


def test_verify_names_the_range_that_differs(s3: Any) -> None:
    data = random_bytes(17 * MiB)
    item = stage(s3, "ecephys/probe_l.dat", data)
    result = run_chunked(s3, item)
    hashes = list(result.range_sha256s or ())
    hashes[1] = hashlib.sha256(b"something else").hexdigest()
    wrong = dataclasses.replace(
        result, range_sha256s=tuple(hashes), source_sha256=tree_sha256(hashes, RANGE)
    )

    with pytest.raises(VerificationError, match=r"range 2 \(bytes 6291456-12582911\)"):
        verify(s3, wrong, dest_bucket=ARCHIVE)
    with pytest.raises(VerificationError, match=f"not {len(data) - 1}"):
        verify(s3, dataclasses.replace(result, bytes_in=len(data) - 1), dest_bucket=ARCHIVE)
    other_range = tree_sha256(result.range_sha256s or (), 2 * RANGE)
    with pytest.raises(VerificationError, match="range size"):
        verify(s3, dataclasses.replace(result, source_sha256=other_range), dest_bucket=ARCHIVE)
    with pytest.raises(VerificationError, match="S3 reports checksum"):
        other = base64.b64encode(hashlib.sha256(b"other parts").digest()).decode()
        bad = dataclasses.replace(result, checksum_sha256=f"{other}-3")
        verify(s3, bad, dest_bucket=ARCHIVE)


def test_verify_part_checks_each_frame_on_its_own(s3: Any) -> None:
    data = random_bytes(2 * RANGE) + zeros(RANGE)  # the third part is tiny
    item = stage(s3, "ecephys/probe_o.dat", data)
    result = run_chunked(s3, item)
    assert sum(result.part_sizes or ()) == result.bytes_out

    for number in (3, 1, 2):  # a Map over the parts, in any order
        verify_part(s3, result, number, dest_bucket=ARCHIVE)

    hashes = list(result.range_sha256s or ())
    hashes[0] = hashes[1]
    with pytest.raises(VerificationError, match="part 1: bytes 0-6291455 decompress to"):
        verify_part(
            s3, dataclasses.replace(result, range_sha256s=tuple(hashes)), 1, dest_bucket=ARCHIVE
        )
    sizes = list(result.part_sizes or ())
    sizes[0] -= 1  # the part read one byte short: a truncated frame
    shifted = dataclasses.replace(result, part_sizes=tuple(sizes), bytes_out=result.bytes_out - 1)
    with pytest.raises(VerificationError, match="part 1"):
        verify_part(s3, shifted, 1, dest_bucket=ARCHIVE)
    with pytest.raises(VerificationError, match="the object has"):
        verify_part(s3, dataclasses.replace(result, bytes_out=1), 1, dest_bucket=ARCHIVE)
    with pytest.raises(ValueError, match="between 1 and 3"):
        verify_part(s3, result, 4, dest_bucket=ARCHIVE)


def test_a_range_result_cannot_be_verified_alone(s3: Any) -> None:
    item = stage(s3, "ecephys/probe_m.dat", zeros(2 * RANGE))
    part = TransferResult.from_dict(iterate(s3, start(s3, item)[0]))
    with pytest.raises(ValueError, match="complete_chunked"):
        verify(s3, part, dest_bucket=ARCHIVE)
