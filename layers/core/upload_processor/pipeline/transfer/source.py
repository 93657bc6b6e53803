"""Reading the planned source: always conditioned on the ETag it was planned with, so that a
source changed since the plan is refused rather than archived under the old plan."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import quoted_etag
from upload_processor.domain.plan import PlanItem
from upload_processor.errors import error_code
from upload_processor.pipeline.transfer.faults import S3Client, changed, source_fault


def _if_match(item: PlanItem) -> dict[str, str]:
    return {"IfMatch": quoted_etag(item.etag)} if item.etag else {}


def get_source(
    s3: S3Client, bucket: str, item: PlanItem, *, source: str, dest: str
) -> dict[str, Any]:
    """GetObject of the whole planned source (its body is the caller's to close)."""
    try:
        return s3.get_object(Bucket=bucket, Key=item.source_key, **_if_match(item))
    except ClientError as exc:
        raise source_fault(exc, item, source=source, dest=dest) from exc


def head_source(
    s3: S3Client, bucket: str, item: PlanItem, *, source: str, dest: str
) -> dict[str, Any]:
    """HeadObject of the planned source, with its checksums."""
    try:
        return s3.head_object(
            Bucket=bucket, Key=item.source_key, ChecksumMode="ENABLED", **_if_match(item)
        )
    except ClientError as exc:
        raise source_fault(exc, item, source=source, dest=dest) from exc


def get_source_range(
    s3: S3Client, bucket: str, item: PlanItem, start: int, end: int, *, source: str, dest: str
) -> Any:
    """The body of bytes [start, end) of the planned source, once the response shows the
    source still has its planned size (a shorter one answers InvalidRange)."""
    try:
        response = s3.get_object(
            Bucket=bucket, Key=item.source_key, Range=f"bytes={start}-{end - 1}", **_if_match(item)
        )
    except ClientError as exc:
        if error_code(exc) in ("InvalidRange", "416"):
            raise changed(item, f"fewer than {end}", source=source, dest=dest) from exc
        raise source_fault(exc, item, source=source, dest=dest) from exc
    body = response["Body"]
    total = range_total(response.get("ContentRange"))
    if response["ContentLength"] != end - start or (total is not None and total != item.size):
        body.close()
        raise changed(item, total if total is not None else "other", source=source, dest=dest)
    return body


def range_total(content_range: str | None) -> int | None:
    """The total size in a Content-Range header ("bytes 0-99/1000" -> 1000)."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None
