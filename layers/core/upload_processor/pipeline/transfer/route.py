"""`transfer`: move one planned object into the archive, routed by the plan item's action."""

from __future__ import annotations

from upload_processor.domain.plan import PlanItem
from upload_processor.errors import TransferError
from upload_processor.pipeline.transfer.compress import compress_object
from upload_processor.pipeline.transfer.copy import copy_object
from upload_processor.pipeline.transfer.ecephys import encode_ecephys
from upload_processor.pipeline.transfer.faults import (
    S3Client,
    refuse_own_source,
    transient_surfaced,
    url,
)
from upload_processor.pipeline.transfer.parts import (
    DEFAULT_COPY_PART_SIZE,
    DEFAULT_PART_SIZE,
    MAX_COPY_OBJECT_SIZE,
    check_part_size,
)
from upload_processor.pipeline.transfer.ranges import compress_range
from upload_processor.pipeline.transfer.result import TransferResult


def transfer(
    s3: S3Client,
    item: PlanItem,
    *,
    source_bucket: str,
    dest_bucket: str,
    part_size: int = DEFAULT_PART_SIZE,
    copy_threshold: int = MAX_COPY_OBJECT_SIZE,
    copy_part_size: int = DEFAULT_COPY_PART_SIZE,
) -> TransferResult:
    """Move one planned object from `source_bucket` to `dest_bucket`, as the plan says.

    `compress` streams the source through zstd into a multipart upload (`part_size` is the
    size of each uploaded part, raised if the object would otherwise need more than 10,000
    parts). `copy` is server-side: one CopyObject up to `copy_threshold` (S3's limit is
    5 GiB), UploadPartCopy in `copy_part_size` ranges above it. `compress_range` compresses
    one range of a chunked file into one part of its multipart upload (`start_chunked`) and
    returns that part's result, for `complete_chunked`. `encode_ecephys` encodes one time
    range of an ecephys stream into its Zarr chunks (`transfer.ecephys`; the ecephys function
    runs it, which has the codec's layer).

    Either way the source must still be the object that was planned (same ETag and size),
    and a failure leaves nothing behind at the destination: no partial object, no dangling
    multipart upload. Raises `TransferError` for permanent faults it can name, and
    `TransientError` for transient ones (throttling, 5xx, timeouts), which the caller can
    retry; any other AWS error (AccessDenied, ...) propagates as it is.
    """
    check_part_size("part_size", part_size)
    check_part_size("copy_part_size", copy_part_size)
    source, dest = url(source_bucket, item.source_key), url(dest_bucket, item.dest_key)
    buckets = {"source_bucket": source_bucket, "dest_bucket": dest_bucket}
    refuse_own_source(item, **buckets, source=source, dest=dest)
    with transient_surfaced(f"transferring {source} -> {dest}"):
        if item.action == "compress":
            return compress_object(s3, item, part_size=part_size, **buckets)
        if item.action == "compress_range":
            return compress_range(s3, item, **buckets)
        if item.action == "encode_ecephys":
            return encode_ecephys(s3, item, **buckets)
        if item.action == "copy":
            return copy_object(
                s3, item, copy_threshold=copy_threshold, copy_part_size=copy_part_size, **buckets
            )
    raise TransferError(f"unknown action {item.action!r}", source=source, dest=dest)
