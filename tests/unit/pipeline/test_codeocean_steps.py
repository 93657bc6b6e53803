"""RegisterCodeOcean and StartPipelines through the registration dispatcher (pipeline.
registration.run, what RegisterFunction runs): moto's DynamoDB, S3 and Secrets Manager, the
real SDK against the fake Code Ocean server."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.fake_codeocean import FakeCodeOcean
from tests.paths import ROOT
from upload_processor.adapters.jobs import JobStore
from upload_processor.domain.registration import Registration, RegistrationInput
from upload_processor.errors import TransientError
from upload_processor.pipeline import registration
from upload_processor.settings import Settings
from upload_processor_tools.local.template import load_template

ARCHIVE = "archive-test"
NAME = "ecephys_750101_2025-06-12_15-03-00"
SECRET = "codeocean-token-unit"
CAPSULE = "87cbe6ce-9b38-4266-8d4a-62f0e23ba2d6"


def _aws_client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    props = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]
    with mock_aws(), FakeCodeOcean() as co:
        dynamodb = _aws_client("dynamodb")
        dynamodb.create_table(
            TableName="jobs",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        )
        s3 = _aws_client("s3")
        s3.create_bucket(Bucket=ARCHIVE)
        s3.put_object(
            Bucket=ARCHIVE,
            Key=f"{NAME}/metadata.nd.json",
            Body=json.dumps(
                {
                    "data_description": {
                        "name": NAME,
                        "subject_id": "750101",
                        "modalities": [{"abbreviation": "ecephys"}],
                        "project_name": "Ephys Platform",
                        "data_level": "raw",
                    }
                }
            ),
        )
        _aws_client("secretsmanager").create_secret(Name=SECRET, SecretString=co.token)
        store = JobStore(dynamodb, "jobs")
        store.create({"job_id": "job-1", "status": "COMPLETE", "asset_name": NAME})
        settings = Settings(
            jobs_table="jobs",
            topic_arn="",
            archive_bucket=ARCHIVE,
            state_machine_arn="",
            default_time_zone=None,
            codeocean_domain=co.url,
            codeocean_token_secret=SECRET,
            codeocean_ready_timeout=2,
            codeocean_poll_seconds=0.01,
        )
        yield {"co": co, "store": store, "settings": settings, "s3": s3}


def _job(**tasks: Any) -> dict[str, Any]:
    return {
        "job_type": "default",
        "subject_id": "750101",
        "platform": {"abbreviation": "ecephys"},
        "modalities": [{"abbreviation": "ecephys"}],
        "tasks": tasks,
    }


PIPELINES = {
    "codeocean_pipeline_settings": {
        "ecephys": {
            "skip_task": False,
            "job_settings": {
                "pipeline_monitor_settings": {
                    "run_params": {"capsule_id": CAPSULE},
                    "capture_settings": {"tags": ["derived"]},
                }
            },
        }
    }
}


def _request(step: str, job: dict[str, Any], **extra: Any) -> RegistrationInput:
    return RegistrationInput.model_validate(
        {
            "step": step,
            "job_id": "job-1",
            "job": job,
            "bucket": "staging",
            "prefix": "rig/session",
            "gather": {
                "status": "valid",
                "asset_name": NAME,
                "reject": False,
                "report_key": "r",
                "summary": "ok",
                "archive_bucket": ARCHIVE,
            },
            "finalize": {
                "status": "COMPLETE",
                "asset_name": NAME,
                "archive_uri": f"s3://{ARCHIVE}/{NAME}/",
            },
            **extra,
        }
    )


def _run(world: dict[str, Any], step: str, job: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return registration.run(
        _request(step, job, **extra), settings=world["settings"], client=_aws_client
    )


def _steps(world: dict[str, Any]) -> Registration:
    return Registration.from_record(world["store"].get("job-1"))


def test_registers_once_waits_until_ready_and_records_the_asset_id(world: dict) -> None:
    co: FakeCodeOcean = world["co"]
    co.ready_after = 3
    result = _run(world, "codeocean", _job())
    assert result["status"] == "OK"
    (asset_id,) = co.assets
    outcome = _steps(world).steps["codeocean"]
    assert outcome.details == {
        "codeocean_asset_id": asset_id,
        "link": f"{co.url}/data-assets/{asset_id}",
    }
    assert co.assets[asset_id]["state"] == "ready"
    body = co.calls("POST", "data_assets")[0]
    assert body["source"]["aws"]["bucket"] == ARCHIVE
    assert body["custom_metadata"]["project name"] == "Ephys Platform"  # from metadata.nd.json

    # a retried state, a re-run: the recorded asset is reused, Code Ocean is not asked again
    calls = len(co.requests)
    assert _run(world, "codeocean", _job())["details"]["codeocean_asset_id"] == asset_id
    assert len(co.requests) == calls


def test_an_asset_made_before_the_record_was_written_is_found_not_made_again(world: dict) -> None:
    co: FakeCodeOcean = world["co"]
    co.fail(503, method="GET", times=1)  # created, then the first look fails: a retry follows
    with pytest.raises(TransientError):
        _run(world, "codeocean", _job())
    assert _run(world, "codeocean", _job())["status"] == "OK"
    assert len(co.assets) == 1
    assert len(co.calls("POST", "data_assets")) == 1


def test_an_asset_never_ready_is_failed_timeout_and_a_later_run_reuses_it(world: dict) -> None:
    co: FakeCodeOcean = world["co"]
    co.ready_after = None
    world["settings"] = dataclasses.replace(world["settings"], codeocean_ready_timeout=0.2)
    result = _run(world, "codeocean", _job())
    assert result["status"] == "FAILED"
    assert result["reason"] == "timeout: asset not ready after 0.2 s"
    assert _steps(world).summary() == "FAILED (codeocean: timeout: asset not ready after 0.2 s)"
    co.ready_after = 1
    assert _run(world, "codeocean", _job())["status"] == "OK"
    assert len(co.assets) == 1


def test_401_is_failed_with_code_oceans_words(world: dict) -> None:
    world["co"].token = "rotated"
    result = _run(world, "codeocean", _job())
    assert result["status"] == "FAILED"
    assert result["reason"].startswith("401 Unauthorized while searching data assets")
    assert world["co"].assets == {}


def test_no_token_configured_is_skipped_and_says_so(world: dict) -> None:
    world["settings"] = dataclasses.replace(world["settings"], codeocean_token_secret="")
    assert _run(world, "codeocean", _job())["reason"] == "no Code Ocean token configured"
    result = _run(world, "pipelines", _job(**PIPELINES))
    assert (result["status"], result["reason"]) == ("SKIPPED", "no Code Ocean token configured")
    assert world["co"].requests == []


def test_the_job_turns_registration_off(world: dict) -> None:
    job = _job(get_codeocean_asset_id={"skip_task": True})
    result = _run(world, "codeocean", job)
    assert result["status"] == "SKIPPED" and "get_codeocean_asset_id" in result["reason"]


def test_pipelines_start_once_per_modality_with_the_asset_mounted(world: dict) -> None:
    co: FakeCodeOcean = world["co"]
    _run(world, "codeocean", _job())
    (asset_id,) = co.assets
    result = _run(world, "pipelines", _job(**PIPELINES))
    assert result["status"] == "OK"
    (computation,) = co.computations.values()
    assert computation["_run_params"]["capsule_id"] == CAPSULE
    assert computation["data_assets"] == [{"id": asset_id, "mount": NAME}]
    assert result["details"] == {
        "ecephys.computation_id": computation["id"],
        "ecephys.link": f"{co.url}/capsule/{CAPSULE}",
        "ecephys.recorded_only": "capture_settings",
    }
    assert _run(world, "pipelines", _job(**PIPELINES))["status"] == "OK"
    assert len(co.computations) == 1  # never started twice


def test_pipelines_without_an_asset_are_failed_not_started(world: dict) -> None:
    world["co"].token = "rotated"
    _run(world, "codeocean", _job())
    result = _run(world, "pipelines", _job(**PIPELINES))
    assert result["status"] == "FAILED"
    assert result["reason"].startswith("not started: no Code Ocean data asset (codeocean FAILED")
    assert world["co"].computations == {}


def test_a_refused_run_names_the_modality_and_the_others_still_start(world: dict) -> None:
    co: FakeCodeOcean = world["co"]
    _run(world, "codeocean", _job())
    tasks = json.loads(json.dumps(PIPELINES))
    tasks["codeocean_pipeline_settings"]["behavior"] = {
        "job_settings": {"pipeline_monitor_settings": {"run_params": {"pipeline_id": "p-2"}}}
    }
    co.fail(403, method="POST", path="computations")
    result = _run(world, "pipelines", _job(**tasks))
    assert result["status"] == "FAILED"
    assert result["reason"].startswith("ecephys: 403 Forbidden while starting capsule")
    assert set(result["details"]) == {"behavior.computation_id", "behavior.link"}
    # redone: only the one missing starts
    assert _run(world, "pipelines", _job(**tasks))["status"] == "OK"
    assert len(co.computations) == 2


def test_a_typo_in_the_pipeline_settings_is_failed_naming_the_field(world: dict) -> None:
    _run(world, "codeocean", _job())
    tasks = {
        "codeocean_pipeline_settings": {
            "ecephys": {"job_settings": {"pipeline_monitor_settings": {"run_parms": {}}}}
        }
    }
    result = _run(world, "pipelines", _job(**tasks))
    assert result["status"] == "FAILED"
    assert (
        "tasks.codeocean_pipeline_settings.ecephys.job_settings.pipeline_monitor_settings"
        ".run_parms is not a setting of this task" in result["reason"]
    )


def test_no_pipeline_settings_is_skipped(world: dict) -> None:
    assert _run(world, "pipelines", _job())["reason"] == (
        "the job names no pipeline (codeocean_pipeline_settings.<modality>.job_settings)"
    )
    off = json.loads(json.dumps(PIPELINES))
    off["codeocean_pipeline_settings"]["ecephys"]["skip_task"] = True
    result = _run(world, "pipelines", _job(**off))
    assert (result["status"], result["reason"]) == (
        "SKIPPED",
        "skip_task: true on every modality of codeocean_pipeline_settings",
    )
    assert world["co"].requests == []


def _two_modalities() -> dict[str, Any]:
    tasks = json.loads(json.dumps(PIPELINES))
    tasks["codeocean_pipeline_settings"]["behavior"] = {
        "job_settings": {"pipeline_monitor_settings": {"run_params": {"pipeline_id": "p-2"}}}
    }
    return tasks


def test_a_5xx_before_any_run_is_raised_for_the_states_retry(world: dict) -> None:
    co: FakeCodeOcean = world["co"]
    _run(world, "codeocean", _job())
    co.fail(503, method="POST", path="computations")
    with pytest.raises(TransientError):
        _run(world, "pipelines", _job(**_two_modalities()))
    assert _run(world, "pipelines", _job(**_two_modalities()))["status"] == "OK"
    assert len(co.computations) == 2


def test_a_5xx_after_a_run_started_keeps_it_and_a_redo_starts_only_the_rest(world: dict) -> None:
    co: FakeCodeOcean = world["co"]
    _run(world, "codeocean", _job())
    tasks = _two_modalities()
    original = co._run

    def run_then_fail(body: Any) -> tuple[int, Any]:
        if co.computations:
            return 503, {"message": "unavailable"}
        return original(body)

    co._run = run_then_fail  # type: ignore[method-assign]
    result = _run(world, "pipelines", _job(**tasks))
    assert result["status"] == "FAILED"
    assert result["reason"].startswith("behavior: not started (Code Ocean 503")
    assert set(result["details"]) >= {"ecephys.computation_id", "ecephys.link"}
    co._run = original  # type: ignore[method-assign]
    assert _run(world, "pipelines", _job(**tasks))["status"] == "OK"
    assert len(co.computations) == 2  # ecephys was not started a second time
