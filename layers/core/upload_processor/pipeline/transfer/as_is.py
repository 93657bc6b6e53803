"""Store the smaller: a file zstd does not shrink is archived as is, under its plain name.

Streaming compression cannot know the output's size before the end, so `compress_object`
compresses as usual and decides when the last bytes are out: if the zstd stream is not
smaller than the source, its multipart upload is aborted (or its single PutObject never made),
so no `.zst` object ever exists, and the planned source version is copied server-side to the
plain name instead (`store_as_is`). Nothing in the archive is overwritten or deleted for it:
the `.zst` was never completed, and the plain name is written under the job's asset lease
before the asset is sealed, as every other object is.

The result says so (`stored: "as_is"`, the sizes as its reason, `planned_key`: the `.zst` key
the plan gave it), and Finalize writes it into the manifest with the final key, so a reader
never has to guess whether to decompress. A resumed job recognises the object an earlier
attempt stored this way (`as_is_item`, used by `archive_guard.reuse_verified`). The decision
is deterministic (same bytes, same level, same output), so every attempt makes the same one.
"""

from __future__ import annotations

import dataclasses
import logging

from upload_processor.domain.archive import STORED_AS_IS, as_is_key
from upload_processor.domain.plan import PlanItem
from upload_processor.errors import TransferError
from upload_processor.pipeline.transfer.copy import copy_object
from upload_processor.pipeline.transfer.faults import S3Client, url
from upload_processor.pipeline.transfer.parts import DEFAULT_COPY_PART_SIZE, MAX_COPY_OBJECT_SIZE
from upload_processor.pipeline.transfer.result import TransferResult

logger = logging.getLogger(__name__)


def as_is_item(item: PlanItem) -> PlanItem | None:
    """The plan item as a plain copy to its `as_is_key`; None for an item that is not a whole
    `compress` or whose plain name the asset reserves (it stays compressed)."""
    if item.action != "compress":
        return None
    plain = as_is_key(item.dest_key)
    if plain is None:
        return None
    return item.model_copy(
        update={"dest_key": plain, "action": "copy", "codec": None, "level": None}
    )


def incompressible_reason(size: int, compressed: int) -> str:
    """Why a file is stored as is, as the manifest records it."""
    return f"zstd did not shrink it ({compressed} bytes compressed for {size} bytes)"


def mark_as_is(result: TransferResult, item: PlanItem, reason: str) -> TransferResult:
    """A copy's result as the as-is storage of the planned `.zst` item."""
    return dataclasses.replace(
        result, stored=STORED_AS_IS, stored_reason=reason, planned_key=item.dest_key
    )


def store_as_is(
    s3: S3Client,
    item: PlanItem,
    *,
    source_bucket: str,
    dest_bucket: str,
    source_sha256: str,
    compressed_size: int,
) -> TransferResult:
    """Copy the planned source version (server-side, conditioned on its ETag) to the plain
    name; the result carries the SHA-256 hashed while compressing. Raises TransferError when
    the item cannot be stored as is (the caller keeps it compressed only by not calling this)."""
    plain = as_is_item(item)
    if plain is None:
        raise TransferError(
            "cannot be stored as is under a reserved name",
            source=url(source_bucket, item.source_key),
            dest=url(dest_bucket, item.dest_key),
        )
    copied = copy_object(
        s3,
        plain,
        source_bucket=source_bucket,
        dest_bucket=dest_bucket,
        copy_threshold=MAX_COPY_OBJECT_SIZE,
        copy_part_size=DEFAULT_COPY_PART_SIZE,
    )
    if copied.source_sha256 and copied.source_sha256 != source_sha256:
        raise TransferError(
            f"S3 reports SHA-256 {copied.source_sha256} for the copy, the bytes compressed "
            f"hashed to {source_sha256}",
            source=url(source_bucket, item.source_key),
            dest=url(dest_bucket, plain.dest_key),
        )
    reason = incompressible_reason(item.size, compressed_size)
    logger.info("stored %s as is at %s: %s", item.source_key, plain.dest_key, reason)
    return mark_as_is(dataclasses.replace(copied, source_sha256=source_sha256), item, reason)
