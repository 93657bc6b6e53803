"""`upload-processor validate DIR`: the gather checks on a local folder, with the exit codes of docs/architecture.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from upload_processor_tools.cli import app
from upload_processor_tools.sample import build_session


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_session(tmp_path_factory.mktemp("good") / "s", data_mb_per_modality=0.01)


def _run(*args: str):
    return CliRunner().invoke(app, ["validate", *args])


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_valid_session_exits_0_with_a_readable_verdict(good: Path) -> None:
    result = _run(str(good), "--offline")
    assert result.exit_code == 0, result.output
    assert "VALID" in result.stdout


def test_json_prints_only_the_report(good: Path) -> None:
    result = _run(str(good), "--offline", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "valid"
    assert report["asset_name"] == "750101_2025-06-12_15-03-00"
    assert report["merged_from"]["instrument"] == [
        "instrument_behavior.json",
        "instrument_ecephys.json",
    ]


def test_conflicting_subject_exits_1_naming_file_and_field(tmp_path: Path) -> None:
    bad = build_session(
        tmp_path / "bad", data_mb_per_modality=0.01, conflicting_subject_id="750999"
    )
    result = _run(str(bad), "--offline", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "invalid"
    hits = [i for i in report["issues"] if i["rule"] == "merge.subject_id_mismatch"]
    assert (
        hits and hits[0]["file"] == "acquisition_ecephys.json" and hits[0]["field"] == "subject_id"
    )


@pytest.mark.parametrize(
    ("body", "rule"),
    [(b"{not json", "json.malformed"), (b"", "json.empty"), (b"[1, 2]", "json.not_object")],
)
def test_unparsable_metadata_file_is_invalid_not_a_crash(
    good: Path, tmp_path: Path, body: bytes, rule: str
) -> None:
    session = _copy(good, tmp_path / "s")
    (session / "acquisition_behavior.json").write_bytes(body)
    result = _run(str(session), "--offline", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert any(
        i["rule"] == rule and i["file"] == "acquisition_behavior.json" for i in report["issues"]
    )


def test_missing_or_broken_job_file_is_invalid(good: Path, tmp_path: Path) -> None:
    session = _copy(good, tmp_path / "s")
    (session / "upload_job.json").unlink()
    result = _run(str(session), "--offline", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["issues"][0]["rule"] == "job.missing"
    (session / "upload_job.json").write_text('{"job_type": "default"}')
    result = _run(str(session), "--offline", "--json")
    assert result.exit_code == 1
    assert {i["rule"] for i in json.loads(result.stdout)["issues"]} == {"job.missing_field"}


def test_job_option_points_at_another_job_file(good: Path, tmp_path: Path) -> None:
    job = json.loads((good / "upload_job.json").read_text())
    job["subject_id"] = "750555"
    other = tmp_path / "other_job.json"
    other.write_text(json.dumps(job))
    result = _run(str(good), "--offline", "--json", "--job", str(other))
    assert result.exit_code == 1
    assert any(
        i["rule"] == "merge.subject_id_mismatch" for i in json.loads(result.stdout)["issues"]
    )


def test_missing_directory_is_a_usage_error_with_nothing_on_stdout(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "nope"), "--offline", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "does not exist" in result.stderr


def test_offline_and_registry_exclude_each_other(good: Path) -> None:
    result = _run(str(good), "--offline", "--registry", "http://127.0.0.1:9")
    assert result.exit_code == 2


def test_instrument_id_without_a_service_is_reported(good: Path, tmp_path: Path) -> None:
    session = _copy(good, tmp_path / "s")
    job = json.loads((session / "upload_job.json").read_text())
    job["tasks"] = {
        "gather_preliminary_metadata": {
            "job_settings": {"instrument_settings": {"instrument_id": "447-EPHYS-1"}}
        }
    }
    (session / "upload_job.json").write_text(json.dumps(job))
    result = _run(str(session), "--offline", "--json")
    assert result.exit_code == 1
    assert any(i["rule"] == "service.unavailable" for i in json.loads(result.stdout)["issues"])


def test_internal_error_exits_3_and_is_not_called_invalid(
    good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import upload_processor_tools.validate as validate

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(validate, "gather_session", boom)
    result = _run(str(good), "--offline", "--json")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "internal error" in result.stderr


def test_data_description_is_built_from_the_job_when_not_supplied(
    good: Path, tmp_path: Path
) -> None:
    session = _copy(good, tmp_path / "s")
    (session / "data_description.json").unlink()
    result = _run(str(session), "--offline", "--json")
    assert result.exit_code == 1
    issues = json.loads(result.stdout)["issues"]
    incomplete = [i for i in issues if i["rule"] == "data_description.incomplete"]
    assert incomplete and "funding_source" in incomplete[0]["message"]

    job = json.loads((session / "upload_job.json").read_text())
    job["tasks"] = {
        "gather_preliminary_metadata": {
            "job_settings": {
                "data_description_settings": {
                    "tags": ["foraging"],
                    "funding_source": [
                        {"funder": {"name": "Allen Institute", "abbreviation": "AI"}}
                    ],
                    "investigators": [{"name": "Jane Doe"}],
                }
            }
        }
    }
    (session / "upload_job.json").write_text(json.dumps(job))
    result = _run(str(session), "--offline", "--json")
    assert result.exit_code == 0, result.stdout


def test_gathered_data_description_carries_the_job_and_settings(good: Path, tmp_path: Path) -> None:
    from upload_processor.adapters.staging import LocalSession
    from upload_processor.domain.job_types import resolve
    from upload_processor.domain.upload_job import parse_upload_job
    from upload_processor.pipeline.gather import gather_session

    session = _copy(good, tmp_path / "s")
    (session / "data_description.json").unlink()
    job, _ = parse_upload_job((session / "upload_job.json").read_bytes())
    resolved = resolve(job)
    resolved["tasks"]["gather_preliminary_metadata"]["job_settings"][
        "data_description_settings"
    ] = {
        "tags": ["foraging"],
        "group": "behavior",
        "data_summary": "two rigs",
        "funding_source": [{"funder": {"name": "Allen Institute", "abbreviation": "AI"}}],
        "investigators": [{"name": "Jane Doe"}],
    }
    gathered = gather_session(LocalSession(session), resolved)
    assert gathered.report.status == "valid", gathered.report.issues
    description = gathered.assembly.core["data_description"]
    assert description["name"] == "750101_2025-06-12_15-03-00"
    assert description["project_name"] == "Example Foraging Project"
    assert description["tags"] == ["foraging"] and description["group"] == "behavior"
    assert {m["abbreviation"] for m in description["modalities"]} == {"behavior", "ecephys"}
