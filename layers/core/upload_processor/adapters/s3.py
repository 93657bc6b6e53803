"""Small S3 helpers shared by the stages: listing, reading whole small objects, writing JSON,
and reading S3's checksums (which ones prove what about an object's bytes)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
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


def put_json(s3: Any, bucket: str, key: str, document: Any, *, indent: int | None = 2) -> None:
    """Write a JSON document with a SHA-256 checksum S3 verifies on receipt.

    Documents people read (reports, manifests) are indented; machine state (the plan, batch
    results) is written with `indent=None`, compact.
    """
    body = json.dumps(document, indent=indent, sort_keys=False, default=str).encode()
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


# --- checksums and ETags ---------------------------------------------------------------------


def quoted_etag(etag: str) -> str:
    """An ETag in quotes, as S3 takes it in conditions (moto compares them verbatim)."""
    return f'"{etag.strip(chr(34))}"'


def b64_sha256(data: bytes) -> str:
    """The base64 SHA-256 of `data`: the form S3 takes and reports as ChecksumSHA256."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def full_object_sha256(response: Mapping[str, Any]) -> str:
    """The hex SHA-256 of the whole object if S3 reports one (HeadObject, GetObject,
    CopyObjectResult), else "".

    A multipart object's SHA-256 is a checksum of the parts' checksums ("...-N", type
    COMPOSITE), not of the bytes; its ETag then ends in "-N" too, which catches the case
    where a response omits the suffix and the type.
    """
    value = response.get("ChecksumSHA256") or ""
    if not value or "-" in value or response.get("ChecksumType") == "COMPOSITE":
        return ""
    if "-" in str(response.get("ETag", "")):
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.hex() if len(raw) == 32 else ""


def is_md5_etag(etag: str) -> bool:
    """Whether the ETag has the form of a plain MD5 (a single-part upload's, unencrypted)."""
    etag = etag.strip('"')
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower())


def is_kms_encrypted(head: Mapping[str, Any]) -> bool:
    """Under SSE-KMS (and DSSE-KMS) an ETag is not the MD5 of the bytes."""
    return "kms" in str(head.get("ServerSideEncryption", ""))


def composite_sha256(part_checksums: list[str] | tuple[str, ...]) -> str:
    """S3's checksum of a multipart object: SHA-256 of the parts' digests, "-<parts>"."""
    joined = b"".join(base64.b64decode(c) for c in part_checksums)
    digest = base64.b64encode(hashlib.sha256(joined).digest()).decode("ascii")
    return f"{digest}-{len(part_checksums)}"
