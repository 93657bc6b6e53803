"""Job types from SSM Parameter Store (on moto) over the shipped presets, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from upload_processor.adapters.job_types_store import load_job_types
from upload_processor.domain.job_types import DEFAULT_JOB_TYPES, resolve_job
from upload_processor.domain.upload_job import parse_upload_job
from upload_processor.errors import ConfigurationError
from upload_processor_tools.cli import app

PREFIX = "/upload-processor/job-types"
JOB = {
    "job_type": "rig-7",
    "project_name": "P",
    "subject_id": "750101",
    "acq_datetime": "2025-06-12T15:03:00-07:00",
    "modalities": ["ecephys", "behavior"],
}
RIG7 = {
    "tasks": {
        "gather_preliminary_metadata": {
            "job_settings": {
                "raise_if_invalid": True,
                "instrument_settings": {"instrument_id": "447-EPHYS-1"},
            }
        },
        "check_s3_folder_exists": {},
        "modality_transformation_settings": {
            "ecephys": {"job_settings": {"codec": "zstd", "level": 7}},
            "behavior": {"job_settings": {"codec": "zstd", "level": 3}},
        },
        "gather_final_metadata": {"job_settings": {"verify": "full"}},
    }
}


@pytest.fixture
def ssm():
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        client.put_parameter(Name=f"{PREFIX}/rig-7", Value=json.dumps(RIG7), Type="String")
        client.put_parameter(
            Name=f"{PREFIX}/default",
            Value=json.dumps(
                {
                    "tasks": {
                        **DEFAULT_JOB_TYPES["default"]["tasks"],
                        "gather_final_metadata": {"job_settings": {"verify": "full"}},
                    }
                }
            ),
            Type="String",
        )
        yield client


def test_ssm_presets_add_and_override_the_shipped_ones(ssm) -> None:
    presets = load_job_types(PREFIX, ssm=ssm, max_age=0)
    assert presets["rig-7"] == RIG7
    assert presets["default"]["tasks"]["gather_final_metadata"] == {
        "job_settings": {"verify": "full"}
    }
    assert presets["ecephys"] == DEFAULT_JOB_TYPES["ecephys"]  # untouched shipped preset


def test_resolution_merges_the_upload_over_the_ssm_preset_field_by_field(ssm) -> None:
    presets = load_job_types(PREFIX, ssm=ssm, max_age=0)
    job = {
        **JOB,
        "tasks": {"gather_preliminary_metadata": {"job_settings": {"raise_if_invalid": False}}},
    }
    parsed, _ = parse_upload_job(json.dumps(job).encode())
    resolution = resolve_job(parsed, presets)
    settings = resolution.resolved["tasks"]["gather_preliminary_metadata"]["job_settings"]
    assert settings == {
        "raise_if_invalid": False,
        "instrument_settings": {"instrument_id": "447-EPHYS-1"},
    }
    sources = resolution.sources
    assert (
        sources["tasks.gather_preliminary_metadata.job_settings.raise_if_invalid"]
        == "upload_job.json"
    )
    assert (
        sources["tasks.gather_preliminary_metadata.job_settings.instrument_settings.instrument_id"]
        == "job type rig-7"
    )
    assert sources["tasks.gather_preliminary_metadata.skip_task"] == "default"


def test_a_broken_ssm_preset_is_a_configuration_error_naming_it(ssm) -> None:
    ssm.put_parameter(
        Name=f"{PREFIX}/broken", Value='{"tasks": {"no_such_task": {}}}', Type="String"
    )
    with pytest.raises(ConfigurationError, match=r"broken.*no_such_task"):
        load_job_types(PREFIX, ssm=ssm, max_age=0)


def test_ignored_aind_task_ids_are_warnings(ssm) -> None:
    job = {
        **JOB,
        "job_type": "default",
        "tasks": {"register_data_asset_to_codeocean": {"skip_task": True}},
    }
    parsed, _ = parse_upload_job(json.dumps(job).encode())
    resolution = resolve_job(parsed)
    assert [n.rule for n in resolution.notes] == ["job.task_ignored"]
    assert "register_data_asset_to_codeocean" not in resolution.resolved["tasks"]


def test_cli_put_show_list_and_resolve(ssm, tmp_path: Path) -> None:
    runner = CliRunner()
    preset = tmp_path / "preset.json"
    preset.write_text(json.dumps(RIG7))
    assert runner.invoke(app, ["job-types", "put", "rig-8", str(preset)]).exit_code == 0
    shown = runner.invoke(app, ["job-types", "show", "rig-8"])
    assert shown.exit_code == 0 and json.loads(shown.stdout) == RIG7
    listed = runner.invoke(app, ["job-types", "list"])
    assert "rig-8" in listed.stdout and "rig-7" in listed.stdout and "default" in listed.stdout
    job_file = tmp_path / "upload_job.json"
    job_file.write_text(
        json.dumps(
            {
                **JOB,
                "tasks": {
                    "modality_transformation_settings": {"ecephys": {"job_settings": {"level": 9}}}
                },
            }
        )
    )
    resolved = runner.invoke(app, ["job-types", "resolve", str(job_file), "--json"])
    assert resolved.exit_code == 0, resolved.output
    out = json.loads(resolved.stdout)
    assert out["job"]["tasks"]["modality_transformation_settings"]["ecephys"]["job_settings"] == {
        "codec": "zstd",
        "level": 9,
    }
    assert (
        out["sources"]["tasks.modality_transformation_settings.ecephys.job_settings.level"]
        == "upload_job.json"
    )
    assert (
        out["sources"]["tasks.modality_transformation_settings.behavior.job_settings.level"]
        == "job type rig-7"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"tasks": {"nope": {}}}')
    assert runner.invoke(app, ["job-types", "put", "x", str(bad)]).exit_code == 1
    assert runner.invoke(app, ["job-types", "show", "nope"]).exit_code == 1
