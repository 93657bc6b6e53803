"""Server-side copy of one object: S3 copies, not a byte moves through the function.

One CopyObject up to the copy threshold (S3's limit is 5 GiB), UploadPartCopy in ranges above
it. Both are conditioned on the planned ETag, and the copy keeps the staged content type and
user metadata; S3 computes the copy's SHA-256 as it copies where it can.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import full_object_sha256, quoted_etag
from upload_processor.domain.plan import PlanItem
from upload_processor.errors import TransferError
from upload_processor.pipeline.transfer.faults import S3Client, changed, source_fault, url
from upload_processor.pipeline.transfer.parts import part_size_for
from upload_processor.pipeline.transfer.result import TransferResult
from upload_processor.pipeline.transfer.source import head_source

logger = logging.getLogger(__name__)


def copy_object(
    s3: S3Client,
    item: PlanItem,
    *,
    source_bucket: str,
    dest_bucket: str,
    copy_threshold: int,
    copy_part_size: int,
) -> TransferResult:
    """Copy the planned source server-side: CopyObject up to `copy_threshold`, else
    UploadPartCopy in parts of `copy_part_size`; the result, with S3's SHA-256 if known."""
    source, dest = url(source_bucket, item.source_key), url(dest_bucket, item.dest_key)
    head = head_source(s3, source_bucket, item, source=source, dest=dest)
    if head["ContentLength"] != item.size:
        raise changed(item, head["ContentLength"], source=source, dest=dest)
    source_sha256 = full_object_sha256(head)
    copy_source = {"Bucket": source_bucket, "Key": item.source_key}
    if_match = {"CopySourceIfMatch": quoted_etag(item.etag)} if item.etag else {}

    if item.size <= copy_threshold:
        source_sha256 = _single_copy(
            s3,
            item,
            copy_source=copy_source,
            if_match=if_match,
            dest_bucket=dest_bucket,
            source_sha256=source_sha256,
            source=source,
            dest=dest,
        )
    else:
        _multipart_copy(
            s3,
            item,
            head,
            copy_source=copy_source,
            if_match=if_match,
            dest_bucket=dest_bucket,
            part_size=part_size_for(item.size, copy_part_size, source=source, dest=dest),
            source=source,
            dest=dest,
        )
    if not source_sha256:
        logger.warning(
            "copied %s -> %s without a SHA-256: S3 holds no full-object SHA-256 for it "
            "(multipart upload or no checksum), and a copy does not download the bytes",
            source,
            dest,
        )
    return TransferResult(
        source_key=item.source_key,
        dest_key=item.dest_key,
        action="copy",
        codec=None,
        bytes_in=item.size,
        bytes_out=item.size,
        source_sha256=source_sha256,
    )


def _single_copy(
    s3: S3Client,
    item: PlanItem,
    *,
    copy_source: dict[str, str],
    if_match: dict[str, str],
    dest_bucket: str,
    source_sha256: str,
    source: str,
    dest: str,
) -> str:
    """One CopyObject; the SHA-256 S3 reports for the source or the copy ("" if neither)."""
    try:
        # MetadataDirective COPY keeps the content type and user metadata as staged; the
        # checksum algorithm makes S3 compute the SHA-256 of the copy while it copies.
        response = s3.copy_object(
            Bucket=dest_bucket,
            Key=item.dest_key,
            CopySource=copy_source,
            MetadataDirective="COPY",
            ChecksumAlgorithm="SHA256",
            **if_match,
        )
    except ClientError as exc:
        raise source_fault(exc, item, source=source, dest=dest) from exc
    copied_sha256 = full_object_sha256(response.get("CopyObjectResult", {}))
    if source_sha256 and copied_sha256 and copied_sha256 != source_sha256:
        raise TransferError(
            f"S3 reports SHA-256 {copied_sha256} for the copy but {source_sha256} for the source",
            source=source,
            dest=dest,
        )
    return source_sha256 or copied_sha256


def _multipart_copy(
    s3: S3Client,
    item: PlanItem,
    head: Mapping[str, Any],
    *,
    copy_source: dict[str, str],
    if_match: dict[str, str],
    dest_bucket: str,
    part_size: int,
    source: str,
    dest: str,
) -> None:
    """UploadPartCopy of every `part_size` range into a new upload, aborted on any failure."""
    # UploadPartCopy does not carry the source's headers over: set them on the new upload.
    headers = {
        name: head[name]
        for name in (
            "ContentType",
            "ContentEncoding",
            "ContentDisposition",
            "ContentLanguage",
            "CacheControl",
        )
        if head.get(name)
    }
    upload_id = s3.create_multipart_upload(
        Bucket=dest_bucket, Key=item.dest_key, Metadata=head.get("Metadata", {}), **headers
    )["UploadId"]
    try:
        parts = []
        for number, start in enumerate(range(0, item.size, part_size), start=1):
            end = min(start + part_size, item.size) - 1
            try:
                response = s3.upload_part_copy(
                    Bucket=dest_bucket,
                    Key=item.dest_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={start}-{end}",
                    **if_match,
                )
            except ClientError as exc:
                raise source_fault(exc, item, source=source, dest=dest) from exc
            parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
        s3.complete_multipart_upload(
            Bucket=dest_bucket,
            Key=item.dest_key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
    except BaseException:
        try:
            s3.abort_multipart_upload(Bucket=dest_bucket, Key=item.dest_key, UploadId=upload_id)
        except Exception:
            logger.exception("could not abort multipart copy %s of %s", upload_id, dest)
        raise
