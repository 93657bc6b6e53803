"""`python -m benchmarks --quick` runs end to end and reports sane, positive figures.

A smoke test, not a performance test: no timing threshold is asserted here (the goals
are for `make bench` to show), but the harness's shape is: medians of interleaved runs,
every baseline beside the project, one table with the issue's goals, the JSON history. It catches a benchmark broken by a change in the code it
measures, e.g. a new S3 call that the fake client does not offer.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT

if str(ROOT) not in sys.path:  # `benchmarks` is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.cli import main


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


def spread_ok(value: dict[str, Any], runs: int) -> None:
    """A median with its min-max, over `runs` interleaved runs."""
    assert value["n"] == runs == len(value["values"])
    assert all(positive(v) for v in value["values"])
    assert value["min"] <= value["median"] <= value["max"]


def test_writes_every_benchmark(results: dict[str, Any]) -> None:
    assert set(results["results"]) == {
        "compress",
        "copy",
        "flow",
        "gather",
        "cold_import",
        "ecephys",
    }
    failed = sorted(name for name, r in results["results"].items() if "error" in r)
    assert not failed and results["exit_code"] == 0, f"failed: {failed}"
    assert results["meta"]["mode"] == "quick"
    assert all(positive(s) for s in results["meta"]["durations_s"].values())


def test_one_table_of_ratios_with_goals(results: dict[str, Any]) -> None:
    table = results["table"]
    assert {row["benchmark"] for row in table} == set(results["results"])
    for row in table:
        assert set(row) == {"benchmark", "measure", "baseline", "project", "ratio", "goal", "met"}
    goals = {row["measure"].split(":")[0].split(",")[0]: row["goal"] for row in table}
    # the three goals are the table's
    assert goals["chunked"] == ">= 0.95"
    assert any(r["goal"] == "<= 1.1" and "CPU" in r["measure"] for r in table)
    assert goals["whole local flow"] == "<= 1.5"
    assert goals["ingest cold import vs `import aind_data_schema.core.metadata`"] == "<= 250 ms"


def test_default_json_is_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import cli

    monkeypatch.setattr(cli, "RESULTS_DIR", tmp_path)
    document = {"meta": {"created": "2026-01-02T03:04:05+00:00"}, "results": {}}
    written = cli.write(document, None)
    assert [p.name for p in written] == ["2026-01-02T030405Z.json", "latest.json"]
    assert all(json.loads(p.read_text()) == document for p in written)


def test_compress(results: dict[str, Any]) -> None:
    t = ok(results, "compress")["throughput"]
    runs = results["meta"]["settings"]["compress"]["repeat"]
    cli = t["zstd_cli"] is not None
    # every baseline a user would pick, beside each project path, all interleaved
    expected = {"cli_single", "stream", "cli_threads", "chunked"} | {"zstd_oneshot"}
    assert expected | ({"cli_default"} if cli else set()) <= set(t["mb_s"])
    for name in t["mb_s"]:
        spread_ok(t["mb_s"][name], runs)
        spread_ok(t["cpu_s"][name], runs)
    for key in ("stream_ratio", "stream_cpu_ratio", "chunked_ratio", "chunked_cpu_ratio"):
        assert positive(t[key]), key
    assert t["stream_ratio"] == pytest.approx(
        t["mb_s"]["stream"]["median"] / t["mb_s"]["cli_single"]["median"]
    )
    assert t["goals"] == {"stream": 0.9, "chunked": 0.95, "chunked_cpu": 1.1}
    # NP1-like data compresses as real NP1 AP band does (zstd -3: 2.5-2.9x)
    assert 2.5 <= t["compression_ratio"] <= 2.9
    assert 0.9 < t["bytes_out"]["cli_single"] / t["bytes_out"]["stream"] < 1.1
    # the project read the file through (ranged) GETs, one per range on the chunked path
    assert t["requests"]["stream"]["get_object"] == 1
    assert t["requests"]["chunked"]["get_object"] == t["requests"]["chunked"]["upload_part"] == 2
    # --quick always profiles both paths: where their time goes, grouped by kind of work.
    for profile in (t["profile"], t["profile_chunked"]):
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
    runs = results["meta"]["settings"]["flow"]["repeat"]
    assert flow["execution_status"] == "SUCCEEDED"
    assert flow["job_status"] == "COMPLETE"
    # every small file, the large one, and the sample session's own data files
    assert flow["files"] > flow["small_files"] + 1
    # the raw loop did the same kinds of work on every staged object
    loop = flow["raw_loop"]
    assert loop["files"] >= flow["files"] and set(loop["actions"]) == {"compress", "copy"}
    assert loop["bytes_in"] >= flow["bytes_in"]
    spread_ok(flow["flow_s"], runs)
    spread_ok(flow["raw_loop_s"], runs)
    assert flow["ratio"] == pytest.approx(flow["flow_s"]["median"] / flow["raw_loop_s"]["median"])
    assert flow["handlers_per_round"]["TransferFunction"]["calls"] >= runs


def test_gather(results: dict[str, Any]) -> None:
    gather = ok(results, "gather")
    runs = results["meta"]["settings"]["gather"]["repeat"]
    spread_ok(gather["worker_s"], runs)
    spread_ok(gather["baseline_s"], runs)
    assert positive(gather["ratio"])
    assert gather["outputs_equal"] is True
    assert len(gather["files"]) == 7


def test_cold_import(results: dict[str, Any]) -> None:
    cold = ok(results, "cold_import")
    runs = results["meta"]["settings"]["cold_import"]["repeat"]
    for key in ("handler_import_s", "baseline_import_s", "handler_process_s", "baseline_process_s"):
        spread_ok(cold[key], runs)
    assert cold["baseline"] == "import aind_data_schema.core.metadata"
    assert positive(cold["import_ratio"]) and positive(cold["process_ratio"])
    assert cold["within_goal"] == (cold["handler_import_s"]["median"] * 1000 <= 250)
    assert isinstance(cold["aind_data_schema_loaded"], bool)
    # Reported, not enforced here: a chain is recorded exactly when the package is loaded.
    assert bool(cold["import_chain"]) == cold["aind_data_schema_loaded"]
    assert cold["heaviest_packages_ms"]


def test_ecephys(results: dict[str, Any]) -> None:
    ecephys = ok(results, "ecephys")
    runs = results["meta"]["settings"]["ecephys"]["repeat"]
    storage = ecephys["storage"]
    for label in ("lsb1", "x12", "x12_uncorrected"):
        assert positive(storage[label]["zstd3_ratio"]) and positive(storage[label]["flac_ratio"])
    assert (storage["lsb1"]["lsb"], storage["x12"]["lsb"], storage["x12_uncorrected"]["lsb"]) == (
        1,
        12,
        1,
    )
    # the correction gives the x12 data back the gain it would lose
    assert storage["x12"]["zarr_bytes"] < storage["x12_uncorrected"]["zarr_bytes"]
    spread_ok(ecephys["throughput"]["zstd3_mb_s"], runs)
    spread_ok(ecephys["throughput"]["zarr_mb_s"], runs)
    spread_ok(ecephys["throughput"]["decode_s"]["zarr"], runs)
    assert all(positive(r["peak_rss_mb"]) for r in ecephys["memory"]["runs"].values())
    assert positive(ecephys["memory"]["ratio"])
    assert all(positive(v) for v in ecephys["profile"].values())
