"""Benchmarks for the upload processor: `make bench` (`python -m benchmarks`).

Every figure is a ratio against a baseline measured in the same run, on the same machine, on
the same input, so the numbers travel between laptops and CI runners; nothing asserts an
absolute time.

- ``compress``: the transfer worker's zstd throughput on a Neuropixels-like file against the
  ``zstd`` command line at the same level (target >= 0.9x; profiled when it misses), plus the
  worker's peak memory at two file sizes (<= 256 MiB, and within 10 % of each other).
- ``copy``: bytes the function reads for a server-side copy (CopyObject, UploadPartCopy), of
  any size: zero, against a compress of the same object through the same spy.
- ``flow``: the whole local flow (LocalCloud) for a session of 2,000 small files and one large
  file: files/s, MiB/s, and the orchestration overhead (wall time / sum of per-file
  ``transfer()`` times on the same objects against the same moto S3).
- ``gather``: ``merge.assemble`` against aind-data-schema called directly on the same files.
- ``cold_import``: the ingest handler's cold import, and whether it loads aind-data-schema.

Modes: ``--quick`` (seconds; the smoke test), the default (a few minutes), ``--full`` (the
issue's sizes: a 1 GiB throughput file, 1 vs 4 GiB for memory, a 1 GiB file in the flow).

Results are printed as a table and written to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
