"""The archive's object format: what an archived asset and the job work area look like.

An archived asset (`<asset>/` in the archive bucket):

- `<asset>/<relative>.zst`: a compressed data file, a zstd stream (content type
  `ZSTD_CONTENT_TYPE`) of one or more frames, each with its content size and checksum. Its
  user metadata (`META_*`) records the source: `source-size`, `source-etag`, `codec`
  ("zstd"), `zstd-level`, and `source-sha256` when the object was written in one piece
  (a multipart upload takes its metadata before the hash is known). A *chunked* file (one
  frame per byte range, compressed in parallel) records `range-size` too, and its source
  checksum is a tree hash (`tree_sha256`). Parts under S3's 5 MiB minimum are padded with a
  zstd skippable frame (`skippable_frame`), which every decoder ignores.
- `<asset>/<relative>`: a file copied as it was staged (already compressed formats), or a
  file planned for compression that zstd did not shrink (`as_is_key`): the smaller is stored,
  the original bytes under the plain name, and its manifest entry says `stored: "as_is"` with
  the reason (every entry says `stored`: "zstd" or "as_is"). A chunked file (compressed in
  parallel ranges) stays compressed even then: its parts are written before its size is
  known, and zstd's worst case adds well under 1%.
- `<asset>/original_metadata/...`, the merged metadata files, and `<asset>/MANIFEST`
  (`manifest.json`), written last: an asset without a manifest is incomplete.

The work area (`WORK_PREFIX`, `_jobs/` in the archive bucket, outside every asset):

- `_jobs/<job_id>/plan.json`, `_jobs/<job_id>/assembly.json` (`work_key`): a job's plan and
  assembled metadata, removed once the asset is sealed;
- `_jobs/<job_id>/results/<batch>.json` (`results_key`): what each Map batch transferred;
- `_jobs/<job_id>/failures/<batch>.json` (`failure_key`): why a batch failed, for Finalize;
- `_jobs/locks/<asset>.json` (`lock_key`): the asset's lease, held by one job at a time.

Pure: no AWS library is imported here.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from upload_processor.domain.plan import MIN_RANGE_SIZE

# --- compressed objects ---------------------------------------------------------------------

CODEC_ZSTD = "zstd"
ZSTD_CONTENT_TYPE = "application/zstd"

# User metadata written on every compressed object (S3 lower-cases the names anyway).
META_SOURCE_SHA256 = "source-sha256"
META_SOURCE_SIZE = "source-size"
META_SOURCE_ETAG = "source-etag"
META_CODEC = "codec"
META_LEVEL = "zstd-level"
META_RANGE_SIZE = "range-size"  # chunked objects: the range size of their tree hash

# A chunked object's source checksum: "tree-sha256:<hex>:<range_size>" (see `tree_sha256`).
TREE_SHA256_PREFIX = "tree-sha256:"

# zstd skippable frames (RFC 8878, 3.1.2): magic 0x184D2A50-0x184D2A5F, a 4-byte little-endian
# payload length, the payload. Decoders skip them; short parts are padded with one.
SKIPPABLE_MAGIC = 0x184D2A50
SKIPPABLE_HEADER = 8


def tree_sha256(range_sha256s: Sequence[str], range_size: int) -> str:
    """The checksum of a chunked source: "tree-sha256:<hex>:<range_size>".

    <hex> is the SHA-256 of the concatenated 32-byte SHA-256 digests of the source's ranges,
    in order; the ranges are `plan.chunk_ranges(size, range_size)` (every range `range_size`
    bytes but the last, which has a short tail folded in). The prefix keeps it from being
    mistaken for, or compared with, a plain SHA-256 of the file: recompute it with
    `chunk_ranges` and SHA-256, or let `transfer.verify` do it.
    """
    joined = b"".join(bytes.fromhex(h) for h in range_sha256s)
    return f"{TREE_SHA256_PREFIX}{hashlib.sha256(joined).hexdigest()}:{range_size}"


def parse_tree_sha256(value: str) -> tuple[str, int]:
    """The hex digest and range size of a `tree_sha256` value; ValueError if it is not one."""
    if not value.startswith(TREE_SHA256_PREFIX):
        raise ValueError(f"not a tree hash: {value!r}")
    digest, _, range_size = value[len(TREE_SHA256_PREFIX) :].partition(":")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
        raise ValueError(f"not a hex SHA-256: {digest!r}")
    if not range_size.isdigit() or int(range_size) < MIN_RANGE_SIZE:
        raise ValueError(f"bad range size {range_size!r}")
    return digest.lower(), int(range_size)


def skippable_frame(total: int) -> bytes:
    """A zstd skippable frame of exactly `total` bytes (>= 8): decoders ignore it."""
    if total < SKIPPABLE_HEADER:
        raise ValueError(f"a skippable frame has at least {SKIPPABLE_HEADER} bytes, not {total}")
    payload = total - SKIPPABLE_HEADER
    return struct.pack("<II", SKIPPABLE_MAGIC, payload) + bytes(payload)


# --- stored compressed, or as is ----------------------------------------------------------

STORED_ZSTD = "zstd"
STORED_AS_IS = "as_is"
ZST_SUFFIX = ".zst"


def as_is_key(dest_key: str) -> str | None:
    """Where a file planned as `<asset>/<relative>.zst` goes when stored as is: its plain name,
    `<asset>/<relative>`; None when that name is one the asset keeps for itself (a JSON file at
    its root, such as `manifest.json` or a core metadata file, or `original_metadata/...`):
    such a file stays compressed."""
    if not dest_key.endswith(ZST_SUFFIX):
        return None
    plain = dest_key[: -len(ZST_SUFFIX)]
    _, _, relative = plain.partition("/")
    if not relative or relative.startswith("original_metadata/"):
        return None
    if "/" not in relative and relative.lower().endswith(".json"):
        return None
    return plain


# --- the asset and the work area -------------------------------------------------------------

MANIFEST = "manifest.json"
WORK_PREFIX = "_jobs"
LOCKS_PREFIX = f"{WORK_PREFIX}/locks"
RESULTS = "results"
# Why a batch failed for good, for Finalize to name when results are missing (a Distributed
# Map that tolerates failed iterations, as moto's does, carries on without the error).
FAILURES = "failures"


def work_key(job_id: str, name: str) -> str:
    """Where a job keeps `name` (plan.json, assembly.json, ...) in the archive's work area."""
    return f"{WORK_PREFIX}/{job_id}/{name}"


def lock_key(asset_name: str) -> str:
    """Where the asset's lease lives in the archive bucket (outside any asset)."""
    return f"{LOCKS_PREFIX}/{asset_name}.json"


def results_key(job_id: str, batch: str) -> str:
    """Where a batch's results are recorded."""
    return work_key(job_id, f"{RESULTS}/{batch}.json")


def failure_key(job_id: str, batch: str) -> str:
    """Where a batch's permanent failure is recorded."""
    return work_key(job_id, f"{FAILURES}/{batch}.json")
