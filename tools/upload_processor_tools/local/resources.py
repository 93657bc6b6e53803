"""Resources local mode creates without a Deployer method of their own: policies, log groups,
alarms, keys. Each creator takes the Deployer (for its clients and stack name), the logical id,
the resolved properties and the deployment so far, and returns (Ref, attributes).
"""

from __future__ import annotations

import json
from typing import Any

from upload_processor_tools.local.seam import ACCOUNT_ID, REGION


def create_s3_bucketpolicy(
    deployer: Any, logical: str, props: dict[str, Any], _: Any
) -> tuple[str, dict]:
    """The bucket policy, less the statements moto cannot evaluate: moto evaluates a bucket
    policy without the request's context (a Condition sees no keys: the TLS-only statements,
    whose in-process calls carry no TLS, and the write-once seal's s3:if-none-match would deny
    everything) and ignores whom a statement names (a Deny for the pipeline roles would deny
    every caller). The write-once statements are tested against the template instead."""
    document = dict(props["PolicyDocument"])
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    kept = [st for st in statements if st.get("Principal") == "*" and not st.get("Condition")]
    if kept:
        document["Statement"] = kept
        deployer.c("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
    return logical, {}


def create_apigateway_account(
    deployer: Any, logical: str, props: dict[str, Any], _: Any
) -> tuple[str, dict]:
    """API Gateway's account settings (its logging role): nothing to create in moto."""
    return f"{deployer.stack}-{logical}", {}


def create_logs_loggroup(
    deployer: Any, logical: str, props: dict[str, Any], _: Any
) -> tuple[str, dict]:
    logs = deployer.c("logs")
    name = props.get("LogGroupName") or f"/{deployer.stack}/{logical}"
    logs.create_log_group(logGroupName=name)
    if props.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    return name, {"Arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"}


def create_cloudwatch_alarm(
    deployer: Any, logical: str, props: dict[str, Any], _: Any
) -> tuple[str, dict]:
    name = props.get("AlarmName") or deployer.default_name(logical)
    keys = (
        "AlarmDescription",
        "Namespace",
        "MetricName",
        "Dimensions",
        "Statistic",
        "Period",
        "EvaluationPeriods",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "AlarmActions",
    )
    kwargs = {k: props[k] for k in keys if k in props}
    for number in ("Period", "EvaluationPeriods"):
        if number in kwargs:
            kwargs[number] = int(kwargs[number])
    if "Threshold" in kwargs:
        kwargs["Threshold"] = float(kwargs["Threshold"])
    deployer.c("cloudwatch").put_metric_alarm(AlarmName=name, **kwargs)
    return name, {"Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{name}"}


def create_kms_key(deployer: Any, logical: str, props: dict[str, Any], _: Any) -> tuple[str, dict]:
    """A customer managed key with its key policy (moto stores it; it does not evaluate it)."""
    kms = deployer.c("kms")
    kwargs: dict[str, Any] = {
        "Description": str(props.get("Description") or f"{deployer.stack} {logical}"),
        "KeyUsage": props.get("KeyUsage", "ENCRYPT_DECRYPT"),
        "KeySpec": props.get("KeySpec", "SYMMETRIC_DEFAULT"),
    }
    if props.get("KeyPolicy"):
        kwargs["Policy"] = json.dumps(props["KeyPolicy"])
    key = kms.create_key(**kwargs)["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]}


def create_sns_topicpolicy(
    deployer: Any, logical: str, props: dict[str, Any], _: Any
) -> tuple[str, dict]:
    sns = deployer.c("sns")
    for arn in props["Topics"]:
        sns.set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
        )
    return logical, {}


CREATORS: dict[str, Any] = {
    "AWS::S3::BucketPolicy": create_s3_bucketpolicy,
    "AWS::ApiGateway::Account": create_apigateway_account,
    "AWS::Logs::LogGroup": create_logs_loggroup,
    "AWS::CloudWatch::Alarm": create_cloudwatch_alarm,
    "AWS::KMS::Key": create_kms_key,
    "AWS::SNS::TopicPolicy": create_sns_topicpolicy,
}
