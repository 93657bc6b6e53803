"""Benchmarks for the upload processor: `make bench` (`python -m benchmarks`).

Every figure is a ratio against a baseline measured in the same run, on the same machine, on
the same input, so the numbers travel between laptops and CI runners; nothing asserts an
absolute time.

- ``compress``: the transfer worker's zstd streaming throughput against zstandard called
  directly, plus the worker's peak memory at two file sizes (it must not grow with the file).
- ``gather``: ``merge.assemble`` against aind-data-schema called directly on the same files.
- ``cold_import``: the ingest handler's cold import, and whether it loads aind-data-schema.

Results are printed as a table and written to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MiB = 1024 * 1024
