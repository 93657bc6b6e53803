"""Strict JSON: a metadata file's bytes to one JSON object, or an issue saying what is wrong.

``json.loads`` is lenient where metadata must not be: it keeps the last of two equal keys
(one value silently lost) and reads ``NaN`` / ``Infinity`` (not JSON, and not storable in the
metadata database). The domain's ``loads_strict`` refuses both (the job file is read with it
too); this module words its refusals for a metadata file.

Rules: ``json.empty``, ``json.malformed``, ``json.duplicate_key``, ``json.not_object``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from upload_processor.domain.report import Issue
from upload_processor.domain.strict_json import loads_strict
from upload_processor.errors import StrictJsonError


def parse_file(name: str, raw: bytes, issues: list[Issue]) -> dict | None:
    """Bytes to a JSON object, or None with an error issue saying exactly what is wrong."""

    def error(rule: str, message: str) -> None:
        issues.append(Issue(severity="error", file=name, rule=rule, message=message))

    if not raw.strip():
        error(
            "json.empty",
            f"{name} is empty. Upload the complete file (a JSON object), or delete it if it "
            "was written by mistake.",
        )
        return None
    try:
        data = loads_strict(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        error(
            "json.malformed",
            f"{name} is not UTF-8 text (invalid byte at offset {exc.start}). Save it as UTF-8 "
            "JSON.",
        )
        return None
    except StrictJsonError as exc:
        kind, field, detail = exc.problems[0]
        where = f" (at {field})" if field and field != detail else ""
        if kind == "duplicate_key":
            error(
                "json.duplicate_key",
                f"{name} repeats the key '{detail}' inside one object{where}, so one of the "
                "values would be silently lost. Keep a single entry for that key.",
            )
        else:
            error(
                "json.malformed",
                f"{name} contains {detail}{where}, which is not valid JSON. Use a number or null.",
            )
        return None
    except RecursionError:
        error(
            "json.malformed",
            f"{name} nests arrays or objects too deeply to be metadata; check that it is the "
            "file you meant to upload.",
        )
        return None
    except json.JSONDecodeError as exc:
        error(
            "json.malformed",
            f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            "Fix the syntax (a JSON validator or `python -m json.tool` shows the spot).",
        )
        return None
    if not isinstance(data, dict):
        error(
            "json.not_object",
            f"{name} holds a JSON {json_kind(data)}, but a metadata file must be one JSON "
            "object ({...}) as aind-data-schema writes it.",
        )
        return None
    return data


def extra_object(label: str, value: Any, issues: list[Issue]) -> dict | None:
    """An ``extra`` entry as a private copy (the library mutates the dicts it validates)."""
    if not isinstance(value, dict):
        issues.append(
            Issue(
                severity="error",
                file=label,
                rule="json.not_object",
                message=(
                    f"{label} holds a JSON {json_kind(value)}, but metadata must be one JSON "
                    "object ({...}) as aind-data-schema writes it. Check the source it came from."
                ),
            )
        )
        return None
    return copy.deepcopy(value)


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words: array, string, boolean, null, number."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
