"""Where a deployed (or local) stack's resources are, for the operator commands.

Every name is looked up in this order, the first that answers wins:

1. the command's option (`--table`, `--queue-url`, `--dlq-url`), or its environment variable
   (`UPLOAD_PROCESSOR_JOBS_TABLE`, `UPLOAD_PROCESSOR_INGEST_QUEUE_URL`,
   `UPLOAD_PROCESSOR_INGEST_DLQ_URL`);
2. the outputs of the CloudFormation stack named by `--stack` / `UPLOAD_PROCESSOR_STACK`
   (`JobsTableName`, `IngestQueueUrl`, `IngestDeadLetterQueueUrl`);
3. with an endpoint URL (`--endpoint-url` or `AWS_ENDPOINT_URL`, i.e. a local cloud such as
   `upload-processor local serve`) and no stack: local mode's names (stack `upload-local`:
   table `upload-local-JobsTable`, queues `upload-local-IngestQueue` and
   `upload-local-IngestDeadLetterQueue`), checked to exist.

Nothing else is needed: a job record holds its execution ARN (hence the state machine),
its staging bucket and report key, and its archive bucket.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from upload_processor.errors import NotLocatedError

STACK_ENV = "UPLOAD_PROCESSOR_STACK"
TABLE_ENV = "UPLOAD_PROCESSOR_JOBS_TABLE"
QUEUE_ENV = "UPLOAD_PROCESSOR_INGEST_QUEUE_URL"
DLQ_ENV = "UPLOAD_PROCESSOR_INGEST_DLQ_URL"
LOCAL_STACK = "upload-local"  # local mode's stack name (local/cloud.py STACK_NAME)


@dataclass
class Locator:
    """Makes clients for one account/endpoint and finds the stack's resources in it."""

    endpoint_url: str | None = None
    region: str | None = None
    stack: str | None = None
    _outputs: dict[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.endpoint_url = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.stack = self.stack or os.environ.get(STACK_ENV) or None

    def client(self, service: str) -> Any:
        """A boto3 client (standard retries) on this endpoint and region."""
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)
        kwargs: dict[str, Any] = {"config": config}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.region:
            kwargs["region_name"] = self.region
        return boto3.client(service, **kwargs)  # type: ignore[call-overload]

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
            "or --endpoint-url for a local cloud"
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
