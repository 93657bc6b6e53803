"""Small S3 helpers shared by the stages: listing, reading whole small objects, writing JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.errors import ObjectTooLargeError, error_code

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# 412: a condition (If-Match, If-None-Match) failed; 409: a concurrent conditional write won
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def is_not_found(exc: BaseException) -> bool:
    """The object (or key) does not exist: an answer, not a fault."""
    return error_code(exc) in NOT_FOUND_CODES


def is_conflict(exc: BaseException) -> bool:
    """A conditional write or delete lost: the object is not as the condition required."""
    return error_code(exc) in CONFLICT_CODES


def list_objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object under prefix (paginated)."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def read_bytes(
    s3: Any, bucket: str, key: str, version_id: str | None = None, *, max_bytes: int | None = None
) -> bytes:
    """The whole object (for small metadata files only).

    With `max_bytes`, a larger object raises ObjectTooLargeError from its size, unread.
    """
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    out = s3.get_object(**kwargs)
    size = int(out.get("ContentLength") or 0)
    if max_bytes is not None and size > max_bytes:
        out["Body"].close()
        raise ObjectTooLargeError(key, size, max_bytes)
    return out["Body"].read()


def put_json(s3: Any, bucket: str, key: str, document: Any) -> None:
    """Write a JSON document with a SHA-256 checksum S3 verifies on receipt."""
    body = json.dumps(document, indent=2, sort_keys=False, default=str).encode()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )


def exists(s3: Any, bucket: str, key: str) -> bool:
    """Whether an object exists (a 404 is an answer, anything else is raised)."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


def join(prefix: str, name: str) -> str:
    """prefix + '/' + name, for a prefix that may be empty."""
    return f"{prefix}/{name}" if prefix else name
