"""The upload_job.json reference (docs/upload_job.md) is generated from the model and its
examples validate against the JSON Schema the CLI prints."""

from __future__ import annotations

import json
import re

import jsonschema
from typer.testing import CliRunner

from tests.paths import ROOT
from upload_processor.domain.upload_job import parse_upload_job
from upload_processor_tools import reference
from upload_processor_tools.cli import app


def test_docs_page_is_the_generated_reference() -> None:
    committed = (ROOT / "docs" / "upload_job.md").read_text()
    assert committed == reference.markdown(), "docs/upload_job.md is stale: run `make docs`"


def _schema() -> dict:
    result = CliRunner().invoke(app, ["schema", "upload-job"])
    assert result.exit_code == 0
    return json.loads(result.stdout)


def _examples() -> list[dict]:
    page = (ROOT / "docs" / "upload_job.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", page, flags=re.S)
    examples = [json.loads(b) for b in blocks if '"job_type"' in b]
    readme = (ROOT / "README.md").read_text()
    examples += [
        json.loads(b)
        for b in re.findall(r"```json\n(.*?)```", readme, flags=re.S)
        if '"job_type"' in b
    ]
    return examples


def test_every_shipped_example_validates_against_the_schema_and_parses() -> None:
    schema = _schema()
    examples = _examples()
    assert len(examples) >= 3
    for example in examples:
        jsonschema.validate(example, schema)
        parse_upload_job(json.dumps(example).encode())


def test_a_job_file_written_by_aind_data_transfer_service_validates() -> None:
    fixture = json.loads((ROOT / "tests" / "fixtures" / "upload_job_configs_v2.json").read_text())
    jsonschema.validate(fixture, _schema())


def test_the_schema_refuses_what_the_parser_refuses() -> None:
    schema = _schema()
    bad = {**reference.MINIMAL_EXAMPLE, "colour": "blue"}
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError as exc:
        assert "colour" in str(exc)
    else:
        raise AssertionError("an unknown field validated")
