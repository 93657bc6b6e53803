"""`copy`: bytes the function reads for a server-side copy, of any size: zero.

``transfer()`` with action copy is run through :class:`SpyS3`, a proxy around an S3 client
that records every call and counts the bytes read from any ``get_object`` body (and any
download/select call at all). The figure is bytes read / object size, against the baseline of
a copy through the function, which reads the whole object (ratio 1): the target is 0.

Two clients, so that both the calls' shape and the size claim are covered:

- moto (in-process ``mock_aws``): a small object (one ``CopyObject``) and one above a lowered
  ``copy_threshold`` (``UploadPartCopy`` in 5 MiB parts); the copies are then read back
  outside the spy and compared byte for byte, and ``verify()`` runs through the spy too;
- :class:`FakeS3`, whose sources are generated only if read: objects up to S3's largest
  (5 TiB), with the default threshold (``CopyObject`` up to 5 GiB, ``UploadPartCopy`` above).

A positive control proves the spy counts: for every object of up to 64 MiB, the same object
is also compressed (action compress) through a fresh spy, which must read all of its bytes;
that measured figure is the baseline in the table (the nominal size above 64 MiB).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

from benchmarks import Row
from benchmarks.fake_s3 import FakeS3
from benchmarks.neuropixels import CyclingReader
from upload_processor.domain.plan import PlanItem
from upload_processor.domain.units import GiB, MiB
from upload_processor.pipeline.transfer import MIN_PART_SIZE, transfer, verify

CONTROL_MAX = 64 * MiB  # objects up to this size also get the positive control
TiB = 1024 * GiB
SOURCE_BUCKET = "bench-copy-staging"
DEST_BUCKET = "bench-copy-archive"
# Calls that move object bytes to the caller. get_object bodies are counted byte by byte; a
# call to any of the others is a read by itself (boto3's managed downloads and S3 Select do
# their own GETs, which a proxy does not see).
READ_CALLS = frozenset(
    {
        "get_object",
        "download_file",
        "download_fileobj",
        "select_object_content",
        "get_object_torrent",
    }
)


class _CountingBody:
    """Wraps a get_object body; every byte handed out is counted on the spy."""

    def __init__(self, body: Any, spy: SpyS3) -> None:
        self._body = body
        self._spy = spy

    def read(self, amt: int | None = None) -> bytes:
        data = self._body.read() if amt is None else self._body.read(amt)
        self._spy.bytes_read += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)


class SpyS3:
    """A proxy around any S3 client (boto3's or a fake): calls recorded, bytes read counted."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()
        self.bytes_read = 0

    @property
    def read_calls(self) -> int:
        return sum(count for name, count in self.calls.items() if name in READ_CALLS)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_") or name in ("exceptions", "meta"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            response = attr(*args, **kwargs)
            if name == "get_object" and "Body" in response:
                response = {**response, "Body": _CountingBody(response["Body"], self)}
            return response

        return call


@contextlib.contextmanager
def _quiet_transfer_logs() -> Iterator[None]:
    # A copy that S3 keeps no full-object SHA-256 for logs a warning; expected here.
    logger = logging.getLogger("upload_processor.pipeline.transfer")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _item(key: str, size: int, etag: str) -> PlanItem:
    return PlanItem(
        source_key=f"session/behavior/{key}",
        size=size,
        etag=etag.strip('"'),
        dest_key=f"asset/behavior/{key}",
        action="copy",
    )


def _case(
    label: str,
    client: str,
    size: int,
    spy: SpyS3,
    item: PlanItem,
    *,
    copy_threshold: int | None,
    copy_part_size: int | None,
    verify_too: bool = False,
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if copy_threshold is not None:
        options["copy_threshold"] = copy_threshold
    if copy_part_size is not None:
        options["copy_part_size"] = copy_part_size
    with _quiet_transfer_logs():
        result = transfer(
            spy, item, source_bucket=SOURCE_BUCKET, dest_bucket=DEST_BUCKET, **options
        )
        transfer_read = spy.bytes_read
        if verify_too:
            verify(spy, result, dest_bucket=DEST_BUCKET)
    return {
        "label": label,
        "client": client,
        "size": size,
        "copy_threshold": copy_threshold,
        "copy_part_size": copy_part_size,
        "bytes_read": spy.bytes_read,
        "bytes_read_by_transfer": transfer_read,
        "read_calls": spy.read_calls,
        "calls": dict(spy.calls),
        "verified": verify_too,
        "bytes_in": result.bytes_in,
        "bytes_out": result.bytes_out,
        "ratio": spy.bytes_read / size,
    }


def _control(inner: Any, item: PlanItem) -> int:
    """Bytes a compress of the same object reads through a fresh spy: must be all of them."""
    spy = SpyS3(inner)
    compress = item.model_copy(
        update={
            "action": "compress",
            "codec": "zstd",
            "level": 1,
            "dest_key": item.dest_key + ".zst",
        }
    )
    transfer(spy, compress, source_bucket=SOURCE_BUCKET, dest_bucket=DEST_BUCKET)
    if spy.bytes_read != item.size:
        raise AssertionError(f"the spy counted {spy.bytes_read} of {item.size} bytes compressed")
    return spy.bytes_read


def _moto_cases(small: int, large: int) -> list[dict[str, Any]]:
    """Real boto3 calls against moto: CopyObject and UploadPartCopy, checked byte for byte."""
    import boto3
    from moto import mock_aws

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    out = []
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            for bucket in (SOURCE_BUCKET, DEST_BUCKET):
                s3.create_bucket(Bucket=bucket)
            for label, size, threshold in (
                ("small object, CopyObject", small, None),
                ("above copy_threshold, UploadPartCopy", large, MIN_PART_SIZE),
            ):
                key = f"copy-{size}.avi"
                data = os.urandom(size)
                put = s3.put_object(
                    Bucket=SOURCE_BUCKET,
                    Key=f"session/behavior/{key}",
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                )
                item = _item(key, size, put["ETag"])
                case = _case(
                    label,
                    "moto",
                    size,
                    SpyS3(s3),
                    item,
                    copy_threshold=threshold,
                    copy_part_size=MIN_PART_SIZE if threshold else None,
                    verify_too=True,
                )
                copied = s3.get_object(Bucket=DEST_BUCKET, Key=item.dest_key)["Body"].read()
                if hashlib.sha256(copied).digest() != hashlib.sha256(data).digest():
                    raise AssertionError(f"moto copy of {size} bytes differs from its source")
                case["copy_identical"] = True
                case["control_bytes_read"] = _control(s3, item)
                out.append(case)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return out


def _fake_cases(sizes: list[int]) -> list[dict[str, Any]]:
    """Sizes up to S3's 5 TiB through the fake: its sources are generated only if read."""
    block = os.urandom(MiB)
    out = []
    for size in sizes:
        s3 = FakeS3()
        key = f"huge-{size}.avi"
        etag = hashlib.md5(str(size).encode(), usedforsecurity=False).hexdigest()
        s3.add_object(
            SOURCE_BUCKET,
            f"session/behavior/{key}",
            size=size,
            etag=etag,
            opener=lambda size=size: CyclingReader(block, size),
        )
        kind = "CopyObject" if size <= 5 * GiB else "UploadPartCopy"
        case = _case(
            f"{_size(size)} object, {kind}",
            "fake",
            size,
            SpyS3(s3),
            _item(key, size, etag),
            copy_threshold=None,
            copy_part_size=None,
        )
        if s3.bytes_copied != size:
            raise AssertionError(f"fake S3 copied {s3.bytes_copied} of {size} bytes server-side")
        case["bytes_copied_server_side"] = s3.bytes_copied
        if size <= CONTROL_MAX:
            case["control_bytes_read"] = _control(s3, _item(key, size, etag))
        out.append(case)
    return out


def _size(n: int) -> str:
    for unit, scale in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def run(*, moto_sizes: tuple[int, int], fake_sizes: tuple[int, ...]) -> dict[str, Any]:
    cases = _moto_cases(*moto_sizes) + _fake_cases(list(fake_sizes))
    return {
        "cases": cases,
        "max_bytes_read": max(case["bytes_read"] for case in cases),
        "largest_object": max(case["size"] for case in cases),
        "target_bytes_read": 0,
    }


def _calls(case: dict[str, Any]) -> str:
    shown = ("copy_object", "upload_part_copy")
    return ", ".join(f"{name} x{case['calls'][name]}" for name in shown if name in case["calls"])


def rows(result: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for case in result["cases"]:
        out.append(
            Row(
                f"bytes read, {_size(case['size'])}: {_calls(case)} ({case['client']})",
                (
                    f"{_size(case['control_bytes_read'])} (compress)"
                    if "control_bytes_read" in case
                    else f"{_size(case['size'])} (size)"
                ),
                f"{case['bytes_read']} B",
                f"{case['ratio']:g}",
                "== 0",
                case["bytes_read"] == 0 and case["read_calls"] == 0,
            )
        )
    return out


def notes(result: dict[str, Any]) -> list[str]:
    lines = []
    for case in result["cases"]:
        calls = ", ".join(f"{name} x{n}" for name, n in sorted(case["calls"].items()))
        what = "transfer + verify" if case["verified"] else "transfer"
        threshold = (
            f", copy_threshold {_size(case['copy_threshold'])}" if case["copy_threshold"] else ""
        )
        lines.append(
            f"copy: {case['client']}, {_size(case['size'])}{threshold}: {what} made {calls}; "
            f"{case['bytes_read']} bytes read."
        )
    lines.append(
        "copy: baseline = bytes read through the same spy by a compress of the same object "
        "(a positive control: the spy sees every byte a transfer reads), or the object's size."
    )
    return lines
