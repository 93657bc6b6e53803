"""The key fields the library's ``+`` requires equal, named leaf by leaf.

``Instrument.__add__`` refuses two instruments whose ``location``, ``global_coordinate_system``
or ``temperature_control`` differ, and ``Acquisition.__add__`` two acquisitions whose
``subject_id``, ``specimen_id`` or (both set) ``acquisition_type`` differ. Its message prints
every key field, equal or not, as the Python repr of the whole object (``object_type='Coordinate
system' name='BREGMA_ARI' ... axes=[Axis(...)]``): a scientist cannot see what to change. When
the library refuses, this module finds, for each key field that differs, the first differing
leaf (``global_coordinate_system.axes.1.direction``) and quotes only its two values.

Rule: ``merge.key_field_conflict``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from upload_processor.domain.report import Issue
from upload_processor.metadata.library_log import library_output
from upload_processor.metadata.wording import error, join, preview

# What the library's "+" compares, per core type (aind-data-schema 2.9.2).
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "instrument": ("location", "global_coordinate_system", "temperature_control"),
    "acquisition": ("subject_id", "specimen_id", "acquisition_type"),
}
# Compared only when both sides set it: the library keeps whichever is set.
_WHEN_BOTH_SET = frozenset({"acquisition_type"})

ABSENT = object()  # a key or list item one side lacks


def _dumped(model: BaseModel, name: str) -> Any:
    """A field's value as JSON data (models, enums and dates as they are written)."""
    with library_output():  # reading a deprecated field warns; nothing the user did
        return to_jsonable_python(getattr(model, name, None))


def first_difference(ours: Any, theirs: Any, path: str) -> tuple[str, Any, Any] | None:
    """The dotted path of the first leaf where two JSON values differ, and both leaves.

    Objects are walked key by key (in the first value's order, then keys only the second
    has), lists index by index; a key or item one side lacks is reported as absent.
    """
    if ours == theirs:
        return None
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in [*ours, *(k for k in theirs if k not in ours)]:
            found = first_difference(
                ours.get(key, ABSENT), theirs.get(key, ABSENT), f"{path}.{key}"
            )
            if found is not None:
                return found
        return None
    if isinstance(ours, list) and isinstance(theirs, list):
        for index in range(max(len(ours), len(theirs))):
            found = first_difference(
                ours[index] if index < len(ours) else ABSENT,
                theirs[index] if index < len(theirs) else ABSENT,
                f"{path}.{index}",
            )
            if found is not None:
                return found
        return None
    return path, ours, theirs


def shown(value: Any) -> str:
    """A leaf as a report quotes it: short JSON, or "absent"."""
    return "absent" if value is ABSENT else preview(value, limit=60)


def key_field_conflicts(
    core_type: str,
    merged: BaseModel,
    merged_labels: list[str],
    validated: dict[str, BaseModel],
    label: str,
) -> list[Issue]:
    """One ``merge.key_field_conflict`` per key field on which ``label`` differs from the
    files merged so far (empty: the library refused for another reason).

    The other file named is the first merged one holding the merged value (for instruments
    and acquisitions the merged key fields are those of the files merged so far).
    """
    issues: list[Issue] = []
    other = validated[label]
    for name in KEY_FIELDS.get(core_type, ()):
        theirs, ours = _dumped(merged, name), _dumped(other, name)
        if name in _WHEN_BOTH_SET and (theirs is None or ours is None):
            continue
        found = first_difference(ours, theirs, name)
        if found is None:
            continue
        path, here, there = found
        reference = next(
            (m for m in merged_labels if _dumped(validated[m], name) == theirs), merged_labels[0]
        )
        issues.append(
            error(
                "merge.key_field_conflict",
                label,
                path,
                f"{label} and {reference} disagree on {path}: {shown(here)} here, "
                f"{shown(there)} in {reference}. {name} must be the same in every "
                f"{core_type} file of a session ({core_type} files merge only when their "
                f"{join(KEY_FIELDS[core_type])} agree): correct the file that is wrong, or "
                f"upload a single {core_type}.json.",
            )
        )
    return issues
