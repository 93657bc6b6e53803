"""`upload-processor register JOB`: redo a COMPLETE job's missing or FAILED registration steps.

    upload-processor register 750101_2025-06-12_15-03-00     # after Code Ocean was down

Runs, on this machine and against the deployment (`--stack`, `--endpoint-url`, ... as for
every command), the same step code as the state machine's registration states (catalog,
codeocean, pipelines, announce: upload_processor.operations.register), with the settings of
the deployment's RegisterFunction (its environment: the Code Ocean domain and token secret,
the catalog) and the caller's AWS credentials. Steps already OK or SKIPPED are left alone;
nothing is made twice. Exit 0 when no step is FAILED after it, 1 when one still is (or the job
is not found or not COMPLETE), 2 usage, 3 AWS or a service could not answer.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    EXIT_NOT_FOUND,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    DeploymentOptions,
    JsonOption,
    TableOption,
    aws_failure,
    fail,
    job_store,
    print_json,
    resolve_job_ref,
    takes_deployment,
)

REGISTER_FUNCTION = "RegisterFunction"  # template.yaml: its environment holds the settings


@takes_deployment
def register(
    job: str = typer.Argument(
        ...,
        metavar="JOB",
        help="A job id (or a unique prefix of it or of its hash), or an asset name (its newest job).",
    ),
    register_function: str | None = typer.Option(
        None,
        "--register-function",
        envvar="UPLOAD_PROCESSOR_REGISTER_FUNCTION",
        help="RegisterFunction's name, whose settings the steps run with (default: located).",
    ),
    as_json: bool = JsonOption,
    table: str | None = TableOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Redo the registration steps (catalog, Code Ocean, pipelines, announce) a COMPLETE job is
    missing or FAILED; idempotent."""
    from upload_processor.errors import ConfigurationError, JobNotFoundError, OperationRefusedError
    from upload_processor.operations import register as operation
    from upload_processor.settings import Settings

    where = deployment.locate()
    store = job_store(where, table)
    ref = resolve_job_ref(store, where.client("dynamodb"), job)
    try:
        settings = Settings.from_env(_environment(where, register_function))
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        aws_failure(exc, f"read {REGISTER_FUNCTION}'s settings")
    try:
        result = operation.redo(
            store, where.client("stepfunctions"), ref, settings=settings, client=where.client
        )
    except (JobNotFoundError, OperationRefusedError) as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except Exception as exc:
        aws_failure(exc, f"register job {job}")
    if as_json:
        print_json(result)
    else:
        _render(result)
    if any(r["status"] == "ERROR" for r in result["ran"]):
        raise typer.Exit(EXIT_UNAVAILABLE)
    if result["registration"].startswith("FAILED"):
        raise typer.Exit(EXIT_NOT_FOUND)


def _environment(where: Any, name: str | None) -> dict[str, str]:
    """RegisterFunction's environment: the named function's, else the located stack's."""
    if not name:
        return dict(where.function_environment(REGISTER_FUNCTION))
    config = where.client("lambda").get_function_configuration(FunctionName=name)
    return dict(config.get("Environment", {}).get("Variables", {}))


def _render(result: dict[str, Any]) -> None:
    console = Console()
    ran = {r["step"]: r for r in result["ran"]}
    table = Table(title=f"registration of {result['asset_name']} (job {result['job_id']})")
    for column in ("step", "now", "outcome", "details"):
        table.add_column(column)
    for step, outcome in result["steps"].items():
        done = ran.get(step)
        now = "redone" if done else "kept"
        line = outcome["status"] + (f" ({outcome['reason']})" if outcome.get("reason") else "")
        details = ", ".join(f"{k}={v}" for k, v in (outcome.get("details") or {}).items())
        table.add_row(step, now, line, details)
    for step, done in ran.items():
        if done["status"] == "ERROR":
            table.add_row(step, "error", done["reason"], "run `register` again later")
    console.print(table)
    if not result["ran"]:
        console.print("nothing to redo: every step is OK or SKIPPED")
    console.print(f"registration: {result['registration']}")
