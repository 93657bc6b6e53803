"""Server-side copy of one object: S3 copies, not a byte moves through the function.

One CopyObject up to the copy threshold (S3's limit is 5 GiB), UploadPartCopy in ranges above
it. Both are conditioned on the planned ETag, and the copy keeps the staged content type and
user metadata; S3 computes the copy's SHA-256 as it copies where it can.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
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

# UploadPartCopy does not carry the source's headers over: they are set on the new upload.
COPIED_HEADERS = (
    "ContentType",
    "ContentEncoding",
    "ContentDisposition",
    "ContentLanguage",
    "CacheControl",
)


@dataclass(frozen=True)
class _Copy:
    """One planned copy: the item, where it goes, and the arguments every S3 call shares."""

    item: PlanItem
    source_bucket: str
    dest_bucket: str

    @property
    def source(self) -> str:
        return url(self.source_bucket, self.item.source_key)

    @property
    def dest(self) -> str:
        return url(self.dest_bucket, self.item.dest_key)

    def arguments(self) -> dict[str, Any]:
        """CopySource and its ETag condition: only the planned version is copied."""
        etag = self.item.etag
        condition = {"CopySourceIfMatch": quoted_etag(etag)} if etag else {}
        return {
            "CopySource": {"Bucket": self.source_bucket, "Key": self.item.source_key},
            **condition,
        }

    def fault(self, exc: ClientError) -> TransferError:
        return source_fault(exc, self.item, source=self.source, dest=self.dest)


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
    job = _Copy(item, source_bucket, dest_bucket)
    head = head_source(s3, source_bucket, item, source=job.source, dest=job.dest)
    if head["ContentLength"] != item.size:
        raise changed(item, head["ContentLength"], source=job.source, dest=job.dest)
    source_sha256 = full_object_sha256(head)
    if item.size <= copy_threshold:
        source_sha256 = _single_copy(s3, job, source_sha256)
    else:
        part_size = part_size_for(item.size, copy_part_size, source=job.source, dest=job.dest)
        _multipart_copy(s3, job, head, part_size)
    if not source_sha256:
        logger.warning(
            "copied %s -> %s without a SHA-256: S3 holds no full-object SHA-256 for it "
            "(multipart upload or no checksum), and a copy does not download the bytes",
            job.source,
            job.dest,
        )
    return TransferResult.of_item(item, bytes_out=item.size, source_sha256=source_sha256)


def _single_copy(s3: S3Client, job: _Copy, source_sha256: str) -> str:
    """One CopyObject; the SHA-256 S3 reports for the source or the copy ("" if neither)."""
    try:
        # MetadataDirective COPY keeps the content type and user metadata as staged; the
        # checksum algorithm makes S3 compute the SHA-256 of the copy while it copies.
        response = s3.copy_object(
            Bucket=job.dest_bucket,
            Key=job.item.dest_key,
            MetadataDirective="COPY",
            ChecksumAlgorithm="SHA256",
            **job.arguments(),
        )
    except ClientError as exc:
        raise job.fault(exc) from exc
    copied_sha256 = full_object_sha256(response.get("CopyObjectResult", {}))
    if source_sha256 and copied_sha256 and copied_sha256 != source_sha256:
        raise TransferError(
            f"S3 reports SHA-256 {copied_sha256} for the copy but {source_sha256} for the source",
            source=job.source,
            dest=job.dest,
        )
    return source_sha256 or copied_sha256


def _multipart_copy(s3: S3Client, job: _Copy, head: Mapping[str, Any], part_size: int) -> None:
    """UploadPartCopy of every `part_size` range into a new upload, aborted on any failure."""
    bucket, key, size = job.dest_bucket, job.item.dest_key, job.item.size
    headers = {name: head[name] for name in COPIED_HEADERS if head.get(name)}
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key=key, Metadata=head.get("Metadata", {}), **headers
    )["UploadId"]
    try:
        parts = []
        for number, start in enumerate(range(0, size, part_size), start=1):
            end = min(start + part_size, size) - 1
            try:
                response = s3.upload_part_copy(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySourceRange=f"bytes={start}-{end}",
                    **job.arguments(),
                )
            except ClientError as exc:
                raise job.fault(exc) from exc
            parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:
            logger.exception("could not abort multipart copy %s of %s", upload_id, job.dest)
        raise
