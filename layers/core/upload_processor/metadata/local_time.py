"""Naive timestamps in metadata files, read in the deployment's default zone.

aind-data-schema reads a timestamp without a UTC offset in the local zone of the machine that
validates it (``datetime.astimezone()``): the same session would be valid on a laptop in
Seattle and invalid in a Lambda running in UTC. So before a file is validated, every naive
timestamp in it is given the deployment's DefaultTimeZone (``validate --default-tz``), and the
report says so; without a default zone such a file is an error that names the fields.

Rule: ``metadata.naive_datetime`` (a warning when the zone was applied, else an error).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from upload_processor.domain.report import Issue
from upload_processor.errors import ConfigurationError

_SHOWN = 3  # fields named in a message; the rest are counted


def _naive(value: str) -> datetime | None:
    """The value as a naive date and time, if it is one (a plain date is not)."""
    if len(value) < 16 or value[10] not in "T ":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is None else None


def _localize(value: Any, zone: ZoneInfo | None, path: str, found: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _localize(v, zone, f"{path}.{k}" if path else k, found) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_localize(v, zone, f"{path}.{i}", found) for i, v in enumerate(value)]
    parsed = _naive(value) if isinstance(value, str) else None
    if parsed is None:
        return value
    found.append(path)
    return parsed.replace(tzinfo=zone).isoformat() if zone is not None else value


def localize_naive(label: str, data: dict, default_tz: str | None, issues: list[Issue]) -> dict:
    """``data`` with every naive timestamp in ``default_tz``; one issue per file that had any."""
    try:
        zone = ZoneInfo(default_tz) if default_tz else None
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"the deployment's DEFAULT_TIME_ZONE {default_tz!r} is not a time zone"
        ) from exc
    found: list[str] = []
    localized = _localize(data, zone, "", found)
    if not found:
        return data
    fields = ", ".join(found[:_SHOWN]) + (
        f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
    )
    if zone is not None:
        message = (
            f"{label} gives {len(found)} time(s) without a UTC offset ({fields}); they were read "
            f"in the deployment's default time zone {default_tz}, never the validating "
            "machine's. Write the offsets to make the times unambiguous."
        )
        severity = "warning"
    else:
        message = (
            f"{label} gives {len(found)} time(s) without a UTC offset ({fields}) and no default "
            "time zone is set, so they would be read in whichever zone the validating machine "
            "is in. Write each time with its offset (e.g. 2025-06-12T15:03:00-07:00), or "
            "validate with the deployment's zone (`--default-tz ZONE`)."
        )
        severity = "error"
    issues.append(
        Issue(
            severity=severity,
            file=label,
            field=found[0],
            rule="metadata.naive_datetime",
            message=message,
        )
    )
    return localized
