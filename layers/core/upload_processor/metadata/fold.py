"""Merging several sources of one core type with the library's own ``+`` (merge rule 1).

Files are folded in sorted name order (extra labels sort among them), never in the order
``files`` lists them, so the merged result does not depend on that order. Which file holds
which content does matter for the order of merged lists (components, data streams, notes),
not for their members nor for the merged ``instrument_id``: that is the sorted unique ids
joined with "_", because the library's pairwise join depends on merge order for three or more
files.

Rules: ``merge.key_field_conflict`` (rules.key_fields): the library's ``+`` refused two files
whose key fields differ; ``merge.failed``: it refused for another reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from upload_processor.domain.report import Issue
from upload_processor.metadata.library_log import library_crash, library_issues, library_output
from upload_processor.metadata.rules.devices import check_shared_devices
from upload_processor.metadata.rules.key_fields import key_field_conflicts
from upload_processor.metadata.rules.procedures import merge_procedures
from upload_processor.metadata.rules.time import named_time_zone


def merge_sources(
    core_type: str, validated: dict[str, BaseModel], staged: set[str], issues: list[Issue]
) -> Any:
    """The one model of a core type: its single source, or its sources merged (None: failed)."""
    if len(validated) == 1:
        return next(iter(validated.values()))
    if core_type == "instrument":
        return merge_instruments(validated, issues)
    if core_type == "acquisition":
        return merge_acquisitions(validated, issues)
    if core_type == "procedures":
        return merge_procedures(validated, staged, issues)
    if core_type == "quality_control":
        return fold(core_type, validated, issues)
    raise AssertionError(
        f"several {core_type} sources reached the merge"
    )  # select_sources prevents it


def fold(core_type: str, validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """Fold the sources with the library's ``+`` in sorted label order (merge rule 1).

    The library's merged lists (components, data streams, notes, ...) follow the fold order,
    so they follow the sorted file names, never the order in which ``files`` lists them.
    """
    order = sorted(validated)
    merged: Any = validated[order[0]]
    for done, label in enumerate(order[1:], start=1):
        sources = " + ".join(order[: done + 1])
        previous, merged = merged, None
        with (
            library_output() as said,
            library_crash(order[: done + 1], f"merging {sources}", issues),
        ):
            try:
                merged = previous + validated[label]
            except ValueError as exc:  # pydantic's ValidationError is a ValueError too
                conflicts = key_field_conflicts(core_type, previous, order[:done], validated, label)
                issues.extend(conflicts or [_merge_failed(core_type, order[:done], label, exc)])
        issues.extend(library_issues(said, None, f"while merging {sources}"))
        if merged is None:
            return None
    return merged


def combined_id(ids: Iterable[str | None]) -> str | None:
    """The merged ``instrument_id``: the sorted unique ids joined with "_" (order-independent)."""
    unique = sorted({i for i in ids if i})
    return "_".join(unique) if unique else None


def _merge_failed(core_type: str, merged: list[str], name: str, exc: Exception) -> Issue:
    """The library's ``+`` refused: both sides named, and the field when it says one."""
    field = None
    if isinstance(exc, ValidationError):
        locs = [".".join(map(str, e["loc"])) for e in exc.errors(include_url=False)]
        field = next((loc for loc in locs if loc), None)
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or core_type}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
    else:
        detail = " ".join(str(exc).split())
        if "different schema versions" in detail:
            field = "schema_version"
    detail = detail.rstrip(".")
    return Issue(
        severity="error",
        file=name,
        field=field,
        rule="merge.failed",
        message=(
            f"Cannot merge {name} into {' + '.join(merged)}: {detail}. Make the {core_type} "
            "files agree on the fields named here, or upload a single "
            f"{core_type}.json."
        ),
    )


def merge_instruments(validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """Merge rule 3 first (the library only logs a shared device), then ``+``, then the id."""
    if not check_shared_devices(validated, issues):
        return None
    merged = fold("instrument", validated, issues)
    if merged is None:
        return None
    instrument_id = combined_id(getattr(m, "instrument_id", None) for m in validated.values())
    return merged.model_copy(update={"instrument_id": instrument_id})


def merge_acquisitions(validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """``+``, then the order-independent instrument_id and the named time zone put back."""
    merged = fold("acquisition", validated, issues)
    if merged is None:
        return None
    update: dict[str, Any] = {
        "instrument_id": combined_id(getattr(a, "instrument_id", None) for a in validated.values())
    }
    zone = named_time_zone(validated, issues)
    if zone is not None:
        update["acquisition_start_tz"] = zone
    return merged.model_copy(update=update)
