"""The local cloud: template.yaml's resources created inside moto, as a deploy creates them.

The SAM template is translated (`template.py`) and each resource is created with the boto3
call a deploy would make, in dependency order, with CloudFormation's intrinsics resolved
against what exists so far; a type this module does not know fails loudly (no silent drift).
Functions are registered with the in-process runner (`seam.py`), which runs our handlers
where moto would start Docker.

Published versions and aliases (template.yaml's AutoPublishAlias) are created as a deploy
creates them, so ingest resolves version pins against what the local deployment published.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from upload_processor.errors import LocalModeError
from upload_processor_tools.local.intrinsics import Resolver
from upload_processor_tools.local.resources import CREATORS
from upload_processor_tools.local.seam import ACCOUNT_ID, REGION, RUNNER, LocalFunction
from upload_processor_tools.local.template import Translated, local_path, translate

STACK_NAME = "upload-local"
SFN_CONFIG = {"stepfunctions": {"execute_state_machine": True}}

# Types local mode creates; any other type in the template fails loudly (no silent drift).
_NO_OP_TYPES = {"AWS::Lambda::Permission"}


def project_root() -> Path:
    """The folder holding template.yaml: UPLOAD_PROCESSOR_ROOT, else found upward from here/cwd."""
    env = os.environ.get("UPLOAD_PROCESSOR_ROOT")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for candidate in candidates:
        if (candidate / "template.yaml").is_file() and (candidate / "functions").is_dir():
            return candidate
    raise LocalModeError(
        "cannot find template.yaml: run from the project or set UPLOAD_PROCESSOR_ROOT"
    )


@dataclass
class Deployment:
    """What local mode created: physical names by logical id, and the template's outputs."""

    physical: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    translated: Translated | None = None

    def name(self, logical_id: str) -> str:
        """Physical id (bucket name, queue URL, topic ARN, table name, function name, ...)."""
        return self.physical[logical_id]


class DeployedResources:
    """The deployed names users and tests point at, for whatever holds a Deployment
    (LocalCloud in-process, LocalServer behind an endpoint)."""

    def _d(self) -> Deployment:
        raise NotImplementedError

    def resources(self) -> dict[str, str]:
        """The deployed names a user points tools at."""
        d = self._d()
        return {
            "staging_bucket": d.name("StagingBucket"),
            "archive_bucket": d.name("ArchiveBucket"),
            "open_archive_bucket": d.name("OpenArchiveBucket"),
            "ingest_queue_url": d.name("IngestQueue"),
            "ingest_dead_letter_queue_url": d.name("IngestDeadLetterQueue"),
            "notification_topic_arn": d.name("NotificationTopic"),
            "jobs_table": d.name("JobsTable"),
            "registry_table": d.name("RegistryTable"),
            "state_machine_arn": d.name("UploadStateMachine"),
        }

    @property
    def staging_bucket(self) -> str:
        """The staging bucket's name."""
        return self._d().name("StagingBucket")

    @property
    def archive_bucket(self) -> str:
        """The archive bucket's name."""
        return self._d().name("ArchiveBucket")

    @property
    def topic_arn(self) -> str:
        """The notification topic's ARN."""
        return self._d().name("NotificationTopic")

    @property
    def jobs_table(self) -> str:
        """The jobs table's name."""
        return self._d().name("JobsTable")

    @property
    def state_machine_arn(self) -> str:
        """The upload state machine's ARN."""
        return self._d().name("UploadStateMachine")

    @property
    def registry_table(self) -> str:
        """The metadata registry table's name (local mode's metadata service)."""
        return self._d().name("RegistryTable")

    @property
    def assets_table(self) -> str:
        """The catalog of archived assets."""
        return self._d().name("AssetsTable")


class Deployer:
    """Creates the translated template's resources with boto3 against moto."""

    def __init__(
        self,
        session: Any,
        root: Path,
        stack_name: str = STACK_NAME,
        *,
        function_environment: dict[str, str] | None = None,
    ) -> None:
        self.session = session
        self.root = root
        self.stack = stack_name
        # added to every function's template environment (e.g. AWS_ENDPOINT_URL of a local
        # server, so the handlers' boto3 clients talk to it)
        self.function_environment = dict(function_environment or {})

    def c(self, service: str) -> Any:
        """A client for the local cloud."""
        return self.session.client(service, region_name=REGION)

    def deploy(self, parameter_overrides: dict[str, Any] | None = None) -> Deployment:
        """Translate template.yaml and create every resource, dependencies first."""
        translated = translate(
            self.root / "template.yaml",
            region=REGION,
            account_id=ACCOUNT_ID,
            stack_name=self.stack,
            parameter_overrides=parameter_overrides,
        )
        resolver = Resolver(translated.parameters, translated.conditions)
        graph = {}
        for logical, resource in translated.resources.items():
            deps = resolver.dependencies(resource.get("Properties", {}))
            depends_on = resource.get("DependsOn", [])
            deps |= {depends_on} if isinstance(depends_on, str) else set(depends_on)
            graph[logical] = {d for d in deps if d in translated.resources}
        deployment = Deployment(translated=translated)
        for logical in TopologicalSorter(graph).static_order():
            resource = translated.resources[logical]
            if not translated.conditions.get(resource.get("Condition", ""), True):
                continue
            kind = resource["Type"]
            creator = getattr(self, "_create_" + kind.replace("::", "_").lower(), None)
            if creator is None and kind in CREATORS:
                creator = functools.partial(CREATORS[kind], self)
            if creator is None:
                if kind in _NO_OP_TYPES:
                    continue
                raise LocalModeError(
                    f"local mode cannot create {logical} ({kind}); add it to local/cloud.py"
                )
            props = resolver(resource.get("Properties", {}))
            ref, attrs = creator(logical, props, deployment)
            resolver.refs[logical] = ref
            resolver.attrs[logical] = attrs
            deployment.physical[logical] = ref
            deployment.attrs[logical] = attrs
        deployment.outputs = {k: resolver(v.get("Value")) for k, v in translated.outputs.items()}
        return deployment

    def default_name(self, logical: str) -> str:
        """The physical name CloudFormation would make up for an unnamed resource."""
        return f"{self.stack}-{logical}"[:64]

    def _create_aws_iam_role(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        iam = self.c("iam")
        name = props.get("RoleName") or self.default_name(logical)
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        )["Role"]
        for policy in props.get("Policies", []):
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
            )
        for arn in props.get("ManagedPolicyArns", []):
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def _create_aws_s3_bucket(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        s3 = self.c("s3")
        name = props.get("BucketName") or self.default_name(logical).lower()
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration"):
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration=props["VersioningConfiguration"]
            )
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if props.get("BucketEncryption"):
            rules = [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        if props.get("LifecycleConfiguration"):
            rules = [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": rules}
            )
        notification = props.get("NotificationConfiguration") or {}
        queues = [_queue_notification(c) for c in notification.get("QueueConfigurations", [])]
        if queues:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": queues}
            )
        if set(notification) - {"QueueConfigurations"}:
            raise LocalModeError(
                f"{logical}: local mode handles only QueueConfigurations notifications"
            )
        return name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}

    def _create_aws_sqs_queue(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        sqs = self.c("sqs")
        name = props.get("QueueName") or self.default_name(logical)
        attributes = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
        ):
            if key in props:
                attributes[key] = str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _create_aws_sqs_queuepolicy(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        sqs = self.c("sqs")
        for url in props["Queues"]:
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )
        return logical, {}

    def _create_aws_sns_topic(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        sns = self.c("sns")
        name = props.get("TopicName") or self.default_name(logical)
        attributes = {k: str(props[k]) for k in ("KmsMasterKeyId", "DisplayName") if k in props}
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        return arn, {"TopicName": name, "TopicArn": arn}

    def _create_aws_dynamodb_table(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        ddb = self.c("dynamodb")
        name = props.get("TableName") or self.default_name(logical)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        arn = ddb.create_table(**kwargs)["TableDescription"]["TableArn"]
        return name, {"Arn": arn}

    def _create_aws_lambda_layerversion(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        awslambda = self.c("lambda")
        out = awslambda.publish_layer_version(
            LayerName=props["LayerName"],
            Content={"ZipFile": _placeholder_zip()},
            CompatibleRuntimes=props.get("CompatibleRuntimes", []),
        )
        return out["LayerVersionArn"], {}

    def _create_aws_lambda_function(
        self, logical: str, props: dict[str, Any], d: Deployment
    ) -> tuple[str, dict]:
        awslambda = self.c("lambda")
        name = props.get("FunctionName") or self.default_name(logical)
        code_dir = local_path(self.root, props["Code"])
        if code_dir is None:
            raise LocalModeError(f"{logical}: CodeUri must be a local folder for local mode")
        environment = {
            k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()
        }
        environment.update(self.function_environment)
        out = awslambda.create_function(
            FunctionName=name,
            Runtime=props["Runtime"],
            Role=props["Role"],
            Handler=props["Handler"],
            Code={"ZipFile": _placeholder_zip()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": environment},
            Layers=props.get("Layers", []),
        )
        fn = LocalFunction(
            logical_id=logical,
            name=name,
            arn=out["FunctionArn"],
            code_dir=code_dir,
            handler=props["Handler"],
            environment=environment,
            timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
        )
        RUNNER.register(fn)
        d.functions[logical] = fn
        return name, {"Arn": out["FunctionArn"]}

    def _create_aws_lambda_version(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        """A published version (AutoPublishAlias), with its description (the code version)."""
        awslambda = self.c("lambda")
        kwargs = {"FunctionName": props["FunctionName"]}
        if props.get("Description"):
            kwargs["Description"] = str(props["Description"])
        out = awslambda.publish_version(**kwargs)
        return out["FunctionArn"], {"Version": out["Version"], "FunctionArn": out["FunctionArn"]}

    def _create_aws_lambda_alias(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        awslambda = self.c("lambda")
        if props.get("RoutingConfig") or props.get("ProvisionedConcurrencyConfig"):
            raise LocalModeError(f"{logical}: local mode creates plain aliases only")
        out = awslambda.create_alias(
            FunctionName=props["FunctionName"],
            Name=props["Name"],
            FunctionVersion=str(props["FunctionVersion"]),
            Description=str(props.get("Description") or ""),
        )
        return out["AliasArn"], {"AliasArn": out["AliasArn"]}

    def _create_aws_lambda_eventsourcemapping(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        awslambda = self.c("lambda")
        kwargs = {
            "EventSourceArn": props["EventSourceArn"],
            "FunctionName": props["FunctionName"],
            "BatchSize": int(props.get("BatchSize", 10)),
            "Enabled": props.get("Enabled", True),
        }
        if props.get("FunctionResponseTypes"):
            kwargs["FunctionResponseTypes"] = props["FunctionResponseTypes"]
        out = awslambda.create_event_source_mapping(**kwargs)
        return out["UUID"], {}

    def _create_aws_stepfunctions_statemachine(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        sfn = self.c("stepfunctions")
        name = props.get("StateMachineName") or self.default_name(logical)
        if "DefinitionS3Location" in props:
            path = local_path(self.root, props["DefinitionS3Location"])
            if path is None:
                raise LocalModeError(
                    f"{logical}: DefinitionUri must be a local file for local mode"
                )
            text = path.read_text()
        elif "DefinitionString" in props:
            text = props["DefinitionString"]
        else:
            text = json.dumps(props["Definition"])
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            text = text.replace("${" + key + "}", str(value))
        definition = json.loads(text)  # the substituted ASL must be valid JSON
        arn = sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=props["RoleArn"]
        )["stateMachineArn"]
        return arn, {"Arn": arn, "Name": name}

    def _create_aws_apigateway_restapi(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        """A REST API; the OpenAPI body the SAM translator writes is imported (paths, methods,
        Lambda proxy integrations). moto imports OpenAPI 3 only (template: OpenApiVersion)."""
        apigw = self.c("apigateway")
        body = props.get("Body")
        name = props.get("Name") or (body or {}).get("info", {}).get("title") or self.stack
        api = apigw.create_rest_api(
            name=str(name), description=props.get("Description") or f"{self.stack} {logical}"
        )
        if body:
            if "openapi" not in body:
                raise LocalModeError(
                    f"{logical}: local mode imports OpenAPI 3 bodies only; set "
                    'OpenApiVersion: "3.0.1" on the AWS::Serverless::Api'
                )
            apigw.put_rest_api(
                restApiId=api["id"], mode="overwrite", body=json.dumps(body).encode()
            )
        elif "BodyS3Location" in props:
            raise LocalModeError(f"{logical}: local mode cannot import a BodyS3Location")
        return api["id"], {"RootResourceId": api["rootResourceId"], "RestApiId": api["id"]}

    def _create_aws_apigateway_deployment(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        apigw = self.c("apigateway")
        kwargs: dict[str, Any] = {
            "restApiId": props["RestApiId"],
            "description": props.get("Description", ""),
        }
        if props.get("StageName"):
            kwargs["stageName"] = props["StageName"]
        out = apigw.create_deployment(**kwargs)
        return out["id"], {"DeploymentId": out["id"]}

    def _create_aws_apigateway_stage(
        self, logical: str, props: dict[str, Any], _: Deployment
    ) -> tuple[str, dict]:
        apigw = self.c("apigateway")
        kwargs: dict[str, Any] = {
            "restApiId": props["RestApiId"],
            "stageName": props["StageName"],
            "deploymentId": props["DeploymentId"],
        }
        if props.get("Variables"):
            kwargs["variables"] = {k: str(v) for k, v in props["Variables"].items()}
        if "TracingEnabled" in props:
            kwargs["tracingEnabled"] = bool(props["TracingEnabled"])
        apigw.create_stage(**kwargs)
        return props["StageName"], {}


def _placeholder_zip() -> bytes:
    """moto wants a code package; the real code runs in-process from the project's folders."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(
            "README.txt", "local mode runs this function in-process from the project folder\n"
        )
    return buffer.getvalue()


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule as put_bucket_lifecycle_configuration takes it."""
    out: dict[str, Any] = {
        "ID": rule.get("Id", "rule"),
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
    if rule.get("ExpiredObjectDeleteMarker"):
        out["Expiration"] = {"ExpiredObjectDeleteMarker": True}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    return out


def _queue_notification(config: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation QueueConfiguration as put_bucket_notification_configuration takes it."""
    entry: dict[str, Any] = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules", [])
    if rules:
        entry["Filter"] = {
            "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
        }
    return entry
