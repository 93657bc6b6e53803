"""Local mode, the embedded default: the whole cloud flow on one machine, on moto.

`LocalCloud` deploys template.yaml into moto (read through the SAM translator), runs our
handlers in-process and executes the real ASL with moto's Step Functions interpreter.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from upload_processor.domain.upload_job import JOB_FILENAME
from upload_processor.errors import LocalModeError
from upload_processor_tools.local.cloud import (
    SFN_CONFIG,
    DeployedResources,
    Deployer,
    Deployment,
    project_root,
)
from upload_processor_tools.local.seam import RUNNER, fake_credentials, install_seam

__all__ = ["LocalCloud"]

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class LocalCloud(DeployedResources):
    """A context manager: moto started, the template deployed, handlers wired in-process."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        log_level: str | None = "WARNING",
        parameter_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.root = root or project_root()
        self.log_level = log_level
        self.parameter_overrides = parameter_overrides
        self.deployment: Deployment | None = None
        self._mock: Any = None

    def __enter__(self) -> LocalCloud:
        import boto3
        from moto import mock_aws

        fake_credentials()
        install_seam()
        RUNNER.env_overrides = {"LOG_LEVEL": self.log_level} if self.log_level else {}
        self._mock = mock_aws(config=SFN_CONFIG)
        self._mock.start()
        self.session = boto3.session.Session()
        self.deployment = Deployer(self.session, self.root).deploy(self.parameter_overrides)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wait_idle()
        if self._mock is not None:
            self._mock.stop()
        for fn in self.deployment.functions.values() if self.deployment else []:
            RUNNER.functions.pop(fn.name, None)

    # -- what was deployed ---------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client on the local cloud."""
        return self.session.client(service, region_name="us-east-1")

    def _d(self) -> Deployment:
        if self.deployment is None:
            raise LocalModeError("the local cloud is not running")
        return self.deployment

    @property
    def registry(self) -> Any:
        """A RegistryStore on the local registry table (register instruments, subjects, ...)."""
        from upload_processor.adapters.registry import RegistryStore

        return RegistryStore(self.client("dynamodb"), self.registry_table)

    # -- driving it -------------------------------------------------------------------------
    def upload_session(self, folder: Path, prefix: str) -> list[str]:
        """Upload a session folder as a user would: every file, upload_job.json last."""
        s3 = self.client("s3")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == JOB_FILENAME)
        keys = []
        for path in files:
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            s3.upload_file(str(path), self.staging_bucket, key)
            keys.append(key)
        return keys

    def subscribe_queue(self, name: str, filter_policy: dict[str, Any] | None = None) -> str:
        """An SQS queue subscribed to the topic (optionally filtered); returns its URL."""
        sqs, sns = self.client("sqs"), self.client("sns")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
        return url

    def event_queue(self, name: str, pattern: dict[str, Any]) -> str:
        """An SQS queue that an EventBridge rule (on the default bus, with `pattern`) targets,
        as a subscriber of the stack's events would set it up; returns its URL."""
        sqs, events = self.client("sqs"), self.client("events")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
        return url

    def events_received(self, queue_url: str) -> list[dict[str, Any]]:
        """Every EventBridge event delivered to an `event_queue` so far."""
        return self.messages(queue_url)

    def messages(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message delivered to a queue so far, parsed, and taken off the queue (SNS
        envelopes from a subscribed queue, events from an `event_queue`)."""
        sqs = self.client("sqs")
        out = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return out
            for message in batch:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def executions(self) -> list[dict[str, Any]]:
        """Every execution of the upload state machine."""
        sfn = self.client("stepfunctions")
        return sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def wait(self, execution_arn: str, timeout: float = 300) -> dict[str, Any]:
        """Block until an execution ends; returns describe_execution."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            out = sfn.describe_execution(executionArn=execution_arn)
            if out["status"] in TERMINAL:
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"execution {execution_arn} still {out['status']} after {timeout}s"
                )
            time.sleep(0.05)

    def wait_idle(self, timeout: float = 300) -> None:
        """Block until no execution is running (before the mock stops under them)."""
        if self.deployment is None or self._mock is None:
            return
        for execution in self.executions():
            if execution["status"] == "RUNNING":
                self.wait(execution["executionArn"], timeout)

    def job(self, job_id: str) -> dict[str, Any] | None:
        """The job record."""
        from upload_processor.adapters.jobs import JobStore

        return JobStore(self.client("dynamodb"), self.jobs_table).get(job_id)

    def publish_version(
        self, logical_id: str, code_version: str, *, move_alias: bool = True
    ) -> dict[str, Any]:
        """Publish another version of a template function carrying `code_version`, as a deploy
        of that code would (and point the alias live at it, unless move_alias is False).

        Local mode runs the project's current code for every version: this records what a
        deployment published, for version pinning (upload_processor.adapters.versions).
        """
        from upload_processor.adapters.versions import ALIAS, version_description

        fn = self._d().functions.get(logical_id)
        if fn is None:
            raise LocalModeError(f"no function {logical_id!r} in template.yaml")
        awslambda = self.client("lambda")
        # Lambda (and moto) publish a new version only when the function changed since the last
        awslambda.update_function_configuration(
            FunctionName=fn.name, Description=f"code {code_version}"
        )
        out = awslambda.publish_version(
            FunctionName=fn.name, Description=version_description(code_version)
        )
        if move_alias:
            awslambda.update_alias(FunctionName=fn.name, Name=ALIAS, FunctionVersion=out["Version"])
        return out

    def invoke(self, logical_id: str, event: dict[str, Any]) -> tuple[dict[str, Any] | str, bool]:
        """Invoke a template function by logical id through Lambda's API, as `sam local invoke`."""
        fn = self._d().functions.get(logical_id)
        if fn is None:
            raise LocalModeError(
                f"no function {logical_id!r} in template.yaml; functions: {', '.join(sorted(self._d().functions))}"
            )
        out = self.client("lambda").invoke(FunctionName=fn.name, Payload=json.dumps(event).encode())
        body = out["Payload"].read().decode()
        try:
            payload: dict[str, Any] | str = json.loads(body)
        except ValueError:
            payload = body
        return payload, "FunctionError" in out
