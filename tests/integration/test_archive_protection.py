"""The archive is protected by AWS, not only by our code: narrowed roles (the work area
`_jobs/*` versus asset keys), write-once bucket policies, the audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_iam import ROLES, _as_list, _of_type, _resolved, _statements, _translated, allowed

ALL_ROLES = [*ROLES, "StatusFunctionRole"]
# what no function may do to any bucket: change what protects the data, or destroy a version
BUCKET_GUARD_ACTIONS = (
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketAcl",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:DeleteBucket",
    "s3:BypassGovernanceRetention",
    "s3:DeleteObjectVersion",
)
ASSET = "750101_2025-06-12_15-03-00"


def _archives(cloud) -> list[str]:
    return [cloud.archive_bucket, cloud.deployment.name("OpenArchiveBucket")]


def test_no_function_may_change_lifecycle_acls_policy_or_versions(cloud) -> None:
    buckets = [cloud.staging_bucket, *_archives(cloud)]
    for role in ALL_ROLES:
        for bucket in buckets:
            for resource in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{ASSET}/x.json"):
                for action in BUCKET_GUARD_ACTIONS:
                    assert not allowed(cloud, role, action, resource), (role, action, resource)


def test_no_role_uses_a_broad_sam_policy_template() -> None:
    """S3CrudPolicy grants DeleteObject, PutLifecycleConfiguration and PutObjectAcl on a whole
    bucket, S3WritePolicy the last two, S3ReadPolicy GetLifecycleConfiguration, and
    LambdaInvokePolicy `function:<name>*` (any function whose name starts the same)."""
    from upload_processor_tools.local.template import load_template

    broad = {
        "S3CrudPolicy",
        "S3WritePolicy",
        "S3ReadPolicy",
        "S3FullAccessPolicy",
        "LambdaInvokePolicy",
        "DynamoDBCrudPolicy",
    }
    source = load_template(Path(__file__).resolve().parents[2] / "template.yaml")["Resources"]
    for logical, resource in source.items():
        for policy in resource.get("Properties", {}).get("Policies", []) or []:
            if isinstance(policy, dict):
                assert not broad & set(policy), (logical, policy)


def test_archive_rights_follow_what_each_function_does(cloud) -> None:
    """The work area (`_jobs/*`: plans, results, leases) versus the asset keys, per role."""
    for bucket in _archives(cloud):
        arn = f"arn:aws:s3:::{bucket}"
        data = f"{arn}/{ASSET}/ecephys/continuous.dat.zst"
        manifest = f"{arn}/{ASSET}/manifest.json"
        lock = f"{arn}/_jobs/locks/{ASSET}.json"
        plan = f"{arn}/_jobs/job-1/plan.json"
        for role in ("IngestFunctionRole", "RegistryFunctionRole", "StatusFunctionRole"):
            for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"):
                for resource in (arn, data, plan):
                    assert not allowed(cloud, role, action, resource), (role, action, resource)
        # GatherMetadata: plan, metadata and lease in the work area; chunked uploads of assets;
        # it deletes nothing but its released lease
        for resource in (plan, lock, data):
            assert allowed(cloud, "GatherMetadataFunctionRole", "s3:PutObject", resource)
        assert allowed(cloud, "GatherMetadataFunctionRole", "s3:DeleteObject", lock)
        for resource in (plan, data, manifest):
            assert not allowed(cloud, "GatherMetadataFunctionRole", "s3:DeleteObject", resource)
        # Transfer and Finalize write assets and their work area
        for role in ("TransferFunctionRole", "FinalizeFunctionRole"):
            for action in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"):
                assert allowed(cloud, role, action, data), (role, action)
            assert allowed(cloud, role, "s3:ListBucket", arn), role
        assert allowed(cloud, "FinalizeFunctionRole", "s3:DeleteObject", plan)
        # the state machine only reads the plan (the Distributed Map's ItemReader)
        assert allowed(cloud, "UploadStateMachineRole", "s3:GetObject", plan)
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert not allowed(cloud, "UploadStateMachineRole", action, data), action
        assert not allowed(cloud, "UploadStateMachineRole", "s3:ListBucket", arn)


def test_only_the_status_api_scans_the_jobs_table(cloud) -> None:
    jobs = cloud.deployment.attrs["JobsTable"]["Arn"]
    assert allowed(cloud, "StatusFunctionRole", "dynamodb:Scan", jobs)
    for role in ROLES:
        assert not allowed(cloud, role, "dynamodb:Scan", jobs), role


def test_the_state_machine_invokes_exactly_its_functions_and_their_versions(cloud) -> None:
    functions = cloud.deployment.functions
    pipeline = (
        "GatherMetadataFunction",
        "TransferFunction",
        "FinalizeFunction",
        "RegisterFunction",
    )
    resources = {
        r
        for statement in _statements(cloud, "UploadStateMachineRole")
        if any(a.lower().startswith("lambda:") for a in _as_list(statement["Action"]))
        for r in _as_list(statement["Resource"])
    }
    expected = {functions[f].arn for f in pipeline} | {f"{functions[f].arn}:*" for f in pipeline}
    assert resources == expected
    for logical in pipeline:
        arn = functions[logical].arn
        for target in (arn, f"{arn}:live", f"{arn}:7"):
            assert allowed(cloud, "UploadStateMachineRole", "lambda:InvokeFunction", target)
        # a function whose name merely starts the same is not one of them
        assert not allowed(cloud, "UploadStateMachineRole", "lambda:InvokeFunction", f"{arn}X")


def _policy_statements(cloud, bucket_logical: str) -> list[dict[str, Any]]:
    """The bucket policy as it deploys (role ARNs and conditions resolved)."""
    from upload_processor_tools.local.intrinsics import Resolver

    translated = cloud.deployment.translated
    resolver = Resolver(translated.parameters, translated.conditions)
    resolver.refs.update(cloud.deployment.physical)
    resolver.attrs.update(cloud.deployment.attrs)
    (policy,) = [
        v
        for v in translated.resources.values()
        if v["Type"] == "AWS::S3::BucketPolicy"
        and v["Properties"]["Bucket"] == {"Ref": bucket_logical}
    ]
    return _as_list(resolver(policy["Properties"]["PolicyDocument"])["Statement"])


def test_a_sealed_object_cannot_be_deleted_or_its_seal_replaced_by_any_pipeline_role(
    cloud,
) -> None:
    """Write-once enforced by S3 (the archives' bucket policies), evaluated like AWS does for
    this account's roles (moto cannot: its bucket policies see no request context and no
    principal). The roles' own policies would allow some of these (Finalize deletes strays of
    an unsealed asset): the explicit Deny in the bucket policy is what refuses them."""
    from policy_simulator import Request, decide

    iam = cloud.client("iam")
    for bucket_logical, bucket in zip(
        ("ArchiveBucket", "OpenArchiveBucket"), _archives(cloud), strict=True
    ):
        policy = _policy_statements(cloud, bucket_logical)
        arn = f"arn:aws:s3:::{bucket}"
        manifest = f"{arn}/{ASSET}/manifest.json"
        data = f"{arn}/{ASSET}/ecephys/continuous.dat.zst"
        for role in ALL_ROLES:
            principal = iam.get_role(RoleName=cloud.deployment.name(role))["Role"]["Arn"]
            own = _statements(cloud, role)
            denied = [
                ("s3:DeleteObjectVersion", manifest),
                ("s3:DeleteObjectVersion", data),
                ("s3:DeleteObject", manifest),
                ("s3:PutObject", manifest),  # a replacement: no If-None-Match
                ("s3:PutBucketVersioning", arn),
                ("s3:PutLifecycleConfiguration", arn),
                ("s3:PutBucketPolicy", arn),
            ]
            for action, resource in denied:
                verdict = decide(Request(principal, action, resource), own, policy)
                assert verdict == "ExplicitDeny", (role, action, resource)
        # without the bucket policy, the roles' own grants would have allowed these
        finalize = iam.get_role(RoleName=cloud.deployment.name("FinalizeFunctionRole"))
        own = _statements(cloud, "FinalizeFunctionRole")
        principal = finalize["Role"]["Arn"]
        assert decide(Request(principal, "s3:DeleteObject", manifest), own) == "Allow"
        assert decide(Request(principal, "s3:PutObject", manifest), own) == "Allow"
        assert decide(Request(principal, "s3:DeleteObject", manifest), own, policy) != "Allow"
        # and the pipeline still works: the seal is created (If-None-Match), the work area, the
        # lease and the strays of an unsealed asset are removed
        seal = Request(principal, "s3:PutObject", manifest, {"s3:if-none-match": "*"})
        assert decide(seal, own, policy) == "Allow"
        for key in (data, f"{arn}/_jobs/job-1/plan.json", f"{arn}/_jobs/locks/{ASSET}.json"):
            assert decide(Request(principal, "s3:DeleteObject", key), own, policy) == "Allow"
        # an operator outside the pipeline is not affected (recovery stays possible)
        operator = "arn:aws:iam::123456789012:role/archive-operator"
        admin = [{"Effect": "Allow", "Action": "s3:*", "Resource": [arn, f"{arn}/*"]}]
        assert decide(Request(operator, "s3:DeleteObjectVersion", data), admin, policy) == "Allow"


def test_an_overwritten_or_deleted_sealed_object_keeps_its_sealed_version(cloud) -> None:
    """What the bucket policy leaves a pipeline bug: a delete or an overwrite of a sealed data
    object only adds a version (versioning stays on; no role may delete a version, and no
    lifecycle rule expires an asset's noncurrent versions)."""
    s3 = cloud.client("s3")
    bucket = cloud.archive_bucket
    key = f"{ASSET}/ecephys/continuous.dat.zst"
    sealed = s3.put_object(Bucket=bucket, Key=key, Body=b"sealed")["VersionId"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"overwritten by a bug")
    s3.delete_object(Bucket=bucket, Key=key)
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=sealed)["Body"].read()
    assert body == b"sealed"
    for bucket_name in _archives(cloud):
        assert s3.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket_name)["Rules"]
        for rule in rules:
            if "NoncurrentVersionExpiration" in rule or "Expiration" in rule:
                assert rule["Filter"]["Prefix"] == "_jobs/", rule


def test_write_once_is_opted_out_only_by_its_parameter() -> None:
    from upload_processor_tools.local.intrinsics import Resolver
    from upload_processor_tools.local.template import translate

    root = Path(__file__).resolve().parents[2]
    for value, expected in (("Enabled", 4), ("Disabled", 1)):
        translated = translate(
            root / "template.yaml",
            region="us-east-1",
            account_id="123456789012",
            stack_name="t",
            parameter_overrides={"ArchiveWriteOnce": value},
        )
        resolver = Resolver(translated.parameters, translated.conditions)
        resolver.attrs.update(
            {
                logical: {"Arn": f"arn:aws:iam::123456789012:role/t-{logical}"}
                for logical in translated.resources
            }
        )
        for bucket_logical in ("ArchiveBucket", "OpenArchiveBucket"):
            (policy,) = [
                v
                for v in translated.resources.values()
                if v["Type"] == "AWS::S3::BucketPolicy"
                and v["Properties"]["Bucket"] == {"Ref": bucket_logical}
            ]
            statements = resolver(policy["Properties"]["PolicyDocument"]["Statement"])
            assert len(statements) == expected, (value, bucket_logical)
            if value == "Enabled":
                principals = {
                    tuple(sorted(s["Principal"]["AWS"]))
                    for s in statements
                    if s["Sid"] != "DenyInsecureTransport"
                }
                (roles,) = principals
                assert {r.rsplit("/t-", 1)[1] for r in roles} == set(ALL_ROLES)


def test_the_audit_trail_is_in_the_template() -> None:
    """S3 server access logs of staging and both archives (to the stack's log bucket), access
    logs of both REST APIs, and a reserved-concurrency parameter per function."""
    buckets = _of_type("AWS::S3::Bucket")
    for logical in ("StagingBucket", "ArchiveBucket", "OpenArchiveBucket"):
        logging = buckets[logical]["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": "AccessLogBucket"}, logical
    policy = _of_type("AWS::S3::BucketPolicy")["AccessLogBucketPolicy"]["Properties"]
    (delivery,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    condition = _resolved(delivery["Condition"])
    assert condition["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert condition["ArnLike"]["aws:SourceArn"] == [
        f"arn:aws:s3:::t-{name}-123456789012" for name in ("staging", "archive", "open-archive")
    ]
    stages = _of_type("AWS::ApiGateway::Stage")
    assert len(stages) == 2
    for logical, stage in stages.items():
        setting = stage["Properties"]["AccessLogSetting"]
        assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}, logical
        fields = json.loads(setting["Format"])
        assert {"requestId", "caller", "userArn", "httpMethod", "status"} <= set(fields)
    functions = _of_type("AWS::Lambda::Function")
    assert len(functions) == 7
    for logical, function in functions.items():
        reserved = function["Properties"]["ReservedConcurrentExecutions"]
        condition, unreserved, number = reserved["Fn::If"]
        assert unreserved == {"Ref": "AWS::NoValue"}, logical
        assert number["Ref"].endswith("ReservedConcurrency"), logical
        assert _translated().conditions[condition] is True, "unreserved by default"
