"""`upload-processor`: the command line (typer + rich)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import typer
from rich.console import Console

from upload_processor import __version__
from upload_processor_tools.commands import help_style
from upload_processor_tools.commands.assets import assets_app
from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    DeploymentOptions,
    fail,
    takes_deployment,
    topic_arn_option,
)
from upload_processor_tools.commands.configure import configure
from upload_processor_tools.commands.job_types import job_types_app
from upload_processor_tools.commands.operator import cancel, redrive, retry
from upload_processor_tools.commands.register import register
from upload_processor_tools.commands.registry import registry_app
from upload_processor_tools.commands.status import status
from upload_processor_tools.commands.submit import submit
from upload_processor_tools.commands.tail import tail as notifications_tail
from upload_processor_tools.commands.versions import versions
from upload_processor_tools.local.serve_cli import env as local_env
from upload_processor_tools.local.serve_cli import serve as local_serve

CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    help="Serverless upload processor for neuroscience data.",
    no_args_is_help=True,
    context_settings=CONTEXT,
)


help_style.apply()
local_app = typer.Typer(
    help="Run the whole cloud flow on this machine (moto, no Docker, no AWS).", no_args_is_help=True
)
notifications_app = typer.Typer(help="Subscribe to job alerts (SNS).", no_args_is_help=True)
schema_app = typer.Typer(help="JSON Schemas of the files users write.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(registry_app, name="registry")
app.add_typer(assets_app, name="assets")
app.add_typer(job_types_app, name="job-types")
app.add_typer(notifications_app, name="notifications")
app.add_typer(schema_app, name="schema")
app.command("submit")(submit)
app.command("status")(status)
app.command("retry")(retry)
app.command("cancel")(cancel)
app.command("redrive")(redrive)
app.command("register")(register)
app.command("versions")(versions)
app.command("configure")(configure)
local_app.command("serve")(local_serve)
local_app.command("env")(local_env)
notifications_app.command("tail")(notifications_tail)

err = Console(stderr=True, soft_wrap=True, highlight=False)


def _quiet_local() -> None:
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"upload-processor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Serverless upload processor for neuroscience data."""


@app.command(hidden=True)
def version() -> None:
    """Print the version of the core package (as `--version`)."""
    typer.echo(__version__)


@app.command()
@takes_deployment
def validate(
    directory: Path = typer.Argument(
        ..., metavar="DIR", help="The session folder, laid out as it will be staged."
    ),
    job: Path | None = typer.Option(
        None, "--job", metavar="FILE", help="The job file (default: DIR/upload_job.json)."
    ),
    registry: str | None = typer.Option(
        None,
        "--registry",
        metavar="SPEC",
        help="Metadata service: URL of the registry API, or aind:URL, or registry-table:NAME "
        "(default: the deployment's).",
    ),
    offline: bool = typer.Option(
        False,
        "--offline",
        help="No metadata service nor deployment: subject, procedures, instrument must be files.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report as JSON, and only it, on stdout."
    ),
    default_tz: str | None = typer.Option(
        None,
        "--default-tz",
        metavar="TZ",
        help="Time zone for a naive acq_datetime (default: the deployment's DefaultTimeZone).",
    ),
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Validate a session folder with the pipeline's own checks (its metadata service and job
    types when a deployment is named). Exit 0 valid, 1 invalid, 2 usage, 3 internal."""
    import logging

    from upload_processor_tools.commands.checks import validate_with_deployment

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    if offline and registry:
        fail("--offline and --registry exclude each other", 2)
    where = deployment.locate()
    report = validate_with_deployment(
        directory, where, job=job, registry=registry, offline=offline, default_tz=default_tz
    )
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        from upload_processor_tools.commands.report_view import print_report

        print_report(Console(), report)
    raise typer.Exit(0 if report.status == "valid" else 1)


@notifications_app.command("subscribe")
@takes_deployment
def notifications_subscribe(
    email: str = typer.Argument(
        ..., metavar="EMAIL", help="Where the alerts go (an email subscription)."
    ),
    events: list[str] | None = typer.Option(
        None,
        "--events",
        metavar="EVENT",
        help="Also these events (begin, end, retry); fail and rejected are always sent. "
        "Repeatable.",
    ),
    operator: bool = typer.Option(
        False,
        "--operator",
        help="An operator subscription: every fail, and jobs without a usable email.",
    ),
    topic_arn: str | None = topic_arn_option(
        "The stack's NotificationTopicArn output (default: found from the deployment)."
    ),
    protocol: str = typer.Option(
        "email",
        "--protocol",
        metavar="PROTOCOL",
        help="email (default), or sqs / https / lambda with an ENDPOINT instead of EMAIL's box.",
    ),
    endpoint: str | None = typer.Option(
        None, "--endpoint", metavar="ENDPOINT", help="The SQS queue ARN, URL, ... (not email)."
    ),
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Subscribe EMAIL to the alerts of their own jobs; prints the filter policy it set.

    Failures and rejections always reach the subscriber, whatever --events says."""
    from upload_processor.adapters.notify import subscription_filter, usable_email
    from upload_processor_tools.commands.common import EXIT_USAGE, print_json

    valid = {"begin", "end", "fail", "retry", "rejected"}
    unknown = sorted(set(events or []) - valid)
    if unknown:
        fail(f"unknown event(s) {', '.join(unknown)}; choose from {', '.join(sorted(valid))}", 2)
    if not usable_email(email):
        fail(f"{email!r} is not an email address", EXIT_USAGE)
    if protocol != "email" and not endpoint:
        fail(f"--protocol {protocol} needs --endpoint", EXIT_USAGE)
    where = deployment.locate()
    try:
        topic_arn = where.topic_arn(topic_arn)
    except Exception as exc:
        fail(str(exc), EXIT_USAGE)
    policy = subscription_filter(None if operator else email, list(events or []))
    out = where.client("sns").subscribe(
        TopicArn=topic_arn,
        Protocol=protocol,
        Endpoint=endpoint or email,
        Attributes={"FilterPolicy": json.dumps(policy)},
        ReturnSubscriptionArn=True,
    )
    print_json({"subscription_arn": out["SubscriptionArn"], "filter_policy": policy})
    if protocol == "email":
        err.print(f"AWS sends {email} a confirmation mail: alerts start once it is confirmed.")


@schema_app.command("upload-job")
def schema_upload_job(
    markdown: bool = typer.Option(
        False, "--markdown", help="The reference page (docs/upload_job.md)."
    ),
) -> None:
    """Print the JSON Schema of upload_job.json (generated from the model: it cannot drift)."""
    from upload_processor_tools import reference

    text = reference.markdown() if markdown else json.dumps(reference.schema(), indent=2) + "\n"
    sys.stdout.write(text)


@local_app.command("demo")
def local_demo(
    data_mb: float = typer.Option(
        4.0, metavar="MB", help="Synthetic data per modality of the valid session, in MB."
    ),
    workdir: Path | None = typer.Option(
        None, metavar="DIR", help="Where to build the sample sessions (default: a temp dir)."
    ),
) -> None:
    """Run a valid and an invalid session through the local cloud; exit 0 if both behave."""
    from upload_processor_tools.local.demo import run_demo

    _quiet_local()
    outcome = run_demo(Console(), data_mb=data_mb, workdir=workdir)
    raise typer.Exit(0 if outcome.ok else 1)


@local_app.command("invoke")
def local_invoke(
    function: str = typer.Argument(
        ...,
        metavar="FUNCTION",
        help="Logical id of a function in template.yaml, e.g. IngestFunction.",
    ),
    event: Path = typer.Option(
        ..., "--event", "-e", metavar="FILE", help="Event file, e.g. events/ingest_sqs.json."
    ),
    seed: bool = typer.Option(True, help="Stage the sample session the events/ files name first."),
) -> None:
    """What `sam local invoke` does, in-process against a fresh local cloud (no Docker)."""
    from upload_processor.errors import LocalModeError
    from upload_processor_tools.local import LocalCloud
    from upload_processor_tools.local.events import seed as seed_sample

    _quiet_local()
    try:
        payload = json.loads(event.read_text())
    except OSError as exc:
        err.print(f"cannot read event file {event}: {exc.strerror}")
        raise typer.Exit(2) from exc
    except ValueError as exc:
        err.print(f"event file {event} is not JSON: {exc}")
        raise typer.Exit(2) from exc
    with LocalCloud() as cloud:
        if seed:
            seed_sample(cloud)
        try:
            result, failed = cloud.invoke(function, payload)
        except LocalModeError as exc:
            err.print(str(exc))
            raise typer.Exit(2) from exc
        cloud.wait_idle()
    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    raise typer.Exit(1 if failed else 0)


@local_app.command("events")
def local_events(
    write: Path = typer.Option(
        Path("events"), metavar="DIR", help="Folder to (re)write the sample events into."
    ),
) -> None:
    """Regenerate events/*.json from the sample session."""
    from upload_processor_tools.local.events import write_events

    for path in write_events(write):
        typer.echo(str(path))


if __name__ == "__main__":  # pragma: no cover
    app()
