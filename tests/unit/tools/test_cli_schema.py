"""`upload-processor schema upload-job` prints a JSON Schema the documented examples satisfy."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from upload_processor_tools.cli import app


def test_schema_upload_job_is_json_schema_of_the_model() -> None:
    result = CliRunner().invoke(app, ["schema", "upload-job"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["type"] == "object"
    assert set(schema["required"]) == {
        "job_type",
        "project_name",
        "subject_id",
        "acq_datetime",
        "modalities",
    }
    assert schema["additionalProperties"] is False
