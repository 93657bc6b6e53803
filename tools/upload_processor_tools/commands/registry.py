"""`upload-processor registry`: register and read instruments, subjects, procedures and
projects (a project's funding and investigators, for the data_description the pipeline builds).

    upload-processor registry put instrument instrument_ecephys.json --registry https://.../v1
    upload-processor registry put subject subject.json --table my-stack-RegistryTable-XYZ
    upload-processor registry put project project.json --registry https://.../v1
    upload-processor registry get instrument 447-EPHYS-1 --versions --registry https://.../v1

`--registry URL` talks to the registry REST API (the stack's `RegistryApiUrl` output; requests
are SigV4-signed with your AWS credentials); `--table NAME` writes the registry table directly
(the stack's `RegistryTableName` output). Results are JSON on stdout. Problems are one clear
line on stderr: exit 1 when the registry refuses (invalid document, already registered, not
found), 2 for usage errors, 3 when the registry cannot be reached.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import typer

from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    DeploymentOptions,
    takes_deployment,
)

registry_app = typer.Typer(
    help="Register and read instruments, subjects, procedures and projects (funding and "
    "investigators) in the metadata registry.",
    no_args_is_help=True,
)

EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3


class Kind(StrEnum):
    """What the registry holds."""

    instrument = "instrument"
    subject = "subject"
    procedures = "procedures"
    project = "project"


KindArgument = typer.Argument(
    ..., metavar="KIND", help="instrument, subject, procedures or project."
)
RegistryOption = typer.Option(
    None,
    "--registry",
    metavar="URL",
    help="The registry REST API's URL (stack output RegistryApiUrl).",
)
TableOption = typer.Option(
    None,
    "--table",
    metavar="NAME",
    help="The registry table's name (stack output RegistryTableName).",
)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _target(registry: str | None, table: str | None, where: Any) -> tuple[str, str]:
    """("http", URL) or ("table", NAME): as given, else the deployment's (its RegistryApiUrl
    output, or a local cloud's registry table)."""
    if registry and table:
        _fail("give either --registry URL or --table NAME, not both", EXIT_USAGE)
    if registry or table:
        return ("http", registry) if registry else ("table", table)  # type: ignore[return-value]
    try:
        if where.stack:
            outputs = where.outputs()
            if outputs.get("RegistryApiUrl"):
                return "http", outputs["RegistryApiUrl"]
            if outputs.get("RegistryTableName"):
                return "table", outputs["RegistryTableName"]
        elif where.endpoint_url:
            from upload_processor_tools.commands.locate import LOCAL_STACK

            return "table", f"{LOCAL_STACK}-RegistryTable"
    except Exception as exc:
        _fail(str(exc), EXIT_UNAVAILABLE)
    _fail(
        "say where the registry is: --registry URL (stack output RegistryApiUrl), "
        "--table NAME (stack output RegistryTableName), --stack NAME or --endpoint-url URL",
        EXIT_USAGE,
    )


def _http(url: str) -> Any:
    from upload_processor.adapters.metadata_service import RegistryHttpService
    from upload_processor.errors import ConfigurationError

    try:
        return RegistryHttpService(url)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)


def _store(table: str, where: Any) -> Any:
    from upload_processor.adapters.registry import RegistryStore

    return RegistryStore(where.client("dynamodb"), table)


def _reply_json(reply: Any) -> Any:
    try:
        return json.loads(reply.body or b"null")
    except ValueError:
        return {"message": reply.body[:200].decode("utf-8", "replace")}


def _refused(reply: Any) -> NoReturn:
    data = _reply_json(reply)
    message = data.get("message") if isinstance(data, dict) else None
    message = message or f"HTTP {reply.status} from {reply.url}"
    if reply.status in (401, 403):
        message += (
            " (the registry API accepts only SigV4-signed requests from principals allowed "
            "execute-api:Invoke: check your AWS credentials)"
        )
    if reply.status >= 500:
        _fail(f"{message} (HTTP {reply.status} from {reply.url})", EXIT_UNAVAILABLE)
    _fail(message, EXIT_REFUSED)


def _validation_failed(message: str, errors: list[dict[str, Any]]) -> NoReturn:
    # The one-line message names the first few errors; print the rest below it.
    if len(errors) > 5:
        for error in errors:
            typer.echo(f"  {error.get('field')}: {error.get('msg')}", err=True)
    _fail(message, EXIT_REFUSED)


@registry_app.command("put")
@takes_deployment
def put(
    kind: Kind = KindArgument,
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, metavar="FILE", help="The JSON document."
    ),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="Overwrite this instrument version / record a new subject, procedures or project "
        "version.",
    ),
    registry: str | None = RegistryOption,
    table: str | None = TableOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Validate and register a document (aind-data-schema 2.9.2).

    A project document is {"project_name": ..., "funding_source": [Funding, ...],
    "investigators": [Person, ...]}.
    """
    located = deployment.locate()
    where, target = _target(registry, table, located)
    try:
        document = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}", EXIT_USAGE)
    except ValueError as exc:
        _fail(f"{file} is not valid JSON: {exc}", EXIT_REFUSED)
    from upload_processor.adapters.registry import kind_spec
    from upload_processor.errors import (
        MetadataServiceError,
        RegistryConflictError,
        RegistryValidationError,
    )

    if where == "table":
        try:
            result = _store(target, located).put(kind.value, document, replace=replace)
        except RegistryValidationError as exc:
            _validation_failed(f"{file}: {exc}", exc.errors)
        except RegistryConflictError as exc:
            _fail(str(exc), EXIT_REFUSED)
        except Exception as exc:  # boto3: no table, no credentials, throttled, ...
            _fail(f"cannot write to registry table {target}: {exc}", EXIT_UNAVAILABLE)
        _print(result.to_dict())
        return
    service = _http(target)
    url = service.url(kind_spec(kind.value).plural) + ("?replace=true" if replace else "")
    try:
        reply = service.request("POST", url, json.dumps(document).encode())
    except MetadataServiceError as exc:
        _fail(str(exc), EXIT_UNAVAILABLE)
    data = _reply_json(reply)
    if reply.status == 400 and isinstance(data, dict):
        _validation_failed(f"{file}: {data.get('message')}", data.get("errors") or [])
    if reply.status not in (200, 201):
        _refused(reply)
    _print(data)


@registry_app.command("get")
@takes_deployment
def get(
    kind: Kind = KindArgument,
    record_id: str = typer.Argument(
        ...,
        metavar="ID",
        help="instrument_id, the subject_id for subjects and procedures, or the project_name.",
    ),
    versions: bool = typer.Option(False, "--versions", help="List every version instead."),
    registry: str | None = RegistryOption,
    table: str | None = TableOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Print the latest registered document (for instruments: the latest modification_date)."""
    located = deployment.locate()
    where, target = _target(registry, table, located)
    from upload_processor.adapters.registry import kind_spec
    from upload_processor.errors import MetadataServiceError

    spec = kind_spec(kind.value)
    not_found = (
        f"{kind.value} {record_id!r} is not registered "
        f"(register it with `upload-processor registry put {kind.value} FILE`)"
    )
    if where == "table":
        store = _store(target, located)
        try:
            if versions:
                found: Any = store.versions(kind.value, record_id)
                data: Any = {"kind": kind.value, "id": record_id, "versions": found}
            else:
                found = store.get_latest(kind.value, record_id)
                data = found.document if found else None
        except Exception as exc:  # boto3: no table, no credentials, throttled, ...
            _fail(f"cannot read registry table {target}: {exc}", EXIT_UNAVAILABLE)
        if not found:
            _fail(not_found, EXIT_REFUSED)
        _print(data)
        return
    service = _http(target)
    parts = [spec.plural, record_id] + (["versions"] if versions else [])
    try:
        reply = service.get(service.url(*parts))
    except MetadataServiceError as exc:
        _fail(str(exc), EXIT_UNAVAILABLE)
    if reply.status == 404:
        data = _reply_json(reply)
        _fail(data.get("message") if isinstance(data, dict) else not_found, EXIT_REFUSED)
    if reply.status != 200:
        _refused(reply)
    _print(_reply_json(reply))
