"""A compressed range is held for its UploadPart (issue 17): in memory as the compressor's
chunks, in /tmp only past the memory limit; either way the part S3 gets is the same bytes."""

from __future__ import annotations

import base64
import hashlib
import io
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import zstandard
from moto import mock_aws

from upload_processor.domain.plan import plan_item
from upload_processor.domain.units import MiB
from upload_processor.pipeline.transfer import (
    complete_chunked,
    ranges,
    start_chunked,
    transfer,
    verify,
)
from upload_processor.pipeline.transfer.ranges import HeldChunks, Spool, spool_memory_limit

STAGING, ARCHIVE = "staging-bucket", "archive-bucket"


def _pieces() -> list[bytes]:
    rng = random.Random(3)
    return [rng.randbytes(rng.choice([0, 1, 7, 4096, 65536])) for _ in range(60)]


def test_held_chunks_read_and_seek_like_a_file() -> None:
    pieces = _pieces()
    joined = b"".join(pieces)
    held = HeldChunks(pieces)
    assert held.read() == joined
    assert held.read(10) == b""
    for offset, size in ((0, 1), (3, 4096), (5000, 70000), (len(joined) - 5, 100)):
        held.seek(offset)
        assert held.tell() == offset
        assert held.read(size) == joined[offset : offset + size]
    held.seek(-3, io.SEEK_END)
    assert held.read() == joined[-3:]
    held.seek(0)
    out = bytearray()
    while block := held.read(8192):  # how http.client sends a file body
        out += block
    assert bytes(out) == joined


@pytest.mark.parametrize("limit", [1 << 40, 0, 50_000])
def test_a_spool_gives_back_what_it_was_given_held_or_on_disk(limit: int) -> None:
    pieces = _pieces()
    spool = Spool(source="s3://a/k", dest="s3://b/k", memory_limit=limit)
    for piece in pieces:
        spool.write(piece)
    joined = b"".join(pieces)
    assert spool.in_memory is (len(joined) <= limit)
    assert spool.size == len(joined)
    digest = hashlib.sha256(joined).digest()
    assert spool.b64_sha256() == base64.b64encode(digest).decode()
    assert spool.rewound().read() == joined
    assert spool.rewound().read() == joined  # a retry rewinds and reads it all again
    spool.close()


def test_the_memory_limit_is_half_the_lambda_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
    assert spool_memory_limit() == 1024 * MiB
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    assert spool_memory_limit() == ranges.SPOOL_MEMORY


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=STAGING)
        client.create_bucket(Bucket=ARCHIVE)
        yield client


@pytest.mark.parametrize("memory", ["held", "spilled"])
def test_a_chunked_file_archives_the_same_whether_parts_are_held_or_spilled(
    s3: Any, monkeypatch: pytest.MonkeyPatch, memory: str
) -> None:
    if memory == "spilled":
        monkeypatch.setattr(ranges, "SPOOL_MEMORY", 1024)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    rng = random.Random(5)
    data = b"".join(rng.randbytes(64) * 512 for _ in range(12 * MiB // (64 * 512)))
    etag = s3.put_object(Bucket=STAGING, Key="s/ecephys/a.dat", Body=data)["ETag"]
    item = plan_item(
        prefix="s", key="s/ecephys/a.dat", size=len(data), etag=etag, asset_name="asset"
    )
    items = start_chunked(s3, item, dest_bucket=ARCHIVE, range_size=6 * MiB)
    parts = [transfer(s3, i, source_bucket=STAGING, dest_bucket=ARCHIVE) for i in items]
    result = complete_chunked(s3, parts, dest_bucket=ARCHIVE)
    stored = s3.get_object(Bucket=ARCHIVE, Key=result.dest_key)["Body"].read()
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stored), read_across_frames=True)
    assert reader.read() == data
    verify(s3, result, dest_bucket=ARCHIVE)
