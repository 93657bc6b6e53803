"""The handlers' metrics: what a completed, rejected or failed job records (Powertools EMF)."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools import Metrics

from upload_processor.entrypoints.observability import (
    Untraced,
    handler_tracer,
    log_keys,
    record_outcome,
    record_stage,
    tracing_enabled,
)


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Metrics:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    m = Metrics(namespace="UploadProcessorTest", service="test")
    m.clear_metrics()  # Powertools keeps one metric set per process: start from an empty one
    yield m
    m.clear_metrics()


def _names(metrics: Metrics) -> dict[str, float]:
    blob = metrics.serialize_metric_set()
    values = {}
    for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
        value = blob[definition["Name"]]
        values[definition["Name"]] = value[0] if isinstance(value, list) else value
    return values


def test_a_completed_job_records_files_bytes_and_ratio(metrics: Metrics) -> None:
    record_outcome(
        metrics, {"status": "COMPLETE", "files": 6, "bytes_in": 8_000, "bytes_out": 2_000}
    )
    record_stage(metrics, "Finalize", 1.5)
    values = _names(metrics)
    assert values["UploadsCompleted"] == 1
    assert values["Files"] == 6 and values["BytesIn"] == 8_000 and values["BytesOut"] == 2_000
    assert values["CompressionRatio"] == 4.0
    assert values["FinalizeDuration"] == 1500.0
    json.dumps(metrics.serialize_metric_set())


@pytest.mark.parametrize(
    ("status", "name"), [("REJECTED", "UploadsRejected"), ("FAILED", "UploadsFailed")]
)
def test_rejected_and_failed_are_counted(metrics: Metrics, status: str, name: str) -> None:
    record_outcome(metrics, {"status": status})
    assert _names(metrics) == {name: 1.0}


def test_every_log_line_carries_the_job_and_execution() -> None:
    assert log_keys({"job_id": "lab-s1-abc"}) == {
        "job_id": "lab-s1-abc",
        "execution_name": "lab-s1-abc",
    }


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),
    ],
)
def test_tracing_is_on_only_in_lambda_and_not_disabled(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled() is enabled
    if not enabled:  # (an enabled Tracer patches botocore process-wide: see test_cold_import)
        assert isinstance(handler_tracer(), Untraced)


def test_untraced_decorators_return_the_function_itself() -> None:
    def handler(event: dict, context: object) -> int:
        return 7

    tracer = Untraced()
    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_method(handler) is handler


def test_tracing_is_off_for_every_value_powertools_reads_as_true() -> None:
    """The settings room cannot import Powertools: its own list must agree with Powertools'."""
    from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

    from upload_processor.settings import TRUTHY

    for value in ("1", "y", "yes", "t", "true", "on", "0", "n", "no", "f", "false", "off"):
        env = {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": value}
        assert (value in TRUTHY) == resolve_truthy_env_var_choice(env=value)
        assert tracing_enabled(env) is not resolve_truthy_env_var_choice(env=value)
