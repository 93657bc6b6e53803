"""Benchmarks for the upload processor: `make bench` (`python -m benchmarks`).

Every figure is a median (with min-max) of at least five runs interleaved with its baseline
(baseline, project, baseline, project, ...), on the same machine and the same input, and is
reported as a ratio against that baseline: the numbers travel between laptops and CI runners
and drift (a neighbour's job, heat) hits both sides alike. The baselines are what a user would
pick instead of the project, the inputs compress like real data, and every clock runs around
the real read path (a file or an S3 GET, never a buffer loaded beforehand).

- ``compress``: one stream against ``zstd -3 --single-thread`` and the CLI's default; the
  chunked path (ranges compressed in parallel) against ``zstd -3 -T<cores>``; peak memory.
- ``copy``: bytes the function reads for a server-side copy: zero, of any size.
- ``flow``: the whole local flow against a plain boto3 GET/compress/PUT loop over the same
  staged objects on the same local cloud.
- ``gather``: ``merge.assemble`` against aind-data-schema called directly on the same files.
- ``cold_import``: the ingest handler's cold import against importing
  ``aind_data_schema.core.metadata``, each in a fresh interpreter.

Modes: ``--quick`` (the smoke test: small sizes), the default, ``--full`` (the issue's
sizes). `cli` prints one table (measure, baseline, project, ratio, goal, verdict) and writes
it with every raw figure to ``benchmarks/results/<timestamp>.json`` and ``latest.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Row(NamedTuple):
    """One line of the table: what is measured, the baseline's and the project's figures, the
    ratio (project / baseline, oriented so that the goal reads naturally), the goal, and
    whether it is met (None: a diagnostic, not judged)."""

    measure: str
    baseline: str
    project: str
    ratio: str
    goal: str
    met: bool | None
