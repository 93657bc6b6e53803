"""data_description built from the job: funding and investigators from the metadata service
(the registry's `project` kind on moto DynamoDB), explicit settings winning over it, and the
error that says what is missing and how to supply it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aind_data_schema.components.identifiers import Person
from aind_data_schema.core.data_description import DataDescription, Funding
from aind_data_schema_models.organizations import Organization
from moto import mock_aws

from upload_processor.adapters.metadata_service import RegistryTableService
from upload_processor.adapters.registry import RegistryStore
from upload_processor.adapters.staging import LocalSession
from upload_processor.domain.job_types import resolve
from upload_processor.domain.upload_job import parse_upload_job
from upload_processor.metadata import data_description
from upload_processor.pipeline.gather import gather_session
from upload_processor_tools.sample import build_session

TABLE = "registry-dd"
PROJECT = "Example Foraging Project"
ASSET = "750101_2025-06-12_15-03-00"
JOB = {
    "project_name": PROJECT,
    "subject_id": "750101",
    "acq_datetime": "2025-06-12T15:03:00-07:00",
    "modalities": ["behavior", "ecephys"],
}
FUNDING = [
    Funding(
        funder=Organization.NIMH,
        grant_number="R01MH000001",
        fundee=[Person(name="Jane Doe")],
    ).model_dump(mode="json")
]
INVESTIGATORS = [
    Person(name="Jane Doe", registry_identifier="0000-0002-1825-0097").model_dump(mode="json"),
    Person(name="John Roe").model_dump(mode="json"),
]
SETTINGS_FUNDING = [{"funder": {"name": "Allen Institute", "abbreviation": "AI"}}]
SETTINGS_PEOPLE = [{"name": "Pat Settings"}]


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(  # keyed as template.yaml's RegistryTable
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "kind_id", "AttributeType": "S"},
                {"AttributeName": "version", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "kind_id", "KeyType": "HASH"},
                {"AttributeName": "version", "KeyType": "RANGE"},
            ],
        )
        yield client


@pytest.fixture
def service(dynamodb: Any) -> RegistryTableService:
    """The registry-table backend with the project registered."""
    RegistryStore(dynamodb, TABLE).put(
        "project",
        {"project_name": PROJECT, "funding_source": FUNDING, "investigators": INVESTIGATORS},
    )
    return RegistryTableService.for_table(TABLE, dynamodb=dynamodb)


def _build(service: Any, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    found = data_description.lookup(service, PROJECT, settings)
    return data_description.build(JOB, ASSET, settings, found=found)


def test_funding_and_investigators_come_from_the_registered_project(service: Any) -> None:
    described = _build(service, {"tags": ["foraging"]})
    assert described["funding_source"] == FUNDING
    assert described["investigators"] == INVESTIGATORS
    assert described["name"] == ASSET and described["project_name"] == PROJECT
    assert described["tags"] == ["foraging"]
    assert DataDescription.model_validate(described).investigators[1].name == "John Roe"


def test_explicit_settings_win_field_by_field(service: Any) -> None:
    both = _build(service, {"funding_source": SETTINGS_FUNDING, "investigators": SETTINGS_PEOPLE})
    assert both["funding_source"][0]["funder"]["abbreviation"] == "AI"
    assert [p["name"] for p in both["investigators"]] == ["Pat Settings"]

    people_only = _build(service, {"investigators": SETTINGS_PEOPLE})
    assert people_only["funding_source"] == FUNDING
    assert [p["name"] for p in people_only["investigators"]] == ["Pat Settings"]


def test_no_request_when_the_settings_give_both(dynamodb: Any) -> None:
    # a service on a table that does not exist would refuse any request
    broken = RegistryTableService.for_table("no-such-table", dynamodb=dynamodb)
    settings = {"funding_source": SETTINGS_FUNDING, "investigators": SETTINGS_PEOPLE}
    found = data_description.lookup(broken, PROJECT, settings)
    assert found.problem is None and found.funding is None


def test_an_unregistered_project_is_an_error_that_says_how_to_register_it(dynamodb: Any) -> None:
    service = RegistryTableService.for_table(TABLE, dynamodb=dynamodb)
    with pytest.raises(data_description.DataDescriptionError) as caught:
        _build(service)
    message = str(caught.value)
    assert "funding_source or investigators" in message
    assert f"project {PROJECT!r} is not registered" in message
    assert "upload-processor registry put project FILE" in message
    assert "add data_description.json" in message
    assert "data_description_settings.funding_source" in message

    # what the settings give is not reported missing
    with pytest.raises(data_description.DataDescriptionError) as caught:
        _build(service, {"funding_source": SETTINGS_FUNDING})
    assert "no investigators for project" in str(caught.value)


def test_offline_says_no_service_is_configured() -> None:
    with pytest.raises(data_description.DataDescriptionError) as caught:
        _build(None)
    assert "no metadata service is configured" in str(caught.value)
    described = _build(None, {"funding_source": SETTINGS_FUNDING, "investigators": SETTINGS_PEOPLE})
    assert described["investigators"][0]["name"] == "Pat Settings"


def test_a_refusal_is_named_in_the_error(dynamodb: Any) -> None:
    broken = RegistryTableService.for_table("no-such-table", dynamodb=dynamodb)
    with pytest.raises(data_description.DataDescriptionError) as caught:
        _build(broken)
    assert "registry-table:no-such-table" in str(caught.value)


def _job(session: Path) -> dict[str, Any]:
    job, _ = parse_upload_job((session / "upload_job.json").read_bytes())
    return resolve(job)


def test_gathered_session_without_data_description_gets_the_registered_project(
    service: Any, tmp_path: Path
) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01, data_description=False)
    assert not (session / "data_description.json").exists()
    gathered = gather_session(LocalSession(session), _job(session), service=service)
    assert gathered.report.status == "valid", gathered.report.issues
    described = gathered.assembly.core["data_description"]
    assert described["name"] == ASSET
    assert described["funding_source"] == FUNDING
    assert described["investigators"] == INVESTIGATORS


def test_gathered_session_unregistered_project_is_invalid_with_the_fix(
    dynamodb: Any, tmp_path: Path
) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01, data_description=False)
    service = RegistryTableService.for_table(TABLE, dynamodb=dynamodb)
    gathered = gather_session(LocalSession(session), _job(session), service=service)
    assert gathered.report.status == "invalid"
    [issue] = [i for i in gathered.report.issues if i.rule == "data_description.incomplete"]
    assert "registry put project" in issue.message and issue.file == "upload_job.json"


def test_a_supplied_data_description_is_used_as_it_is(service: Any, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    supplied = json.loads((session / "data_description.json").read_text())
    gathered = gather_session(LocalSession(session), _job(session), service=service)
    assert gathered.report.status == "valid", gathered.report.issues
    described = gathered.assembly.core["data_description"]
    assert described["funding_source"] == supplied["funding_source"] != FUNDING
    assert described["investigators"] == supplied["investigators"]


def test_the_sample_project_record_matches_the_sample_data_description(tmp_path: Path) -> None:
    from upload_processor.adapters.registry import validate_document
    from upload_processor_tools.sample import project_record

    session = build_session(tmp_path / "s", data_mb_per_modality=0)
    supplied = json.loads((session / "data_description.json").read_text())
    canonical = validate_document("project", project_record())
    assert canonical["funding_source"] == supplied["funding_source"]
    assert canonical["investigators"] == supplied["investigators"]
    shutil.rmtree(session)
