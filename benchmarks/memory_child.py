"""Subprocess of the `compress` benchmark: the worker's peak memory for one file size.

``python -m benchmarks.memory_child --size-mb N`` compresses N MiB of Neuropixels-like data
through ``transfer()`` and prints one JSON line. The source is streamed from a repeating
8 MiB block and the fake S3 discards the output, so the process holds nothing that grows
with the file except what the worker itself holds.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tracemalloc

from benchmarks.compress_runs import DEST_KEY, ETAG, SOURCE_BUCKET, SOURCE_KEY, plan, run_worker
from benchmarks.fake_s3 import FakeS3
from benchmarks.neuropixels import FRAME, CyclingReader, neuropixels_like
from upload_processor.domain.units import MiB

BLOCK = (8 * MiB // FRAME) * FRAME  # whole time points, longer than zstd's 2 MiB window


def _proc_status_mb(field: str) -> float | None:
    """A memory figure (VmRSS, VmHWM) of this process from /proc, in MiB; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so it measures what follows."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float:
    """This process's peak RSS in MiB.

    VmHWM where there is /proc: ru_maxrss is inherited across fork + exec on Linux, so in a
    child started by a big parent it would report the parent's peak, not ours.
    """
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MiB if sys.platform == "darwin" else maxrss / 1024  # macOS: bytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=float, required=True)
    args = parser.parse_args(argv)
    size = int(args.size_mb * MiB)
    block = neuropixels_like(BLOCK, seed=2)

    s3 = FakeS3()
    s3.add_object(
        SOURCE_BUCKET,
        SOURCE_KEY,
        size=size,
        etag=ETAG,
        opener=lambda: CyclingReader(block, size),
    )
    item = plan(size)
    rss_before = _proc_status_mb("VmRSS")
    reset = _reset_peak()
    if rss_before is None or not reset:
        rss_before = _peak_rss_mb()  # the best available: the peak so far
    tracemalloc.start()
    result = run_worker(s3, item)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _peak_rss_mb()
    if s3.bytes_uploaded != result.bytes_out or s3.completed != [DEST_KEY]:
        raise SystemExit(f"worker uploads do not add up: {s3}")
    print(
        json.dumps(
            {
                "size_mb": size / MiB,
                "peak_rss_mb": peak,
                "rss_before_mb": rss_before,
                "rss_growth_mb": max(0.0, peak - rss_before),
                "peak_reset": reset,
                "tracemalloc_peak_mb": traced_peak / MiB,
                "bytes_out": result.bytes_out,
                "parts": s3.calls["upload_part"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
