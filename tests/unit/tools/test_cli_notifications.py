"""`upload-processor notifications subscribe`: an email subscription with the filter policy that
delivers a user only their own alerts (or an operator every fail)."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws
from typer.testing import CliRunner

from upload_processor_tools.cli import app


@mock_aws
def test_subscribe_sets_a_filter_policy_on_the_users_email_and_events() -> None:
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="alerts")["TopicArn"]
    result = CliRunner().invoke(
        app,
        [
            "notifications",
            "subscribe",
            "scientist@example.org",
            "--events",
            "fail",
            "--events",
            "end",
            "--topic-arn",
            topic,
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["filter_policy"] == {
        "audience": ["user"],
        "user_email": ["scientist@example.org"],
        "event": ["end", "fail", "rejected"],
    }
    attrs = boto3.client("sns", region_name="us-east-1").get_subscription_attributes(
        SubscriptionArn=printed["subscription_arn"]
    )["Attributes"]
    assert json.loads(attrs["FilterPolicy"]) == printed["filter_policy"]
    assert attrs["Protocol"] == "email"


@mock_aws
def test_operator_subscription_and_usage_errors() -> None:
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="alerts")["TopicArn"]
    runner = CliRunner()
    result = runner.invoke(
        app, ["notifications", "subscribe", "ops@example.org", "--operator", "--topic-arn", topic]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["filter_policy"] == {"audience": ["operator"]}
    assert (
        runner.invoke(
            app, ["notifications", "subscribe", "not-an-email", "--topic-arn", topic]
        ).exit_code
        == 2
    )
    bad = runner.invoke(
        app, ["notifications", "subscribe", "a@b.org", "--events", "lunch", "--topic-arn", topic]
    )
    assert bad.exit_code == 2 and "lunch" in bad.stderr
