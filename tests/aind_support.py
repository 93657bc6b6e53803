"""AIND material for the tests: the transfer-service example job files
(tests/fixtures/aind/transfer_service, see the README there), a session's job written as
AIND writes one, and acquisition times as real rigs write them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

# every start and end time an acquisition file carries
TIMES = {
    f"{kind}_{end}_time"
    for kind in ("acquisition", "stream", "stimulus")
    for end in ("start", "end")
}
SAMPLE_ASSET = "750101_2025-06-12_15-03-00"  # the sample session's asset name
QC_TIME = datetime(2025, 6, 12, 23, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "aind" / "transfer_service"


def aind_job(session: Path) -> bytes:
    """The session's job as AIND writes it: the aind_data_schema_v2 example's tasks (AIND
    settings, v2 task ids), modalities as objects, a naive acq_datetime and its s3_prefix."""
    job = json.loads((session / "upload_job.json").read_text())
    example = json.loads((EXAMPLES / "aind_data_schema_v2.json").read_text())
    naive = datetime.fromisoformat(job["acq_datetime"]).replace(tzinfo=None)
    job.update(
        tasks=example["tasks"],
        modalities=[{"name": m, "abbreviation": m} for m in job["modalities"]],
        acq_datetime=naive.isoformat(),
        s3_prefix=f"{job['subject_id']}_{naive:%Y-%m-%d_%H-%M-%S}",
    )
    return json.dumps(job).encode()


def retimed(raw: bytes, change, tz=None) -> bytes:
    """The acquisition with every start/end time changed, and acquisition_start_tz set."""

    def visit(value):
        if isinstance(value, dict):
            return {
                k: change(datetime.fromisoformat(v)).isoformat() if k in TIMES else visit(v)
                for k, v in value.items()
            }
        return [visit(v) for v in value] if isinstance(value, list) else value

    doc = visit(json.loads(raw))
    if tz is not None:
        doc["acquisition_start_tz"] = tz
    return json.dumps(doc).encode()


def external_streams(raw: bytes) -> bytes:
    """The acquisition with every data stream an `ExternalDataStream` (no instrument devices):
    aind-data-schema 2.9.2's Metadata check then raises AttributeError on `active_devices`."""
    doc = json.loads(raw)
    doc["data_streams"] = [
        {
            "object_type": "External data stream",
            **{k: stream[k] for k in ("stream_start_time", "stream_end_time", "modalities")},
        }
        for stream in doc["data_streams"]
    ]
    return json.dumps(doc).encode()


def quality_control(metric: str, modality: str) -> bytes:
    """A quality_control document of one passing metric, as the installed library writes it."""
    from aind_data_schema.core.quality_control import (
        QCMetric,
        QCStatus,
        QualityControl,
        Stage,
        Status,
    )
    from aind_data_schema_models.modalities import Modality

    status = QCStatus(evaluator="Automated", status=Status.PASS, timestamp=QC_TIME)
    document = QualityControl(
        metrics=[
            QCMetric(
                name=metric,
                modality=Modality.from_abbreviation(modality),
                stage=Stage.RAW,
                value=1,
                status_history=[status],
                tags={"probe": "A"},
            )
        ],
        default_grouping=[("probe",)],
    )
    return document.model_dump_json().encode()


def metadata_files(session: Path) -> dict[str, bytes]:
    """A session folder's metadata files by name, as GatherMetadata hands them to assemble."""
    from upload_processor.metadata import metadata_type_of

    return {p.name: p.read_bytes() for p in session.iterdir() if metadata_type_of(p.name)}


def sample_job():
    """The sample session's job facts (upload_processor_tools.sample)."""
    from upload_processor.metadata import JobFacts
    from upload_processor_tools import sample

    return JobFacts(
        subject_id="750101",
        modalities=("behavior", "ecephys"),
        acq_datetime=sample.DEFAULT_ACQ_DATETIME,
    )
