"""Procedures from two sources: the staged file and the metadata service's, merged.

The library has no ``+`` for Procedures, so their lists are concatenated here (the staged file
first); a procedure in both would be recorded twice.

Rules: ``procedures.duplicate``; ``merge.failed`` when their coordinate systems differ or the
merged whole does not validate.
"""

from __future__ import annotations

import json
from typing import Any

from aind_data_schema.core.procedures import Procedures
from pydantic import BaseModel, ValidationError

from upload_processor.domain.report import Issue
from upload_processor.metadata.library_log import library_issues, library_output
from upload_processor.metadata.validate import validation_issues

_PROCEDURE_LISTS: tuple[str, ...] = ("subject_procedures", "specimen_procedures")


def merge_procedures(validated: dict[str, BaseModel], staged: set[str], issues: list[Issue]) -> Any:
    """The staged procedures file plus the metadata service's: lists concatenated.

    ``subject_procedures`` and ``specimen_procedures`` are concatenated (staged file first),
    ``notes`` joined by lines; ``global_coordinate_system`` must be the same where both give
    one. The result is validated again as Procedures; None when anything failed.
    """
    order = sorted(validated, key=lambda label: (label not in staged, label))
    base_label = order[0]
    with library_output():  # dumps of validated models; the merged one is validated below
        base = validated[base_label].model_dump(mode="json")
        others = [(label, validated[label].model_dump(mode="json")) for label in order[1:]]
    seen = {key: [_canonical(item) for item in base.get(key) or []] for key in _PROCEDURE_LISTS}
    ok = True
    for label, other in others:
        _append_new_procedures(base, seen, base_label, label, other, issues)
        base["notes"] = "\n".join(n for n in (base.get("notes"), other.get("notes")) if n) or None
        ok = _merge_coordinate_system(base, base_label, label, other, issues) and ok
    if not ok:
        return None
    base.pop("coordinate_system", None)  # deprecated; its content is in the new field
    with library_output() as said:
        try:
            merged = Procedures.model_validate(base)
        except ValidationError as exc:
            merged = None
            issues.extend(validation_issues(exc, base_label, "Procedures", rule="merge.failed"))
    issues.extend(library_issues(said, None, f"while merging {' + '.join(order)}"))
    return merged


def _append_new_procedures(
    base: dict,
    seen: dict[str, list[str]],
    base_label: str,
    label: str,
    other: dict,
    issues: list[Issue],
) -> None:
    """Append other's procedures to base; one already there is ``procedures.duplicate``.

    A procedure is the same when its JSON is, key order aside: it would be recorded twice.
    """
    for key in _PROCEDURE_LISTS:
        for item in other.get(key) or []:
            canonical = _canonical(item)
            if canonical in seen[key]:
                index = seen[key].index(canonical)
                issues.append(_duplicate_procedure(base_label, label, key, index, item))
                continue
            base.setdefault(key, []).append(item)
            seen[key].append(canonical)


def _merge_coordinate_system(
    base: dict, base_label: str, label: str, other: dict, issues: list[Issue]
) -> bool:
    """Take other's global_coordinate_system where base has none; two different: an error."""
    mine, theirs = base.get("global_coordinate_system"), other.get("global_coordinate_system")
    if mine is None:
        base["global_coordinate_system"] = theirs
        return True
    if theirs is None or theirs == mine:
        return True
    issues.append(
        Issue(
            severity="error",
            file=label,
            field="global_coordinate_system",
            rule="merge.failed",
            message=(
                f"Cannot merge {label} into {base_label}: their "
                "global_coordinate_system differ. Use the same coordinate system in "
                f"both, or leave it out of {base_label}."
            ),
        )
    )
    return False


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _duplicate_procedure(base: str, other: str, key: str, index: int, item: dict) -> Issue:
    kind = item.get("object_type") or "procedure"
    when = item.get("start_date")
    what = f"{kind} of {when}" if when else kind
    return Issue(
        severity="error",
        file=base,
        field=f"{key}.{index}",
        rule="procedures.duplicate",
        message=(
            f"{base} and {other} both hold the same {what} ({key}.{index} in {base}); the two "
            f"are merged, so it would be recorded twice. Remove it from {base}: {other} "
            "already provides it."
        ),
    )
