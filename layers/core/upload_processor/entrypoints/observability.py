"""Metrics the handlers publish (CloudWatch EMF through Powertools Metrics), and their tracer.

Names are stable: dashboards and alarms use them. Each handler keeps its own Metrics object
(module level, as Powertools expects); this module only says what to record for an outcome.

`handler_tracer` gives a handler Powertools' Tracer only when tracing is on: Powertools imports
the X-Ray SDK (about 100 ms of every cold start) even for a disabled Tracer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from upload_processor.settings import tracing_enabled

F = TypeVar("F", bound=Callable[..., Any])

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


class Untraced:
    """What a handler uses of Powertools' Tracer when tracing is off: decorators that return
    the function unchanged, and no X-Ray SDK import."""

    disabled = True

    def capture_lambda_handler(self, function: F) -> F:
        return function

    def capture_method(self, function: F) -> F:
        return function


def handler_tracer() -> Tracer | Untraced:
    """The handler's tracer: Powertools' Tracer (which loads the X-Ray SDK) when tracing is
    on, else `Untraced`, which costs nothing at import."""
    return Tracer() if tracing_enabled() else Untraced()
