"""`gather`: ``merge.assemble`` against aind-data-schema called directly, on the same files.

Input: the metadata files of the sample session (``sample.build_session``): two
instruments, two acquisitions, subject, procedures, data description (the job file rides
along, as GatherMetadata passes every root file; both sides skip it).

Baseline, mirroring what merge.py does with the library and nothing else: each file
``Model.model_validate_json``; the instruments folded with ``+`` in sorted filename order,
the acquisitions likewise; every core model dumped (``model_dump(mode="json")``);
``Metadata(name=..., location=..., **models)`` built from the models; its dump. No
warning capture, no issue objects, no extra checks: the ratio is the price of those.
The two results must be equal, or the comparison would be meaningless.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from operator import add
from pathlib import Path
from typing import Any

from aind_data_schema.core.acquisition import Acquisition
from aind_data_schema.core.data_description import DataDescription
from aind_data_schema.core.instrument import Instrument
from aind_data_schema.core.metadata import Metadata
from aind_data_schema.core.procedures import Procedures
from aind_data_schema.core.subject import Subject

from benchmarks import Row
from benchmarks.timing import autorange, fmt, interleaved
from upload_processor.metadata import assemble
from upload_processor_tools.sample import build_session

TARGET_RATIO = 1.5

# Filename prefix -> model, in merge.py's order. Only these types occur in the sample.
_MODELS = {
    "instrument": Instrument,
    "acquisition": Acquisition,
    "subject": Subject,
    "procedures": Procedures,
    "data_description": DataDescription,
}


def session_files() -> dict[str, bytes]:
    """The sample session's root files, as GatherMetadata hands them to assemble()."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_session(Path(tmp), data_mb_per_modality=0.01)
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def direct(files: dict[str, bytes], asset_name: str) -> dict[str, Any]:
    """The library alone: validate, merge with ``+``, dump, validate the whole as Metadata."""
    models = {}
    for core_type, model in _MODELS.items():
        names = sorted(
            name
            for name in files
            if name.startswith(core_type) and name.endswith(".json") and "/" not in name
        )
        if names:
            models[core_type] = reduce(add, (model.model_validate_json(files[n]) for n in names))
    core = {core_type: m.model_dump(mode="json") for core_type, m in models.items()}
    metadata = Metadata(name=asset_name, location=f"pending://{asset_name}", **models)
    return {"core": core, "metadata": metadata.model_dump(mode="json")}


@contextmanager
def _quiet_library() -> Iterator[None]:
    """Keep the baseline's library warnings and log lines off the console.

    Set once around the whole measurement, so it costs the baseline nothing per call;
    assemble() sets up its own capture inside, per call, as it does in production.
    """
    logger = logging.getLogger("aind_data_schema")
    old_level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(old_level)


def run(*, repeat: int, min_time: float) -> dict[str, Any]:
    files = session_files()
    asset_name = json.loads(files["data_description.json"])["name"]

    def worker() -> Any:
        return assemble(files, asset_name=asset_name)

    def baseline() -> dict[str, Any]:
        return direct(files, asset_name)

    with _quiet_library():
        assembly, reference = worker(), baseline()  # warm-up (lazy schema builds, caches)
        if assembly.errors or assembly.metadata is None:
            raise AssertionError(f"the sample session does not assemble: {assembly.errors}")
        if assembly.metadata != reference["metadata"] or assembly.core != reference["core"]:
            raise AssertionError("assemble() and the direct library calls disagree")
        numbers = {"worker": autorange(worker, min_time), "baseline": autorange(baseline, min_time)}
        timed = interleaved({"baseline": baseline, "worker": worker}, repeat=repeat, number=numbers)
    project_s, baseline_s = (
        {k: v for k, v in timed[name].items() if k != "result"} for name in ("worker", "baseline")
    )
    return {
        "files": sorted(name for name in files if name != "upload_job.json"),
        "input_bytes": sum(len(raw) for raw in files.values()),
        "repeat": repeat,
        "number": numbers,
        "worker_s": project_s,
        "baseline_s": baseline_s,
        "ratio": project_s["median"] / baseline_s["median"],
        "target_ratio_max": TARGET_RATIO,
        "outputs_equal": True,
        "warnings_reported": len(assembly.issues),
    }


def rows(result: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"GatherMetadata's assemble() vs the library direct, {len(result['files'])} files",
            fmt(result["baseline_s"], "ms", 1000, 1),
            fmt(result["worker_s"], "ms", 1000, 1),
            f"{result['ratio']:.2f}",
            f"<= {result['target_ratio_max']}",
            result["ratio"] <= result["target_ratio_max"],
        )
    ]


def notes(result: dict[str, Any]) -> list[str]:
    return [
        f"gather: medians of {result['repeat']} interleaved runs of "
        f"{result['number']['worker']} calls; "
        "assemble() output equals the direct library calls' output."
    ]
