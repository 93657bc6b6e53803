"""`python -m benchmarks --quick` runs end to end and reports sane, positive figures.

A smoke test, not a performance test: no timing threshold is asserted here (the targets
are for `make bench` to show). It catches a benchmark broken by a change in the code it
measures, e.g. a new S3 call that the fake client does not offer.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.cli import main  # noqa: E402


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "latest.json"
    code = main(["--quick", "--json", str(out)])
    document = json.loads(out.read_text(encoding="utf-8"))
    document["exit_code"] = code
    return document


def ok(results: dict[str, Any], name: str) -> dict[str, Any]:
    """One benchmark's results; a benchmark that raised fails its own test, with its error."""
    result = results["results"][name]
    assert "error" not in result, f"{name} failed: {result.get('traceback') or result['error']}"
    return result


def test_writes_every_benchmark(results: dict[str, Any]) -> None:
    assert set(results["results"]) == {"compress", "copy", "flow", "gather", "cold_import"}
    failed = sorted(name for name, r in results["results"].items() if "error" in r)
    assert not failed and results["exit_code"] == 0, f"failed: {failed}"
    assert results["meta"]["mode"] == "quick"
    assert all(positive(s) for s in results["meta"]["durations_s"].values())


def test_compress(results: dict[str, Any]) -> None:
    throughput = ok(results, "compress")["throughput"]
    for key in ("worker_mb_s", "baseline_mb_s", "ratio", "cpu_ratio", "size_mb", "bytes_out"):
        assert positive(throughput[key]), key
    # The baseline is the zstd command line when there is one, else zstandard's one-shot.
    assert throughput["baseline"] == ("zstd_cli" if throughput["zstd_cli"] else "zstd_oneshot")
    expected = {"zstd_oneshot", "zstd_stream_sha256"} | (
        {"zstd_cli"} if throughput["zstd_cli"] else set()
    )
    assert set(throughput["baselines_mb_s"]) == expected
    assert all(positive(v) for v in throughput["baselines_mb_s"].values())
    assert all(positive(v) for v in throughput["ratios"].values())
    assert all(positive(v) for v in throughput["cpu_mb_s"].values())
    # Neuropixels-like noise compresses, but not trivially; the CLI's output is about as big.
    assert 1.1 < throughput["compression_ratio"] < 4
    assert 0.9 < throughput["baseline_bytes_out"] / throughput["bytes_out"] < 1.1
    # --quick always profiles the worker: where its time goes, grouped by kind of work.
    profile = throughput["profile"]
    assert profile["top"] and positive(profile["profiled_s"])
    assert sum(profile["categories_share"].values()) == pytest.approx(1.0)
    assert profile["categories_share"]["zstd compression"] > 0

    memory = ok(results, "compress")["memory"]
    assert positive(memory["peak_rss_ratio"]) and positive(memory["tracemalloc_peak_ratio"])
    assert isinstance(memory["within_ratio"], bool) and isinstance(memory["within_peak"], bool)
    for size, side in zip(memory["sizes_mb"], ("small", "large"), strict=True):
        assert memory[side]["size_mb"] == size
        for key in ("peak_rss_mb", "tracemalloc_peak_mb", "bytes_out"):
            assert positive(memory[side][key]), (side, key)
    # the judged pair pins glibc's mmap threshold; one more run of the larger file does not
    assert memory["large"]["malloc_mmap_threshold"] == memory["small"]["malloc_mmap_threshold"]
    diagnostic = memory["large_default_malloc"]
    assert diagnostic["malloc_mmap_threshold"] is None
    assert diagnostic["size_mb"] == memory["sizes_mb"][1] and positive(diagnostic["peak_rss_mb"])


def test_copy_reads_no_bytes(results: dict[str, Any]) -> None:
    copy = ok(results, "copy")
    cases = copy["cases"]
    assert {case["client"] for case in cases} == {"moto", "fake"}
    assert copy["max_bytes_read"] == 0
    for case in cases:
        assert case["bytes_read"] == 0 and case["read_calls"] == 0, case
        assert case["bytes_in"] == case["bytes_out"] == case["size"]
        # the positive control: a compress of the same object reads all of it through the spy
        if "control_bytes_read" in case:
            assert case["control_bytes_read"] == case["size"]
    calls = [case["calls"] for case in cases]
    assert any(c.get("copy_object") == 1 and "upload_part_copy" not in c for c in calls)
    assert any(c.get("upload_part_copy", 0) >= 2 and "copy_object" not in c for c in calls)
    assert copy["largest_object"] > 5 * 1024**3  # above S3's CopyObject limit
    assert all(case["copy_identical"] for case in cases if case["client"] == "moto")


def test_flow(results: dict[str, Any]) -> None:
    flow = ok(results, "flow")
    assert flow["execution_status"] == "SUCCEEDED"
    assert flow["job_status"] == "COMPLETE"
    # every small file, the large one, and the sample session's own data files
    assert flow["files"] > flow["small_files"] + 1
    assert flow["direct"]["files"] == flow["files"]
    assert flow["direct"]["bytes_in"] == flow["bytes_in"]
    assert set(flow["direct"]["actions"]) == {"compress", "copy"}
    for key in (
        "total_s",
        "per_file_work_s",
        "overhead_ratio",
        "files_per_s",
        "mb_per_s",
        "direct_files_per_s",
        "direct_mb_per_s",
    ):
        assert positive(flow[key]), key
    assert flow["handlers"]["TransferFunction"]["calls"] >= 1


def test_gather(results: dict[str, Any]) -> None:
    gather = ok(results, "gather")
    for key in ("worker_ms", "baseline_ms", "ratio"):
        assert positive(gather[key]), key
    assert gather["outputs_equal"] is True
    assert len(gather["files"]) == 7


def test_cold_import(results: dict[str, Any]) -> None:
    cold = ok(results, "cold_import")
    for key in (
        "handler_process_s",
        "baseline_process_s",
        "process_ratio",
        "handler_import_s",
        "baseline_import_s",
        "import_ratio",
        "handler_modules",
        "baseline_modules",
    ):
        assert positive(cold[key]), key
    assert isinstance(cold["aind_data_schema_loaded"], bool)
    # Reported, not enforced here: a chain is recorded exactly when the package is loaded.
    assert bool(cold["import_chain"]) == cold["aind_data_schema_loaded"]
    assert cold["heaviest_packages_ms"]
