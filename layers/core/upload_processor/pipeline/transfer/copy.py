"""Server-side copy of one object: S3 copies, not a byte moves through the function.

One CopyObject up to the copy threshold (S3's limit is 5 GiB), UploadPartCopy in ranges above
it. Both are conditioned on the planned ETag, and the copy keeps the staged content type and
user metadata; S3 computes the copy's SHA-256 as it copies where it can. A single copy of a planned
ETag is one request (no HeadObject first: the ETag condition refuses any other version); a
multipart copy heads the source for the headers UploadPartCopy does not carry over.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import (
    full_object_sha256,
    is_kms_encrypted,
    is_md5_etag,
    quoted_etag,
)
from upload_processor.domain.plan import PlanItem
from upload_processor.errors import TransferError
from upload_processor.pipeline.transfer.faults import (
    S3Client,
    changed,
    source_changed,
    source_fault,
    url,
)
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
    head: Mapping[str, Any] = {}
    if item.size > copy_threshold or not is_md5_etag(item.etag):
        # A single copy of a plain (MD5) planned ETag is one request: CopySourceIfMatch copies
        # only that version (same bytes, so same size) and refuses any other, and the copy's
        # ETag shows it again. Otherwise (no such ETag to hold the source to, or for the
        # headers UploadPartCopy does not carry over) the source is headed first.
        head = head_source(s3, source_bucket, item, source=job.source, dest=job.dest)
        if head["ContentLength"] != item.size:
            raise changed(item, head["ContentLength"], source=job.source, dest=job.dest)
    source_sha256 = full_object_sha256(head) if head else ""
    if item.size <= copy_threshold:
        copied_sha256, etag = _single_copy(s3, job)
        if source_sha256 and copied_sha256 and copied_sha256 != source_sha256:
            raise TransferError(
                f"S3 reports SHA-256 {copied_sha256} for the copy but {source_sha256} for the "
                "source",
                source=job.source,
                dest=job.dest,
            )
        source_sha256 = source_sha256 or copied_sha256
    else:
        part_size = part_size_for(item.size, copy_part_size, source=job.source, dest=job.dest)
        etag = _multipart_copy(s3, job, head, part_size)
    if not source_sha256:
        logger.warning(
            "copied %s -> %s without a SHA-256: S3 holds no full-object SHA-256 for it "
            "(multipart upload or no checksum), and a copy does not download the bytes",
            job.source,
            job.dest,
        )
    return TransferResult.of_item(item, bytes_out=item.size, source_sha256=source_sha256, etag=etag)


def _single_copy(s3: S3Client, job: _Copy) -> tuple[str, str | None]:
    """One CopyObject; the SHA-256 S3 computed for the copy ("" if none) and its ETag."""
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
    copied = response.get("CopyObjectResult", {})
    etag = str(copied.get("ETag") or "")
    planned = job.item.etag
    if is_md5_etag(planned) and not is_kms_encrypted(response) and etag.strip('"') != planned:
        # The copy of a plain object has the source's ETag: this one was not copied from the
        # planned version (an S3 that ignored the condition; moto does). Take it down.
        s3.delete_object(Bucket=job.dest_bucket, Key=job.item.dest_key)
        raise source_changed(
            f"it no longer has the planned ETag {planned}", source=job.source, dest=job.dest
        )
    return full_object_sha256(copied), etag or None


def _multipart_copy(
    s3: S3Client, job: _Copy, head: Mapping[str, Any], part_size: int
) -> str | None:
    """UploadPartCopy of every `part_size` range into a new upload, aborted on any failure;
    the object's ETag."""
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
        response = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:
            logger.exception("could not abort multipart copy %s of %s", upload_id, job.dest)
        raise
    return response.get("ETag")
