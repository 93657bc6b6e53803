"""`upload-processor assets`: find archived assets in the deployment's catalog.

    upload-processor assets search --subject 750101 --modality ecephys --since 2025-06-01
    upload-processor assets search --project "Example Foraging Project" --until 2025-06-30
    upload-processor assets search --data-level raw --json
    upload-processor assets show 750101_2025-06-12_15-03-00

Every search is a Query on one of the catalog's indexes (subject, modality, project, data
level, or acquisition time alone), newest acquisition first; `--since`/`--until` take a date
(a whole day) or an ISO time, compared with the acquisition time in UTC.

Where the catalog is: `--assets-table NAME` or UPLOAD_PROCESSOR_ASSETS_TABLE; else the
`AssetsTableName` output of `--stack NAME`; else, with `--endpoint-url URL` (a local cloud),
local mode's `upload-local-AssetsTable`. Exit 1: no such asset; 2: usage (a bad date);
3: AWS cannot be reached or refuses.
"""

from __future__ import annotations

from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from upload_processor_tools.commands.common import (
    DEPLOYMENT,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    DeploymentOptions,
    JsonOption,
    aws_failure,
    fail,
    human_size,
    print_json,
    takes_deployment,
)

assets_app = typer.Typer(help="Find archived assets (the catalog).", no_args_is_help=True)

AssetsTableOption = typer.Option(
    None,
    "--assets-table",
    metavar="NAME",
    envvar="UPLOAD_PROCESSOR_ASSETS_TABLE",
    help="The catalog table (stack output AssetsTableName).",
)


def _store(deployment: DeploymentOptions, table: str | None) -> Any:
    from upload_processor.adapters.catalog import CatalogStore
    from upload_processor.errors import ConfigurationError

    where = deployment.locate()
    try:
        name = where.assets_table(table)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    return CatalogStore(where.client("dynamodb"), name)


def render_search(console: Console, page: dict[str, Any]) -> None:
    """The matching assets as a table (names never cut: they are what a user copies)."""
    items = page["items"]
    if not items:
        console.print("no assets match")
        return
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("Asset", no_wrap=True)
    table.add_column("Subject", no_wrap=True)
    table.add_column("Modalities")
    table.add_column("Acquired (UTC)", no_wrap=True)
    table.add_column("Level", no_wrap=True)
    table.add_column("Project", overflow="fold")
    table.add_column("Size", justify="right", no_wrap=True)
    for e in items:
        table.add_row(
            e["asset_name"],
            e["subject_id"],
            ", ".join(e["modalities"]),
            e["acquired_at"].replace("T", " ").rstrip("Z")[:16],
            e["data_level"],
            escape(e.get("project_name") or "-"),
            human_size(e.get("bytes_in")),
        )
    console.print(table)
    console.print(f"{len(items)} asset(s)")


def render_record(console: Console, record: dict[str, Any]) -> None:
    """One asset's record, one field a line (URIs whole)."""
    width = max(map(len, record))
    for key, value in record.items():
        text = ", ".join(value) if isinstance(value, list) else str(value)
        console.print(f"[bold]{key:<{width}}[/] {escape(text)}", soft_wrap=True)


@assets_app.command("search")
@takes_deployment
def search(
    subject: str | None = typer.Option(None, "--subject", help="The subject id, exactly."),
    project: str | None = typer.Option(None, "--project", help="The project name, exactly."),
    modality: str | None = typer.Option(
        None, "--modality", help="A modality's abbreviation (ecephys, behavior, ...)."
    ),
    data_level: str | None = typer.Option(None, "--data-level", help="raw, derived, ..."),
    since: str | None = typer.Option(
        None, "--since", help="Acquired on or after: 2025-06-01 or 2025-06-01T12:00:00-07:00."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Acquired on or before (a date: that whole day)."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="At most this many."),
    as_json: bool = JsonOption,
    table: str | None = AssetsTableOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """Search the catalog: every condition given must hold; newest acquisition first."""
    from upload_processor.errors import InvalidQueryError
    from upload_processor.operations.catalog import search_assets

    store = _store(deployment, table)
    try:
        page = search_assets(
            store,
            subject=subject,
            project=project,
            modality=modality,
            data_level=data_level,
            since=since,
            until=until,
            limit=limit,
        )
    except InvalidQueryError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        aws_failure(exc, "search the catalog")
    if as_json:
        print_json(page)
    else:
        render_search(Console(soft_wrap=False, highlight=False), page)


@assets_app.command("show")
@takes_deployment
def show(
    name: str = typer.Argument(..., help="The asset's name."),
    as_json: bool = JsonOption,
    table: str | None = AssetsTableOption,
    deployment: DeploymentOptions = DEPLOYMENT,
) -> None:
    """One asset's catalog record: its key fields and where its metadata.nd.json is."""
    from upload_processor.operations.catalog import asset_record

    store = _store(deployment, table)
    try:
        record = asset_record(store, name)
    except Exception as exc:
        aws_failure(exc, f"read asset {name!r} from the catalog")
    if record is None:
        fail(f"no asset {name!r} in the catalog", EXIT_NOT_FOUND)
    if as_json:
        print_json(record)
    else:
        render_record(Console(soft_wrap=False, highlight=False), record)
