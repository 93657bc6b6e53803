"""`compress`: the transfer worker's zstd throughput against the zstd command line, one
stream and chunked, and its peak memory at two file sizes.

Throughput: a Neuropixels-like int16 file (384 channels, 30 kHz; zstd -3 compresses it 2.74x,
as real NP1 AP-band data: ``upload_processor_tools.synthetic``) is written to a temporary
folder, then one child process (``benchmarks.throughput_child``) runs ``repeat`` rounds, each
the baseline then the project, every run reading the file from disk inside its clock:

- one stream: ``zstd -3 --single-thread`` (the baseline: one thread, as one stream of the
  worker) and ``zstd -3`` (the CLI's default, whose compression runs beside its I/O thread),
  against ``transfer()`` (action compress) on :class:`FakeS3` (the file served by GET, the
  upload discarded: moto would join the parts in memory and dominate the figure);
- chunked: ``zstd -3 -T<cores>`` against the chunked path: `start_chunked` with one range
  per core, each range's ``transfer()`` on a thread of its own, `complete_chunked`. Goal:
  >= 0.95x the CLI's throughput at <= 1.1x its CPU time (user + sys, all threads).

Figures are medians with their min-max. When a path misses its goal, or always with
``profile="always"``, both paths run once more under cProfile (the chunked path one profiler
per range thread) and the notes say where their time goes.

Memory: a fresh subprocess (``python -m benchmarks.memory_child``) runs the worker on a
source that the fake client's ``get_object`` body generates as it is read (a repeating 8 MiB
Neuropixels-like block, longer than zstd's window), so nothing in the process grows with the
file but the worker itself; it reports its peak RSS and tracemalloc peak. Goals: the larger
file's peak RSS <= 256 MiB, and within 10 % of the smaller file's. Both are measured with
glibc's mmap threshold pinned (see `measure_memory`); the larger file is run once more with
glibc's default allocator as a diagnostic (it may keep up to one 16 MiB part more resident).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zstandard

from benchmarks import ROOT, Row
from benchmarks.neuropixels import FRAME, neuropixels_like
from benchmarks.timing import fmt, per_second, spread
from upload_processor.domain.units import DEFAULT_LEVEL, MiB

STREAM_GOAL = 0.9  # one stream: >= 0.9x `zstd -3 --single-thread`
CHUNKED_GOAL = 0.95  # chunked: >= 0.95x `zstd -3 -T<cores>` ...
CHUNKED_CPU_GOAL = 1.1  # ... at <= 1.1x its CPU time
TARGET_MEMORY_RATIO = 1.1  # "within 10 %" of each other
TARGET_PEAK_MB = 256.0
GENERATE_BLOCK = 32 * MiB  # the test file is generated in blocks of this many bytes
MALLOC_MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, pinned (see measure_memory)


def _child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def _run_child(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run ``python -m <module> <args>`` from the project root; its last stdout line as JSON."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**_child_env(), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{module} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def write_neuropixels_file(path: Path, size: int) -> None:
    """Write `size` bytes of Neuropixels-like data to `path`, generated in blocks (so a 1 GiB
    file never needs more than a block or two in memory); each block is whole time points."""
    block = max(FRAME, (GENERATE_BLOCK // FRAME) * FRAME)
    with path.open("wb") as out:
        written, seed = 0, 1
        while written < size:
            n = min(block, size - written)
            out.write(neuropixels_like(n, seed=seed))
            written += n
            seed += 1


def _zstd_version(zstd: str | None) -> str | None:
    if zstd is None:
        return None
    completed = subprocess.run([zstd, "--version"], capture_output=True, text=True, check=False)
    words = (completed.stdout + completed.stderr).split()
    return next((w.strip(",v") for w in words if w.startswith("v") and "." in w), None)


def _summary(child: dict[str, Any]) -> dict[str, Any]:
    """Medians and min-max of every run: MiB/s from wall time, CPU seconds."""
    size_mb = child["size"] / MiB
    mb_s = {name: per_second(size_mb, spread(values)) for name, values in child["wall_s"].items()}
    cpu = {name: spread(values) for name, values in child["cpu_s"].items()}

    def ratio(project: str, baseline: str) -> float:
        return float(mb_s[project]["median"] / mb_s[baseline]["median"])

    def cpu_ratio(project: str, baseline: str) -> float:
        return float(cpu[project]["median"] / cpu[baseline]["median"])

    return {
        "mb_s": mb_s,
        "cpu_s": cpu,
        "stream_ratio": ratio("stream", "cli_single"),
        "stream_vs_default": ratio("stream", "cli_default") if "cli_default" in mb_s else None,
        "stream_cpu_ratio": cpu_ratio("stream", "cli_single"),
        "chunked_ratio": ratio("chunked", "cli_threads"),
        "chunked_cpu_ratio": cpu_ratio("chunked", "cli_threads"),
    }


def bench_throughput(
    size_mb: float,
    repeat: int,
    *,
    profile: str = "on_miss",
    level: int = DEFAULT_LEVEL,
    cores: int | None = None,
) -> dict[str, Any]:
    """Both compress paths against the zstd CLI on the same file; see the module docstring.

    `profile`: "always", "on_miss" (when the stream misses its goal) or "never".
    """
    size = int(size_mb * MiB)
    cores = cores or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        source = Path(tmp) / "continuous.dat"
        start = time.perf_counter()
        write_neuropixels_file(source, size)
        generate_s = time.perf_counter() - start
        args = ["--file", str(source), "--level", str(level), "--cores", str(cores)]
        child = _run_child("benchmarks.throughput_child", *args, "--repeat", str(repeat))
        summary = _summary(child)
        profiled = None
        missed = (
            summary["stream_ratio"] < STREAM_GOAL
            or summary["chunked_ratio"] < CHUNKED_GOAL
            or summary["chunked_cpu_ratio"] > CHUNKED_CPU_GOAL
        )
        if profile == "always" or (profile == "on_miss" and missed):
            profiled = _run_child(
                "benchmarks.throughput_child", *args, "--repeat", "0", "--profile"
            )
    zstd = child["zstd_cli"]
    return {
        "size_mb": size / MiB,
        "level": level,
        "repeat": repeat,
        "cores": cores,
        "generate_s": generate_s,
        "zstd_cli": zstd,
        "zstd_cli_version": _zstd_version(zstd),
        "zstandard_libzstd_version": ".".join(map(str, zstandard.ZSTD_VERSION)),
        **summary,
        "goals": {"stream": STREAM_GOAL, "chunked": CHUNKED_GOAL, "chunked_cpu": CHUNKED_CPU_GOAL},
        "bytes_out": child["bytes_out"],
        "compression_ratio": size / child["bytes_out"]["stream"],
        "range_size": child["range_size"],
        "requests": child["requests"],
        "wall_s": child["wall_s"],
        "profile": profiled and profiled["profile"],
        "profile_chunked": profiled and profiled["profile_chunked"],
    }


def measure_memory(size_mb: float, *, pin_malloc: bool = True) -> dict[str, Any]:
    """Run the worker in a fresh interpreter on `size_mb` MiB; its peak memory figures.

    `pin_malloc` fixes glibc's mmap threshold (``MALLOC_MMAP_THRESHOLD_``) in the child. By
    default glibc raises the threshold as large blocks are freed and then serves the 16 MiB
    part buffers from its heap, where a freed buffer's pages stay resident and the next one
    may land on fresh pages: the same worker then peaks 0 or 16 MiB higher depending on when
    that happens in the run, whatever the file size. Pinned, every large buffer is returned
    to the system when freed, so the peak is what is live at once. Other platforms ignore it.
    """
    env = {"MALLOC_MMAP_THRESHOLD_": str(MALLOC_MMAP_THRESHOLD)} if pin_malloc else {}
    result = _run_child("benchmarks.memory_child", "--size-mb", str(size_mb), env=env)
    result["malloc_mmap_threshold"] = MALLOC_MMAP_THRESHOLD if pin_malloc else None
    return result


def bench_memory(sizes_mb: tuple[float, float]) -> dict[str, Any]:
    small, large = (measure_memory(size) for size in sizes_mb)
    default_malloc = measure_memory(sizes_mb[1], pin_malloc=False)
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    return {
        "sizes_mb": list(sizes_mb),
        "small": small,
        "large": large,
        "large_default_malloc": default_malloc,
        "peak_rss_ratio": ratio,
        "tracemalloc_peak_ratio": large["tracemalloc_peak_mb"] / small["tracemalloc_peak_mb"],
        "target_ratio_max": TARGET_MEMORY_RATIO,
        "target_peak_rss_mb": TARGET_PEAK_MB,
        "within_ratio": 1 / TARGET_MEMORY_RATIO <= ratio <= TARGET_MEMORY_RATIO,
        "within_peak": max(small["peak_rss_mb"], large["peak_rss_mb"]) <= TARGET_PEAK_MB,
    }


def run(
    *,
    size_mb: float,
    repeat: int,
    memory_sizes_mb: tuple[float, float],
    profile: str = "on_miss",
) -> dict[str, Any]:
    return {
        "throughput": bench_throughput(size_mb, repeat, profile=profile),
        "memory": bench_memory(memory_sizes_mb),
    }


def _cli(t: dict[str, Any], flags: str) -> str:
    return f"`zstd -{t['level']} {flags}`".replace(" `", "`") if t["zstd_cli"] else "zstandard"


def _speed_row(
    t: dict[str, Any], measure: str, names: tuple[str, str], ratio: float, goal: float | None
) -> Row:
    """MiB/s of a (baseline, project) pair; judged against `goal` when there is one."""
    baseline, project = (fmt(t["mb_s"][name], "MiB/s") for name in names)
    if goal is None:
        return Row(measure, baseline, project, f"{ratio:.2f}", "", None)
    return Row(measure, baseline, project, f"{ratio:.2f}", f">= {goal}", ratio >= goal)


def throughput_rows(t: dict[str, Any]) -> list[Row]:
    """The one-stream and chunked comparisons."""
    cpu, size = t["cpu_s"], f"{t['size_mb']:g} MiB NP1-like"
    threads = f"-T{t['cores']}"
    rows = [
        _speed_row(
            t,
            f"one stream, {size}: MiB/s vs {_cli(t, '--single-thread')}",
            ("cli_single", "stream"),
            t["stream_ratio"],
            STREAM_GOAL,
        )
    ]
    if t["stream_vs_default"] is not None:
        rows.append(
            _speed_row(
                t,
                f"  the same vs the CLI default {_cli(t, '')}",
                ("cli_default", "stream"),
                t["stream_vs_default"],
                None,
            )
        )
    rows += [
        _speed_row(
            t,
            f"chunked, {size}, {t['cores']} ranges: MiB/s vs {_cli(t, threads)}",
            ("cli_threads", "chunked"),
            t["chunked_ratio"],
            CHUNKED_GOAL,
        ),
        Row(
            "  its CPU time (user + sys, all threads)",
            fmt(cpu["cli_threads"], "s", digits=2),
            fmt(cpu["chunked"], "s", digits=2),
            f"{t['chunked_cpu_ratio']:.2f}",
            f"<= {CHUNKED_CPU_GOAL}",
            t["chunked_cpu_ratio"] <= CHUNKED_CPU_GOAL,
        ),
    ]
    return rows


def memory_rows(m: dict[str, Any]) -> list[Row]:
    """Peak memory: flat in the file size, under the Lambda's budget."""
    s, big = m["small"], m["large"]
    default = m["large_default_malloc"]["peak_rss_mb"]
    return [
        Row(
            f"peak RSS, {big['size_mb']:g} MiB file",
            "",
            f"{big['peak_rss_mb']:.0f} MiB",
            "",
            f"<= {m['target_peak_rss_mb']:g} MiB",
            m["within_peak"],
        ),
        Row(
            f"peak RSS, {big['size_mb']:g} vs {s['size_mb']:g} MiB file",
            f"{s['peak_rss_mb']:.0f} MiB",
            f"{big['peak_rss_mb']:.0f} MiB",
            f"{m['peak_rss_ratio']:.2f}",
            f"<= {m['target_ratio_max']}",
            m["within_ratio"],
        ),
        Row(
            "  the larger file, glibc's default malloc",
            f"{big['peak_rss_mb']:.0f} MiB",
            f"{default:.0f} MiB",
            f"{default / big['peak_rss_mb']:.2f}",
            "",
            None,
        ),
    ]


def rows(result: dict[str, Any]) -> list[Row]:
    return throughput_rows(result["throughput"]) + memory_rows(result["memory"])


def _profile_notes(profile: dict[str, Any] | None, what: str) -> list[str]:
    """Where a profiled run's time went: per kind of work, and the top functions."""
    if not profile:
        return []
    kinds = ", ".join(
        f"{name} {share:.0%}"
        for name, share in sorted(
            profile["categories_share"].items(), key=lambda item: item[1], reverse=True
        )
        if share >= 0.005
    )
    top = "; ".join(
        f"{e['function']} {e['share']:.0%}" for e in profile["top"][:5] if e["share"] >= 0.01
    )
    return [
        f"compress: {what}, profiled (cProfile, {profile['wall_s']:.2f} s): {kinds}.",
        f"compress: {what}, top functions by own time: {top}.",
    ]


def notes(result: dict[str, Any]) -> list[str]:
    t, m = result["throughput"], result["memory"]
    mb = t["mb_s"]
    lines = []
    if t["zstd_cli"] is None:
        lines.append(
            "compress: the zstd command line is not on PATH: its baselines fall back to "
            "zstandard's one-shot compress (threads 0, or one per core)."
        )
    else:
        lines.append(
            f"compress: zstd CLI {t['zstd_cli_version']} ({t['zstd_cli']}), worker libzstd "
            f"{t['zstandard_libzstd_version']}; medians (min-max) of {t['repeat']} interleaved "
            f"rounds; the stream's output {t['bytes_out']['stream'] / MiB:.1f} MiB "
            f"({t['compression_ratio']:.2f}x), the chunked path's "
            f"{t['bytes_out']['chunked'] / MiB:.1f} MiB in ranges of "
            f"{t['range_size'] / MiB:g} MiB (a part under 5 MiB is padded)."
        )
    lines.append(
        f"compress: zstandard alone on the same file: one-shot {fmt(mb['zstd_oneshot'], 'MiB/s')}"
        f", stream + SHA-256 in and out {fmt(mb['zstd_stream_sha256'], 'MiB/s')}."
    )
    for key, what in (("profile", "the stream"), ("profile_chunked", "the chunked path")):
        lines += _profile_notes(t.get(key), what)
    lines.append(
        f"compress: worker peak tracemalloc {m['small']['tracemalloc_peak_mb']:.0f} / "
        f"{m['large']['tracemalloc_peak_mb']:.0f} MiB at {m['small']['size_mb']:g} / "
        f"{m['large']['size_mb']:g} MiB (part size 16 MiB; source generated as it is read); "
        f"peak RSS with glibc's mmap threshold pinned at {MALLOC_MMAP_THRESHOLD // 1024} KiB."
    )
    return lines
