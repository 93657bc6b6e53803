"""Code Ocean after the archive, on the local cloud: the RegisterCodeOcean and StartPipelines
states run the real `codeocean` SDK against the fake Code Ocean server (tests/fake_codeocean),
with the token in (moto's) Secrets Manager and the server's URL as the deployment's domain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.fake_codeocean import FakeCodeOcean
from tests.paths import ROOT
from upload_processor_tools.cli import app
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.sample import build_session

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
SECRET = "upload-processor/codeocean-token"
CAPSULE = "87cbe6ce-9b38-4266-8d4a-62f0e23ba2d6"
PIPELINES = {
    "codeocean_pipeline_settings": {
        "ecephys": {
            "skip_task": False,
            "job_settings": {
                "pipeline_monitor_settings": {
                    "run_params": {"capsule_id": CAPSULE},
                    "capture_settings": {"tags": ["derived"], "process_name_suffix": "sorted"},
                }
            },
        }
    }
}


@pytest.fixture
def co() -> Iterator[FakeCodeOcean]:
    with FakeCodeOcean() as fake:
        yield fake


def _cloud(co: FakeCodeOcean | None, **overrides: Any) -> LocalCloud:
    parameters: dict[str, Any] = {"FilesWaitSeconds": 0, **overrides}
    if co is not None:
        parameters |= {"CodeOceanDomain": co.url, "CodeOceanTokenSecret": SECRET}
    return LocalCloud(ROOT, parameter_overrides=parameters)


@pytest.fixture
def cloud(co: FakeCodeOcean, no_metrics_warning: None) -> Iterator[LocalCloud]:
    with _cloud(co, CodeOceanReadyTimeout=2) as local:
        local.client("secretsmanager").create_secret(Name=SECRET, SecretString=co.token)
        yield local


def _session(tmp_path: Path, tasks: dict[str, Any] | None = None) -> Path:
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    job = json.loads((session / "upload_job.json").read_text())
    job["tasks"] = {**(job.get("tasks") or {}), **(tasks or {})}
    (session / "upload_job.json").write_text(json.dumps(job))
    return session


def _archive(cloud: LocalCloud, session: Path) -> dict[str, Any]:
    cloud.upload_session(session, "lab/s")
    (execution,) = cloud.executions()
    done = cloud.wait(execution["executionArn"])
    assert done["status"] == "SUCCEEDED", done.get("cause")
    record = cloud.job(done["name"])
    assert record is not None and record["status"] == "COMPLETE"
    return record


def _archived_keys(cloud: LocalCloud) -> list[str]:
    listed = cloud.client("s3").list_objects_v2(Bucket=cloud.archive_bucket, Prefix=f"{ASSET}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _cli(cloud: LocalCloud, *args: str) -> Any:
    return CliRunner().invoke(
        app,
        [
            *args,
            "--table",
            cloud.jobs_table,
            "--register-function",
            cloud.deployment.name("RegisterFunction"),
        ]
        if args[0] == "register"
        else [*args, "--table", cloud.jobs_table],
    )


def test_a_sealed_asset_is_registered_and_its_pipeline_started(
    cloud: LocalCloud, co: FakeCodeOcean, tmp_path: Path
) -> None:
    record = _archive(cloud, _session(tmp_path, PIPELINES))
    steps = record["registration"]
    assert steps["codeocean"]["status"] == "OK", steps
    (asset_id,) = co.assets
    assert steps["codeocean"]["details"]["codeocean_asset_id"] == asset_id
    asset = co.assets[asset_id]
    assert asset["state"] == "ready"
    assert asset["source_bucket"] == {
        "origin": "aws",
        "bucket": cloud.archive_bucket,
        "prefix": ASSET,
        "external": True,
    }
    assert {"750101", "behavior", "ecephys", "raw"} <= set(asset["tags"])
    assert asset["custom_metadata"]["subject id"] == "750101"

    assert steps["pipelines"]["status"] == "OK", steps
    (computation,) = co.computations.values()
    assert computation["data_assets"] == [{"id": asset_id, "mount": ASSET}]
    assert computation["_run_params"]["capsule_id"] == CAPSULE
    details = steps["pipelines"]["details"]
    assert details["ecephys.computation_id"] == computation["id"]
    assert details["ecephys.link"] == f"{co.url}/capsule/{CAPSULE}"
    assert details["ecephys.recorded_only"] == "capture_settings"

    shown = _cli(cloud, "status", record["job_id"], "--json")
    assert shown.exit_code == 0, shown.output
    assert asset_id in shown.output

    # the catalog (after the Code Ocean steps) carries the data asset's id and the run
    catalogued = CliRunner().invoke(
        app, ["assets", "show", ASSET, "--json", "--assets-table", cloud.assets_table]
    )
    assert catalogued.exit_code == 0, catalogued.output
    entry = json.loads(catalogued.output)
    assert entry["codeocean_asset_id"] == asset_id
    assert entry["codeocean_computations"] == {"ecephys": computation["id"]}

    # register JOB afterwards: nothing is missing, nothing is made again
    again = _cli(cloud, "register", record["job_id"], "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["ran"] == []
    assert len(co.assets) == 1 and len(co.computations) == 1
    assert len(co.calls("POST", "data_assets")) == 1


def test_401_leaves_the_job_complete_with_registration_failed_and_register_redoes_it(
    cloud: LocalCloud, co: FakeCodeOcean, tmp_path: Path
) -> None:
    co.token = "the-token-was-rotated"
    record = _archive(cloud, _session(tmp_path, PIPELINES))
    steps = record["registration"]
    assert steps["codeocean"]["status"] == "FAILED"
    assert steps["codeocean"]["reason"].startswith("401 Unauthorized while searching")
    assert steps["pipelines"]["status"] == "FAILED"
    assert steps["announce"]["status"] == "OK"
    assert co.assets == {} and co.computations == {}
    keys = _archived_keys(cloud)
    assert f"{ASSET}/manifest.json" in keys  # the asset is sealed and intact

    co.token = cloud.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"]
    redone = _cli(cloud, "register", ASSET, "--json")
    assert redone.exit_code == 0, redone.output
    result = json.loads(redone.output)
    assert [r["step"] for r in result["ran"]] == ["codeocean", "pipelines"]
    assert result["registration"] == "OK"
    assert len(co.assets) == 1 and len(co.computations) == 1
    assert _archived_keys(cloud) == keys

    twice = _cli(cloud, "register", ASSET)
    assert twice.exit_code == 0, twice.output
    assert "nothing to redo" in twice.output
    assert "registration: OK" in twice.output
    assert len(co.assets) == 1 and len(co.computations) == 1


def test_an_asset_never_ready_is_failed_timeout_and_the_execution_succeeds(
    cloud: LocalCloud, co: FakeCodeOcean, tmp_path: Path
) -> None:
    co.ready_after = None
    record = _archive(cloud, _session(tmp_path))
    outcome = record["registration"]["codeocean"]
    assert outcome["status"] == "FAILED"
    assert outcome["reason"] == "timeout: asset not ready after 2 s"
    assert record["registration"]["pipelines"]["status"] == "SKIPPED"  # the job asked for none


def test_a_throttled_code_ocean_is_retried_by_the_state_and_makes_one_asset(
    cloud: LocalCloud, co: FakeCodeOcean, tmp_path: Path
) -> None:
    co.fail(503, method="POST", path="data_assets/search", times=2)
    record = _archive(cloud, _session(tmp_path))
    assert record["registration"]["codeocean"]["status"] == "OK"
    assert len(co.assets) == 1
    assert len(co.calls("POST", "data_assets/search")) == 3


def test_no_token_configured_is_skipped_and_the_job_says_so(
    no_metrics_warning: None, tmp_path: Path
) -> None:
    with _cloud(None) as cloud:
        record = _archive(cloud, _session(tmp_path, PIPELINES))
    steps = record["registration"]
    assert steps["codeocean"] == {**steps["codeocean"], "status": "SKIPPED"}
    assert steps["codeocean"]["reason"] == "no Code Ocean domain configured"
    assert steps["pipelines"]["status"] == "SKIPPED"


def test_a_rerun_of_the_same_session_makes_no_second_asset_and_starts_nothing(
    cloud: LocalCloud, co: FakeCodeOcean, tmp_path: Path
) -> None:
    session = _session(tmp_path, PIPELINES)
    first = _archive(cloud, session)
    assert first["registration"]["codeocean"]["status"] == "OK"
    cloud.upload_session(session, "lab/again")  # the same session staged again: a no-op job
    second = next(
        cloud.wait(e["executionArn"]) for e in cloud.executions() if e["name"] != first["job_id"]
    )
    record = cloud.job(second["name"])
    assert record is not None and record["status"] == "COMPLETE"
    for step in ("codeocean", "pipelines"):
        outcome = record["registration"][step]
        assert outcome["status"] == "SKIPPED", outcome
        assert "already held this exact session" in outcome["reason"]
    assert len(co.assets) == 1 and len(co.computations) == 1
    assert len(co.calls("POST", "data_assets")) == 1
