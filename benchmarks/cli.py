"""The benchmark runner: options, the table, the JSON file."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import RESULTS_DIR, Row
from benchmarks.timing import MIN_RUNS
from upload_processor.domain.units import GiB, MiB

TiB = 1024 * GiB

NAMES = ("compress", "copy", "flow", "gather", "cold_import", "ecephys")
QUICK_RUNS = 3  # --quick only: its figures are not judged
COLUMNS = ("measure", "baseline", "project", "ratio", "goal", "verdict")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Benchmarks of the upload processor. Every figure is a ratio against a baseline "
            "measured in the same run; nothing asserts an absolute time."
        ),
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        "--quick", action="store_true", help="small sizes, few repeats (the smoke test)"
    )
    speed.add_argument(
        "--full",
        action="store_true",
        help="the issue's sizes: compress 2 GiB, memory 1 vs 4 GiB, flow of 2,000 files + 512 MiB",
    )
    parser.add_argument("--only", choices=NAMES, action="append", help="run only this (repeatable)")
    parser.add_argument(
        "--size-mb",
        type=float,
        default=None,
        help="compress: throughput file size in MiB (default 256; 12 with --quick, 2048 with --full)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help=(
            "where to write the results (default benchmarks/results/<timestamp>.json and a "
            "copy as latest.json, for history)"
        ),
    )
    return parser


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes and repeats for the chosen mode: at least `MIN_RUNS` interleaved runs each
    (`QUICK_RUNS` with --quick, whose figures are not judged)."""
    if args.quick:
        # A smoke test: the fewest runs that still have a median and a spread.
        return {
            "compress": {
                "size_mb": args.size_mb or 12.0,  # two ranges of 6 MiB for the chunked path
                "repeat": QUICK_RUNS,
                "memory_sizes_mb": (8.0, 16.0),
                "profile": "always",  # cheap at this size; keeps the profiling path tested
            },
            "copy": {"moto_sizes": (64 * 1024, 6 * MiB), "fake_sizes": (MiB, 5 * TiB)},
            "flow": {"small_files": 12, "large_mb": 1.0, "repeat": QUICK_RUNS},
            "gather": {"repeat": QUICK_RUNS, "min_time": 0.01},
            "cold_import": {"repeat": QUICK_RUNS},
            "ecephys": {
                "storage_s": 1.0,
                "throughput_s": 1.0,
                "repeat": QUICK_RUNS,
                "memory_s": (2.0, 4.0),
                "range_mb": 23,
            },
        }
    copy = {"moto_sizes": (256 * 1024, 12 * MiB), "fake_sizes": (MiB, 5 * GiB, 100 * GiB, 5 * TiB)}
    if args.full:
        return {
            "compress": {
                "size_mb": args.size_mb or 2048.0,  # the "2 GiB chunked"
                "repeat": MIN_RUNS,
                "memory_sizes_mb": (1024.0, 4096.0),
                "profile": "on_miss",
            },
            "copy": copy,
            "flow": {"small_files": 2000, "large_mb": 512.0, "repeat": MIN_RUNS},
            "gather": {"repeat": 15, "min_time": 0.5},
            "cold_import": {"repeat": 15},
            "ecephys": {
                "storage_s": 30.0,
                "throughput_s": 10.0,
                "repeat": MIN_RUNS,
                "memory_s": (60.0, 240.0),
                "range_mb": 256,
            },
        }
    return {
        "compress": {
            "size_mb": args.size_mb or 256.0,
            "repeat": MIN_RUNS,
            "memory_sizes_mb": (256.0, 1024.0),
            "profile": "on_miss",
        },
        "copy": copy,
        "flow": {"small_files": 500, "large_mb": 64.0, "repeat": MIN_RUNS},
        "gather": {"repeat": 7, "min_time": 0.2},
        "cold_import": {"repeat": 7},
        "ecephys": {
            "storage_s": 4.0,
            "throughput_s": 2.0,
            "repeat": MIN_RUNS,
            "memory_s": (8.0, 32.0),
            "range_mb": 64,
        },
    }


def _benchmarks() -> dict[str, ModuleType]:
    # Imported here so that `--help` is instant.
    from benchmarks import cold_import, compress, ecephys, flow, gather, server_copy

    return {
        "compress": compress,
        "copy": server_copy,
        "flow": flow,
        "gather": gather,
        "cold_import": cold_import,
        "ecephys": ecephys,
    }


def _verdict(row: Row, judge: bool) -> str:
    if row.met is None:
        return ""
    if not judge and row.goal.startswith(("<=", ">=")):
        return "[dim]not judged[/]"
    return "[green]ok[/]" if row.met else "[red]missed[/]"


def all_rows(results: dict[str, dict[str, Any]]) -> dict[str, list[Row]]:
    """Every benchmark's rows (none for one that failed)."""
    modules = _benchmarks()
    return {
        name: [] if "error" in result else modules[name].rows(result)
        for name, result in results.items()
    }


def table(results: dict[str, dict[str, Any]], *, judge: bool = True) -> Table:
    """The one table: measure, baseline, project, ratio, goal, verdict; `judge=False`
    leaves ratio goals unmarked (--quick)."""
    out = Table(title="upload-processor benchmarks: medians (min-max) of interleaved runs")
    for column in COLUMNS:
        out.add_column(column, justify="left" if column in ("measure", "goal") else "right")
    for name, rows in all_rows(results).items():
        if "error" in results[name]:
            out.add_row(f"{name}: [red]failed[/]", "", "", "", "", "[red]error[/]")
        for row in rows:
            out.add_row(*row[:5], _verdict(row, judge))
        out.add_section()
    return out


def _table_json(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"benchmark": name, **row._asdict()}
        for name, rows in all_rows(results).items()
        for row in rows
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected benchmarks; the whole JSON document."""
    chosen = settings(args)
    benchmarks = _benchmarks()
    results: dict[str, dict[str, Any]] = {}
    durations: dict[str, float] = {}
    for name in args.only or NAMES:
        start = time.perf_counter()
        try:
            results[name] = benchmarks[name].run(**chosen[name])
        except Exception as exc:  # one broken benchmark must not lose the others' figures
            results[name] = {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        durations[name] = time.perf_counter() - start
    return {
        "table": _table_json(results),
        "meta": {
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full" if args.full else "default",
            "settings": chosen,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "durations_s": durations,
        },
        "results": results,
    }


def write(document: dict[str, Any], path: Path | None) -> list[Path]:
    """Write the results to `path`, or to results/<timestamp>.json and latest.json."""
    text = json.dumps(document, indent=2, default=str) + "\n"
    if path is None:
        stamp = document["meta"]["created"].replace(":", "").replace("+0000", "Z")
        paths = [RESULTS_DIR / f"{stamp}.json", RESULTS_DIR / "latest.json"]
    else:
        paths = [path]
    for out in paths:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    document = run(args)
    console.print(table(document["results"], judge=not args.quick))
    if args.quick:
        console.print("--quick: sizes too small for the goals to mean anything.")
    modules = _benchmarks()
    failed = []
    for name, result in document["results"].items():
        if "error" in result:
            failed.append(name)
            console.print(f"{name}: FAILED: {result['error']}", highlight=False, soft_wrap=True)
            continue
        for line in modules[name].notes(result):
            console.print(line, highlight=False, soft_wrap=True)
    written = write(document, args.json)
    total = sum(document["meta"]["durations_s"].values())
    console.print(f"results: {', '.join(map(str, written))}  ({total:.0f} s)")
    if failed:
        console.print(f"failed: {', '.join(failed)} (tracebacks in the JSON file)", style="red")
        return 1
    return 0
