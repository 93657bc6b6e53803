"""Scale on paper: what one job costs on AWS, from the pipeline's own constants.

The model has two halves. `s3_requests` counts the S3 requests of a job, operation by
operation, as the code makes them (a test runs a 10,000-object plan through the local cloud's
Map and compares its count, request by request, with this formula: tests/e2e/
test_data_movement.py, the ten-thousand-object test). `estimate` turns a job into what an
operator sizes: Map and Lambda concurrency, S3 requests per second on the busiest prefix,
duration, and the cost at list prices. ``python -m benchmarks.scale`` prints the table of docs/scale.md (``--write``
rewrites it there).

Assumptions (also in docs/scale.md):

- the plan's batches are `gather.BATCH_SIZE` objects (at most `gather.BATCH_BYTES`); a range
  of a chunked file is a batch of its own; one Map iteration = one Transfer invocation;
- every small data file was staged with a single PUT (a plain MD5 ETag): a copy is one
  CopyObject, a compressed file one GET and one PUT; a staged object uploaded in parts adds a
  HeadObject to its copy;
- per-object latency in Lambda: `REQUEST_S` per S3 request, plus the bytes at
  `domain.plan.seconds_per_mb` (the pessimistic throughput model the range sizes come from);
- the fixed part of a job (upload_job.json, the metadata files, the lease, the report, the
  manifest) is the sample session's: `METADATA_FILES` metadata files;
- prices: us-east-1 list prices (`PRICES`), S3 Standard, Lambda x86 at the Transfer
  function's memory, Step Functions Standard; storage and retrieval are not the pipeline's.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from upload_processor.domain.plan import chunk_ranges, range_size_for, seconds_per_mb
from upload_processor.pipeline.gather import BATCH_BYTES, BATCH_SIZE

DOC = Path(__file__).resolve().parents[1] / "docs" / "scale.md"
PAGE = 1000  # ListObjectsV2 / DeleteObjects page
METADATA_FILES = 7  # the sample session's: data_description, subject, procedures, 2+2 others
# Requests of a job besides its data, metadata and batches, measured once on the local cloud
# and read off the code: GET upload_job.json (ingest, gather), the asset's lease and manifest
# checks, the assembly, the plan; PUT the report (twice), the lease, the plan, the assembly,
# the core documents, metadata.nd.json, the archived report, the manifest; HEAD the job file.
# GetObject: 10 for the flow, and the Catalog step's read of the sealed metadata.nd.json
FIXED = {"GetObject": 11, "PutObject": 12, "HeadObject": 2, "DeleteObject": 1}
WRITES = {"PutObject", "CopyObject", "UploadPart", "CreateMultipartUpload"}
WRITES |= {"CompleteMultipartUpload", "ListObjectsV2", "DeleteObjects"}
REQUEST_S = 0.03  # one small S3 request from Lambda, first byte to last
PRICES = {
    "s3_write_per_1000": 0.005,  # PUT, COPY, POST, LIST
    "s3_read_per_1000": 0.0004,  # GET, HEAD
    "lambda_gb_s": 0.0000166667,  # x86
    "lambda_request": 0.20 / 1e6,
    "sfn_transition": 0.025 / 1000,  # Standard (the Map's child executions too)
}
S3_PREFIX_WRITES_PER_S = 3500  # PUT/COPY/POST/DELETE per second per prefix
S3_PREFIX_READS_PER_S = 5500  # GET/HEAD per second per prefix
TRANSFER_MEMORY_GB = 2.0  # template.yaml: the Transfer function's MemorySize
MAP_CONCURRENCY = 20  # template.yaml: MapMaxConcurrency's default
TRANSITIONS_PER_BATCH = 3  # the child execution: start, Transfer, end
TRANSITIONS_PER_JOB = 30  # the parent execution's states, generously


def pages(count: int) -> int:
    """Requests to list (or delete) `count` keys: at least one."""
    return max(1, math.ceil(count / PAGE))


@dataclass(frozen=True)
class Job:
    """What the model needs of one job: its data files by treatment, and their sizes."""

    name: str
    compressed: int = 0  # whole files compressed (one GET, one PUT)
    copied: int = 0  # files copied server-side (one CopyObject)
    file_bytes: int = 0  # the size of each of those files
    chunked_bytes: tuple[int, ...] = ()  # files compressed in ranges
    level: int = 3
    metadata: int = METADATA_FILES
    compress_ratio: float = 2.7  # NP1 at zstd-3 (benchmarks/neuropixels.py)
    # files planned for compression that zstd did not shrink: read and compressed (one GET),
    # their output dropped, the source copied under its plain name (one CopyObject)
    as_is: int = 0
    ranges: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        counts = tuple(
            len(chunk_ranges(size, range_size_for(self.level, size=size)))
            for size in self.chunked_bytes
        )
        object.__setattr__(self, "ranges", counts)

    @property
    def objects(self) -> int:
        """Data objects in the asset."""
        return self.compressed + self.copied + self.as_is + len(self.chunked_bytes)

    @property
    def batches(self) -> int:
        """Map iterations: whole files in batches of BATCH_SIZE (and BATCH_BYTES), one per
        range."""
        whole = self.compressed + self.copied + self.as_is
        per_batch = max(1, min(BATCH_SIZE, BATCH_BYTES // max(1, self.file_bytes)))
        return math.ceil(whole / per_batch) + sum(self.ranges)

    @property
    def bytes_in(self) -> int:
        return (self.compressed + self.copied + self.as_is) * self.file_bytes + sum(
            self.chunked_bytes
        )


def s3_requests(job: Job) -> dict[str, int]:
    """The S3 requests of a job, by operation (the formula the scale test checks)."""
    chunked, ranges, batches = len(job.chunked_bytes), sum(job.ranges), job.batches
    staged = job.objects + job.metadata + 1  # + upload_job.json
    asset = job.objects + job.metadata + 3  # + metadata.nd.json, data_description, report
    work = batches + 3  # results per batch, plan, assembly, report copy
    counts = {
        # gather reads each metadata file; each batch's results are looked for before the
        # work (a retried iteration is not redone) and read by Finalize
        "GetObject": FIXED["GetObject"]
        + job.metadata
        + job.compressed
        + job.as_is
        + ranges
        + 2 * batches,
        "PutObject": FIXED["PutObject"] + job.compressed + batches,
        # the originals of the metadata under original_metadata/, and the copied data
        "CopyObject": job.metadata + job.copied + job.as_is,
        # the staged originals' ETags for the manifest; a chunked file's source at its start
        "HeadObject": FIXED["HeadObject"] + job.metadata + chunked,
        # gather: staging, the asset (resume check); finalize: the results, the asset (seal),
        # the asset (leftovers), the work area (clear)
        "ListObjectsV2": pages(staged) + 1 + pages(batches) + 2 * pages(asset) + pages(work),
        "DeleteObjects": pages(work),
        "DeleteObject": FIXED["DeleteObject"],  # the lease
        "CreateMultipartUpload": chunked,
        "UploadPart": ranges,
        "CompleteMultipartUpload": chunked,
    }
    return {op: n for op, n in counts.items() if n}


def transfer_seconds(job: Job) -> float:
    """Lambda seconds of all Transfer iterations (requests one after another in each)."""
    mb = job.file_bytes / 1e6
    per_compressed = 2 * REQUEST_S + mb * seconds_per_mb(job.level)
    per_copied = REQUEST_S + job.file_bytes / 1e9 / 0.5 * REQUEST_S  # S3 copies ~0.5 GB/s
    per_batch = 2 * REQUEST_S  # the results: looked for, written
    ranges = sum(
        size / 1e6 * seconds_per_mb(job.level) + 3 * REQUEST_S for size in job.chunked_bytes
    )
    return (
        job.compressed * per_compressed
        + job.copied * per_copied
        + job.as_is * (per_compressed + per_copied)
        + (job.batches - sum(job.ranges)) * per_batch
        + ranges
    )


def estimate(job: Job, *, map_concurrency: int = MAP_CONCURRENCY) -> dict[str, float]:
    """What an operator sizes for `job` on AWS (see the module's assumptions)."""
    requests = s3_requests(job)
    lambda_s = transfer_seconds(job)
    concurrency = min(map_concurrency, job.batches)
    longest = max(
        [
            range_size_for(job.level, size=s) / 1e6 * seconds_per_mb(job.level)
            for s in job.chunked_bytes
        ]
        + [lambda_s / max(1, job.batches)]
    )
    duration = max(lambda_s / concurrency, longest) + 60  # + gather and finalize
    writes = sum(n for op, n in requests.items() if op in WRITES)
    reads = sum(n for op, n in requests.items() if op not in WRITES)
    tb = job.bytes_in / 1e12
    cost = (
        writes / 1000 * PRICES["s3_write_per_1000"]
        + reads / 1000 * PRICES["s3_read_per_1000"]
        + lambda_s * TRANSFER_MEMORY_GB * PRICES["lambda_gb_s"]
        + job.batches * PRICES["lambda_request"]
        + (job.batches * TRANSITIONS_PER_BATCH + TRANSITIONS_PER_JOB) * PRICES["sfn_transition"]
    )
    # The busiest prefix is the asset's: every write of the Map lands under it.
    return {
        "objects": job.objects,
        "bytes_in": job.bytes_in,
        "batches": job.batches,
        "map_concurrency": concurrency,
        "lambda_concurrency": concurrency,
        "s3_requests": sum(requests.values()),
        "asset_writes_per_s": writes / max(duration - 60, 1),
        "asset_write_share": writes / max(duration - 60, 1) / S3_PREFIX_WRITES_PER_S,
        "lambda_gb_s": lambda_s * TRANSFER_MEMORY_GB,
        "duration_s": duration,
        "cost_usd": cost,
        "cost_per_tb_usd": cost / tb if tb else 0.0,
    }


SCENARIOS = (
    (Job("100,000 files of 1 MB (3 in 4 compressed)", 75_000, 25_000, 10**6), MAP_CONCURRENCY),
    (Job("100,000 files of 64 KB (3 in 4 compressed)", 75_000, 25_000, 64_000), MAP_CONCURRENCY),
    (Job("1 TB, one file (chunked)", chunked_bytes=(10**12,)), MAP_CONCURRENCY),
    (Job("1 TB, one file (chunked)", chunked_bytes=(10**12,)), 200),
    (Job("5 TiB, one file (S3's largest object)", chunked_bytes=(5 * 2**40,)), 200),
)


def table(jobs: tuple[tuple[Job, int], ...] = SCENARIOS) -> str:
    """The markdown table of docs/scale.md."""
    head = (
        "| job | S3 requests | Map iterations | Map / Lambda concurrency | writes/s on the "
        "asset prefix (of 3,500) | Lambda GB-s | duration | cost | per TB |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for job, concurrency in jobs:
        e = estimate(job, map_concurrency=concurrency)
        lines.append(
            f"| {job.name} | {e['s3_requests']:,} | {e['batches']:,} | "
            f"{e['map_concurrency']} / {e['lambda_concurrency']} | "
            f"{e['asset_writes_per_s']:,.1f} ({e['asset_write_share']:.1%}) | "
            f"{e['lambda_gb_s']:,.0f} | {e['duration_s'] / 60:,.0f} min | "
            f"${e['cost_usd']:,.2f} | ${e['cost_per_tb_usd']:,.2f} |"
        )
    return "\n".join(lines)


BEGIN, END = "<!-- scale table: python -m benchmarks.scale --write -->", "<!-- end -->"


def write(doc: Path = DOC) -> None:
    """Rewrite the table between the markers of docs/scale.md."""
    text = doc.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    doc.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table()}\n{END}", text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {DOC}")
    args = parser.parse_args(argv)
    if args.write:
        write()
    print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
