"""Finalize's part of the ecephys transformation: seal each stream's Zarr, last.

The Map's iterations wrote the chunks of every stream (`transfer.ecephys`), each verified by
decoding before its PUT and checked by S3 against its SHA-256 on receipt. Here, for every
planned store: every planned range must have its recorded result, every chunk the stream
needs must be recorded, and each must be stored with the size and S3 checksum its transfer
recorded. Only then are the store's metadata objects (`.zgroup`, `.zattrs`,
`traces_seg0/.zarray`, ...: `ecephys.zarr_layout.metadata_objects`) written, once: a reader
never sees a store whose metadata promises chunks that are not there.

The manifest records each stream as one object: the source binary (key, ETag, size), the
store, the codec, the stored bytes and the ratio, the number of chunks, the restore
instructions, and the source's checksum as a tree hash (`domain.archive.tree_sha256`): the
SHA-256 of the concatenated SHA-256 digests of the source's byte ranges in plan order, every
range `range_size` bytes but the last (shorter; no folding), "tree-sha256:<hex>:<range_size>".
The ranges are hashed in parallel, so a plain SHA-256 of the whole file would cost a second
full read; `range_sha256s` lists each range's SHA-256, so a restored binary can be checked
range by range too.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from upload_processor.domain.archive import tree_sha256
from upload_processor.domain.plan import ENCODE_ECEPHYS
from upload_processor.ecephys.codec import EcephysOptions
from upload_processor.ecephys.lsb import LsbCorrection
from upload_processor.ecephys.recording import RecordingStream
from upload_processor.ecephys.zarr_layout import (
    chunk_key,
    metadata_objects,
    num_chunks,
    restore_instructions,
)
from upload_processor.errors import VerificationError
from upload_processor.pipeline.failures import missing_objects_error
from upload_processor.pipeline.transfer.result import TransferResult


@dataclass
class SealedStreams:
    """The manifest entries of the sealed streams and every key written under their stores."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)


@dataclass
class _Planned:
    """One store as the plan has it: its stream, options, source and ranges."""

    stream: RecordingStream
    options: EcephysOptions
    source_key: str
    source_etag: str
    part_count: int
    range_bytes: int


def _planned_stores(plan: list[list[dict[str, Any]]]) -> dict[str, _Planned]:
    """Each planned store, from its first range (every range but the last has its size)."""
    stores: dict[str, _Planned] = {}
    for batch in plan:
        for item in batch:
            if item.get("action") != ENCODE_ECEPHYS or item.get("part_number") != 1:
                continue
            stores[item["dest_key"]] = _Planned(
                stream=RecordingStream.model_validate(item["stream"]),
                options=EcephysOptions.model_validate(item["options"]),
                source_key=item["source_key"],
                source_etag=str(item.get("etag") or ""),
                part_count=int(item["part_count"]),
                range_bytes=int(item["range_end"]) - int(item["range_start"]),
            )
    return stores


def expected_chunk_keys(stream: RecordingStream, options: EcephysOptions) -> list[str]:
    """Every traces chunk key (relative to the store) the stream needs, in time order."""
    return [chunk_key(stream, index) for index in range(num_chunks(stream, options))]


def seal_streams(
    s3: Any,
    *,
    archive: str,
    job_id: str,
    plan: list[list[dict[str, Any]]],
    recorded: list[TransferResult],
) -> SealedStreams:
    """Check every planned stream's chunks are stored as recorded, then write its metadata;
    the manifest entries and the keys written. Raises (naming the store) when a range or a
    chunk is missing or differs: nothing of the stream's metadata is written then."""
    sealed = SealedStreams()
    by_store: dict[str, list[TransferResult]] = {}
    for result in recorded:
        if result.action == ENCODE_ECEPHYS:
            by_store.setdefault(result.dest_key, []).append(result)
    for store, planned in sorted(_planned_stores(plan).items()):
        ranges = {r.part_number: r for r in by_store.get(store, [])}
        missing = [n for n in range(1, planned.part_count + 1) if n not in ranges]
        if missing:
            shown = ", ".join(f"{store} (range {n} of {planned.part_count})" for n in missing)
            raise missing_objects_error(s3, archive, job_id, [shown])
        ordered = [ranges[n] for n in range(1, planned.part_count + 1)]
        chunks = {c["key"]: c for r in ordered for c in (r.chunks or ())}
        _check_chunks(s3, archive, store, planned, chunks)
        correction = _correction(archive, store, planned, ordered)
        written = _write_metadata(s3, archive, store, planned, correction)
        sealed.keys |= {f"{store}/{key}" for key in chunks} | set(written)
        entry = _manifest_entry(store, planned, ordered, chunks, written)
        if correction is not None:
            lsb, offset = correction.stream_factor
            entry["lsb_correction"] = {"lsb": lsb, "offset": offset}
        sealed.entries.append(entry)
    return sealed


def _check_chunks(
    s3: Any, archive: str, store: str, planned: _Planned, chunks: dict[str, dict[str, Any]]
) -> None:
    """Every chunk the stream needs is recorded, and stored with its recorded size and S3
    SHA-256."""
    expected = expected_chunk_keys(planned.stream, planned.options)
    missing = [key for key in expected if key not in chunks]
    source = planned.source_key
    if missing or len(chunks) != len(expected):
        raise VerificationError(
            f"the stream needs {len(expected)} chunks, its transfers recorded {len(chunks)}"
            + (f" (missing {', '.join(missing[:5])})" if missing else ""),
            source=source,
            dest=f"s3://{archive}/{store}/",
        )
    for key in expected:
        recorded = chunks[key]
        dest = f"s3://{archive}/{store}/{key}"
        try:
            head = s3.head_object(Bucket=archive, Key=f"{store}/{key}", ChecksumMode="ENABLED")
        except s3.exceptions.ClientError as exc:
            raise VerificationError(f"not found: {exc}", source=source, dest=dest) from exc
        if int(head["ContentLength"]) != int(recorded["bytes"]):
            raise VerificationError(
                f"holds {head['ContentLength']} bytes, its transfer wrote {recorded['bytes']}",
                source=source,
                dest=dest,
            )
        stored = head.get("ChecksumSHA256") or ""
        if stored and stored != recorded["checksum_sha256"]:
            raise VerificationError(
                f"S3 checksum {stored} differs from the transfer's {recorded['checksum_sha256']}",
                source=source,
                dest=dest,
            )


def _correction(
    archive: str, store: str, planned: _Planned, ranges: list[TransferResult]
) -> LsbCorrection | None:
    """The one LSB correction every range was encoded with (it is the store's `.zarray`
    filter); a VerificationError if the ranges disagree."""
    distinct = {json.dumps(r.correction, sort_keys=True) for r in ranges}
    if len(distinct) != 1:
        raise VerificationError(
            f"the stream's ranges were encoded with {len(distinct)} different LSB corrections; "
            "run the job again (every range detects it on the stream's first chunk)",
            source=planned.source_key,
            dest=f"s3://{archive}/{store}/",
        )
    found = ranges[0].correction
    return None if found is None else LsbCorrection.model_validate(found)


def _write_metadata(
    s3: Any, archive: str, store: str, planned: _Planned, correction: LsbCorrection | None
) -> list[str]:
    """The store's metadata objects, each with its SHA-256; their keys."""
    written = []
    objects = metadata_objects(planned.stream, planned.options, correction)
    for key, body in sorted(objects.items()):
        s3.put_object(
            Bucket=archive,
            Key=f"{store}/{key}",
            Body=body,
            ContentType="application/json",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
        )
        written.append(f"{store}/{key}")
    return written


def _manifest_entry(
    store: str,
    planned: _Planned,
    ranges: list[TransferResult],
    chunks: dict[str, dict[str, Any]],
    metadata: list[str],
) -> dict[str, Any]:
    """The stream as one manifest object (see the module's docstring)."""
    stream = planned.stream
    stored = sum(int(c["bytes"]) for c in chunks.values())
    range_hashes = [r.source_sha256 for r in ranges]
    return {
        "source_key": planned.source_key,
        "source_etag": planned.source_etag,
        "source_relative": stream.source_key,
        "dest_key": store,
        "action": ENCODE_ECEPHYS,
        "codec": planned.options.codec,
        "options": planned.options.model_dump(mode="json"),
        "format": stream.format,
        "stream": stream.name,
        "bytes_in": stream.byte_size,
        "bytes_out": stored,
        "ratio": round(stream.byte_size / stored, 3) if stored else None,
        "chunks": len(chunks),
        "source_sha256": tree_sha256(range_hashes, planned.range_bytes),
        "range_size": planned.range_bytes,
        "range_sha256s": range_hashes,
        "metadata_keys": metadata,
        "restore": restore_instructions(stream),
    }
