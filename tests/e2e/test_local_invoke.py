"""`upload-processor local invoke` runs every sample event in events/ (what `sam local invoke`
does, in-process), and events/ is what the code generates (no drift)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from upload_processor_tools.cli import app
from upload_processor_tools.local.events import EVENT_FUNCTIONS, sample_events

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def test_events_folder_matches_the_generated_events() -> None:
    generated = sample_events()
    on_disk = {p.name: json.loads(p.read_text()) for p in EVENTS.glob("*.json")}
    assert set(on_disk) == set(generated) == set(EVENT_FUNCTIONS)
    for name, event in generated.items():
        assert on_disk[name] == json.loads(json.dumps(event)), (
            f"events/{name} is stale: run `make events`"
        )


@pytest.mark.parametrize("event_file", sorted(EVENT_FUNCTIONS))
def test_local_invoke_runs_every_sample_event(
    event_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        app, ["local", "invoke", EVENT_FUNCTIONS[event_file], "--event", f"events/{event_file}"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    if event_file == "ingest_sqs.json":
        assert payload == {"batchItemFailures": []}
    elif event_file == "gather_metadata.json":
        assert payload["status"] == "valid" and payload["reject"] is False
        assert payload["asset_name"] == "750101_2025-06-12_15-03-00"
    elif event_file == "transfer.json":
        assert payload["objects"] > 0 and payload["bytes_out"] > 0 and payload["resumed"] is False
    elif event_file == "registry_post_instrument.json":
        assert payload["statusCode"] == 201, payload
    elif event_file == "status_list_jobs.json":
        assert payload["statusCode"] == 200, payload
        assert "items" in json.loads(payload["body"])
    elif event_file == "registry_get_instrument.json":
        assert payload["statusCode"] == 200, payload
        assert json.loads(payload["body"])["instrument_id"] == "447-EPHYS-1"
    elif event_file == "register_catalog.json":
        assert payload["step"] == "catalog" and payload["status"] == "OK", payload
        assert payload["details"]["asset_name"] == "750101_2025-06-12_15-03-00"
    else:
        assert payload["status"] == "FAILED" and payload["error"] == "TransferError"


def test_local_invoke_names_the_functions_when_one_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        app, ["local", "invoke", "NoSuchFunction", "--event", "events/transfer.json"]
    )
    assert result.exit_code == 2
    assert "IngestFunction" in result.output


def test_local_invoke_refuses_a_missing_event_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        app, ["local", "invoke", "TransferFunction", "--event", "events/nope.json"]
    )
    assert result.exit_code == 2
