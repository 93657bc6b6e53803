"""The CLI's conventions (issue 14): one way to find the deployment, -h and --version, one help
style, short job ids, tables that fit 80 columns, no Python reprs, alerts that always arrive,
complete job types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner

from upload_processor.adapters.jobs import JobStore
from upload_processor.adapters.notify import subscription_filter
from upload_processor_tools.cli import app
from upload_processor_tools.commands import locate
from upload_processor_tools.commands.status import render_detail, render_list

HASHES = ["0123abcd" + "0" * 12, "0123abce" + "1" * 12, "89abcdef" + "2" * 12]
JOB_IDS = [f"rig-7-750101-2025-06-12-15-03-00-session-with-a-long-name-{h}" for h in HASHES]


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if command.hidden:
            continue
        yield (*path, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


def test_every_command_takes_dash_h_and_prints_one_help_style() -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    commands = list(_commands(root))  # type: ignore[arg-type]
    assert ("configure",) in commands and ("local", "env") in commands
    for command in [(), *commands]:
        result = runner.invoke(app, [*command, "-h"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (command, result.output)
        text = result.output
        assert "<bool>" not in text and "<str>" not in text, (command, text)
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "{" not in usage and "[[" not in usage, (command, usage)


def test_version_is_an_option() -> None:
    from upload_processor import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"upload-processor {__version__}"


def test_a_loopback_endpoint_needs_no_region_nor_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    where = locate.Locator(endpoint_url="http://127.0.0.1:5050")
    client = where.client("dynamodb")
    assert client.meta.region_name == "us-east-1"
    assert where.session().get_credentials().access_key == "testing"
    assert not locate.is_loopback("https://s3.us-west-2.amazonaws.com")


def test_local_env_prints_what_makes_the_aws_cli_work() -> None:
    result = CliRunner().invoke(app, ["local", "env", "--port", "5071"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:5071" in lines
    assert "export AWS_DEFAULT_REGION=us-east-1" in lines
    assert any(line.startswith("export AWS_ACCESS_KEY_ID=") for line in lines)


def test_configure_saves_the_default_deployment_every_command_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(locate.CONFIG_ENV)
    monkeypatch.delenv(locate.STACK_ENV, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(app, ["configure", "--stack", "upload-prod", "--region", "eu-west-1"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "upload-processor" / "config"
    assert "stack = upload-prod" in path.read_text()
    where = locate.Locator()
    assert (where.stack, where.located) == ("upload-prod", True)
    assert locate.Locator(stack="other").stack == "other"  # an option wins
    assert runner.invoke(app, ["configure", "--stack", ""]).exit_code == 0
    assert "stack" not in locate.saved_defaults() and locate.saved_defaults()["region"]


def test_a_filter_on_events_always_keeps_failures_and_rejections() -> None:
    for events in (["end"], ["begin", "end"], ["fail"], ["rejected", "retry"]):
        policy = subscription_filter("a@example.org", events)
        assert {"fail", "rejected"} <= set(policy["event"]), events
    assert "event" not in subscription_filter("a@example.org")  # no filter: everything


@pytest.fixture
def jobs(cloud: Any) -> str:
    """The local cloud's jobs table (template.yaml's), with three jobs sharing a long slug."""
    store = JobStore(cloud.client("dynamodb"), cloud.jobs_table)
    for n, job_id in enumerate(JOB_IDS):
        store.create(
            {
                "job_id": job_id,
                "status": "COMPLETE",
                "asset_name": f"750101_2025-06-1{n}_15-03-00",
                "user_email": "scientist-with-a-long-address@example.org",
                "job_type": "ecephys",
                "files": 7,
                "bytes_in": 123456789,
                "bytes_out": 98765432,
                "functions": {"gather": "live", "transfer": "3"},
            }
        )
    return str(cloud.jobs_table)


def test_short_ids_are_accepted_and_an_ambiguous_one_is_refused(jobs: str) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["status", "89abcd", "--table", jobs, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["job"]["job_id"] == JOB_IDS[2]
    by_prefix = runner.invoke(app, ["status", JOB_IDS[0][:-10], "--table", jobs, "--json"])
    assert json.loads(by_prefix.stdout)["job"]["job_id"] == JOB_IDS[0]
    slug = runner.invoke(app, ["status", JOB_IDS[0][:30], "--table", jobs, "--json"])
    assert slug.exit_code == 2 and "matches 3 jobs" in slug.stderr
    ambiguous = runner.invoke(app, ["status", "0123ab", "--table", jobs])
    assert ambiguous.exit_code == 2 and "0123abcd" in ambiguous.stderr


def test_tables_fit_80_columns_without_splitting_an_id(jobs: str) -> None:
    result = CliRunner().invoke(app, ["status", "--table", jobs], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    for n, job_id in enumerate(JOB_IDS):
        assert any(job_id.rsplit("-", 1)[1][:8] in line.split() for line in lines), job_id
        assert any(f"750101_2025-06-1{n}_15-03-00" in line.split() for line in lines)
    page = {"items": [{"job_id": JOB_IDS[0], "status": "COMPLETE"}], "next_token": None}
    console = Console(width=80, record=True)
    render_list(console, page)
    assert "0123abcd" in console.export_text()


def test_status_of_a_job_prints_structures_as_json_not_python(jobs: str) -> None:
    result = CliRunner().invoke(app, ["status", "89abcdef", "--table", jobs], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["functions"] in lines and ["gather", "live"] in lines and ["transfer", "3"] in lines
    assert "{'gather'" not in result.stdout
    assert "7 data files" in result.stdout and "123.5 MB" in result.stdout
    console = Console(width=80, record=True)
    render_detail(
        console,
        {
            "job": {"job_id": JOB_IDS[2], "status": "REJECTED"},
            "execution": {"status": "SUCCEEDED", "arn": "arn:aws:states:x"},
            "report": None,
        },
    )
    text = console.export_text()
    assert "rejected the upload" in text  # SUCCEEDED beside REJECTED is explained


def _put(args: list[str], tmp_path: Path, document: dict[str, Any]) -> Any:
    preset = tmp_path / "preset.json"
    preset.write_text(json.dumps(document))
    return CliRunner().invoke(app, ["job-types", "put", *args[:1], str(preset), *args[1:]])


def test_job_types_put_refuses_a_partial_preset_and_completes_one_based_on_another(
    tmp_path: Path,
) -> None:
    fast = {"tasks": {"modality_transformation_settings": {"job_settings": {"level": 1}}}}
    with mock_aws():
        refused = _put(["fast"], tmp_path, fast)
        assert refused.exit_code == 1 and "--based-on" in refused.stderr
        stored = _put(["fast", "--based-on", "default"], tmp_path, fast)
        assert stored.exit_code == 0, stored.output
        preset = json.loads(stored.stdout)
        assert preset["tasks"]["gather_preliminary_metadata"]  # from default
        assert preset["tasks"]["modality_transformation_settings"]["job_settings"] == {
            "codec": "zstd",
            "level": 1,
        }
        shown = CliRunner().invoke(app, ["job-types", "show", "fast"])
        assert json.loads(shown.stdout) == preset


def test_retry_refuses_what_the_failure_alert_calls_unsafe(jobs: str) -> None:
    store = JobStore(boto3.client("dynamodb", region_name="us-east-1"), jobs)
    store.create(
        {
            "job_id": "conflict-0123456789abcdef0123",
            "status": "FAILED",
            "error": "AssetExistsError: the archive already holds 750101_2025-06-12_15-03-00",
        }
    )
    runner = CliRunner()
    refused = runner.invoke(app, ["retry", "conflict-0123456789abcdef0123", "--table", jobs])
    assert refused.exit_code == 1
    assert "not until the conflict is resolved" in refused.stderr and "--force" in refused.stderr
    forced = runner.invoke(
        app, ["retry", "conflict-0123456789abcdef0123", "--force", "--table", jobs]
    )
    assert "has no execution to retry" in forced.stderr  # past the refusal, to the next check


def test_notifications_tail_prints_each_alert_as_it_is_published() -> None:
    import threading

    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]

        done = threading.Event()

        def publish() -> None:  # until tail has subscribed and printed one
            while not done.wait(1):
                sns.publish(
                    TopicArn=topic,
                    Subject="Upload rejected: 750101_2025-06-12_15-03-00 — 1 problem",
                    Message="Your upload was rejected.\n\n--- details (JSON) ---\n{}",
                    MessageAttributes={"event": {"DataType": "String", "StringValue": "rejected"}},
                )

        publisher = threading.Thread(target=publish)
        publisher.start()
        try:
            result = CliRunner().invoke(
                app,
                ["notifications", "tail", "--topic-arn", topic, "--count", "1", "--timeout", "30"],
            )
        finally:
            done.set()
            publisher.join()
        assert result.exit_code == 0, result.output
        assert "rejected: Upload rejected: 750101_2025-06-12_15-03-00" in result.stdout
        assert (
            "Your upload was rejected." in result.stdout and "details (JSON)" not in result.stdout
        )
        queues = boto3.client("sqs", region_name="us-east-1").list_queues().get("QueueUrls", [])
        assert not queues  # its queue is gone again


def test_cancel_says_whether_the_stopped_execution_has_ended() -> None:
    from upload_processor_tools.commands.operator import _ended

    class Sfn:
        def __init__(self, statuses: list[str]) -> None:
            self.statuses = statuses

        def describe_execution(self, executionArn: str) -> dict[str, str]:
            return {"status": self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]}

    result = {"execution_arn": "arn:x", "execution_status": "ABORTED"}
    assert _ended(Sfn(["RUNNING", "RUNNING", "ABORTED"]), result, wait=5)[0] == "ABORTED"
    assert _ended(Sfn(["RUNNING"]), result, wait=0.6) == ("RUNNING", None)  # not claimed
