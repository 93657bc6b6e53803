"""Time: the job's acq_datetime lies within the acquisition, and a named time zone survives
the merge.

Rules: ``merge.acq_datetime_outside``, ``merge.time_zone_lost``, and the note
``merge.fixed_offset``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from upload_processor.domain.report import Issue
from upload_processor.metadata.job_facts import JobFacts
from upload_processor.metadata.wording import error, join


def check_acq_datetime(
    sources: dict[str, dict[str, BaseModel]],
    models: dict[str, BaseModel],
    job: JobFacts | None,
    issues: list[Issue],
) -> None:
    """The job's ``acq_datetime`` must lie within
    ``[acquisition_start_time, acquisition_end_time]`` (both ends included).

    acq_datetime names the asset, so an asset named after a time outside its own acquisition
    is ``merge.acq_datetime_outside``, on the job file. Skipped without a job or acquisition.
    """
    acquisition = models.get("acquisition")
    if job is None or acquisition is None:
        return
    start, end = acquisition.acquisition_start_time, acquisition.acquisition_end_time
    when = job.acq_datetime
    # acq_datetime and the asset name have one-second resolution, rigs write microseconds
    if _second(start) <= _second(when) <= end:
        return
    side = "before the acquisition starts" if when < start else "after the acquisition ends"
    issues.append(
        Issue(
            severity="error",
            file=job.file,
            field="acq_datetime",
            rule="merge.acq_datetime_outside",
            message=(
                f"{job.file} gives acq_datetime {when.isoformat()}, {side} (from "
                f"{start.isoformat()} to {end.isoformat()} in "
                f"{join(sorted(sources['acquisition']))}). acq_datetime names the asset and "
                "must fall within the acquisition: set it to the acquisition start time, or "
                "correct the acquisition's times."
            ),
        )
    )


def _second(when: datetime) -> datetime:
    return when.replace(microsecond=0)


def _time_zone_lost(label: str, message: str) -> Issue:
    return error("merge.time_zone_lost", label, "acquisition_start_tz", message)


def named_time_zone(validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """The IANA zone the acquisitions name, to keep through the merge; None if none or errors.

    ``Acquisition.__add__`` recomputes acquisition_start_tz from the earliest start time, which
    gives an integer offset for the fixed offsets that JSON datetimes carry: the name is lost.
    So the files that name a zone must name the same one, and a file giving a fixed offset
    must give the zone's offset at its start time; otherwise ``merge.time_zone_lost``.
    """
    labels = sorted(validated)
    named = {
        label: validated[label].acquisition_start_tz
        for label in labels
        if isinstance(validated[label].acquisition_start_tz, str)
    }
    if not named:
        return None
    reference = next(iter(named))
    zone = named[reference]
    disagree = [
        _time_zone_lost(
            label,
            f"{label} names the time zone '{other}' but {reference} names '{zone}': "
            "the merged acquisition keeps one time zone, so one of them would be "
            "lost. Set acquisition_start_tz to the same IANA zone (the zone of the "
            "rig's clock) in every acquisition file.",
        )
        for label, other in named.items()
        if other != zone
    ]
    if disagree:
        issues.extend(disagree)
        return None
    try:
        tz = ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):  # the library validated it: not expected
        return zone
    found = [
        issue
        for label in labels
        if (issue := _offset_contradiction(label, validated[label], reference, zone, tz))
    ]
    issues.extend(found)
    return None if any(i.severity == "error" for i in found) else zone


def _hours(offset: Any) -> int:
    return int(offset.total_seconds() // 3600) if offset is not None else 0


def _offset_contradiction(
    label: str, acquisition: Any, reference: str, zone: str, tz: ZoneInfo
) -> Issue | None:
    """An error when this file's fixed UTC offset is not the named zone's at its start.

    A file written in another fixed offset (say UTC) whose times carry that same offset gives
    the same instants in other words: the merge keeps the named zone, and a note
    (``merge.fixed_offset``) says so. Only an offset its own times contradict is an error.
    """
    offset = acquisition.acquisition_start_tz
    if not isinstance(offset, int):
        return None
    start = acquisition.acquisition_start_time
    zone_hours = _hours(start.astimezone(tz).utcoffset())
    if offset == zone_hours:
        return None
    if offset == _hours(start.utcoffset()):
        return Issue(
            severity="warning",
            file=label,
            field="acquisition_start_tz",
            rule="merge.fixed_offset",
            message=(
                f"Note: {label} gives its times in the fixed offset UTC{offset:+d} h, "
                f"{reference} in the time zone '{zone}'; the instants agree, so they were "
                f"merged and the acquisition keeps '{zone}'."
            ),
        )
    return _time_zone_lost(
        label,
        f"{label} gives the fixed UTC offset {offset:+d} h, but {reference} "
        f"names the time zone '{zone}', which was UTC{zone_hours:+d} h when "
        f"{label} started ({start.isoformat()}): merged, the acquisition would "
        f"keep '{zone}' and lose this file's offset. Correct "
        f"acquisition_start_tz (or the offset of the start time) in {label}, or "
        f"set it to '{zone}' there too.",
    )
