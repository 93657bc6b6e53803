"""How the metadata rules word their issues: the schema's name, short renderings, errors.

Every rule quotes offending values and lists file names the same way, so a scientist reading a
report sees one voice, whichever rule wrote the issue.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from upload_processor.domain.report import Issue

SCHEMA = "aind-data-schema 2.9.2"


def preview(value: Any, limit: int = 80) -> str:
    """A short, single-line rendering of an offending value."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def sentence(text: str) -> str:
    """End a message taken from the library with a full stop, so ours can follow it."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def join(items: Iterable[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def quoted(values: Iterable[str]) -> str:
    """Sorted values, each in single quotes, comma-separated; "none" for no value."""
    listed = sorted(values)
    return ", ".join(f"'{v}'" for v in listed) if listed else "none"


def error(rule: str, file: str | None, field: str | None, message: str) -> Issue:
    """An error issue: the session is invalid until the file named is corrected."""
    return Issue(severity="error", file=file, field=field, rule=rule, message=message)
