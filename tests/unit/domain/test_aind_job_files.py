"""AIND's own job files go through unchanged (issue 12, point 5).

tests/fixtures/aind/transfer_service/ holds the job of each aind-data-transfer-service
`docs/examples/*.py` script, dumped with its real `UploadJobConfigsV2` (see the README there):
every one parses and resolves, AIND's settings are reported as ignored with a reason (never an
error), and the asset name is AIND's own `s3_prefix`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.aind_support import EXAMPLES, aind_job
from upload_processor.domain.job_settings import AIND_SETTINGS
from upload_processor.domain.job_types import DEFAULT_JOB_TYPES, resolve_job
from upload_processor.domain.naming import asset_name
from upload_processor.domain.upload_job import parse_upload_job
from upload_processor.errors import UploadJobError
from upload_processor_tools.cli import app
from upload_processor_tools.sample import build_session

FILES = sorted(EXAMPLES.glob("*.json"))
# AIND's deployment stores an `HCR` job type in its Parameter Store; a deployment of this
# pipeline that receives HCR jobs stores one too (`job-types put HCR`).
JOB_TYPES = {**DEFAULT_JOB_TYPES, "HCR": DEFAULT_JOB_TYPES["default"]}


def test_the_corpus_has_all_ten_examples() -> None:
    assert len(FILES) == 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_an_aind_example_job_resolves_with_warnings_only(path: Path) -> None:
    job, notes = parse_upload_job(path.read_bytes(), default_tz="America/Los_Angeles")
    resolution = resolve_job(job, JOB_TYPES)
    everything = notes + resolution.notes
    assert all(n.severity == "warning" for n in everything)
    naive = [n for n in notes if n.rule == "job.naive_datetime"]
    assert naive and "America/Los_Angeles" in naive[0].message
    assert (
        asset_name(job.subject_id, job.acq_datetime, job.platform)
        == (json.loads(path.read_text())["s3_prefix"])
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_aind_setting_it_carries_is_reported_with_its_reason(path: Path) -> None:
    data = json.loads(path.read_text())
    _, notes = parse_upload_job(path.read_bytes(), default_tz="UTC")
    ignored = {n.field: n.message for n in notes if n.rule == "job.setting_ignored"}
    for task_id, known in AIND_SETTINGS.items():
        task = data["tasks"].get(task_id) or {}
        entries = {f"tasks.{task_id}": task}
        if "job_settings" not in task and "skip_task" not in task:
            entries = {f"tasks.{task_id}.{m}": t for m, t in task.items()}
        for where, entry in entries.items():
            for name in entry.get("job_settings") or {}:
                assert name in known, f"{name} of {where} is not a known AIND setting"
                message = ignored[f"{where}.job_settings.{name}"]
                assert known[name] in message


def test_the_v2_registration_task_ids_are_honoured() -> None:
    job, _ = parse_upload_job(
        (EXAMPLES / "aind_data_schema_v2.json").read_bytes(), default_tz="UTC"
    )
    resolution = resolve_job(job)
    assert [n.field for n in resolution.notes if n.rule == "job.task_ignored"] == []
    tasks = resolution.resolved["tasks"]
    # register_data_asset is the Catalog state's task: honoured, with its settings
    register = tasks["register_data_asset"]
    assert register["skip_task"] is False
    assert register["job_settings"] == {"docdb_version": "v2"}
    # get_codeocean_asset_id: RegisterCodeOcean; codeocean_pipeline_settings: StartPipelines
    assert tasks["get_codeocean_asset_id"]["skip_task"] is False
    monitor = tasks["codeocean_pipeline_settings"]["ecephys"]["job_settings"][
        "pipeline_monitor_settings"
    ]
    assert monitor["run_params"] == {"capsule_id": "87cbe6ce-9b38-4266-8d4a-62f0e23ba2d6"}


def test_a_naive_acq_datetime_without_a_default_zone_is_still_refused() -> None:
    with pytest.raises(UploadJobError) as caught:
        parse_upload_job((EXAMPLES / "basic_upload.json").read_bytes())
    assert [i.rule for i in caught.value.issues] == ["job.naive_datetime"]


def test_an_unknown_setting_that_is_not_aind_s_is_still_an_error() -> None:
    data = json.loads((EXAMPLES / "basic_upload.json").read_text())
    data["tasks"]["gather_preliminary_metadata"]["job_settings"]["raise_if_invalidd"] = False
    job, _ = parse_upload_job(json.dumps(data).encode(), default_tz="UTC")
    with pytest.raises(UploadJobError) as caught:
        resolve_job(job)
    assert [i.rule for i in caught.value.issues] == ["job.unknown_setting"]


def test_validate_accepts_an_aind_job_file_in_the_given_zone(tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    (session / "upload_job.json").write_bytes(aind_job(session))
    run = CliRunner().invoke(
        app,
        ["validate", str(session), "--offline", "--json", "--default-tz", "America/Los_Angeles"],
    )
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert report["asset_name"] == "750101_2025-06-12_15-03-00"
    rules = {i["rule"] for i in report["issues"]}
    assert {"job.naive_datetime", "job.setting_ignored"} <= rules
    assert "job.task_ignored" not in rules  # its Code Ocean and catalog tasks are run
    refused = CliRunner().invoke(app, ["validate", str(session), "--offline", "--json"])
    assert refused.exit_code == 1  # no deployment, no --default-tz: the zone is unknown
    assert "job.naive_datetime" in refused.stdout
