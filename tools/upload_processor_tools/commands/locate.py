"""Where a deployed (or local) stack is, for every command: one way to find the deployment.

The deployment is named by, first that is given: the command's options (`--stack`,
`--profile`, `--region`, `--endpoint-url`), their environment variables
(`UPLOAD_PROCESSOR_STACK`, `AWS_PROFILE`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
`AWS_ENDPOINT_URL`), then the saved default that `upload-processor configure` writes (an INI
file the AWS CLI way: `$XDG_CONFIG_HOME/upload-processor/config`, else
`~/.config/upload-processor/config`; `UPLOAD_PROCESSOR_CONFIG_FILE` overrides the path).

Against a loopback endpoint (`upload-processor local serve`) the clients get region
`us-east-1` (unless one is given) and moto's fake credentials: nothing else is needed.

Every resource is then found in this order, the first that answers wins:

1. the command's option (`--table`, `--queue-url`, `--dlq-url`), or its environment variable
   (`UPLOAD_PROCESSOR_JOBS_TABLE`, `UPLOAD_PROCESSOR_INGEST_QUEUE_URL`,
   `UPLOAD_PROCESSOR_INGEST_DLQ_URL`);
2. the outputs and resources of the CloudFormation stack (`JobsTableName`, `IngestQueueUrl`,
   `IngestDeadLetterQueueUrl`, `NotificationTopicArn`, the functions' environments);
3. with an endpoint URL and no stack: local mode's names (stack `upload-local`), checked to
   exist.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from upload_processor.errors import NotLocatedError

STACK_ENV = "UPLOAD_PROCESSOR_STACK"
TABLE_ENV = "UPLOAD_PROCESSOR_JOBS_TABLE"
ASSETS_TABLE_ENV = "UPLOAD_PROCESSOR_ASSETS_TABLE"
QUEUE_ENV = "UPLOAD_PROCESSOR_INGEST_QUEUE_URL"
DLQ_ENV = "UPLOAD_PROCESSOR_INGEST_DLQ_URL"
CONFIG_ENV = "UPLOAD_PROCESSOR_CONFIG_FILE"
LOCAL_STACK = "upload-local"  # local mode's stack name (local/cloud.py STACK_NAME)
LOCAL_REGION = "us-east-1"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
CONFIG_KEYS = ("stack", "profile", "region", "endpoint_url")
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}  # noqa: S104 - compared, never bound


def config_path() -> Path:
    """Where `upload-processor configure` saves the default deployment."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "upload-processor" / "config"


def saved_defaults() -> dict[str, str]:
    """The saved default deployment ({} when nothing was configured)."""
    parser = configparser.ConfigParser()
    try:
        parser.read(config_path())
    except configparser.Error as exc:
        raise NotLocatedError(f"{config_path()} is not a config file: {exc}") from None
    if not parser.has_section("default"):
        return {}
    return {k: v for k, v in parser["default"].items() if k in CONFIG_KEYS and v}


def save_defaults(values: dict[str, str | None]) -> Path:
    """Write the default deployment (keys with no value are removed); returns the path."""
    current = saved_defaults()
    current.update({k: v for k, v in values.items() if v})
    for key in [k for k, v in values.items() if v == ""]:
        current.pop(key, None)
    parser = configparser.ConfigParser()
    parser["default"] = current
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        parser.write(handle)
    return path


def is_loopback(endpoint_url: str | None) -> bool:
    """Whether the endpoint is a local cloud on this machine."""
    return bool(endpoint_url) and (urlparse(endpoint_url).hostname or "") in _LOOPBACK


@dataclass
class Locator:
    """Makes clients for one account/endpoint and finds the stack's resources in it."""

    endpoint_url: str | None = None
    region: str | None = None
    stack: str | None = None
    profile: str | None = None
    _outputs: dict[str, str] | None = field(default=None, repr=False)
    _session: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        saved = saved_defaults()
        self.endpoint_url = (
            self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or saved.get("endpoint_url")
        ) or None
        self.stack = (self.stack or os.environ.get(STACK_ENV) or saved.get("stack")) or None
        if not os.environ.get("AWS_PROFILE"):
            self.profile = self.profile or saved.get("profile")
        if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
            self.region = self.region or saved.get("region")

    @property
    def located(self) -> bool:
        """Whether a deployment is named at all (a stack or an endpoint)."""
        return bool(self.stack or self.endpoint_url)

    def session(self) -> Any:
        """The boto3 session: the profile, the region; fake credentials for a local cloud."""
        if self._session is None:
            import boto3

            if is_loopback(self.endpoint_url):
                region = self.region or os.environ.get("AWS_REGION") or LOCAL_REGION
                self._session = boto3.session.Session(region_name=region, **FAKE_CREDENTIALS)
            else:
                self._session = boto3.session.Session(
                    profile_name=self.profile, region_name=self.region
                )
        return self._session

    def client(self, service: str) -> Any:
        """A boto3 client (standard retries) on this endpoint and region."""
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)
        kwargs: dict[str, Any] = {"config": config}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return self.session().client(service, **kwargs)

    def outputs(self) -> dict[str, str]:
        """The stack's outputs ({} without a stack)."""
        if self._outputs is None:
            self._outputs = {}
            if self.stack:
                cfn = self.client("cloudformation")
                try:
                    stacks = cfn.describe_stacks(StackName=self.stack)["Stacks"]
                except cfn.exceptions.ClientError as exc:
                    raise NotLocatedError(f"cannot read stack {self.stack!r}: {exc}") from None
                self._outputs = {
                    o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])
                }
        return self._outputs

    def _find(self, given: str | None, env: str, output: str, what: str, option: str) -> str:
        value = given or os.environ.get(env)
        if value:
            return value
        if self.stack:
            value = self.outputs().get(output)
            if value:
                return value
            raise NotLocatedError(f"stack {self.stack!r} has no output {output}; give {option}")
        raise NotLocatedError(
            f"say where the {what} is: {option}, {env}, --stack NAME (or {STACK_ENV}), "
            "--endpoint-url for a local cloud, or save a default with `upload-processor configure`"
        )

    def jobs_table(self, given: str | None = None) -> str:
        """The jobs table's name."""
        if not (given or os.environ.get(TABLE_ENV) or self.stack) and self.endpoint_url:
            name = f"{LOCAL_STACK}-JobsTable"
            ddb = self.client("dynamodb")
            try:
                ddb.describe_table(TableName=name)
            except ddb.exceptions.ResourceNotFoundException:
                raise NotLocatedError(
                    f"no table {name} at {self.endpoint_url}; give --table NAME"
                ) from None
            return name
        return self._find(given, TABLE_ENV, "JobsTableName", "jobs table", "--table NAME")

    def assets_table(self, given: str | None = None) -> str:
        """The catalog's table (AssetsTable)."""
        if not (given or os.environ.get(ASSETS_TABLE_ENV) or self.stack) and self.endpoint_url:
            return f"{LOCAL_STACK}-AssetsTable"
        return self._find(
            given, ASSETS_TABLE_ENV, "AssetsTableName", "assets table", "--assets-table NAME"
        )

    def _local_queue(self, logical: str) -> str:
        sqs = self.client("sqs")
        try:
            return sqs.get_queue_url(QueueName=f"{LOCAL_STACK}-{logical}")["QueueUrl"]
        except sqs.exceptions.ClientError:
            raise NotLocatedError(
                f"no queue {LOCAL_STACK}-{logical} at {self.endpoint_url}; give its URL"
            ) from None

    def ingest_queues(self, queue: str | None = None, dlq: str | None = None) -> tuple[str, str]:
        """(ingest queue URL, ingest dead-letter queue URL)."""
        local = not self.stack and self.endpoint_url
        if local and not (queue or os.environ.get(QUEUE_ENV)):
            queue = self._local_queue("IngestQueue")
        if local and not (dlq or os.environ.get(DLQ_ENV)):
            dlq = self._local_queue("IngestDeadLetterQueue")
        return (
            self._find(queue, QUEUE_ENV, "IngestQueueUrl", "ingest queue", "--queue-url URL"),
            self._find(dlq, DLQ_ENV, "IngestDeadLetterQueueUrl", "ingest DLQ", "--dlq-url URL"),
        )

    def topic_arn(self, given: str | None = None) -> str:
        """The notification topic's ARN (what users subscribe to)."""
        if not (given or self.stack) and self.endpoint_url:
            wanted = f":{LOCAL_STACK}-NotificationTopic"
            for page in self.client("sns").get_paginator("list_topics").paginate():
                for topic in page["Topics"]:
                    if topic["TopicArn"].endswith(wanted):
                        return str(topic["TopicArn"])
            raise NotLocatedError(f"no topic {wanted[1:]} at {self.endpoint_url}; give --topic-arn")
        return self._find(
            given,
            "UPLOAD_PROCESSOR_TOPIC_ARN",
            "NotificationTopicArn",
            "notification topic",
            "--topic-arn ARN",
        )

    def function_environment(self, logical: str) -> dict[str, str]:
        """A function's environment variables: what the pipeline itself is configured with."""
        if self.stack:
            cfn = self.client("cloudformation")
            try:
                name = cfn.describe_stack_resource(StackName=self.stack, LogicalResourceId=logical)[
                    "StackResourceDetail"
                ]["PhysicalResourceId"]
            except cfn.exceptions.ClientError as exc:
                raise NotLocatedError(
                    f"cannot read {logical} of stack {self.stack!r}: {exc}"
                ) from None
        elif self.endpoint_url:
            name = f"{LOCAL_STACK}-{logical}"
        else:
            raise NotLocatedError("no deployment named: --stack, --endpoint-url or `configure`")
        config = self.client("lambda").get_function_configuration(FunctionName=name)
        return dict(config.get("Environment", {}).get("Variables", {}))
