"""Least privilege, read from the translated template as deployed: what each role may do."""

from __future__ import annotations

import fnmatch
import functools
import json
from pathlib import Path
from typing import Any

import pytest


def _statements(cloud, role_logical: str) -> list[dict[str, Any]]:
    iam = cloud.client("iam")
    role = cloud.deployment.name(role_logical)
    out = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements = document["Statement"]
        out += statements if isinstance(statements, list) else [statements]
    return out


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def matching(cloud, role_logical: str, action: str, resource: str) -> list[dict[str, Any]]:
    """The role's inline statements whose actions and resources cover this action on this
    resource (conditions not evaluated)."""
    out = []
    for statement in _statements(cloud, role_logical):
        actions = [a.lower() for a in _as_list(statement.get("Action", []))]
        resources = _as_list(statement.get("Resource", []))
        if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            continue
        out.append(statement)
    return out


def allowed(cloud, role_logical: str, action: str, resource: str) -> bool:
    """Allow unless denied, from the role's inline policies (the managed ones grant logs/X-Ray).
    A statement's condition is not evaluated: a conditional allow counts as allowed."""
    statements = matching(cloud, role_logical, action, resource)
    if any(statement["Effect"] == "Deny" for statement in statements):
        return False
    return bool(statements)


ROLES = [
    "IngestFunctionRole",
    "GatherMetadataFunctionRole",
    "TransferFunctionRole",
    "FinalizeFunctionRole",
    "RegisterFunctionRole",
    "RegistryFunctionRole",
    "UploadStateMachineRole",
]


@pytest.mark.parametrize("role", ROLES)
def test_no_role_grants_every_action(cloud, role: str) -> None:
    for statement in _statements(cloud, role):
        for action in _as_list(statement.get("Action", [])):
            assert action != "*" and not action.endswith(":*"), (role, statement)


def test_staged_data_is_read_only_to_every_function(cloud) -> None:
    """No function may write staged data or delete a version of it; only Finalize (the opt-in
    cleanup after a verified archive copy) may delete a staged object's current version."""
    staged = f"arn:aws:s3:::{cloud.staging_bucket}/lab/session/ecephys/continuous.dat"
    for role in ROLES:
        assert not allowed(cloud, role, "s3:PutObject", staged), role
        assert not allowed(cloud, role, "s3:DeleteObjectVersion", staged), role
        if role != "FinalizeFunctionRole":
            assert not allowed(cloud, role, "s3:DeleteObject", staged), role
    assert allowed(cloud, "TransferFunctionRole", "s3:GetObject", staged)


def test_only_finalize_may_delete_from_staging_and_only_conditionally(cloud) -> None:
    staged = f"arn:aws:s3:::{cloud.staging_bucket}/lab/session/ecephys/continuous.dat"
    grants = matching(cloud, "FinalizeFunctionRole", "s3:DeleteObject", staged)
    assert grants, "Finalize cannot delete staged objects: the opt-in cleanup would fail"
    for statement in grants:
        assert statement["Effect"] == "Allow"
        # a conditional delete only (If-Match on the archived ETag), of one action
        assert statement["Condition"] == {"Null": {"s3:if-match": "false"}}, statement
        assert _as_list(statement["Action"]) == ["s3:DeleteObject"], statement
        assert _as_list(statement["Resource"]) == [f"arn:aws:s3:::{cloud.staging_bucket}/*"]
    assert not allowed(cloud, "FinalizeFunctionRole", "s3:DeleteObjectVersion", staged)
    assert not allowed(cloud, "FinalizeFunctionRole", "s3:PutObject", staged)
    # and that grant reaches no other bucket
    elsewhere = "arn:aws:s3:::some-other-bucket/lab/session/ecephys/continuous.dat"
    assert not allowed(cloud, "FinalizeFunctionRole", "s3:DeleteObject", elsewhere)


def test_only_the_report_may_be_added_to_staging(cloud) -> None:
    report = f"arn:aws:s3:::{cloud.staging_bucket}/lab/session/upload_report.json"
    assert allowed(cloud, "GatherMetadataFunctionRole", "s3:PutObject", report)
    assert allowed(cloud, "IngestFunctionRole", "s3:PutObject", report)
    assert not allowed(cloud, "TransferFunctionRole", "s3:PutObject", report)


def test_ingest_cannot_write_the_archive_nor_transfer_publish(cloud) -> None:
    archived = f"arn:aws:s3:::{cloud.archive_bucket}/750101_2025-06-12_15-03-00/manifest.json"
    assert not allowed(cloud, "IngestFunctionRole", "s3:PutObject", archived)
    assert not allowed(cloud, "IngestFunctionRole", "s3:DeleteObject", archived)
    assert allowed(cloud, "TransferFunctionRole", "s3:PutObject", archived)
    assert not allowed(cloud, "TransferFunctionRole", "sns:Publish", cloud.topic_arn)
    assert not allowed(cloud, "TransferFunctionRole", "dynamodb:PutItem", "*")


def test_the_state_machine_only_invokes_its_own_functions(cloud) -> None:
    functions = cloud.deployment.functions
    for logical in ("GatherMetadataFunction", "TransferFunction", "FinalizeFunction"):
        assert allowed(
            cloud, "UploadStateMachineRole", "lambda:InvokeFunction", functions[logical].arn
        )
    assert not allowed(
        cloud, "UploadStateMachineRole", "lambda:InvokeFunction", functions["IngestFunction"].arn
    )
    assert not allowed(
        cloud, "UploadStateMachineRole", "lambda:InvokeFunction", functions["RegistryFunction"].arn
    )


def test_buckets_refuse_plain_http_in_the_template() -> None:
    from pathlib import Path

    from upload_processor_tools.local.template import translate

    root = Path(__file__).resolve().parents[2]
    resources = translate(
        root / "template.yaml", region="us-east-1", account_id="123456789012", stack_name="t"
    ).resources
    policies = {
        v["Properties"]["Bucket"]["Ref"]: v["Properties"]["PolicyDocument"]["Statement"]
        for v in resources.values()
        if v["Type"] == "AWS::S3::BucketPolicy"
    }
    assert set(policies) == {
        "StagingBucket",
        "ArchiveBucket",
        "OpenArchiveBucket",
        "AccessLogBucket",
    }
    for statements in policies.values():
        (deny,) = [s for s in statements if s.get("Sid") == "DenyInsecureTransport"]
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    buckets = [v for v in resources.values() if v["Type"] == "AWS::S3::Bucket"]
    for bucket in buckets:
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
        assert props["BucketEncryption"]
        assert props["VersioningConfiguration"]["Status"] == "Enabled"


# -- read from the translated template (no deploy) -------------------------------------------


@functools.cache
def _translated():
    from upload_processor_tools.local.template import translate

    root = Path(__file__).resolve().parents[2]
    return translate(
        root / "template.yaml", region="us-east-1", account_id="123456789012", stack_name="t"
    )


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _translated().resources.items() if v["Type"] == kind}


def _resolved(value: Any) -> Any:
    """Pseudo parameters and parameters substituted (the values below refer to nothing else)."""
    from upload_processor_tools.local.intrinsics import Resolver

    return Resolver(_translated().parameters)(value)


def _ref(value: Any) -> str | None:
    """The logical id a Ref or Fn::GetAtt names, else None."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        arg = value["Fn::GetAtt"]
        return arg[0] if isinstance(arg, list) else arg.split(".", 1)[0]
    return None


def _service_statements(statements: Any, service: str) -> list[dict[str, Any]]:
    return [
        s
        for s in _as_list(statements)
        if s["Effect"] == "Allow" and service in _as_list(s.get("Principal", {}).get("Service", []))
    ]


def _covers(statement: dict[str, Any], action: str) -> bool:
    return any(
        fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(statement["Action"])
    )


def test_every_alarm_can_publish_to_its_topic() -> None:
    """CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key
    alias/aws/sns: its key policy grants CloudWatch nothing, and it cannot be changed. Each
    alarm's topic is encrypted with a customer managed key CloudWatch may use, and its topic
    policy lets this stack's alarms (this account, this stack's alarm names) publish."""
    topics = _of_type("AWS::SNS::Topic")
    keys = _of_type("AWS::KMS::Key")
    topic_policies = _of_type("AWS::SNS::TopicPolicy")
    alarms = _of_type("AWS::CloudWatch::Alarm")
    assert {"FailedJobsAlarm", "IngestDeadLetterAlarm"} <= set(alarms)
    for logical, alarm in alarms.items():
        props = alarm["Properties"]
        actions = [
            *props.get("AlarmActions", []),
            *props.get("OKActions", []),
            *props.get("InsufficientDataActions", []),
        ]
        assert actions, f"{logical} notifies no one"
        # a name CloudFormation gives the alarm: <stack>-<logical id>-<suffix>
        alarm_arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:t-{logical}-AB12CD34EF56"
        for action in actions:
            topic = _ref(action)
            assert topic in topics, (logical, action)
            key_id = topics[topic]["Properties"].get("KmsMasterKeyId")
            assert not (isinstance(key_id, str) and "alias/aws/" in key_id), (topic, key_id)
            if key_id is not None:
                key = keys[_ref(key_id)]["Properties"]
                assert key["EnableKeyRotation"] is True
                grants = _service_statements(
                    key["KeyPolicy"]["Statement"], "cloudwatch.amazonaws.com"
                )
                assert any(_covers(s, "kms:Decrypt") for s in grants), topic
                assert any(_covers(s, "kms:GenerateDataKey") for s in grants), topic
                for statement in grants:
                    _assert_scoped_to_this_stacks_alarms(statement, alarm_arn)
            publishers = [
                s
                for policy in topic_policies.values()
                if {"Ref": topic} in policy["Properties"]["Topics"]
                for s in _service_statements(
                    policy["Properties"]["PolicyDocument"]["Statement"], "cloudwatch.amazonaws.com"
                )
                if _covers(s, "sns:Publish")
            ]
            assert publishers, f"no topic policy lets CloudWatch publish to {topic}"
            for statement in publishers:
                assert statement["Resource"] == {"Ref": topic}
                _assert_scoped_to_this_stacks_alarms(statement, alarm_arn)


def _assert_scoped_to_this_stacks_alarms(statement: dict[str, Any], alarm_arn: str) -> None:
    condition = _resolved(statement["Condition"])
    assert condition["StringEquals"]["aws:SourceAccount"] == "123456789012", statement
    pattern = condition["ArnLike"]["aws:SourceArn"]
    assert fnmatch.fnmatchcase(alarm_arn, pattern), (alarm_arn, pattern)
    other_stack = alarm_arn.replace(":alarm:t-", ":alarm:someone-else-")
    assert not fnmatch.fnmatchcase(other_stack, pattern), pattern
    other_account = alarm_arn.replace("123456789012", "210987654321")
    assert not fnmatch.fnmatchcase(other_account, pattern), pattern


def test_the_registry_and_status_apis_take_iam_signed_requests_only() -> None:
    """Every method of both REST APIs requires SigV4 (AWS_IAM): API Gateway refuses an unsigned
    request, or one from a caller without execute-api:Invoke, before the function runs. (moto
    does not enforce method authorization, so the translated API definition is the test.)"""
    apis = _of_type("AWS::ApiGateway::RestApi")
    assert set(apis) == {"RegistryApi", "StatusApi"}, "an API outside these two (implicit API?)"
    methods = {
        "get",
        "put",
        "post",
        "delete",
        "patch",
        "head",
        "options",
        "x-amazon-apigateway-any-method",
    }
    for logical, api in apis.items():
        body = api["Properties"]["Body"]
        scheme = body["components"]["securitySchemes"]["AWS_IAM"]
        assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4", logical
        assert body.get("security") in (None, [{"AWS_IAM": []}]), logical
        seen = 0
        for path, operations in body["paths"].items():
            for method, operation in operations.items():
                if method.lower() not in methods:
                    continue
                seen += 1
                assert operation.get("security") == [{"AWS_IAM": []}], (logical, path, method)
        assert seen, logical
    # the writes are among them
    registry_posts = [
        path
        for path, ops in apis["RegistryApi"]["Properties"]["Body"]["paths"].items()
        if "post" in ops
    ]
    assert set(registry_posts) == {"/instruments", "/subjects", "/procedures", "/projects"}
    # and in the source template: IAM by default, no event overriding it
    from upload_processor_tools.local.template import load_template

    source = load_template(Path(__file__).resolve().parents[2] / "template.yaml")["Resources"]
    for logical in apis:
        assert source[logical]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    for logical, resource in source.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for name, event in resource["Properties"].get("Events", {}).items():
            if event["Type"] == "Api":
                assert _ref(event["Properties"].get("RestApiId")) in apis, (logical, name)
                assert "Auth" not in event["Properties"], (logical, name)
            assert event["Type"] != "HttpApi", (logical, name)


def test_every_function_logs_to_a_group_with_retention() -> None:
    groups = {
        json.dumps(v["Properties"]["LogGroupName"]): v["Properties"]
        for v in _of_type("AWS::Logs::LogGroup").values()
    }
    functions = _of_type("AWS::Lambda::Function")
    assert "RegistryFunction" in functions and "StatusFunction" in functions
    for logical in functions:
        name = json.dumps({"Fn::Sub": f"/aws/lambda/${{{logical}}}"})
        assert name in groups, f"{logical} has no log group (its logs would never expire)"
        assert groups[name]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical


def test_dynamodb_grants_are_explicit_and_delete_nothing() -> None:
    """No function gets a *CrudPolicy on a table (DeleteItem, BatchWriteItem): the registry
    function gets exactly the calls upload_processor.adapters.registry makes, on its table alone."""
    roles = _of_type("AWS::IAM::Role")
    for logical, role in roles.items():
        for policy in role["Properties"].get("Policies", []):
            for statement in _as_list(policy["PolicyDocument"]["Statement"]):
                for action in _as_list(statement.get("Action", [])):
                    assert action not in (
                        "dynamodb:DeleteItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:DeleteTable",
                    ), (logical, statement)
    registry = [
        statement
        for policy in roles["RegistryFunctionRole"]["Properties"]["Policies"]
        for statement in _as_list(policy["PolicyDocument"]["Statement"])
        if any(a.startswith("dynamodb:") for a in _as_list(statement["Action"]))
    ]
    assert registry == [
        {
            "Sid": "RegistryTableReadAndRegister",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
            "Resource": {"Fn::GetAtt": ["RegistryTable", "Arn"]},
        }
    ]


# -- as deployed (the local cloud) -----------------------------------------------------------


def test_the_registry_function_registers_and_reads_but_never_deletes(cloud) -> None:
    table = cloud.deployment.attrs["RegistryTable"]["Arn"]
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"):
        assert allowed(cloud, "RegistryFunctionRole", action, table), action
    for action in (
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
        "dynamodb:Scan",
    ):
        assert not allowed(cloud, "RegistryFunctionRole", action, table), action
    jobs = cloud.deployment.attrs["JobsTable"]["Arn"]
    assert not allowed(cloud, "RegistryFunctionRole", "dynamodb:GetItem", jobs)


@pytest.mark.parametrize(
    "role", ["IngestFunctionRole", "GatherMetadataFunctionRole", "FinalizeFunctionRole"]
)
def test_job_records_are_written_but_never_deleted(cloud, role: str) -> None:
    jobs = cloud.deployment.attrs["JobsTable"]["Arn"]
    for action in ("GetItem", "PutItem", "UpdateItem", "Query"):
        assert allowed(cloud, role, f"dynamodb:{action}", jobs), action
    assert allowed(cloud, role, "dynamodb:Query", f"{jobs}/index/status-created_at")
    for action in ("DeleteItem", "BatchWriteItem"):
        assert not allowed(cloud, role, f"dynamodb:{action}", jobs), action


def test_the_register_function_catalogs_announces_and_never_touches_the_asset(cloud) -> None:
    """RegisterFunction (the states after Finalize): reads the sealed asset, records outcomes
    on the job (never creating or deleting one), puts catalog items, events and the end
    notification; it writes nothing in any bucket and deletes nothing anywhere."""
    role = "RegisterFunctionRole"
    attrs = cloud.deployment.attrs
    assets, jobs = attrs["AssetsTable"]["Arn"], attrs["JobsTable"]["Arn"]
    for action in ("GetItem", "PutItem"):
        assert allowed(cloud, role, f"dynamodb:{action}", assets), action
    for action in ("GetItem", "UpdateItem"):
        assert allowed(cloud, role, f"dynamodb:{action}", jobs), action
    for table in (assets, jobs):
        for action in ("DeleteItem", "BatchWriteItem", "Scan", "DeleteTable"):
            assert not allowed(cloud, role, f"dynamodb:{action}", table), (table, action)
    assert not allowed(cloud, role, "dynamodb:PutItem", jobs)
    archive = f"arn:aws:s3:::{cloud.archive_bucket}/750101_2025-06-12_15-03-00/metadata.nd.json"
    assert allowed(cloud, role, "s3:GetObject", archive)
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert not allowed(cloud, role, action, archive), action
    staging = f"arn:aws:s3:::{cloud.staging_bucket}/lab/s/upload_job.json"
    assert not allowed(cloud, role, "s3:GetObject", staging)
    bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    assert allowed(cloud, role, "events:PutEvents", bus)
    assert allowed(cloud, "FinalizeFunctionRole", "events:PutEvents", bus)  # rejected, failed
    assert not allowed(cloud, "GatherMetadataFunctionRole", "events:PutEvents", bus)
