"""`upload-processor notifications tail`: every alert the deployment publishes, as it is published.

    upload-processor notifications tail                     # until Ctrl-C
    upload-processor notifications tail --user you@example.org --count 1 --timeout 300
    upload-processor notifications tail --json              # one JSON object per line

A private SQS queue is subscribed to the notification topic (filtered on `--user` when given),
read until Ctrl-C, `--count` alerts or `--timeout` seconds, then unsubscribed and deleted.
`local serve` shows the same feed on its terminal (AlertFeed below).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import typer

from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    EXIT_USAGE,
    DeploymentOptions,
    JsonOption,
    fail,
    takes_deployment,
    topic_arn_option,
)


class AlertFeed:
    """A temporary SQS queue subscribed to the notification topic: `with AlertFeed(...) as f`."""

    def __init__(self, client: Callable[[str], Any], topic_arn: str, user: str | None = None):
        self.sqs, self.sns = client("sqs"), client("sns")
        self.topic_arn = topic_arn
        self.user = user
        self.queue_url: str | None = None
        self.subscription_arn: str | None = None

    def __enter__(self) -> AlertFeed:
        name = f"upload-processor-tail-{uuid.uuid4().hex[:12]}"
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.topic_arn}},
                }
            ],
        }
        self.sqs.set_queue_attributes(
            QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)}
        )
        attributes = {"FilterPolicy": json.dumps({"user_email": [self.user]})} if self.user else {}
        self.subscription_arn = self.sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe and delete the queue (quietly: the process may be stopping)."""
        for action in (
            lambda: self.sns.unsubscribe(SubscriptionArn=self.subscription_arn),
            lambda: self.sqs.delete_queue(QueueUrl=self.queue_url),
        ):
            with contextlib.suppress(Exception):
                action()

    def alerts(self, wait: int = 1) -> Iterator[dict[str, Any]]:
        """The alerts delivered since the last call, oldest first, as `alert()` makes them."""
        batch = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", [])
        for message in batch:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            yield alert(json.loads(message["Body"]))


def alert(envelope: dict[str, Any]) -> dict[str, Any]:
    """An SNS envelope as a flat alert: event, subject, asset, user, message, time."""
    attributes = {k: v.get("Value") for k, v in envelope.get("MessageAttributes", {}).items()}
    return {
        "time": envelope.get("Timestamp"),
        "event": attributes.get("event"),
        "subject": envelope.get("Subject"),
        "asset_name": attributes.get("asset_name"),
        "user_email": attributes.get("user_email"),
        "message": envelope.get("Message", ""),
    }


def alert_text(item: dict[str, Any]) -> str:
    """One alert for a terminal: a header line, then the message's text (not its JSON)."""
    body = item["message"].split("\n--- details (JSON) ---")[0].rstrip()
    when = str(item.get("time") or "")[11:19]
    return f"── alert {when} {item['event']}: {item['subject']}\n{body}\n"


@takes_deployment
def tail(
    user: str | None = typer.Option(
        None, "--user", metavar="EMAIL", help="Only this user's alerts."
    ),
    count: int | None = typer.Option(
        None, "--count", min=1, metavar="N", help="Stop after N alerts."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0, metavar="SECONDS", help="Stop after this long (exit 1 if none)."
    ),
    topic_arn: str | None = topic_arn_option(
        "The notification topic (default: found from the deployment)."
    ),
    as_json: bool = JsonOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Print every alert the deployment publishes from now on (Ctrl-C stops)."""
    where = deployment.locate()
    try:
        topic = where.topic_arn(topic_arn)
    except Exception as exc:
        fail(str(exc), EXIT_USAGE)
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    with AlertFeed(where.client, topic, user) as feed:
        typer.echo(f"listening on {topic} (Ctrl-C stops)", err=True)
        try:
            while count is None or seen < count:
                if deadline is not None and time.monotonic() > deadline:
                    raise typer.Exit(0 if seen else 1)
                for item in feed.alerts():
                    seen += 1
                    typer.echo(json.dumps(item) if as_json else alert_text(item))
                    if count is not None and seen >= count:
                        break
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
