"""What the `compress` benchmark times, each one reading the test file from disk.

Baselines a user would pick (the ``zstd`` command line, in a process of its own) and the
project's two compress paths (``transfer()`` against :class:`FakeS3`, which serves the file
from disk at every GET and discards the upload), plus two diagnostics on zstandard alone.
Every run returns ``(wall seconds, CPU seconds, bytes out)``; the CPU time of a command-line
run is its own (user + sys of the child), that of an in-process run the process's (every
thread), so that a path that keeps more threads busy shows it.
"""

from __future__ import annotations

import hashlib
import math
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import zstandard

from benchmarks.fake_s3 import FakeS3
from upload_processor.domain.plan import MIN_RANGE_SIZE, PlanItem
from upload_processor.domain.units import DEFAULT_LEVEL, READ_CHUNK, MiB
from upload_processor.pipeline.transfer import (
    complete_chunked,
    start_chunked,
    transfer,
)

SOURCE_BUCKET = "bench-staging"
DEST_BUCKET = "bench-archive"
SOURCE_KEY = "session/ecephys/continuous.dat"
DEST_KEY = "asset/ecephys/continuous.dat.zst"
ETAG = "0123456789abcdef0123456789abcdef"
Run = tuple[float, float, int]  # wall seconds, CPU seconds, bytes out


def plan(size: int, level: int = DEFAULT_LEVEL) -> PlanItem:
    """The plan item the planner makes for a staged continuous.dat of `size` bytes."""
    return PlanItem(
        source_key=SOURCE_KEY,
        size=size,
        etag=ETAG,
        dest_key=DEST_KEY,
        action="compress",
        codec="zstd",
        level=level,
    )


def run_worker(s3: FakeS3, item: PlanItem) -> Any:
    """One transfer, as the Transfer Lambda calls it (default part size)."""
    return transfer(s3, item, source_bucket=SOURCE_BUCKET, dest_bucket=DEST_BUCKET)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 8 MiB pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def zstd_cli() -> str | None:
    """The zstd command line's path, or None if it is not on PATH."""
    return shutil.which("zstd")


def cli_run(zstd: str, flags: list[str], source: Path, out: Path) -> Run:
    """One ``zstd -q -f <flags> -o out source``, timed as a whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [zstd, "-q", "-f", *flags, "-o", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=3600,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stat().st_size


def in_process(func: Callable[[], int]) -> Run:
    """Wall and CPU time (every thread of this process) of `func`, and the bytes it returns."""
    cpu = time.process_time()
    start = time.perf_counter()
    out = func()
    return time.perf_counter() - start, time.process_time() - cpu, out


class Paths:
    """The project's compress paths and zstandard diagnostics on one file on disk."""

    def __init__(self, source: Path, level: int, cores: int) -> None:
        self.source = source
        self.size = source.stat().st_size
        self.level = level
        self.cores = cores
        self.sha256 = file_sha256(source)
        self.last: dict[str, FakeS3] = {}

    def _s3(self, name: str) -> FakeS3:
        s3 = FakeS3()
        s3.add_file(SOURCE_BUCKET, SOURCE_KEY, self.source, etag=ETAG)
        self.last[name] = s3
        return s3

    def range_size(self) -> int:
        """One range per core, as the issue's "2 ranges, 2 cores" (at least S3's 5 MiB)."""
        return max(MIN_RANGE_SIZE, math.ceil(self.size / self.cores / MiB) * MiB)

    def stream(self) -> int:
        """``transfer()``, action compress: one stream, 16 MiB parts."""
        s3 = self._s3("stream")
        result = run_worker(s3, plan(self.size, self.level))
        if (
            result.bytes_in != self.size
            or result.source_sha256 != self.sha256
            or s3.bytes_uploaded != result.bytes_out
            or s3.completed != [DEST_KEY]
            or s3.aborted
        ):
            raise RuntimeError(f"the stream worker's result does not match its input: {result}")
        return int(result.bytes_out)

    def chunked(self, run: Callable[[FakeS3, PlanItem], Any] = run_worker) -> int:
        """The chunked path: `start_chunked`, each range's ``transfer()`` (`run`) on a thread
        of its own (one per core, as the Map runs one Lambda per range), `complete_chunked`."""
        s3 = self._s3("chunked")
        items = start_chunked(
            s3, plan(self.size, self.level), dest_bucket=DEST_BUCKET, range_size=self.range_size()
        )
        with ThreadPoolExecutor(max_workers=min(self.cores, len(items))) as pool:
            parts = list(pool.map(lambda item: run(s3, item), items))
        result = complete_chunked(s3, parts, dest_bucket=DEST_BUCKET)
        if result.bytes_in != self.size or s3.completed != [DEST_KEY] or s3.aborted:
            raise RuntimeError(f"the chunked result does not match its input: {result}")
        return int(result.bytes_out)

    def zstd_oneshot(self) -> int:
        """Diagnostic: read the file, zstandard's one-shot compress (one thread)."""
        data = self.source.read_bytes()
        compressor = zstandard.ZstdCompressor(level=self.level, write_checksum=True)
        return len(compressor.compress(data))

    def zstd_stream_sha256(self) -> int:
        """Diagnostic: the least the stream's design costs: ``copy_stream`` from the file in
        1 MiB reads, SHA-256 of input and output, output discarded."""
        source_digest, out_digest = hashlib.sha256(), hashlib.sha256()
        sink = _NullSink(out_digest)
        with self.source.open("rb") as raw:
            zstandard.ZstdCompressor(level=self.level, write_checksum=True).copy_stream(
                _HashingReader(raw, source_digest), sink, size=self.size, read_size=READ_CHUNK
            )
        return sink.count


class _NullSink:
    """A writable that counts, hashes and discards what it is given."""

    def __init__(self, digest: Any) -> None:
        self.count = 0
        self._digest = digest

    def write(self, data: bytes) -> int:
        self.count += len(data)
        self._digest.update(data)
        return len(data)


class _HashingReader:
    """Reads from a stream and SHA-256s what it hands out."""

    def __init__(self, stream: Any, digest: Any) -> None:
        self._stream = stream
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._digest.update(data)
        return data
