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

from benchmarks import RESULTS_DIR
from upload_processor.domain.units import GiB, MiB

TiB = 1024 * GiB

NAMES = ("compress", "copy", "flow", "gather", "cold_import")
Row = tuple[str, str, str, str, str, bool | None]


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
        help="the issue's sizes: compress 1 GiB, memory 1 vs 4 GiB, flow with a 1 GiB file",
    )
    parser.add_argument("--only", choices=NAMES, action="append", help="run only this (repeatable)")
    parser.add_argument(
        "--size-mb",
        type=float,
        default=None,
        help="compress: throughput file size in MiB (default 256; 8 with --quick, 1024 with --full)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS_DIR / "latest.json",
        help="where to write the results (default benchmarks/results/latest.json)",
    )
    return parser


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes and repeats for the chosen mode."""
    if args.quick:
        return {
            "compress": {
                "size_mb": args.size_mb or 8.0,
                "repeat": 2,
                "memory_sizes_mb": (8.0, 16.0),
                "profile": "always",  # cheap at this size; keeps the profiling path tested
            },
            "copy": {"moto_sizes": (64 * 1024, 6 * MiB), "fake_sizes": (MiB, 5 * TiB)},
            "flow": {"small_files": 100, "large_mb": 4.0},
            "gather": {"repeat": 2, "min_time": 0.02},
            "cold_import": {"repeat": 1},
        }
    copy = {"moto_sizes": (256 * 1024, 12 * MiB), "fake_sizes": (MiB, 5 * GiB, 100 * GiB, 5 * TiB)}
    if args.full:
        return {
            "compress": {
                "size_mb": args.size_mb or 1024.0,
                "repeat": 3,
                "memory_sizes_mb": (1024.0, 4096.0),
                "profile": "on_miss",
            },
            "copy": copy,
            "flow": {"small_files": 2000, "large_mb": 1024.0},
            "gather": {"repeat": 15, "min_time": 0.5},
            "cold_import": {"repeat": 15},
        }
    return {
        "compress": {
            "size_mb": args.size_mb or 256.0,
            "repeat": 5,
            "memory_sizes_mb": (256.0, 1024.0),
            "profile": "on_miss",
        },
        "copy": copy,
        "flow": {"small_files": 2000, "large_mb": 64.0},
        "gather": {"repeat": 7, "min_time": 0.2},
        "cold_import": {"repeat": 7},
    }


def _benchmarks() -> dict[str, ModuleType]:
    # Imported here so that `--help` is instant.
    from benchmarks import cold_import, compress, flow, gather, server_copy

    return {
        "compress": compress,
        "copy": server_copy,
        "flow": flow,
        "gather": gather,
        "cold_import": cold_import,
    }


def table(results: dict[str, dict[str, Any]], *, judge: bool = True) -> Table:
    """The results as a table; `judge=False` leaves ratio targets unmarked (--quick)."""
    modules = _benchmarks()
    out = Table(title="upload-processor benchmarks (ratios against baselines from this run)")
    for column, justify in (
        ("benchmark", "left"),
        ("measure", "left"),
        ("worker", "right"),
        ("baseline", "right"),
        ("ratio", "right"),
        ("target", "left"),
        ("", "left"),
    ):
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, result in results.items():
        if "error" in result:
            out.add_row(name, "[red]failed[/]", "", "", "", "", "[red]error[/]")
            out.add_section()
            continue
        rows: list[Row] = modules[name].rows(result)
        for i, (measure, worker, baseline, ratio, target, met) in enumerate(rows):
            if met is None:
                mark = ""
            elif not judge and target.startswith(("<=", ">=")):
                mark = "[dim]not judged[/]"
            else:
                mark = "[green]ok[/]" if met else "[red]missed[/]"
            out.add_row(name if i == 0 else "", measure, worker, baseline, ratio, target, mark)
        out.add_section()
    return out


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    document = run(args)
    console.print(table(document["results"], judge=not args.quick))
    if args.quick:
        console.print("--quick: sizes too small for the ratio targets to mean anything.")
    modules = _benchmarks()
    failed = []
    for name, result in document["results"].items():
        if "error" in result:
            failed.append(name)
            console.print(f"{name}: FAILED: {result['error']}", highlight=False, soft_wrap=True)
            continue
        for line in modules[name].notes(result):
            console.print(line, highlight=False, soft_wrap=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    total = sum(document["meta"]["durations_s"].values())
    console.print(f"results: {args.json}  ({total:.0f} s)")
    if failed:
        console.print(f"failed: {', '.join(failed)} (tracebacks in the JSON file)", style="red")
        return 1
    return 0
