"""`compress`: the transfer worker's zstd throughput and memory, against zstandard itself.

Worker: ``transfer(s3, item)`` with action "compress" against :class:`FakeS3`: it reads the
source in 1 MiB chunks, hashes it (SHA-256), streams it through zstd level 3 (with a content
checksum and the pledged size) into 16 MiB parts, each SHA-256'd for S3's part checksum.

Baselines, on the same bytes:

- ``zstd_oneshot``: ``ZstdCompressor(level=3).compress(data)``;
- ``zstd_stream``: ``ZstdCompressor(level=3).copy_stream`` from a BytesIO to a null sink;
- ``zstd_stream_sha256`` (diagnostic): the same stream, plus SHA-256 of the input and of the
  output, which is what the worker's end-to-end checksums cost at minimum. The ratio against
  it shows the worker's own overhead once hashing, which is by design, is accounted for.

The headline ratio is worker / the faster of the two plain zstd baselines (target >= 0.9).

Memory: a fresh subprocess (``python -m benchmarks.memory_child``) runs the worker on a
source streamed from a repeating 8 MiB block, so nothing in the process grows with the
file but the worker itself; it reports its peak RSS and tracemalloc peak. The ratio of peak
RSS between two file sizes should be about 1.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from typing import Any

import zstandard

from benchmarks import ROOT, MiB
from benchmarks.fake_s3 import FakeS3
from benchmarks.neuropixels import neuropixels_like
from benchmarks.timing import best_of_interleaved
from upload_processor.plan import PlanItem
from upload_processor.transfer import DEFAULT_LEVEL, READ_CHUNK, transfer

SOURCE_BUCKET = "bench-staging"
DEST_BUCKET = "bench-archive"
SOURCE_KEY = "session/ecephys/continuous.dat"
DEST_KEY = "asset/ecephys/continuous.dat.zst"
ETAG = "0123456789abcdef0123456789abcdef"
TARGET_RATIO = 0.9
TARGET_MEMORY_RATIO = 1.2


def plan(size: int) -> PlanItem:
    """The plan item the planner makes for a staged continuous.dat of `size` bytes."""
    return PlanItem(
        source_key=SOURCE_KEY,
        size=size,
        etag=ETAG,
        dest_key=DEST_KEY,
        action="compress",
        codec="zstd",
        level=DEFAULT_LEVEL,
    )


def run_worker(s3: FakeS3, item: PlanItem) -> Any:
    """One transfer, as the Transfer Lambda calls it (default part size)."""
    return transfer(s3, item, source_bucket=SOURCE_BUCKET, dest_bucket=DEST_BUCKET)


class _NullSink:
    """A writable that counts and discards (and optionally hashes) what it is given."""

    def __init__(self, digest: Any = None) -> None:
        self.count = 0
        self._digest = digest

    def write(self, data: bytes) -> int:
        self.count += len(data)
        if self._digest is not None:
            self._digest.update(data)
        return len(data)


class _HashingReader:
    """Reads from a stream and SHA-256s what it hands out."""

    def __init__(self, stream: io.BytesIO, digest: Any) -> None:
        self._stream = stream
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._digest.update(data)
        return data


def bench_throughput(size_mb: float, repeat: int) -> dict[str, Any]:
    size = int(size_mb * MiB)
    data = neuropixels_like(size, seed=1)
    expected_sha256 = hashlib.sha256(data).hexdigest()
    item = plan(size)
    sinks: dict[str, FakeS3] = {}

    def worker() -> Any:
        s3 = FakeS3()
        s3.add_object(SOURCE_BUCKET, SOURCE_KEY, size=size, etag=ETAG, data=data)
        sinks["last"] = s3
        return run_worker(s3, item)

    def zstd_oneshot() -> int:
        return len(zstandard.ZstdCompressor(level=DEFAULT_LEVEL).compress(data))

    def zstd_stream() -> int:
        sink = _NullSink()
        zstandard.ZstdCompressor(level=DEFAULT_LEVEL).copy_stream(
            io.BytesIO(data), sink, size=size, read_size=READ_CHUNK
        )
        return sink.count

    def zstd_stream_sha256() -> int:
        source_digest, out_digest = hashlib.sha256(), hashlib.sha256()
        sink = _NullSink(out_digest)
        zstandard.ZstdCompressor(level=DEFAULT_LEVEL, write_checksum=True).copy_stream(
            _HashingReader(io.BytesIO(data), source_digest), sink, size=size, read_size=READ_CHUNK
        )
        source_digest.hexdigest()
        return sink.count

    funcs = {
        "worker": worker,
        "zstd_oneshot": zstd_oneshot,
        "zstd_stream": zstd_stream,
        "zstd_stream_sha256": zstd_stream_sha256,
    }
    for func in funcs.values():  # warm-up: first-call costs are not throughput
        func()
    timed = best_of_interleaved(funcs, repeat=repeat)

    result = timed["worker"]["result"]
    s3 = sinks["last"]
    # The figure means nothing unless the worker really did the whole job.
    if result.bytes_in != size or result.source_sha256 != expected_sha256:
        raise AssertionError(f"worker result does not match its input: {result}")
    if s3.bytes_uploaded != result.bytes_out or s3.completed != [DEST_KEY] or s3.aborted:
        raise AssertionError(f"worker uploads do not add up: {s3}")

    def mb_s(name: str) -> float:
        return size / MiB / timed[name]["best_s"]

    baselines = {name: mb_s(name) for name in ("zstd_oneshot", "zstd_stream")}
    best_baseline = max(baselines, key=lambda name: baselines[name])
    worker_mb_s = mb_s("worker")
    return {
        "size_mb": size / MiB,
        "repeat": repeat,
        "worker_mb_s": worker_mb_s,
        "baseline": best_baseline,
        "baseline_mb_s": baselines[best_baseline],
        "ratio": worker_mb_s / baselines[best_baseline],
        "target_ratio_min": TARGET_RATIO,
        "baselines_mb_s": {
            **baselines,
            "zstd_stream_sha256": mb_s("zstd_stream_sha256"),
        },
        "ratios": {
            "vs_zstd_oneshot": worker_mb_s / baselines["zstd_oneshot"],
            "vs_zstd_stream": worker_mb_s / baselines["zstd_stream"],
            "vs_zstd_stream_sha256": worker_mb_s / mb_s("zstd_stream_sha256"),
        },
        "times_s": {name: entry["times_s"] for name, entry in timed.items()},
        "bytes_out": result.bytes_out,
        "baseline_bytes_out": timed["zstd_oneshot"]["result"],
        "compression_ratio": size / result.bytes_out,
        "requests": dict(s3.calls),
    }


def measure_memory(size_mb: float) -> dict[str, Any]:
    """Run the worker in a fresh interpreter on `size_mb` MiB; its peak memory figures."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory_child", "--size-mb", str(size_mb)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"memory child failed ({completed.returncode}): {completed.stderr[-2000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_memory(sizes_mb: tuple[float, float]) -> dict[str, Any]:
    small, large = (measure_memory(size) for size in sizes_mb)
    return {
        "sizes_mb": list(sizes_mb),
        "small": small,
        "large": large,
        "peak_rss_ratio": large["peak_rss_mb"] / small["peak_rss_mb"],
        "tracemalloc_peak_ratio": large["tracemalloc_peak_mb"] / small["tracemalloc_peak_mb"],
        "target_ratio_max": TARGET_MEMORY_RATIO,
    }


def run(*, size_mb: float, repeat: int, memory_sizes_mb: tuple[float, float]) -> dict[str, Any]:
    return {
        "throughput": bench_throughput(size_mb, repeat),
        "memory": bench_memory(memory_sizes_mb),
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows: (measure, worker, baseline, ratio, target, met)."""
    t, m = result["throughput"], result["memory"]
    s, big = m["small"], m["large"]
    return [
        (
            f"throughput, {t['size_mb']:g} MiB vs {t['baseline']}",
            f"{t['worker_mb_s']:.0f} MiB/s",
            f"{t['baseline_mb_s']:.0f} MiB/s",
            f"{t['ratio']:.2f}",
            f">= {t['target_ratio_min']}",
            t["ratio"] >= t["target_ratio_min"],
        ),
        (
            "  vs zstd + SHA-256 in & out (diagnostic)",
            f"{t['worker_mb_s']:.0f} MiB/s",
            f"{t['baselines_mb_s']['zstd_stream_sha256']:.0f} MiB/s",
            f"{t['ratios']['vs_zstd_stream_sha256']:.2f}",
            "",
            None,
        ),
        (
            f"peak RSS, {big['size_mb']:g} vs {s['size_mb']:g} MiB file",
            f"{big['peak_rss_mb']:.0f} MiB",
            f"{s['peak_rss_mb']:.0f} MiB",
            f"{m['peak_rss_ratio']:.2f}",
            f"<= {m['target_ratio_max']}",
            m["peak_rss_ratio"] <= m["target_ratio_max"],
        ),
        (
            "  worker's own: RSS growth; tracemalloc",
            f"{big['rss_growth_mb']:.0f}; {big['tracemalloc_peak_mb']:.0f} MiB",
            f"{s['rss_growth_mb']:.0f}; {s['tracemalloc_peak_mb']:.0f} MiB",
            f"{m['tracemalloc_peak_ratio']:.2f}",
            "",
            None,
        ),
    ]


def notes(result: dict[str, Any]) -> list[str]:
    t, m = result["throughput"], result["memory"]
    b = t["baselines_mb_s"]
    return [
        f"compress: zstd level 3 direct: one-shot {b['zstd_oneshot']:.0f} MiB/s, copy_stream "
        f"{b['zstd_stream']:.0f} MiB/s, copy_stream + SHA-256 of input and output "
        f"{b['zstd_stream_sha256']:.0f} MiB/s; worker {t['worker_mb_s']:.0f} MiB/s "
        f"({t['compression_ratio']:.2f}x, {t['requests'].get('upload_part', 0)} parts).",
        f"compress: worker peak tracemalloc {m['small']['tracemalloc_peak_mb']:.0f} / "
        f"{m['large']['tracemalloc_peak_mb']:.0f} MiB at {m['small']['size_mb']:g} / "
        f"{m['large']['size_mb']:g} MiB (part size 16 MiB).",
    ]
