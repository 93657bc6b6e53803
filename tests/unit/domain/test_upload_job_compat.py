"""A job file produced by aind-data-transfer-service's own `UploadJobConfigsV2` (version 2.2.2,
`model_dump(mode="json")`, kept as tests/fixtures/upload_job_configs_v2.json) validates here."""

from __future__ import annotations

import json

from tests.paths import FIXTURES
from upload_processor.domain.job_types import resolve_job
from upload_processor.domain.naming import asset_name
from upload_processor.domain.upload_job import UploadJob, parse_upload_job

FIXTURE = FIXTURES / "upload_job_configs_v2.json"


def test_the_packages_own_dump_parses_with_ignored_fields_reported() -> None:
    job, notes = parse_upload_job(FIXTURE.read_bytes())
    assert job.modalities == ["ecephys", "behavior"]
    assert job.platform == "ecephys"
    assert job.email_notification_types == {"end", "fail"}
    ignored = sorted(n.field for n in notes if n.rule == "job.field_ignored")
    assert ignored == ["s3_prefix", "tasks.modality_transformation_settings.ecephys.image"]
    assert all(n.severity == "warning" for n in notes)


def test_its_s3_prefix_is_our_asset_name() -> None:
    raw = json.loads(FIXTURE.read_text())
    job, _ = parse_upload_job(FIXTURE.read_bytes())
    assert asset_name(job.subject_id, job.acq_datetime, job.platform) == raw["s3_prefix"]


def test_it_resolves_against_the_job_type_with_the_codeocean_task_honoured() -> None:
    job, _ = parse_upload_job(FIXTURE.read_bytes())
    resolution = resolve_job(job)
    assert resolution.notes == []
    pipelines = resolution.resolved["tasks"]["codeocean_pipeline_settings"]
    assert pipelines["ecephys"]["skip_task"] is True  # the dump skips it: no pipeline runs
    ecephys = resolution.resolved["tasks"]["modality_transformation_settings"]["ecephys"]
    assert ecephys["job_settings"] == {"codec": "flac", "level": 5}  # the ecephys type: FLAC
    assert isinstance(UploadJob.model_json_schema(), dict)
