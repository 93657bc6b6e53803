"""Merge rule 3: instruments share no device, except one identical Harp clock.

The library's ``Instrument.__add__`` only logs a device defined in both instruments; merged,
the asset would hold two devices of one name. The one device a rig shares on purpose is the
Harp clock generator that synchronises every instrument.

Rules: ``merge.shared_device``, ``merge.clock_mismatch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aind_data_schema.components.devices import Device, HarpDevice
from pydantic import BaseModel

from upload_processor.domain.report import Issue
from upload_processor.metadata.rules.key_fields import ABSENT, first_difference, shown
from upload_processor.metadata.wording import join


@dataclass(frozen=True)
class _Occurrence:
    """Where one device sits in one instrument source."""

    label: str
    path: str  # dotted, e.g. "components.3.camera"
    device: Any
    top_level: bool


def _is_device(value: BaseModel) -> bool:
    """A device or an assembly of devices (assemblies are not Device subclasses)."""
    if isinstance(value, Device):
        return True
    return type(value).__module__ == Device.__module__ and isinstance(
        getattr(value, "name", None), str
    )


def _is_clock(device: Any) -> bool:
    return isinstance(device, HarpDevice) and device.is_clock_generator is True


def devices_of(label: str, instrument: Any) -> list[_Occurrence]:
    """Every device of an instrument, nested ones included, with its dotted path."""
    found: list[_Occurrence] = []

    def visit(value: Any, path: str, top_level: bool) -> None:
        if isinstance(value, BaseModel):
            if _is_device(value):
                found.append(_Occurrence(label, path, value, top_level))
            for name, info in type(value).model_fields.items():
                if info.deprecated:  # reading it warns; its content lives in the new field
                    continue
                visit(getattr(value, name), f"{path}.{name}", False)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                visit(item, f"{path}.{index}", False)

    for index, component in enumerate(instrument.components):
        visit(component, f"components.{index}", True)
    return found


def check_shared_devices(validated: dict[str, BaseModel], issues: list[Issue]) -> bool:
    """No device name may be defined by two instruments, except one shared Harp clock.

    Devices are compared by name at any depth (assemblies included). The exception is a
    top-level ``HarpDevice`` with ``is_clock_generator=True``, once in every file that has it,
    and only one such clock: when the instruments share several, the first listed is the
    rig's clock and only the others are errors; its copies must be identical
    (``merge.clock_mismatch``). Any other shared name is ``merge.shared_device``, on the
    last file in name order, saying why the clock exception does not cover it. Returns
    whether the instruments may be merged.
    """
    where: dict[str, dict[str, list[_Occurrence]]] = {}
    for label in sorted(validated):
        for occurrence in devices_of(label, validated[label]):
            where.setdefault(occurrence.device.name, {}).setdefault(label, []).append(occurrence)
    shared = {name: per for name, per in where.items() if len(per) > 1}
    clocks = sorted(
        name
        for name, per in shared.items()
        if all(
            len(found) == 1 and found[0].top_level and _is_clock(found[0].device)
            for found in per.values()
        )
    )
    kept = _kept_clock(clocks, where)
    ok = True
    for name in sorted(shared):
        per = shared[name]
        if name == kept:
            if not check_same_clock(name, per, issues):
                ok = False
            continue
        ok = False
        if name in clocks:
            holder = sorted(where[str(kept)])[0]
            why = (
                f", and these instruments already share the clock generator '{kept}' (listed "
                f"first in {holder}); '{name}' is a second shared clock"
            )
        else:
            why = _why_not_a_shared_clock(per)
        issues.append(_shared_device_issue(name, per, why))
    return ok


def _kept_clock(clocks: list[str], where: dict[str, dict[str, list[_Occurrence]]]) -> str | None:
    """Of the shared clock generators, the one merge rule 3 allows: the first listed.

    Files are scanned in name order, each file's components in its order; the first shared
    clock met is the rig's synchronising clock, and only the others are blamed (a rig lists
    its clock first, and blaming every clock would send the scientist after the right one).
    """
    if not clocks:
        return None
    for label in sorted({label for name in clocks for label in where[name]}):
        listed = [
            (int(where[name][label][0].path.split(".")[1]), name)
            for name in clocks
            if label in where[name]
        ]
        if listed:
            return min(listed)[1]
    return None


def _why_not_a_shared_clock(per: dict[str, list[_Occurrence]]) -> str:
    """Why the one exception of merge rule 3 does not cover this device."""
    found = [(label, o) for label in sorted(per) for o in per[label]]
    for label, o in found:
        if not o.top_level:
            return f", and in {label} it sits inside another component ({o.path})"
    for label, o in found:
        if not isinstance(o.device, HarpDevice):
            return f", and in {label} it is a {type(o.device).__name__}, not a HarpDevice"
    for label, o in found:
        if not _is_clock(o.device):
            return f", and in {label} it is not a clock generator (is_clock_generator is false)"
    for label in sorted(per):
        if len(per[label]) > 1:
            return f", and {label} defines it {len(per[label])} times"
    return ""


def _shared_device_issue(name: str, per: dict[str, list[_Occurrence]], why: str) -> Issue:
    labels = sorted(per)
    blamed = labels[-1]
    order = [blamed, *labels[:-1]]
    locations = "; ".join(f"{label}: {', '.join(o.path for o in per[label])}" for label in order)
    return Issue(
        severity="error",
        file=blamed,
        field=per[blamed][0].path,
        rule="merge.shared_device",
        message=(
            f"{join(order)} {'both' if len(order) == 2 else 'all'} define device '{name}' "
            f"({locations}); only one Harp clock generator (a top-level HarpDevice with "
            f"is_clock_generator=true, identical in every file) may be shared{why}: rename the "
            "device or move it into one instrument."
        ),
    )


def check_same_clock(name: str, per: dict[str, list[_Occurrence]], issues: list[Issue]) -> bool:
    """The shared Harp clock is one physical device: every copy must be identical.

    Each file whose copy differs from the first file's (in name order) gets one
    ``merge.clock_mismatch`` error listing each differing field down to its first differing
    leaf (``manufacturer.name``), both values side by side.
    """
    labels = sorted(per)
    reference = labels[0]
    expected = per[reference][0].device.model_dump(mode="json")
    same = True
    for label in labels[1:]:
        occurrence = per[label][0]
        actual = occurrence.device.model_dump(mode="json")
        if actual == expected:
            continue
        same = False
        keys = sorted(
            k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k)
        )
        leaves = [  # each differing field down to its first differing leaf, both values
            first_difference(actual.get(key, ABSENT), expected.get(key, ABSENT), key)
            for key in keys
        ]
        diffs = "; ".join(
            f"{path} {shown(here)} here, {shown(there)} in {reference}"
            for path, here, there in filter(None, leaves)
        )
        issues.append(
            Issue(
                severity="error",
                file=label,
                field=f"{occurrence.path}.{leaves[0][0] if leaves[0] else keys[0]}",
                rule="merge.clock_mismatch",
                message=(
                    f"{label} and {reference} both define the Harp clock generator '{name}', "
                    f"but the copies differ ({diffs}). A shared clock is one physical device: "
                    "make its entries identical in every instrument file (or, if these are two "
                    "devices, give one of them another name)."
                ),
            )
        )
    return same
