"""A minimal in-memory S3 client: exactly the calls `transfer()`'s compress and copy paths make.

moto's S3 keeps every uploaded part and joins them in memory on CompleteMultipartUpload;
with it, a compression benchmark mostly measures moto. This fake serves source objects from
any byte stream (a file on disk, read at every GET, ranges included) and *discards* what is
uploaded, counting it, so the figure is the worker's own work: reading, hashing,
compressing, chunking into parts, checksumming them. Parts may be uploaded from several
threads at once (the chunked path).
Server-side copies (CopyObject, UploadPartCopy) are checked (source, range, ETag condition)
and counted, never performed: a source can be as large as S3 allows without existing.

The surface mirrors what upload_processor.pipeline.transfer uses (keyword arguments,
response fields); anything else is an AttributeError, so a change in the worker that needs
a new call shows up here at once instead of being silently absorbed.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError


class FakeStreamingBody:
    """What botocore's StreamingBody offers the worker: ``read(amt)`` and ``close()``."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.closed = False

    def read(self, amt: int | None = None) -> bytes:
        return self._stream.read(-1 if amt is None else amt)

    def close(self) -> None:
        self.closed = True
        self._stream.close()


class _Limited(io.RawIOBase):
    """The next `length` bytes of a stream, and no more (a ranged GET's body)."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self._left = length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._stream.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._stream.close()
        super().close()


def _skip(stream: BinaryIO, count: int) -> None:
    """Read and drop `count` bytes of a stream that cannot seek."""
    while count > 0:
        dropped = len(stream.read(min(count, 8 * 1024 * 1024)))
        if not dropped:
            return
        count -= dropped


def _length(body: bytes | BinaryIO) -> int:
    """The size of an upload's body: bytes, or a file object read to its end (and counted)."""
    if isinstance(body, bytes | bytearray | memoryview):
        return len(body)
    total = 0
    while chunk := body.read(8 * 1024 * 1024):
        total += len(chunk)
    return total


@dataclass
class _Source:
    size: int
    etag: str
    opener: Callable[[], BinaryIO]


@dataclass
class FakeS3:
    """Source objects registered with `add_object`; uploads counted, never stored."""

    sources: dict[tuple[str, str], _Source] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    bytes_uploaded: int = 0
    completed: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    bytes_copied: int = 0  # server-side, by CopyObject and UploadPartCopy
    _uploads: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_object(
        self,
        bucket: str,
        key: str,
        *,
        size: int,
        etag: str = "0" * 32,
        data: bytes | None = None,
        opener: Callable[[], BinaryIO] | None = None,
    ) -> None:
        """Serve `data` (or whatever `opener()` streams, `size` bytes) at bucket/key."""
        if opener is None:
            if data is None:
                raise ValueError("give data or opener")
            payload = data
            opener = lambda: io.BytesIO(payload)  # noqa: E731 - BytesIO shares the bytes
        self.sources[(bucket, key)] = _Source(size=size, etag=etag, opener=opener)

    # --- reads --------------------------------------------------------------------------

    def _source(self, operation: str, bucket: str, key: str, if_match: str | None) -> _Source:
        source = self.sources.get((bucket, key))
        if source is None:
            raise ClientError(
                {"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}},
                operation,
            )
        if if_match is not None and if_match.strip('"') != source.etag:
            raise ClientError(
                {"Error": {"Code": "PreconditionFailed", "Message": "At least one failed"}},
                operation,
            )
        return source

    def add_file(self, bucket: str, key: str, path: Path, *, etag: str = "0" * 32) -> None:
        """Serve the file at `path` (read from disk at every GET: the real read path)."""
        self.add_object(
            bucket, key, size=path.stat().st_size, etag=etag, opener=lambda: path.open("rb")
        )

    def get_object(
        self, *, Bucket: str, Key: str, IfMatch: str | None = None, Range: str | None = None
    ) -> dict[str, Any]:
        self.calls["get_object"] += 1
        source = self._source("GetObject", Bucket, Key, IfMatch)
        stream = source.opener()
        if Range is None:
            return {
                "Body": FakeStreamingBody(stream),
                "ContentLength": source.size,
                "ETag": f'"{source.etag}"',
                "Metadata": {},
            }
        first, last = (int(v) for v in Range.removeprefix("bytes=").split("-"))
        last = min(last, source.size - 1)
        if stream.seekable():
            stream.seek(first)
        else:
            _skip(stream, first)
        return {
            "Body": FakeStreamingBody(_Limited(stream, last - first + 1)),
            "ContentLength": last - first + 1,
            "ContentRange": f"bytes {first}-{last}/{source.size}",
            "ETag": f'"{source.etag}"',
            "Metadata": {},
        }

    def head_object(
        self,
        *,
        Bucket: str,
        Key: str,
        IfMatch: str | None = None,
        ChecksumMode: str | None = None,
    ) -> dict[str, Any]:
        self.calls["head_object"] += 1
        source = self._source("HeadObject", Bucket, Key, IfMatch)
        return {"ContentLength": source.size, "ETag": f'"{source.etag}"', "Metadata": {}}

    # --- writes (counted, discarded) ----------------------------------------------------

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.calls["put_object"] += 1
        self.bytes_uploaded += len(Body)
        self.completed.append(Key)
        return {"ETag": '"put"'}

    def create_multipart_upload(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self.calls["create_multipart_upload"] += 1
        upload_id = f"upload-{len(self._uploads) + 1}"
        self._uploads[upload_id] = Key
        return {"UploadId": upload_id}

    def upload_part(
        self,
        *,
        Bucket: str,
        Key: str,
        UploadId: str,
        PartNumber: int,
        Body: bytes | BinaryIO,
        **_: Any,
    ) -> dict[str, Any]:
        size = _length(Body)
        with self._lock:
            self.calls["upload_part"] += 1
            if self._uploads.get(UploadId) != Key:
                raise ClientError(
                    {"Error": {"Code": "NoSuchUpload", "Message": UploadId}}, "UploadPart"
                )
            self.bytes_uploaded += size
        return {"ETag": f'"part-{PartNumber}"'}

    def complete_multipart_upload(
        self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: dict[str, Any]
    ) -> dict[str, Any]:
        self.calls["complete_multipart_upload"] += 1
        if self._uploads.pop(UploadId, None) != Key:
            raise ClientError(
                {"Error": {"Code": "NoSuchUpload", "Message": UploadId}}, "CompleteMultipartUpload"
            )
        self.completed.append(Key)
        return {"ETag": f'"complete-{len(MultipartUpload["Parts"])}"'}

    # --- server-side copies (checked and counted, never performed) -------------------------

    def _copy_source(self, operation: str, copy_source: Any, if_match: str | None) -> _Source:
        if not isinstance(copy_source, dict):
            raise ValueError(f"{operation}: CopySource must be a dict, got {copy_source!r}")
        return self._source(operation, copy_source["Bucket"], copy_source["Key"], if_match)

    def copy_object(
        self,
        *,
        Bucket: str,
        Key: str,
        CopySource: dict[str, str],
        CopySourceIfMatch: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.calls["copy_object"] += 1
        source = self._copy_source("CopyObject", CopySource, CopySourceIfMatch)
        if source.size > 5 * 1024**3:
            raise ClientError(
                {"Error": {"Code": "InvalidRequest", "Message": "larger than 5 GiB"}}, "CopyObject"
            )
        self.bytes_copied += source.size
        self.completed.append(Key)
        return {"CopyObjectResult": {"ETag": f'"{source.etag}"'}}

    def upload_part_copy(
        self,
        *,
        Bucket: str,
        Key: str,
        UploadId: str,
        PartNumber: int,
        CopySource: dict[str, str],
        CopySourceRange: str,
        CopySourceIfMatch: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.calls["upload_part_copy"] += 1
        if self._uploads.get(UploadId) != Key:
            raise ClientError(
                {"Error": {"Code": "NoSuchUpload", "Message": UploadId}}, "UploadPartCopy"
            )
        source = self._copy_source("UploadPartCopy", CopySource, CopySourceIfMatch)
        first, last = (int(v) for v in CopySourceRange.removeprefix("bytes=").split("-"))
        if not 0 <= first <= last < source.size:
            raise ClientError(
                {"Error": {"Code": "InvalidArgument", "Message": CopySourceRange}},
                "UploadPartCopy",
            )
        self.bytes_copied += last - first + 1
        return {"CopyPartResult": {"ETag": f'"copy-part-{PartNumber}"'}}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:
        self.calls["abort_multipart_upload"] += 1
        self._uploads.pop(UploadId, None)
        self.aborted.append(Key)
        return {}
