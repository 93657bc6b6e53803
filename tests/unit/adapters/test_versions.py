"""Version pinning: a task's image_version → the published Lambda version carrying that code."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from tests.paths import ROOT
from upload_processor import __version__
from upload_processor.adapters.versions import (
    ALIAS,
    LOGICAL_IDS,
    code_version_of,
    normalise_version,
    resolve_pins,
    task_pins,
    version_description,
)
from upload_processor.domain.job_types import resolve
from upload_processor.domain.upload_job import parse_upload_job
from upload_processor.errors import PinError
from upload_processor.settings import FUNCTION_ENV
from upload_processor_tools.local.template import load_template

NAMES = {
    "gather": "gather-fn",
    "transfer": "transfer-fn",
    "finalize": "finalize-fn",
    "registration": "register-fn",
}


def _job(tasks: dict[str, Any] | None = None, modalities=("behavior", "ecephys")) -> dict:
    raw = {
        "job_type": "default",
        "project_name": "P",
        "subject_id": "750101",
        "acq_datetime": "2025-06-12T15:03:00-07:00",
        "modalities": list(modalities),
        "tasks": tasks or {},
    }
    job, _ = parse_upload_job(json.dumps(raw).encode())
    return resolve(job)


# -- the template and the package agree ---------------------------------------------------------
def test_code_version_parameter_defaults_to_the_package_version() -> None:
    template = load_template(ROOT / "template.yaml")
    assert template["Parameters"]["CodeVersion"]["Default"] == __version__


def test_the_template_publishes_the_pipeline_functions_as_versions_expects() -> None:
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    for logical in LOGICAL_IDS.values():
        props = resources[logical]["Properties"]
        assert props["AutoPublishAlias"] == ALIAS, logical
        assert props["AutoPublishAliasAllProperties"] is True, logical
        description = props["VersionDescription"]["Fn::Sub"]
        assert description == version_description("${CodeVersion}"), logical
    # a new layer (the core code) publishes new function versions
    assert resources["CoreLayer"]["Properties"]["PublishLambdaVersion"] is True
    ingest_env = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]
    for role, var in FUNCTION_ENV.items():
        assert ingest_env[var] == {"Ref": LOGICAL_IDS[role]}


def test_the_state_machine_invokes_what_ingest_resolved() -> None:
    asl = json.loads(
        (ROOT / "statemachine/upload.asl.json").read_text().replace("${MapMaxConcurrency}", "20")
    )
    states = asl["States"]
    tasks = {
        name: state["Parameters"]
        for name, state in states.items()
        if state.get("Resource") == "arn:aws:states:::lambda:invoke"
    }
    assert tasks["GatherMetadata"]["FunctionName.$"] == "$.functions.gather"
    for name in ("Reject", "Finalize", "MarkFailed"):
        assert tasks[name]["FunctionName.$"] == "$.functions.finalize", name
    mapped = states["TransferFiles"]
    assert mapped["ItemSelector"]["function.$"] == "$.functions.transfer"
    transfer = mapped["ItemProcessor"]["States"]["Transfer"]["Parameters"]
    assert transfer["FunctionName.$"] == "$.function"
    assert "${" not in json.dumps(asl)  # no function ARN substituted any more


# -- parsing ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected"),
    [("v1.1.0", "1.1.0"), ("V1.1.0", "1.1.0"), (" 0.1.0 ", "0.1.0"), ("1.1.0", "1.1.0")],
)
def test_a_leading_v_is_dropped(given: str, expected: str) -> None:
    assert normalise_version(given) == expected


def test_code_version_of_a_description() -> None:
    assert code_version_of(version_description("0.1.0")) == "0.1.0"
    assert code_version_of("upload-processor v0.2.0") == "0.2.0"
    assert code_version_of("something else") is None
    assert code_version_of(None) is None


# -- which tasks pin which function ------------------------------------------------------------
def test_no_pin_pins_nothing() -> None:
    assert task_pins(_job()) == {}


def test_a_whole_task_pin_pins_every_modality() -> None:
    pins = task_pins(_job({"modality_transformation_settings": {"image_version": "v0.1.0"}}))
    assert pins["transfer"].version == "0.1.0"
    assert set(pins["transfer"].fields) == {
        "tasks.modality_transformation_settings.behavior.image_version",
        "tasks.modality_transformation_settings.ecephys.image_version",
    }


def test_per_modality_pins_must_be_all_the_same() -> None:
    same = _job(
        {
            "modality_transformation_settings": {
                "behavior": {"image_version": "v0.1.0"},
                "ecephys": {"image_version": "0.1.0"},
            }
        }
    )
    assert task_pins(same)["transfer"].version == "0.1.0"
    for tasks in (
        {"behavior": {"image_version": "0.1.0"}, "ecephys": {"image_version": "0.2.0"}},
        {"behavior": {"image_version": "0.1.0"}},  # ecephys unpinned
    ):
        with pytest.raises(PinError) as caught:
            task_pins(_job({"modality_transformation_settings": tasks}))
        (issue,) = caught.value.issues
        assert issue.rule == "job.mixed_version_pins"
        assert issue.field == "tasks.modality_transformation_settings"
        assert "one function" in issue.message and "ecephys" in issue.message


def test_tasks_in_one_function_follow_one_pin_and_may_not_disagree() -> None:
    pins = task_pins(_job({"check_s3_folder_exists": {"image_version": "0.1.0"}}))
    assert pins["gather"].version == "0.1.0"
    with pytest.raises(PinError) as caught:
        task_pins(
            _job(
                {
                    "gather_preliminary_metadata": {"image_version": "0.1.0"},
                    "check_s3_folder_exists": {"image_version": "0.2.0"},
                }
            )
        )
    assert caught.value.issues[0].rule == "job.conflicting_version_pins"
    assert "GatherMetadataFunction" in str(caught.value)


# -- resolution against published versions (moto) ----------------------------------------------
def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def awslambda() -> Iterator[Any]:
    """Three functions; gather has two published versions carrying different code versions."""
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(
            RoleName="r",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        client = boto3.client("lambda", region_name="us-east-1")
        for name in NAMES.values():
            client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": _zip()},
            )
            first = client.publish_version(
                FunctionName=name, Description=version_description("0.0.9")
            )
            client.update_function_configuration(FunctionName=name, Description="next deploy")
            second = client.publish_version(
                FunctionName=name, Description=version_description(__version__)
            )
            assert (first["Version"], second["Version"]) == ("1", "2")
            client.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion="2")
        yield client


def _arn(client: Any, name: str, qualifier: str) -> str:
    return client.get_function(FunctionName=name, Qualifier=qualifier)["Configuration"][
        "FunctionArn"
    ]


def test_without_a_pin_every_function_runs_on_its_alias(awslambda) -> None:
    out = resolve_pins(_job(), awslambda, NAMES)
    assert set(out) == {"gather", "transfer", "finalize", "registration"}
    for role, name in NAMES.items():
        assert out[role].endswith(f":function:{name}:{ALIAS}")


def test_a_pin_picks_the_version_carrying_that_code(awslambda) -> None:
    out = resolve_pins(
        _job({"gather_preliminary_metadata": {"image_version": "v0.0.9"}}), awslambda, NAMES
    )
    assert out["gather"].endswith(":function:gather-fn:1")
    assert out["transfer"].endswith(":function:transfer-fn:live")

    out = resolve_pins(
        _job({"gather_final_metadata": {"image_version": __version__}}), awslambda, NAMES
    )
    assert out["finalize"].endswith(":function:finalize-fn:2")
    assert out["gather"].endswith(":function:gather-fn:live")


def test_the_newest_version_carrying_the_code_wins(awslambda) -> None:
    awslambda.update_function_configuration(FunctionName="transfer-fn", Description="redeploy")
    third = awslambda.publish_version(
        FunctionName="transfer-fn", Description=version_description("0.0.9")
    )
    assert third["Version"] == "3"
    out = resolve_pins(
        _job({"modality_transformation_settings": {"image_version": "0.0.9"}}), awslambda, NAMES
    )
    assert out["transfer"] == third["FunctionArn"]


def test_an_unknown_version_names_the_task_and_lists_the_available_ones(awslambda) -> None:
    with pytest.raises(PinError) as caught:
        resolve_pins(
            _job({"gather_preliminary_metadata": {"image_version": "v9.9.9"}}), awslambda, NAMES
        )
    (issue,) = caught.value.issues
    assert issue.rule == "job.unknown_version"
    assert issue.field == "tasks.gather_preliminary_metadata.image_version"
    assert issue.file == "upload_job.json"
    assert "'v9.9.9'" in issue.message and "GatherMetadataFunction" in issue.message
    assert f"available: v0.0.9, v{__version__}" in issue.message
    assert "upload-processor versions" in issue.message


def test_a_missing_alias_is_a_deployment_fault_not_a_rejection(awslambda) -> None:
    from upload_processor.errors import ConfigurationError

    awslambda.delete_alias(FunctionName="finalize-fn", Name=ALIAS)
    with pytest.raises(ConfigurationError, match="no alias 'live'"):
        resolve_pins(_job(), awslambda, NAMES)


def test_versions_command_lists_every_published_version(awslambda) -> None:
    import typer

    from upload_processor_tools.commands.versions import versions

    app = typer.Typer()
    app.command()(versions)
    args = [
        "--json",
        "--gather-function",
        "gather-fn",
        "--transfer-function",
        "transfer-fn",
        "--finalize-function",
        "finalize-fn",
        "--registration-function",
        "register-fn",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    functions = {f["logical_id"]: f for f in json.loads(result.stdout)["functions"]}
    gather = functions["GatherMetadataFunction"]
    assert gather["tasks"] == ["gather_preliminary_metadata", "check_s3_folder_exists"]
    assert gather["alias"] == {"name": ALIAS, "version": "2"}
    assert gather["code_versions"] == ["0.0.9", __version__]
    assert [(v["version"], v["code_version"], v["live"]) for v in gather["versions"]] == [
        ("1", "0.0.9", False),
        ("2", __version__, True),
    ]
    assert gather["versions"][0]["arn"] == _arn(awslambda, "gather-fn", "1")
    assert functions["TransferFunction"]["tasks"] == ["modality_transformation_settings"]

    table = CliRunner().invoke(app, args[1:], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    for text in ("GatherMetadataFunction", "0.0.9", __version__, "live", "image_version"):
        assert text in table.stdout, text


def test_versions_command_says_where_to_look() -> None:
    import typer

    from upload_processor_tools.commands.versions import versions

    app = typer.Typer()
    app.command()(versions)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert "--gather-function" in result.output and "--stack" in result.output
