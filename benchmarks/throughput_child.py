"""Subprocess of the `compress` benchmark: the worker's throughput in its own process.

``python -m benchmarks.throughput_child --file PATH --level N [--funcs a,b] [--profile]``
reads PATH into memory (not timed), then times each of `--funcs` once on those bytes and
prints one JSON line:

- ``worker``: ``transfer()`` (action compress) against :class:`FakeS3`, which serves the
  bytes from memory and discards the upload: the worker's own work (read, SHA-256 of the
  source, zstd, 16 MiB parts, SHA-256 of each part) and nothing of moto's;
- ``zstd_oneshot`` (diagnostic): ``ZstdCompressor(level, write_checksum=True).compress``;
- ``zstd_stream_sha256`` (diagnostic): ``copy_stream`` of the same bytes in 1 MiB reads plus
  SHA-256 of the input and of the output: the least that the worker's design (a stream with
  end-to-end checksums) can cost, single-threaded.

With ``--profile`` the worker runs once more under cProfile and the answer carries where
its time went (top functions by own time, and the time grouped by kind of work).

The worker's result is checked (input size, SHA-256 of the source, bytes uploaded, one
completed object, nothing aborted) after the timing, so a figure is never reported for a
worker that did not do the whole job.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import time
from typing import Any

import zstandard

from benchmarks.compress import DEST_KEY, ETAG, SOURCE_BUCKET, SOURCE_KEY, plan, run_worker
from benchmarks.fake_s3 import FakeS3
from benchmarks.timing import time_once
from upload_processor.domain.units import READ_CHUNK

FUNCS = ("worker", "zstd_oneshot", "zstd_stream_sha256")

# Kinds of work, matched on cProfile's function labels (C functions show as
# "<method 'x' of 'y' objects>" or "<built-in method x>"). The chunker's compress() and
# finish() return C iterators, and a `for` loop over a C iterator makes no profiler event: the
# compression itself is counted in the own time of the Python function that loops over it
# (`compress_object`, and `next()` in `with_last_flag` for the tail), where nothing else of weight
# runs. cProfile sees the calling thread only: libzstd compresses on its own worker thread
# (`ZSTD_WORKERS`), so "zstd compression" is the time the calling thread spends handing it
# input and waiting for its output.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("zstd compression", ("ZstdCompression", "(compress_object)", "builtins.next")),
    ("SHA-256 of the source", ("'update' of '_hashlib.HASH'",)),
    ("SHA-256 of each part", ("openssl_sha256",)),
    ("base64 of part checksums", ("b2a_base64", "b64encode")),
    ("reading the source (fake body: BytesIO copy)", ("'read' of '_io.BytesIO'",)),
)
OTHER = "everything else (Python code, fake S3 calls)"


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

    def __init__(self, stream: io.BytesIO, digest: Any) -> None:
        self._stream = stream
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._digest.update(data)
        return data


def _label(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    short = filename.rsplit("/", 2)
    return f"{'/'.join(short[-2:])}:{line}({name})"


def profile_worker(make_worker: Any, top: int = 10) -> dict[str, Any]:
    """Run the worker once under cProfile; its top functions and time per kind of work."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    make_worker()
    profiler.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    entries = []
    for key, (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        entries.append(
            {"function": _label(key), "calls": calls, "tottime_s": tottime, "cumtime_s": cumtime}
        )
    total = sum(e["tottime_s"] for e in entries) or 1e-12
    for entry in entries:
        entry["share"] = entry["tottime_s"] / total
    entries.sort(key=lambda e: e["tottime_s"], reverse=True)
    categories: dict[str, float] = {name: 0.0 for name, _ in CATEGORIES}
    categories[OTHER] = 0.0
    for entry in entries:
        for name, needles in CATEGORIES:
            if any(needle in entry["function"] for needle in needles):
                categories[name] += entry["tottime_s"]
                break
        else:
            categories[OTHER] += entry["tottime_s"]
    return {
        "wall_s": wall,
        "profiled_s": total,
        "top": entries[:top],
        "categories_s": categories,
        "categories_share": {name: seconds / total for name, seconds in categories.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", required=True)
    parser.add_argument("--level", type=int, required=True)
    parser.add_argument("--funcs", default="worker")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    funcs = [name for name in args.funcs.split(",") if name]
    unknown = set(funcs) - set(FUNCS)
    if unknown:
        parser.error(f"unknown --funcs {sorted(unknown)}; choose from {FUNCS}")

    with open(args.file, "rb") as source:
        data = source.read()
    size = len(data)
    item = plan(size).model_copy(update={"level": args.level})
    last: dict[str, FakeS3] = {}

    def worker() -> Any:
        s3 = FakeS3()
        s3.add_object(SOURCE_BUCKET, SOURCE_KEY, size=size, etag=ETAG, data=data)
        last["s3"] = s3
        return run_worker(s3, item)

    def zstd_oneshot() -> int:
        compressor = zstandard.ZstdCompressor(level=args.level, write_checksum=True)
        return len(compressor.compress(data))

    def zstd_stream_sha256() -> int:
        source_digest, out_digest = hashlib.sha256(), hashlib.sha256()
        sink = _NullSink(out_digest)
        zstandard.ZstdCompressor(level=args.level, write_checksum=True).copy_stream(
            _HashingReader(io.BytesIO(data), source_digest), sink, size=size, read_size=READ_CHUNK
        )
        source_digest.hexdigest()
        return sink.count

    table = {
        "worker": worker,
        "zstd_oneshot": zstd_oneshot,
        "zstd_stream_sha256": zstd_stream_sha256,
    }
    out: dict[str, Any] = {"size": size, "times_s": {}, "cpu_s": {}, "bytes_out": {}}
    for name in funcs:
        cpu = time.process_time()
        seconds, result = time_once(table[name])
        out["cpu_s"][name] = time.process_time() - cpu
        out["times_s"][name] = seconds
        if name == "worker":
            s3 = last["s3"]
            if (
                result.bytes_in != size
                or result.source_sha256 != hashlib.sha256(data).hexdigest()
                or s3.bytes_uploaded != result.bytes_out
                or s3.completed != [DEST_KEY]
                or s3.aborted
            ):
                raise SystemExit(f"worker result does not match its input: {result} {s3}")
            out["bytes_out"][name] = result.bytes_out
            out["requests"] = dict(s3.calls)
        else:
            out["bytes_out"][name] = result
    if args.profile:
        out["profile"] = profile_worker(worker)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
