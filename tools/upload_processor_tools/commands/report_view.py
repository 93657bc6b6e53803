"""A validation report as a person reads it in a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from upload_processor.domain.report import Report

SESSION_WIDE = "(session)"  # the file column of an issue about the session as a whole


def print_report(console: Console, report: Report) -> None:
    """The verdict, then a table: severity, file (or "(session)"), field, message."""
    colour = "green" if report.status == "valid" else "red"
    name = report.asset_name or "session"
    console.print(
        f"[bold {colour}]{report.status.upper()}[/]: {name} — {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s)"
    )
    if report.merged_from.instrument or report.merged_from.acquisition:
        console.print(
            f"merged instrument from {', '.join(report.merged_from.instrument) or '-'}; "
            f"acquisition from {', '.join(report.merged_from.acquisition) or '-'}"
        )
    if not report.issues:
        return
    table = Table(show_lines=False)
    for column in ("severity", "file", "field", "message"):
        table.add_column(column, overflow="fold")
    table.columns[1].min_width = len(SESSION_WIDE)
    for issue in report.issues:
        style = "red" if issue.severity == "error" else "yellow"
        table.add_row(
            f"[{style}]{issue.severity}[/]",
            issue.file or SESSION_WIDE,
            issue.field or "-",
            f"{issue.message} [dim]({issue.rule})[/]",
        )
    console.print(table)
