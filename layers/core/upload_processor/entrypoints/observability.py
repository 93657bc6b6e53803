"""Metrics the handlers publish (CloudWatch EMF through Powertools Metrics).

Names are stable: dashboards and alarms use them. Each handler keeps its own Metrics object
(module level, as Powertools expects); this module only says what to record for an outcome.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

OUTCOME_METRICS = {
    "COMPLETE": "UploadsCompleted",
    "REJECTED": "UploadsRejected",
    "FAILED": "UploadsFailed",
}


def log_keys(event: dict[str, Any]) -> dict[str, Any]:
    """Keys on every log line of a pipeline step: the job id is the execution's name."""
    job_id = event.get("job_id")
    return {"job_id": job_id, "execution_name": job_id}


def record_outcome(metrics: Metrics, result: dict[str, Any]) -> None:
    """Uploads completed/rejected/failed; files, bytes and compression ratio of a completed one."""
    name = OUTCOME_METRICS.get(str(result.get("status")))
    if name:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if result.get("status") == "COMPLETE":
        bytes_in, bytes_out = int(result.get("bytes_in", 0)), int(result.get("bytes_out", 0))
        metrics.add_metric(name="Files", unit=MetricUnit.Count, value=int(result.get("files", 0)))
        metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=bytes_in)
        metrics.add_metric(name="BytesOut", unit=MetricUnit.Bytes, value=bytes_out)
        if bytes_out:
            metrics.add_metric(
                name="CompressionRatio", unit=MetricUnit.NoUnit, value=bytes_in / bytes_out
            )


def record_stage(metrics: Metrics, stage: str, seconds: float) -> None:
    """How long a stage's invocation took."""
    metrics.add_metric(name=f"{stage}Duration", unit=MetricUnit.Milliseconds, value=seconds * 1000)
