"""What a job asks of Code Ocean (domain.codeocean): AIND's pipeline settings checked at
ingest with the field named, the pipelines per modality, the data asset's description."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.paths import ROOT
from upload_processor.domain.codeocean import (
    TAG,
    describe_asset,
    modality_pipelines,
    settings_problems,
)
from upload_processor.domain.job_types import resolve
from upload_processor.domain.upload_job import parse_upload_job
from upload_processor.errors import UploadJobError

BASE: dict[str, Any] = {
    "job_type": "default",
    "project_name": "P",
    "subject_id": "750101",
    "acq_datetime": "2025-06-12T15:03:00-07:00",
    "modalities": ["behavior", "ecephys"],
}
AIND = ROOT / "tests" / "fixtures" / "aind" / "transfer_service"
CAPSULE = {"pipeline_monitor_settings": {"run_params": {"capsule_id": "c-1"}}}


def _resolved(pipelines: dict[str, Any]) -> dict[str, Any]:
    raw = {**BASE, "tasks": {"codeocean_pipeline_settings": pipelines}}
    job, _ = parse_upload_job(json.dumps(raw).encode())
    return resolve(job)


def test_each_modality_that_names_a_pipeline_gets_one() -> None:
    resolved = _resolved({"ecephys": {"job_settings": CAPSULE}})
    (pipeline,) = modality_pipelines(resolved)
    assert pipeline.modality == "ecephys"
    assert pipeline.settings.run_params.target == "capsule c-1"
    assert resolved["tasks"]["codeocean_pipeline_settings"]["behavior"]["job_settings"] is None


def test_a_typo_is_refused_at_ingest_naming_the_field() -> None:
    bad = {"pipeline_monitor_settings": {"run_params": {"capsule_id": "c"}, "captur": {}}}
    with pytest.raises(UploadJobError) as caught:
        _resolved({"ecephys": {"job_settings": bad}})
    (issue,) = caught.value.issues
    assert issue.field == (
        "tasks.codeocean_pipeline_settings.ecephys.job_settings.pipeline_monitor_settings.captur"
    )
    assert issue.rule == "job.unknown_setting"


def test_a_run_names_exactly_one_capsule_or_pipeline() -> None:
    both = {"pipeline_monitor_settings": {"run_params": {"capsule_id": "c", "pipeline_id": "p"}}}
    job = {"tasks": {"codeocean_pipeline_settings": {"ecephys": {"job_settings": both}}}}
    (problem,) = settings_problems(job)
    assert problem.startswith(
        "tasks.codeocean_pipeline_settings.ecephys.job_settings.pipeline_monitor_settings."
        "run_params: Value error, set exactly one of capsule_id or pipeline_id"
    )
    with pytest.raises(UploadJobError, match="set exactly one"):
        modality_pipelines(job)


def test_aind_capture_settings_are_kept_and_reported_as_recorded_only() -> None:
    example = json.loads((AIND / "custom_codeocean_pipeline_settings.json").read_text())
    (pipeline,) = modality_pipelines(example)
    assert pipeline.recorded_only() == ["capture_settings"]
    assert pipeline.settings.capture_settings["tags"] == ["derived", "test"]  # type: ignore[index]


def test_the_asset_description_comes_from_the_data_description_then_the_job() -> None:
    description = describe_asset(
        "ecephys_750101_2025-06-12_15-03-00",
        {
            "subject_id": "750101",
            "modalities": [{"name": "Behavior", "abbreviation": "behavior"}],
            "data_level": "raw",
        },
        {"platform": "ecephys", "project_name": "P", "modalities": ["ecephys"]},
    )
    assert description.tags() == ["raw", "750101", "behavior", "ecephys", TAG]
    assert description.custom_metadata() == {
        "data level": "raw",
        "subject id": "750101",
        "modality": "behavior",
        "experiment type": "ecephys",
        "project name": "P",
    }
