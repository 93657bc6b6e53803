"""The file plan: one entry per staged data object, saying what the Map does with it.

A file too big to compress in one Lambda invocation is split into byte ranges
(`chunk_ranges`); each range becomes its own plan item (action `compress_range`), compressed
by its own Map iteration into one independent zstd frame and uploaded as one part of a single
multipart upload (see `transfer.start_chunked`).
"""

from __future__ import annotations

import math
import posixpath
from typing import Any, Literal

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from upload_processor.domain.report import Issue
from upload_processor.domain.units import DEFAULT_LEVEL, GiB, MiB

# "compress_range": one byte range of a large file, one part of its multipart upload.
# "encode_ecephys": one time range of an ecephys stream's binary, encoded into its Zarr's
# chunks (upload_processor.pipeline.ecephys_plan), run by the ecephys function.
Action = Literal["compress", "copy", "compress_range", "encode_ecephys"]
ENCODE_ECEPHYS = "encode_ecephys"

MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload

# --- sizing the ranges of a chunked file ------------------------------------------------
#
# One Map iteration compresses one range: it GETs the range, hashes and compresses it, holds
# the compressed frame (an UploadPart needs its length and checksum up front) and uploads it.
# It must stay well under the Lambda limit of 900 s, so the range size follows from the
# throughput. zstd speed falls steeply with the level; measured single-core with zstandard
# 0.25 (AMD EPYC, x86_64) on Neuropixels-like int16 data (benchmarks/neuropixels.py, the
# slowest realistic input: random bytes and zeros go faster), streaming in 1 MiB reads:
ZSTD_MB_PER_S: dict[int, float] = {
    1: 450.0,
    3: 89.0,
    6: 43.0,
    9: 17.7,
    12: 5.3,
    15: 2.5,
    19: 0.8,
    22: 0.6,
}
# The model, deliberately pessimistic: the Lambda's core is taken as half as fast as the
# machine measured (CPU_SLOWDOWN; a 2048 MB function gets ~1.15 vCPU), one S3 GET stream and
# one PUT stream at 50 MB/s each (typical single streams in Lambda are 70-100 MB/s), the read,
# the compression and the upload one after another (no overlap), and incompressible output
# (the upload as large as the input). SHA-256 (~1.8 GB/s with SHA-NI) is noise.
CPU_SLOWDOWN = 2.0
S3_GET_MB_PER_S = 50.0
S3_PUT_MB_PER_S = 50.0
# A third of the 900 s limit: room for a cold start, a slow S3 node, a noisy neighbour.
TIME_BUDGET_S = 300.0

# At level 3 the model gives 0.0625 s/MB: 4.8 GB fit the budget. Ranges are capped lower, at
# 1 GiB (~67 s by the model, ~30 s expected): the compressed range is held before its
# UploadPart, in memory up to half the function's memory and in /tmp past it (up to ~1 GiB
# for incompressible data, so the Transfer function keeps EphemeralStorage >= 2048 MB), a
# retry redoes a whole range, and smaller ranges give more
# parallelism (a 100 GiB file is 100 concurrent iterations) at the cost of more invocations.
# S3's largest object (5 TiB) is then 5,120 parts, under the 10,000-part limit. Levels 9 and
# below keep 1 GiB; 12 gets 512 MiB, 15 256 MiB, 19 and above 64 MiB (`range_size_for`).
DEFAULT_RANGE_SIZE = 1 * GiB
# A file above this is chunked. At level 3 the model puts 4 GiB in one invocation at ~270 s,
# inside the budget; below it a single streaming `compress` costs one invocation instead of
# a start, n ranges and a completion. Lower at slower levels (`chunk_threshold_for`).
CHUNK_THRESHOLD = 4 * GiB
# Every range but the last is at least this much *source* (S3's minimum part size; the
# compressed part may still be smaller and is then padded, see domain.archive). A shorter
# trailing range is folded into the one before it.
MIN_RANGE_SIZE = 5 * MiB
# Worst-case zstd output of a range (+0.4% and a header, plus the folded tail) stays under
# S3's 5 GiB part limit.
MAX_RANGE_SIZE = 4 * GiB

# Formats whose bytes are already compressed: recompressing them wastes time for nothing.
ALREADY_COMPRESSED = (
    ".zst",
    ".gz",
    ".bz2",
    ".xz",
    ".zip",
    ".7z",
    ".mp4",
    ".avi",
    ".mkv",
    ".mov",
    ".png",
    ".jpg",
    ".jpeg",
    ".tif.gz",
    ".h264",
    ".webm",
)


# The PlanItem fields that only a "compress_range" or "encode_ecephys" item sets.
RANGE_FIELDS = (
    "part_number",
    "range_start",
    "range_end",
    "part_count",
    "upload_id",
    "sample_start",
    "sample_end",
    "stream",
    "options",
)


class PlanItem(BaseModel):
    """One object to move from staging into the asset."""

    source_key: str
    size: int
    etag: str
    dest_key: str
    action: Action
    codec: Literal["zstd", "flac", "wavpack"] | None = None
    level: int | None = None
    # Only for action "compress_range" (one range of a chunked file; `size` and `etag` stay
    # those of the whole source): the part it becomes, its source bytes
    # [range_start, range_end), how many parts the upload has, and the upload's id.
    part_number: int | None = None
    range_start: int | None = None
    range_end: int | None = None
    part_count: int | None = None
    upload_id: str | None = None
    # Only for action "encode_ecephys" (`dest_key` is the stream's Zarr store, `range_start`/
    # `range_end` the bytes [start, end) of samples [sample_start, sample_end), whole chunks;
    # `part_number` of `part_count` the range's place): the stream's description
    # (ecephys.recording.RecordingStream) and the options (ecephys.codec.EcephysOptions), as
    # JSON, for the domain knows neither type.
    sample_start: int | None = None
    sample_end: int | None = None
    stream: dict[str, Any] | None = None
    options: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _leave_out_unset_range_fields(
        self, handler: SerializerFunctionWrapHandler
    ) -> dict[str, Any]:
        """A plain item dumps as it always did: the range fields only when they are set
        (smaller Map payloads, and plans and sample events unchanged)."""
        data: dict[str, Any] = handler(self)
        for name in RANGE_FIELDS:
            if name in data and data[name] is None:
                del data[name]
        return data


def in_zarr_store(relative_path: str) -> bool:
    """Whether the file lies inside a Zarr store (a folder named `*.zarr`): its chunks are
    compressed by the store's own codec (blosc, zstd, ...) and have no telling extension."""
    folders = relative_path.lower().split("/")[:-1]
    return any(folder.endswith(".zarr") for folder in folders)


def choose_action(relative_path: str) -> Action:
    """Copy what is already compressed as it is (by extension, or a Zarr store's files);
    compress everything else."""
    name = posixpath.basename(relative_path).lower()
    if name.endswith(ALREADY_COMPRESSED) or in_zarr_store(relative_path):
        return "copy"
    return "compress"


def plan_item(
    *,
    prefix: str,
    key: str,
    size: int,
    etag: str,
    asset_name: str,
    level: int = DEFAULT_LEVEL,
    compress: bool = True,
    dest_relative: str | None = None,
) -> PlanItem:
    """Plan one staged object: its destination under the asset and its action.

    `compress=False` (the modality's transformation task is skipped, or its codec is none)
    copies every file as it is. `dest_relative` places it elsewhere under the asset than its
    staged path (the ecephys transformation's `ecephys/ecephys_clipped/...`).
    """
    relative = key[len(prefix) :].lstrip("/") if prefix else key
    action = choose_action(relative) if compress else "copy"
    placed = relative if dest_relative is None else dest_relative
    dest = f"{asset_name}/{placed}" + (".zst" if action == "compress" else "")
    return PlanItem(
        source_key=key,
        size=size,
        etag=etag.strip('"'),
        dest_key=dest,
        action=action,
        codec="zstd" if action == "compress" else None,
        level=level if action == "compress" else None,
    )


def archive_key_collisions(items: list[PlanItem]) -> dict[str, list[str]]:
    """Every archive key that more than one staged object would be written to, with those
    objects' source keys (sorted): e.g. `extra.dat` compressed to `extra.dat.zst` beside a
    staged `extra.dat.zst` copied as it is. Each archive key is written once, so such a plan
    cannot be carried out; found up front, before a byte is written."""
    sources: dict[str, set[str]] = {}
    for item in items:
        sources.setdefault(item.dest_key, set()).add(item.source_key)
    return {dest: sorted(keys) for dest, keys in sorted(sources.items()) if len(keys) > 1}


def collision_issues(items: list[PlanItem], prefix: str = "") -> list[Issue]:
    """One `session.archive_key_collision` error per archive key two staged files map to,
    naming both (all) files, relative to the session's `prefix`, and the fix."""
    issues = []
    for dest, staged in archive_key_collisions(items).items():
        keys = [k[len(prefix) :].lstrip("/") if prefix else k for k in staged]
        names = " and ".join(repr(k) for k in keys)
        issues.append(
            Issue(
                severity="error",
                file=keys[0],
                rule="session.archive_key_collision",
                message=(
                    f"the staged files {names} would both be archived as {dest!r} (a compressed "
                    "file gets '.zst' appended); rename or remove one of them and upload the "
                    "session again"
                ),
            )
        )
    return issues


def chunk_ranges(size: int, range_size: int) -> list[tuple[int, int]]:
    """Split `size` bytes into `[start, end)` ranges of `range_size` bytes, the last shorter.

    A trailing range under `MIN_RANGE_SIZE` (5 MiB) of source is folded into the previous
    one, so every range but the last has at least 5 MiB and none is a pointless sliver. The
    boundaries depend only on `(size, range_size)`: a verifier recomputes them from the two.
    `size == 0` gives no range.
    """
    if range_size < MIN_RANGE_SIZE:
        raise ValueError(f"range_size must be at least {MIN_RANGE_SIZE} bytes, got {range_size}")
    if size < 0:
        raise ValueError(f"size must not be negative, got {size}")
    ranges = [(start, min(start + range_size, size)) for start in range(0, size, range_size)]
    if len(ranges) >= 2 and ranges[-1][1] - ranges[-1][0] < MIN_RANGE_SIZE:
        (start, _), (_, end) = ranges[-2], ranges.pop()
        ranges[-1] = (start, end)
    if len(ranges) > MAX_PARTS:
        raise ValueError(
            f"{size} bytes in ranges of {range_size} need {len(ranges)} parts; S3 allows "
            f"{MAX_PARTS}: use a larger range_size"
        )
    return ranges


def seconds_per_mb(level: int) -> float:
    """The model's pessimistic seconds per MB (10**6 bytes) of source for one iteration."""
    measured = [known for known in sorted(ZSTD_MB_PER_S) if known >= level]
    # An unmeasured level takes the speed of the next slower measured one.
    speed = ZSTD_MB_PER_S[measured[0]] if measured else min(ZSTD_MB_PER_S.values())
    return CPU_SLOWDOWN / speed + 1 / S3_GET_MB_PER_S + 1 / S3_PUT_MB_PER_S


def _fits_budget(level: int, cap: int) -> int:
    """The largest power-of-two number of MiB that the model fits in the budget, <= cap."""
    fits = TIME_BUDGET_S / seconds_per_mb(level) * 1e6
    mib = 2 ** int(math.log2(max(fits / MiB, 1)))
    return min(cap, max(mib * MiB, 64 * MiB))


def range_size_for(level: int = DEFAULT_LEVEL, *, size: int | None = None) -> int:
    """The range size for a file compressed at `level`: what fits the time budget, at most
    `DEFAULT_RANGE_SIZE`; grown (to whole MiB) if `size` would otherwise need > 10,000 parts,
    at the price of iterations longer than the budget."""
    chosen = _fits_budget(level, DEFAULT_RANGE_SIZE)
    if size is not None:
        needed = math.ceil(math.ceil(size / MAX_PARTS) / MiB) * MiB
        chosen = max(chosen, needed)
    return chosen


def chunk_threshold_for(level: int = DEFAULT_LEVEL) -> int:
    """The size above which a file compressed at `level` is chunked: what fits the time
    budget in one invocation, at most `CHUNK_THRESHOLD`."""
    return _fits_budget(level, CHUNK_THRESHOLD)


def needs_chunks(item: PlanItem, *, threshold: int | None = None) -> bool:
    """Whether a plan item is to be compressed in ranges: a `compress` item over `threshold`
    (default: `chunk_threshold_for` its level)."""
    if item.action != "compress":
        return False
    if threshold is None:
        threshold = chunk_threshold_for(3 if item.level is None else item.level)
    return item.size > threshold
