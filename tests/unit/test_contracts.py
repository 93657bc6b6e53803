"""The stage contracts (upload_processor.domain.contracts) and the one Settings.

The events/ files are the payloads each handler receives: they parse into their models and
dump back unchanged. A malformed payload fails at the handler's first line, naming the field.
Every environment variable template.yaml gives a function is a Settings field, and nothing
else in the runtime reads the environment.
"""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tests.paths import ROOT
from upload_processor.domain.contracts import (
    CompleteInput,
    ExecutionInput,
    FailedInput,
    GatherCounts,
    GatherResult,
    RejectedInput,
    TransferBatchInput,
    TransferBatchResult,
    parse_finalize_input,
)
from upload_processor.settings import ENV_VARS, FUNCTION_ENV, Settings
from upload_processor_tools.local.seam import LambdaContext

EVENTS = ROOT / "events"


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(autouse=True)
def _metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler flushes its metrics even when it fails; metrics other tests left in
    Powertools' shared store need a namespace to flush."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "UploadProcessorTest")


def _handler(function: str) -> ModuleType:
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"_{function}_app_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _context() -> LambdaContext:
    function = SimpleNamespace(
        name="f", arn="arn:aws:lambda:us-east-1:1:function:f", memory=128, timeout=30
    )
    return LambdaContext(function)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "parse"),
    [
        ("gather_metadata.json", ExecutionInput.model_validate),
        ("transfer.json", TransferBatchInput.model_validate),
    ],
)
def test_the_sample_events_round_trip_through_their_models(name: str, parse: Any) -> None:
    event = _event(name)
    assert parse(event).model_dump(mode="json") == event


def test_the_registration_event_parses_as_its_input() -> None:
    from upload_processor.domain.registration import RegistrationInput

    event = _event("register_catalog.json")
    request = RegistrationInput.model_validate(event)
    assert request.step == "catalog" and request.error is None
    assert request.manifest_key == f"{request.asset_name}/manifest.json"
    assert request.model_dump(mode="json", exclude_defaults=True).keys() <= event.keys()


def test_the_finalize_event_parses_as_its_outcome() -> None:
    request = parse_finalize_input(_event("finalize_failed.json"))
    assert isinstance(request, FailedInput)
    assert request.error.Error == "TransferError"
    assert request.staging_uri == f"s3://{request.bucket}/{request.prefix}/"


def _gather_result(**overrides: Any) -> GatherResult:
    fields: dict[str, Any] = {
        "status": "valid",
        "asset_name": "750101_2025-06-12_15-03-00",
        "reject": False,
        "report_key": "rig-7/s/upload_report.json",
        "summary": "valid",
        "archive_bucket": "archive",
        "plan_key": None,
        "counts": GatherCounts(files=2, bytes_in=10),
    }
    return GatherResult(**(fields | overrides))


def test_a_gather_result_keeps_todays_shape() -> None:
    dumped = _gather_result().model_dump(mode="json")
    assert "note" not in dumped  # only a no-op carries a note
    assert dumped["plan_key"] is None  # a rejected job's null plan stays in the state
    assert dumped["counts"] == {"files": 2, "bytes_in": 10}
    assert set(dumped) == set(GatherResult.model_fields) - {"note"}
    noop = _gather_result(noop=True, note="identical").model_dump(mode="json")
    assert noop["note"] == "identical"


def test_an_execution_input_leaves_out_what_it_does_not_have() -> None:
    request = ExecutionInput(job_id="j", job={}, bucket="b", prefix="p")
    assert request.model_dump(mode="json") == {
        "job_id": "j",
        "job": {},
        "bucket": "b",
        "prefix": "p",
        "job_key": None,
        "job_notes": [],
    }
    retried = ExecutionInput.model_validate({**request.model_dump(), "retry_of": "arn:x"})
    assert retried.model_dump()["retry_of"] == "arn:x"


def test_each_finalize_outcome_has_its_model() -> None:
    base = {"job_id": "j", "job": {}, "bucket": "b", "prefix": "p"}
    gather = _gather_result().model_dump(mode="json")
    assert isinstance(
        parse_finalize_input({**base, "outcome": "complete", "gather": gather}), CompleteInput
    )
    assert isinstance(
        parse_finalize_input({**base, "outcome": "rejected", "gather": gather}), RejectedInput
    )
    with pytest.raises(ValueError, match="unknown outcome 'nonsense'"):
        parse_finalize_input({**base, "outcome": "nonsense"})
    with pytest.raises(ValidationError, match=r"gather\.archive_bucket"):
        parse_finalize_input(
            {**base, "outcome": "complete", "gather": {**gather, "archive_bucket": None}}
        )


def test_a_transfer_result_is_what_the_map_selects() -> None:
    result = TransferBatchResult(
        batch="abc", objects=3, bytes_in=30, bytes_out=12, resumed=False, reused=1
    )
    assert result.model_dump(mode="json") == {
        "batch": "abc",
        "objects": 3,
        "bytes_in": 30,
        "bytes_out": 12,
        "resumed": False,
        "reused": 1,
    }


@pytest.mark.parametrize(
    ("function", "event_file", "drop", "field"),
    [
        ("gather_metadata", "gather_metadata.json", "bucket", "bucket"),
        ("transfer", "transfer.json", "dest_bucket", "dest_bucket"),
        ("finalize", "finalize_failed.json", "job_id", "job_id"),
    ],
)
def test_a_handler_given_a_malformed_event_names_the_field(
    function: str, event_file: str, drop: str, field: str
) -> None:
    handler = _handler(function)
    event = _event(event_file)
    del event[drop]
    with pytest.raises(ValidationError) as raised:
        handler.lambda_handler(event, _context())
    assert field in str(raised.value)
    assert "Field required" in str(raised.value)


def test_a_mistyped_field_is_named_too() -> None:
    event = {**_event("transfer.json"), "verify": "thorough"}
    with pytest.raises(ValidationError, match=r"verify\n.*'quick' or 'full'"):
        _handler("transfer").lambda_handler(event, _context())


class _Loader(yaml.SafeLoader):
    """template.yaml's short-form intrinsics (!Ref, !Sub, ...) as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_every_variable_the_template_sets_is_a_setting() -> None:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)
    variables: set[str] = set()
    sections = [template.get("Globals", {}).get("Function", {})]
    sections += [r.get("Properties") or {} for r in template["Resources"].values()]
    for props in sections:
        variables |= set(((props.get("Environment") or {}).get("Variables") or {}).keys())
    ours = {v for v in variables if not v.startswith(("POWERTOOLS_", "AWS_")) and v != "LOG_LEVEL"}
    assert ours, "found no environment variables in template.yaml"
    assert ours <= set(ENV_VARS.values()) | set(FUNCTION_ENV.values())


def test_settings_read_every_variable() -> None:
    env = {var: "1" for var in ENV_VARS.values()} | {
        var: f"fn-{var}" for var in FUNCTION_ENV.values()
    }
    settings = Settings.from_env(env)
    assert settings.copy_threshold == 1024 * 1024
    assert settings.registry_table == "1" and settings.metadata_service_spec() == "1"
    assert settings.pipeline_functions() == {r: f"fn-{v}" for r, v in FUNCTION_ENV.items()}


def test_nothing_but_settings_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for folder in ("layers/core/upload_processor", "functions")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if re.search(r"os\.environ|os\.getenv", path.read_text())
    ]
    assert readers == ["layers/core/upload_processor/settings.py"]
