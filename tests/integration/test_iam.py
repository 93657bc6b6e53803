"""Least privilege, read from the translated template as deployed: what each role may do."""

from __future__ import annotations

import fnmatch
import json
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

    from upload_processor.local.template import translate

    root = Path(__file__).resolve().parents[2]
    resources = translate(
        root / "template.yaml", region="us-east-1", account_id="123456789012", stack_name="t"
    ).resources
    policies = {
        v["Properties"]["Bucket"]["Ref"]: v["Properties"]["PolicyDocument"]["Statement"]
        for v in resources.values()
        if v["Type"] == "AWS::S3::BucketPolicy"
    }
    assert set(policies) == {"StagingBucket", "ArchiveBucket", "OpenArchiveBucket"}
    for statements in policies.values():
        (deny,) = [s for s in statements if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    buckets = [v for v in resources.values() if v["Type"] == "AWS::S3::Bucket"]
    for bucket in buckets:
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
        assert props["BucketEncryption"]
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
