"""`TransferResult`: what one transfer did, carried between states as JSON.

It is a Map iteration's output (recorded in the work area), what verification checks against,
and what the manifest lists for every archived object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from upload_processor.domain.archive import CODEC_ZSTD, STORED_AS_IS, STORED_ZSTD
from upload_processor.domain.plan import PlanItem


@dataclass(frozen=True)
class TransferResult:
    """What one transfer did: the Map iteration's output, and what Verify and the manifest use.

    `source_sha256` is the hex SHA-256 of the *source* bytes (for `compress`, of the data
    before compression). It is "" when a server-side copy left it unknown: S3 kept no
    full-object SHA-256 for the source and the bytes were, on purpose, not downloaded.

    `etag` is the ETag S3 answered the object's write with (PutObject, CompleteMultipartUpload,
    CopyObject), when known: Finalize checks the archived object still has it.

    The other optional fields are set only by the chunked path:

    - a `compress_range` result (one part): `source_sha256` is the SHA-256 of that range's
      source bytes, `bytes_in`/`bytes_out` the range's and the part's sizes (padding
      included); `part_number`, `etag` and `part_checksum` (base64 SHA-256 of the part, as
      S3 checks it) are what CompleteMultipartUpload needs, with `upload_id`, `range_start`,
      `range_end` (exclusive) and `part_count`;
    - a completed chunked object (action `compress`): `source_sha256` is a tree hash
      "tree-sha256:<hex>:<range_size>", `range_sha256s` the hex SHA-256 of each range in
      order, `part_checksums` S3's base64 SHA-256 of each part, `checksum_sha256` S3's own
      checksum of the object ("<base64>-<parts>", a checksum of the part checksums),
      `etag` the object's ETag, `part_count`, `range_size` and `part_sizes` (each part's
      size in the object, padding included: where `verify_part` finds it).

    A file planned for compression that zstd did not shrink is stored as is (`as_is.py`): its
    result is a `copy` to the plain name with `stored` "as_is", `stored_reason` (the sizes),
    and `planned_key`, the `.zst` key the plan gave it (what Finalize matches it to).

    An `encode_ecephys` result (one time range of an ecephys stream, `transfer.ecephys`):
    `dest_key` is the stream's Zarr store, `source_sha256` the SHA-256 of the range's source
    bytes [range_start, range_end), `bytes_out` its chunks' stored bytes, and `chunks` one
    {key, bytes, checksum_sha256, source_sha256, source_bytes} per written chunk; `correction`
    the stream's LSB correction the range was encoded with (None: lsb_correction off).
    """

    source_key: str
    dest_key: str
    action: str
    codec: str | None
    bytes_in: int
    bytes_out: int
    source_sha256: str
    part_number: int | None = None
    etag: str | None = None
    part_checksum: str | None = None
    upload_id: str | None = None
    range_start: int | None = None
    range_end: int | None = None
    part_count: int | None = None
    range_size: int | None = None
    range_sha256s: tuple[str, ...] | None = None
    part_checksums: tuple[str, ...] | None = None
    checksum_sha256: str | None = None
    part_sizes: tuple[int, ...] | None = None
    stored: str | None = None
    stored_reason: str | None = None
    planned_key: str | None = None

    @property
    def planned_dest_key(self) -> str:
        """The destination the plan gave this object (its `dest_key` unless stored as is)."""
        return self.planned_key or self.dest_key

    @property
    def stored_as(self) -> str:
        """How the object is stored: "zstd" (a zstd stream) or "as_is" (the source's bytes)."""
        return self.stored or (STORED_ZSTD if self.codec == CODEC_ZSTD else STORED_AS_IS)

    chunks: tuple[dict[str, Any], ...] | None = None
    correction: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: Step Functions carries results between states as JSON.

        Optional fields that are not set are left out, so a plain result's dict (and the
        manifest entry made from it) is as it always was.
        """
        out: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.default is None:
                continue
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def of_item(
        cls, item: PlanItem, *, bytes_out: int, source_sha256: str, etag: str | None = None
    ) -> TransferResult:
        """The result of a whole-object transfer of `item` (compress or copy), as planned;
        `etag` is the one S3 answered the write with (Finalize checks the object still has
        it)."""
        return cls(
            source_key=item.source_key,
            dest_key=item.dest_key,
            action=item.action,
            codec=CODEC_ZSTD if item.action == "compress" else None,
            bytes_in=item.size,
            bytes_out=bytes_out,
            source_sha256=source_sha256,
            etag=etag,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransferResult:
        """Rebuild a result from `to_dict()` output (extra keys are ignored)."""
        return cls(
            source_key=str(data["source_key"]),
            dest_key=str(data["dest_key"]),
            action=str(data["action"]),
            codec=data.get("codec"),
            bytes_in=int(data["bytes_in"]),
            bytes_out=int(data["bytes_out"]),
            source_sha256=str(data.get("source_sha256") or ""),
            part_number=_opt_int(data.get("part_number")),
            etag=_opt_str(data.get("etag")),
            part_checksum=_opt_str(data.get("part_checksum")),
            upload_id=_opt_str(data.get("upload_id")),
            range_start=_opt_int(data.get("range_start")),
            range_end=_opt_int(data.get("range_end")),
            part_count=_opt_int(data.get("part_count")),
            range_size=_opt_int(data.get("range_size")),
            range_sha256s=_opt_strs(data.get("range_sha256s")),
            part_checksums=_opt_strs(data.get("part_checksums")),
            checksum_sha256=_opt_str(data.get("checksum_sha256")),
            part_sizes=(
                None
                if data.get("part_sizes") is None
                else tuple(int(v) for v in data["part_sizes"])
            ),
            stored=_opt_str(data.get("stored")),
            stored_reason=_opt_str(data.get("stored_reason")),
            planned_key=_opt_str(data.get("planned_key")),
            chunks=(None if data.get("chunks") is None else tuple(dict(c) for c in data["chunks"])),
            correction=None if data.get("correction") is None else dict(data["correction"]),
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_strs(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)
