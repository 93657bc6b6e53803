"""`upload-processor versions`: the published versions a job's tasks can pin.

    upload-processor versions                       # a table per pipeline function
    upload-processor versions --json                # JSON only on stdout
    upload-processor versions --endpoint-url http://127.0.0.1:5050   # a local cloud

Each deploy publishes the pipeline functions (GatherMetadata, Transfer, Finalize) with the
core package's version in the published version's description; a task's `image_version`
("v0.1.0" or "0.1.0") runs it on the newest published version carrying that code version,
and a task without one runs on the alias `live` (the latest deploy).

Where the functions are (the first that answers): `--gather-function/--transfer-function/
--finalize-function NAME` or UPLOAD_PROCESSOR_{GATHER,TRANSFER,FINALIZE}_FUNCTION; else the
resources of the stack `--stack NAME` (or UPLOAD_PROCESSOR_STACK); else, with `--endpoint-url`
or AWS_ENDPOINT_URL (a local cloud, e.g. `upload-processor local serve`), local mode's
functions. Exit 2 for usage errors (nowhere to look), 3 when AWS cannot be reached or refuses.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from upload_processor.adapters.versions import LOGICAL_IDS, ROLES, describe
from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    EXIT_USAGE,
    DeploymentOptions,
    JsonOption,
    aws_failure,
    fail,
    print_json,
    takes_deployment,
)

FUNCTION_NAME_ENV = {
    "gather": "UPLOAD_PROCESSOR_GATHER_FUNCTION",
    "transfer": "UPLOAD_PROCESSOR_TRANSFER_FUNCTION",
    "finalize": "UPLOAD_PROCESSOR_FINALIZE_FUNCTION",
    "registration": "UPLOAD_PROCESSOR_REGISTER_FUNCTION",
}


def locate_functions(where: Any, given: dict[str, str | None]) -> dict[str, str]:
    """{"gather", "transfer", "finalize": function name}: options/environment, else the
    stack's resources, else (an endpoint, no stack) local mode's functions."""
    from upload_processor.errors import NotLocatedError
    from upload_processor_tools.commands.locate import LOCAL_STACK, STACK_ENV

    names: dict[str, str] = {}
    for role in ROLES:
        value = given.get(role) or os.environ.get(FUNCTION_NAME_ENV[role])
        if value:
            names[role] = value
    missing = [role for role in ROLES if role not in names]
    if not missing:
        return names
    if where.stack:
        cfn = where.client("cloudformation")
        for role in missing:
            try:
                resource = cfn.describe_stack_resource(
                    StackName=where.stack, LogicalResourceId=LOGICAL_IDS[role]
                )["StackResourceDetail"]
            except cfn.exceptions.ClientError as exc:
                raise NotLocatedError(
                    f"cannot read {LOGICAL_IDS[role]} of stack {where.stack!r}: {exc}"
                ) from None
            names[role] = resource["PhysicalResourceId"]
        return names
    if where.endpoint_url:
        awslambda = where.client("lambda")
        for role in missing:
            name = f"{LOCAL_STACK}-{LOGICAL_IDS[role]}"
            try:
                awslambda.get_function(FunctionName=name)
            except awslambda.exceptions.ResourceNotFoundException:
                raise NotLocatedError(
                    f"no function {name} at {where.endpoint_url}; give --{role}-function NAME"
                ) from None
            names[role] = name
        return names
    options = ", ".join(f"--{role}-function" for role in missing)
    raise NotLocatedError(
        f"say where the pipeline functions are: {options} (or "
        f"{', '.join(FUNCTION_NAME_ENV[r] for r in missing)}), --stack NAME (or {STACK_ENV}), "
        "or --endpoint-url for a local cloud"
    )


def render(console: Console, functions: list[dict[str, Any]]) -> None:
    """One table: every published version of every pipeline function."""
    table = Table(header_style="bold")
    for column in ("Function", "Tasks", "Lambda version", "Code version", "Alias", "Published"):
        table.add_column(column, overflow="fold")
    for fn in functions:
        versions = fn["versions"] or [None]
        for i, version in enumerate(versions):
            first = i == 0
            table.add_row(
                fn["logical_id"] if first else "",
                ", ".join(fn["tasks"]) if first else "",
                version["version"] if version else "none published",
                (version["code_version"] or "-") if version else "-",
                fn["alias"]["name"] if version and version["live"] else "",
                (version["last_modified"] or "-")[:19].replace("T", " ") if version else "-",
                end_section=i == len(versions) - 1,
            )
    console.print(table)
    console.print(
        'Pin a task in upload_job.json with its code version, e.g. "tasks": '
        '{"gather_preliminary_metadata": {"image_version": "v<code version>"}}; a task '
        f"without image_version runs on the alias {functions[0]['alias']['name']} (the latest "
        "deploy).",
        soft_wrap=True,
        markup=False,
    )


@takes_deployment
def versions(
    as_json: bool = JsonOption,
    gather_function: str | None = typer.Option(
        None,
        "--gather-function",
        envvar=FUNCTION_NAME_ENV["gather"],
        help="GatherMetadataFunction's name (default: located).",
    ),
    transfer_function: str | None = typer.Option(
        None,
        "--transfer-function",
        envvar=FUNCTION_NAME_ENV["transfer"],
        help="TransferFunction's name (default: located).",
    ),
    finalize_function: str | None = typer.Option(
        None,
        "--finalize-function",
        envvar=FUNCTION_NAME_ENV["finalize"],
        help="FinalizeFunction's name (default: located).",
    ),
    registration_function: str | None = typer.Option(
        None,
        "--registration-function",
        envvar=FUNCTION_NAME_ENV["registration"],
        help="RegisterFunction's name (default: located).",
    ),
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """List the published versions of the pipeline functions and the code version each carries
    (what a task's image_version can pin)."""
    from upload_processor.errors import ConfigurationError

    where = deployment.locate()
    given = {
        "gather": gather_function,
        "transfer": transfer_function,
        "finalize": finalize_function,
        "registration": registration_function,
    }
    try:
        names = locate_functions(where, given)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        aws_failure(exc, "find the pipeline functions")
    try:
        functions = describe(where.client("lambda"), names)
    except Exception as exc:
        aws_failure(exc, "list the published versions")
    if as_json:
        print_json({"functions": functions})
    else:
        render(Console(soft_wrap=False, highlight=False), functions)
