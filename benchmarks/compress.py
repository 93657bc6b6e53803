"""`compress`: the transfer worker's zstd throughput against the zstd command line, and its
peak memory at two file sizes.

Throughput: a Neuropixels-like int16 file (384 channels, 30 kHz, realistic noise:
``benchmarks.neuropixels``) is written to a temporary folder, then, alternately, ``repeat``
times each (best of N):

- the baseline, the ``zstd`` command line at the worker's level on that file:
  ``zstd -q -<level> -f -o OUT IN``, timed as a whole process (the file creation is not
  counted). Without ``zstd`` on PATH the baseline falls back to zstandard's one-shot
  ``compress`` and the results say so.
- the worker, in its own process (``python -m benchmarks.throughput_child``): the file is
  read into memory, then ``transfer(s3, item)`` (action compress) runs against
  :class:`FakeS3`, which serves those bytes and discards the upload (moto would join the
  parts in memory and dominate the figure). The worker reads 1 MiB chunks, hashes them
  (SHA-256), streams them through zstd (content checksum, pledged size) into 16 MiB parts and
  SHA-256s each part for S3's part checksum. Like the CLI with its default ``-T1``, it
  compresses on one libzstd worker thread while its calling thread does the rest.

The same child also times, on the same bytes, two diagnostics: zstandard's one-shot
``compress`` and ``copy_stream`` with SHA-256 of input and output (the least the worker's
design can cost). Headline: worker / zstd CLI by wall time, target >= 0.9. The same ratio by
CPU time (user + sys) is shown beside it: on a shared machine a process that loses its core
for a while shows it in wall time only. When the worker misses the target it is run once more
under cProfile and the results say where its time goes.

Memory: a fresh subprocess (``python -m benchmarks.memory_child``) runs the worker on a
source that the fake client's ``get_object`` body generates as it is read (a repeating 8 MiB
Neuropixels-like block, longer than zstd's window), so nothing in the process grows with the
file but the worker itself; it reports its peak RSS and tracemalloc peak. Targets: the larger
file's peak RSS <= 256 MiB, and within 10 % of the smaller file's. Both are measured with
glibc's mmap threshold pinned (see `measure_memory`); the larger file is run once more with
glibc's default allocator as a diagnostic (it may keep up to one 16 MiB part more resident).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zstandard

from benchmarks import ROOT
from benchmarks.fake_s3 import FakeS3
from benchmarks.neuropixels import FRAME, neuropixels_like
from upload_processor.domain.plan import PlanItem
from upload_processor.domain.units import DEFAULT_LEVEL, MiB
from upload_processor.pipeline.transfer import transfer

SOURCE_BUCKET = "bench-staging"
DEST_BUCKET = "bench-archive"
SOURCE_KEY = "session/ecephys/continuous.dat"
DEST_KEY = "asset/ecephys/continuous.dat.zst"
ETAG = "0123456789abcdef0123456789abcdef"
TARGET_RATIO = 0.9
TARGET_MEMORY_RATIO = 1.1  # "within 10 %" of each other
TARGET_PEAK_MB = 256.0
DIAGNOSTICS = ("zstd_oneshot", "zstd_stream_sha256")
GENERATE_BLOCK = 256 * MiB  # the test file is generated in blocks of this many bytes
MALLOC_MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, pinned (see measure_memory)


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


def zstd_cli() -> tuple[str | None, str | None]:
    """The zstd command line's path and version, or (None, None) if it is not on PATH."""
    path = shutil.which("zstd")
    if path is None:
        return None, None
    completed = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"v(\d+\.\d+\.\d+)", completed.stdout + completed.stderr)
    return path, match.group(1) if match else None


def time_zstd_cli(zstd: str, level: int, source: Path, out: Path) -> dict[str, float]:
    """One run of `zstd -q -<level> -f -o out source`: wall and CPU seconds, output bytes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [zstd, "-q", f"-{level}", "-f", "-o", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "bytes_out": out.stat().st_size}


def bench_throughput(
    size_mb: float, repeat: int, *, profile: str = "on_miss", level: int = DEFAULT_LEVEL
) -> dict[str, Any]:
    """Worker vs the zstd CLI on the same file; see the module docstring.

    `profile`: "always", "on_miss" (when the ratio misses the target) or "never".
    """
    size = int(size_mb * MiB)
    zstd, zstd_version = zstd_cli()
    baseline = "zstd_cli" if zstd else "zstd_oneshot"
    child_funcs = ["worker", *DIAGNOSTICS]
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        source = Path(tmp) / "continuous.dat"
        start = time.perf_counter()
        write_neuropixels_file(source, size)
        generate_s = time.perf_counter() - start
        child_args = ["--file", str(source), "--level", str(level)]
        times: dict[str, list[float]] = {name: [] for name in ["zstd_cli", *child_funcs]}
        cpu: dict[str, list[float]] = {name: [] for name in times}
        bytes_out: dict[str, int] = {}
        requests: dict[str, int] = {}
        for _ in range(repeat):  # alternately, so that drift hits both alike
            if zstd:
                cli = time_zstd_cli(zstd, level, source, Path(tmp) / "continuous.dat.zst")
                times["zstd_cli"].append(cli["wall_s"])
                cpu["zstd_cli"].append(cli["cpu_s"])
                bytes_out["zstd_cli"] = int(cli["bytes_out"])
            child = _run_child(
                "benchmarks.throughput_child", *child_args, "--funcs", ",".join(child_funcs)
            )
            for name in child_funcs:
                times[name].append(child["times_s"][name])
                cpu[name].append(child["cpu_s"][name])
                bytes_out[name] = int(child["bytes_out"][name])
            requests = child["requests"]
        times = {name: values for name, values in times.items() if values}
        best = {name: min(values) for name, values in times.items()}
        mb_s = {name: size / MiB / seconds for name, seconds in best.items()}
        # CPU seconds per wall second of the best run: > 1 means more than one core was busy.
        cores = {name: cpu[name][times[name].index(best[name])] / best[name] for name in best}
        ratio = mb_s["worker"] / mb_s[baseline]
        # The same from CPU seconds (user + sys, best of N): what each costs when it has a core
        # to itself, so less disturbed by a busy machine (both compress on one worker thread
        # beside the thread that reads and writes: the sum of their work).
        cpu_mb_s = {name: size / MiB / min(values) for name, values in cpu.items() if values}
        profiled = None
        if profile == "always" or (profile == "on_miss" and ratio < TARGET_RATIO):
            profiled = _run_child(
                "benchmarks.throughput_child", *child_args, "--funcs", "", "--profile"
            )["profile"]
    return {
        "size_mb": size / MiB,
        "level": level,
        "repeat": repeat,
        "generate_s": generate_s,
        "worker_mb_s": mb_s["worker"],
        "baseline": baseline,
        "baseline_mb_s": mb_s[baseline],
        "ratio": ratio,
        "target_ratio_min": TARGET_RATIO,
        "zstd_cli": zstd,
        "zstd_cli_version": zstd_version,
        "zstandard_libzstd_version": ".".join(map(str, zstandard.ZSTD_VERSION)),
        "baselines_mb_s": {name: mb_s[name] for name in mb_s if name != "worker"},
        "ratios": {f"vs_{name}": mb_s["worker"] / mb_s[name] for name in mb_s if name != "worker"},
        "cpu_per_wall": cores,
        "cpu_mb_s": cpu_mb_s,
        "cpu_ratio": cpu_mb_s["worker"] / cpu_mb_s[baseline],
        "cpu_s": cpu,
        "times_s": times,
        "bytes_out": bytes_out["worker"],
        "baseline_bytes_out": bytes_out[baseline],
        "compression_ratio": size / bytes_out["worker"],
        "requests": requests,
        "profile": profiled,
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


def _mib_s(value: float) -> str:
    return f"{value:.0f} MiB/s"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows: (measure, worker, baseline, ratio, target, met)."""
    t, m = result["throughput"], result["memory"]
    s, big = m["small"], m["large"]
    baseline = (
        f"`zstd -{t['level']}` CLI" if t["baseline"] == "zstd_cli" else "one-shot (no zstd CLI)"
    )
    out: list[tuple[str, str, str, str, str, bool | None]] = [
        (
            f"throughput, {t['size_mb']:g} MiB Neuropixels vs {baseline}",
            _mib_s(t["worker_mb_s"]),
            _mib_s(t["baseline_mb_s"]),
            f"{t['ratio']:.2f}",
            f">= {t['target_ratio_min']}",
            t["ratio"] >= t["target_ratio_min"],
        )
    ]
    out.append(
        (
            "  the same by CPU time (user + sys; diagnostic)",
            _mib_s(t["cpu_mb_s"]["worker"]),
            _mib_s(t["cpu_mb_s"][t["baseline"]]),
            f"{t['cpu_ratio']:.2f}",
            "",
            None,
        )
    )
    for name, label in (
        ("zstd_oneshot", "  vs zstandard one-shot (diagnostic)"),
        ("zstd_stream_sha256", "  vs zstandard stream + SHA-256 in & out (diag.)"),
    ):
        if name != t["baseline"] and name in t["baselines_mb_s"]:
            out.append(
                (
                    label,
                    _mib_s(t["worker_mb_s"]),
                    _mib_s(t["baselines_mb_s"][name]),
                    f"{t['ratios'][f'vs_{name}']:.2f}",
                    "",
                    None,
                )
            )
    out += [
        (
            f"peak RSS, {big['size_mb']:g} MiB file",
            f"{big['peak_rss_mb']:.0f} MiB",
            "",
            "",
            f"<= {m['target_peak_rss_mb']:g} MiB",
            m["within_peak"],
        ),
        (
            f"peak RSS, {big['size_mb']:g} vs {s['size_mb']:g} MiB file",
            f"{big['peak_rss_mb']:.0f} MiB",
            f"{s['peak_rss_mb']:.0f} MiB",
            f"{m['peak_rss_ratio']:.2f}",
            f"<= {m['target_ratio_max']}",
            m["within_ratio"],
        ),
        (
            "  the larger file, glibc's default malloc (diag.)",
            f"{m['large_default_malloc']['peak_rss_mb']:.0f} MiB",
            f"{big['peak_rss_mb']:.0f} MiB",
            f"{m['large_default_malloc']['peak_rss_mb'] / big['peak_rss_mb']:.2f}",
            "",
            None,
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
    return out


def notes(result: dict[str, Any]) -> list[str]:
    t, m = result["throughput"], result["memory"]
    b, cores = t["baselines_mb_s"], t["cpu_per_wall"]
    lines = []
    if t["zstd_cli"] is None:
        lines.append(
            "compress: the zstd command line is not on PATH: the throughput baseline falls back "
            "to zstandard's one-shot compress (in the worker's process)."
        )
    else:
        lines.append(
            f"compress: zstd CLI {t['zstd_cli_version']} ({t['zstd_cli']}) "
            f"{b['zstd_cli']:.0f} MiB/s using {cores['zstd_cli']:.2f} cores; worker (libzstd "
            f"{t['zstandard_libzstd_version']}) {t['worker_mb_s']:.0f} MiB/s using "
            f"{cores['worker']:.2f} cores; output {t['bytes_out'] / MiB:.1f} vs "
            f"{t['baseline_bytes_out'] / MiB:.1f} MiB ({t['compression_ratio']:.2f}x, "
            f"{t['requests'].get('upload_part', 0)} parts); best of {t['repeat']}."
        )
    lines.append(
        f"compress: zstandard direct on the same bytes: one-shot {b['zstd_oneshot']:.0f} MiB/s, "
        f"stream + SHA-256 of input and output {b['zstd_stream_sha256']:.0f} MiB/s."
    )
    profile = t.get("profile")
    if profile:
        kinds = ", ".join(
            f"{name} {share:.0%}"
            for name, share in sorted(
                profile["categories_share"].items(), key=lambda item: item[1], reverse=True
            )
            if share >= 0.005
        )
        lines.append(f"compress: worker profile (cProfile, {profile['wall_s']:.2f} s): {kinds}.")
        top = "; ".join(
            f"{e['function']} {e['share']:.0%}" for e in profile["top"][:5] if e["share"] >= 0.01
        )
        lines.append(f"compress: top functions by own time: {top}.")
    lines.append(
        f"compress: worker peak tracemalloc {m['small']['tracemalloc_peak_mb']:.0f} / "
        f"{m['large']['tracemalloc_peak_mb']:.0f} MiB at {m['small']['size_mb']:g} / "
        f"{m['large']['size_mb']:g} MiB (part size 16 MiB; source generated as it is read); "
        f"peak RSS with glibc's mmap threshold pinned at {MALLOC_MMAP_THRESHOLD // 1024} KiB, "
        f"{m['large_default_malloc']['peak_rss_mb']:.0f} MiB with its default (dynamic) one."
    )
    return lines
