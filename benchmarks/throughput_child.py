"""Subprocess of the `compress` benchmark: every throughput run, interleaved, in one process.

``python -m benchmarks.throughput_child --file PATH --level N --repeat R --cores C
[--profile]`` runs R rounds; each round runs, in this order, the baseline and the project of
each comparison, then the diagnostics (`benchmarks.compress_runs`):

- one stream: ``zstd -N --single-thread``, ``zstd -N`` (the CLI's default: one compression
  thread beside its I/O), then ``transfer()`` (action compress);
- chunked: ``zstd -N -T<C>``, then the chunked path (C ranges on C threads);
- diagnostics: zstandard's one-shot ``compress``, and ``copy_stream`` with SHA-256 in and out.

Everything reads PATH from disk inside its clock. Without the ``zstd`` command line the
CLI baselines fall back to zstandard one-shot (threads 0 or C) and the answer says so. It
prints one JSON line: per run name, the wall and CPU seconds of every round, and its output
size; the project's results are checked against the file after each run, so no figure is
reported for a worker that did not do the whole job.

With ``--profile`` the stream worker and the chunked path run once more under cProfile
and the answer carries where their time went (top functions by own time, and the time
grouped by kind of work).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path
from typing import Any

import zstandard

from benchmarks.compress_runs import Paths, cli_run, in_process, run_worker, zstd_cli

# Kinds of work, matched on cProfile's function labels (C functions show as
# "<method 'x' of 'y' objects>" or "<built-in method x>"). The chunker's compress() and
# finish() return C iterators, and a `for` loop over a C iterator makes no profiler event: the
# compression itself is counted in the own time of the Python function that loops over it
# (`_compress`, and `next()` in `_with_last_flag` for the tail), where nothing else of weight
# runs. cProfile sees the calling thread only: libzstd compresses on its own worker thread
# (`ZSTD_WORKERS`), so "zstd compression" is the time the calling thread spends handing it
# input and waiting for its output.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("zstd compression", ("ZstdCompression", "(compress_object)", "builtins.next")),
    ("SHA-256 of the source (chunked: and of each spooled part)", ("'update' of '_hashlib.HASH'",)),
    ("SHA-256 of each part", ("openssl_sha256",)),
    ("base64 of part checksums", ("b2a_base64", "b64encode")),
    ("reading the source file", ("'read' of '_io.BufferedReader'", "'readinto' of")),
    ("spooling a range's output (memory or /tmp)", ("tempfile.py", "'write' of '_io.")),
    ("reading the spooled part back to upload it", ("'read' of '_io.",)),
)
OTHER = "everything else (Python code, fake S3 calls)"


def _label(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    short = filename.rsplit("/", 2)
    return f"{'/'.join(short[-2:])}:{line}({name})"


def _summary(stats: pstats.Stats, wall: float, top: int = 10) -> dict[str, Any]:
    """Top functions by own time, and the time per kind of work (`CATEGORIES`)."""
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


def profile_stream(paths: Paths) -> dict[str, Any]:
    """The stream worker once under cProfile."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    paths.stream()
    profiler.disable()
    return _summary(pstats.Stats(profiler), time.perf_counter() - start)


def profile_chunked(paths: Paths) -> dict[str, Any]:
    """The chunked path once, each range's thread under a cProfile of its own (a profiler
    sees only the thread that enabled it), their statistics added up."""
    profilers: list[cProfile.Profile] = []

    def profiled(s3: Any, item: Any) -> Any:
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()
        try:
            return run_worker(s3, item)
        finally:
            profiler.disable()

    start = time.perf_counter()
    paths.chunked(run=profiled)
    wall = time.perf_counter() - start
    stats = pstats.Stats(profilers[0])
    for profiler in profilers[1:]:
        stats.add(profiler)
    return _summary(stats, wall)


def _runs(args: argparse.Namespace, paths: Paths, out_file: Path) -> dict[str, Any]:
    """Every run of a round, in order: name -> a callable returning a `Run`."""
    zstd = zstd_cli()
    level, cores = f"-{args.level}", args.cores

    def cli(*flags: str, threads: int) -> Any:
        if zstd:
            return lambda: cli_run(zstd, [level, *flags], paths.source, out_file)

        def fallback() -> int:
            compressor = zstandard.ZstdCompressor(level=args.level, threads=threads)
            return len(compressor.compress(paths.source.read_bytes()))

        return lambda: in_process(fallback)

    runs = {"cli_single": cli("--single-thread", threads=0)}
    if zstd:
        runs["cli_default"] = cli(threads=0)
    runs["stream"] = lambda: in_process(paths.stream)
    runs["cli_threads"] = cli(f"-T{cores}", threads=cores)
    runs["chunked"] = lambda: in_process(paths.chunked)
    runs["zstd_oneshot"] = lambda: in_process(paths.zstd_oneshot)
    runs["zstd_stream_sha256"] = lambda: in_process(paths.zstd_stream_sha256)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--level", type=int, required=True)
    parser.add_argument("--repeat", type=int, required=True)
    parser.add_argument("--cores", type=int, required=True)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    paths = Paths(args.file, args.level, args.cores)
    runs = _runs(args, paths, args.file.with_suffix(".zst"))
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    bytes_out: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, run in runs.items():
            seconds, cpu_seconds, bytes_out[name] = run()
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    out: dict[str, Any] = {
        "size": paths.size,
        "cores": args.cores,
        "zstd_cli": zstd_cli(),
        "wall_s": wall,
        "cpu_s": cpu,
        "bytes_out": bytes_out,
        "requests": {name: dict(s3.calls) for name, s3 in paths.last.items()},
        "range_size": paths.range_size(),
    }
    if args.profile:
        out["profile"] = profile_stream(paths)
        out["profile_chunked"] = profile_chunked(paths)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
