"""Strict JSON reading: a repeated key or a NaN/Infinity is an error, named by its field.

Python's `json.loads` keeps the last of two equal keys (`{"s3_bucket": "private", ...,
"s3_bucket": "open"}` silently publishes) and accepts `NaN` and `Infinity`, which are not
JSON: Step Functions refuses an execution input holding them, after the job was accepted.
The parser's hooks see each object without its place in the document, so they only mark
what they find (a duplicate by the object's identity, a constant by a sentinel value); one
iterative walk afterwards turns the marks into field paths (every marked object is in the
returned tree, so its identity stays unique while the walk runs).
"""

from __future__ import annotations

import json
from typing import Any

from upload_processor.errors import StrictJsonError


class _NonFinite:
    """Stands in for a NaN/Infinity the parser met; never leaves this module."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


def loads_strict(text: str) -> Any:
    """Parse JSON text; raise StrictJsonError listing every repeated key and non-finite number.

    json.JSONDecodeError and RecursionError pass through, as from `json.loads`.
    """
    duplicates: dict[int, list[str]] = {}

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                duplicates.setdefault(id(obj), []).append(key)
            obj[key] = value
        return obj

    data = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_NonFinite)
    problems = _problems(data, duplicates)
    if problems:
        raise StrictJsonError(problems)
    return data


def _problems(data: Any, duplicates: dict[int, list[str]]) -> list[tuple[str, str, str]]:
    """Every mark in the parsed document, depth first, with its dotted field path."""
    found: list[tuple[str, str, str]] = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, _NonFinite):
            found.append(("not_finite", path, node.token))
            continue
        if isinstance(node, dict):
            for key in duplicates.get(id(node), []):
                found.append(("duplicate_key", f"{path}.{key}" if path else key, key))
            children = list(node.items())
        elif isinstance(node, list):
            children = [(str(i), v) for i, v in enumerate(node)]
        else:
            continue
        for name, child in reversed(children):
            stack.append((f"{path}.{name}" if path else name, child))
    return found
