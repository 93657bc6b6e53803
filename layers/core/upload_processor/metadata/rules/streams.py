"""Active devices shared by overlapping data streams, named with their files and streams.

When the library's ``+`` merges acquisitions, data streams that overlap in time (starts and
ends within 120 s) become one stream, and a device listed active in both is kept once; the
library only logs "Duplicate active devices were removed. Only DAQ devices should be shared",
with no file, stream or device (library_log drops that line). A DAQ device (a Harp clock
included) may record for several streams, so sharing it says nothing; any other device listed
by two overlapping streams is an ``acquisition.duplicate_active_device`` warning naming the
files, both streams and the device, for the scientist to check the streams' device lists.

Rule: ``acquisition.duplicate_active_device`` (warning).
"""

from __future__ import annotations

from itertools import combinations

from aind_data_schema.components.devices import DAQDevice
from aind_data_schema.core.acquisition import DataStream
from pydantic import BaseModel

from upload_processor.domain.report import Issue
from upload_processor.metadata.rules.devices import devices_of
from upload_processor.metadata.wording import quoted

# The window within which the library's Acquisition "+" merges two streams (overlap_s).
OVERLAP_S = 120


def check_shared_active_devices(
    sources: dict[str, dict[str, BaseModel]],
    models: dict[str, BaseModel],
    issues: list[Issue],
) -> None:
    """Warn, per pair of overlapping streams, about the non-DAQ devices both list active.

    The library's "+" merges overlapping streams of all the files, two of one file
    included, so every pair is checked once several acquisitions are merged.
    """
    acquisitions = sources.get("acquisition", {})
    if len(acquisitions) < 2 or "acquisition" not in models:
        return
    daq = _daq_names(models.get("instrument"))
    streams = [
        (label, index, stream)
        for label in sorted(acquisitions)
        for index, stream in enumerate(getattr(acquisitions[label], "data_streams", []))
        if isinstance(stream, DataStream)
    ]
    for (first, i, a), (second, j, b) in combinations(streams, 2):
        if not DataStream.overlapping(a, b, overlap_s=OVERLAP_S):
            continue
        shared = (set(a.active_devices) & set(b.active_devices)) - daq
        if not shared:
            continue
        issues.append(
            Issue(
                severity="warning",
                file=second,
                field=f"data_streams.{j}.active_devices",
                rule="acquisition.duplicate_active_device",
                message=(
                    f"{_where(second, j, first, i)} both list "
                    f"{quoted(shared)} among active_devices, and the streams overlap in time, "
                    "so the merged acquisition records them as one stream that lists "
                    f"{'it' if len(shared) == 1 else 'them'} once. Only a DAQ device (a Harp "
                    "board, the shared clock) should be active in both: check that each stream "
                    "lists the devices that recorded it."
                ),
            )
        )


def _where(second: str, j: int, first: str, i: int) -> str:
    if first == second:
        return f"{second} (data_streams.{i} and data_streams.{j})"
    return f"{second} (data_streams.{j}) and {first} (data_streams.{i})"


def _daq_names(instrument: BaseModel | None) -> set[str]:
    """The names of the instrument's DAQ devices (Harp boards included), at any depth."""
    if instrument is None:
        return set()
    return {o.device.name for o in devices_of("", instrument) if isinstance(o.device, DAQDevice)}
