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
    assert main(["--quick", "--json", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_writes_every_benchmark(results: dict[str, Any]) -> None:
    assert set(results["results"]) == {"compress", "gather", "cold_import"}
    assert results["meta"]["mode"] == "quick"
    assert all(positive(s) for s in results["meta"]["durations_s"].values())


def test_compress(results: dict[str, Any]) -> None:
    throughput = results["results"]["compress"]["throughput"]
    for key in ("worker_mb_s", "baseline_mb_s", "ratio", "size_mb", "bytes_out"):
        assert positive(throughput[key]), key
    assert set(throughput["baselines_mb_s"]) == {
        "zstd_oneshot",
        "zstd_stream",
        "zstd_stream_sha256",
    }
    assert all(positive(v) for v in throughput["baselines_mb_s"].values())
    assert all(positive(v) for v in throughput["ratios"].values())
    # Neuropixels-like noise compresses, but not trivially.
    assert 1.1 < throughput["compression_ratio"] < 4

    memory = results["results"]["compress"]["memory"]
    assert positive(memory["peak_rss_ratio"]) and positive(memory["tracemalloc_peak_ratio"])
    for size, side in zip(memory["sizes_mb"], ("small", "large"), strict=True):
        assert memory[side]["size_mb"] == size
        for key in ("peak_rss_mb", "tracemalloc_peak_mb", "bytes_out"):
            assert positive(memory[side][key]), (side, key)


def test_gather(results: dict[str, Any]) -> None:
    gather = results["results"]["gather"]
    for key in ("worker_ms", "baseline_ms", "ratio"):
        assert positive(gather[key]), key
    assert gather["outputs_equal"] is True
    assert len(gather["files"]) == 7


def test_cold_import(results: dict[str, Any]) -> None:
    cold = results["results"]["cold_import"]
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
