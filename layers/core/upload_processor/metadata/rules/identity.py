"""Merge rule 2: every file names the same subject, and the acquisition its instrument.

Rules: ``merge.subject_id_mismatch``, ``merge.acquisition_instrument_id``.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from upload_processor.domain.report import Issue
from upload_processor.metadata.job_facts import JobFacts
from upload_processor.metadata.wording import error, join

# Core types that carry a subject_id, in tie-break priority order.
_SUBJECT_ID_TYPES: tuple[str, ...] = ("subject", "procedures", "data_description", "acquisition")


def check_subject_ids(
    sources: dict[str, dict[str, BaseModel]], job: JobFacts | None, issues: list[Issue]
) -> bool:
    """``subject_id`` must be the same in every acquisition, the subject, the procedures, the
    data description and the job.

    The expected value is the one most sources give, ties going to the earliest of: the job,
    subject, procedures, data_description, the acquisitions (sorted); every other source gets a
    ``merge.subject_id_mismatch`` error naming those that agree. Returns True when the
    acquisition files disagree among themselves (they cannot be merged then).
    """
    claims: list[tuple[str, str]] = []
    if job is not None:
        claims.append((job.file, job.subject_id))
    for core_type in _SUBJECT_ID_TYPES:
        for label, model in sorted(sources.get(core_type, {}).items()):
            value = getattr(model, "subject_id", None)
            if value is not None:
                claims.append((label, value))
    if not claims:
        return False
    counts = Counter(value for _, value in claims)
    expected = max(counts, key=counts.__getitem__)  # first maximum: insertion (priority) order
    agreeing = [label for label, value in claims if value == expected]
    job_too = " and upload_job.json" if job is not None else ""
    for label, value in claims:
        if value == expected:
            continue
        issues.append(
            Issue(
                severity="error",
                file=label,
                field="subject_id",
                rule="merge.subject_id_mismatch",
                message=(
                    f"{label} has subject_id '{value}' but {join(agreeing)} "
                    f"{'has' if len(agreeing) == 1 else 'have'} subject_id '{expected}': every "
                    f"metadata file of a session{job_too} must name the same subject. Correct "
                    f"subject_id in {label} (and check that it belongs to this session)."
                ),
            )
        )
    acquisition_ids = {
        getattr(m, "subject_id", None) for m in sources.get("acquisition", {}).values()
    }
    return len(acquisition_ids) > 1


def _instrument_id_issue(file: str, message: str) -> Issue:
    return error("merge.acquisition_instrument_id", file, "instrument_id", message)


def check_instrument_ids(
    sources: dict[str, dict[str, BaseModel]], models: dict[str, BaseModel], issues: list[Issue]
) -> None:
    """The (merged) acquisition's ``instrument_id`` must be the (merged) instrument's.

    Both are the sorted unique ids of their files joined with "_" (see fold.combined_id), so
    each acquisition file names its own instrument (or the acquisition, as one file, names the
    merged id). ``merge.acquisition_instrument_id`` blames, in this order of preference: each
    acquisition naming an id no instrument has; else each instrument no acquisition names;
    else the first acquisition file.
    """
    instrument, acquisition = models.get("instrument"), models.get("acquisition")
    if instrument is None or acquisition is None:
        return
    merged_instrument = getattr(instrument, "instrument_id", None)
    merged_acquisition = getattr(acquisition, "instrument_id", None)
    if merged_acquisition == merged_instrument:
        return
    instrument_ids = {
        label: getattr(m, "instrument_id", None)
        for label, m in sorted(sources["instrument"].items())
    }
    acquisition_ids = {
        label: getattr(m, "instrument_id", None)
        for label, m in sorted(sources["acquisition"].items())
    }
    named = set(acquisition_ids.values())
    uncovered = (
        {}
        if merged_instrument in named
        else {label: value for label, value in instrument_ids.items() if value not in named}
    )
    found = _unknown_instrument_ids(
        acquisition_ids, instrument_ids, merged_instrument, uncovered
    ) or _unnamed_instruments(uncovered, merged_acquisition, merged_instrument)
    if not found:
        found = [
            _instrument_id_issue(
                sorted(acquisition_ids)[0],
                f"The acquisition's instrument_id '{merged_acquisition}' "
                f"({_listing(acquisition_ids)}) "
                f"differs from the merged instrument's '{merged_instrument}' "
                f"({_listing(instrument_ids)}); both are the sorted unique ids joined with '_'. "
                "Let every acquisition file name the id of its own instrument (or, in a single "
                "acquisition file, the merged id).",
            )
        ]
    issues.extend(found)


def _listing(ids: dict[str, str | None]) -> str:
    return ", ".join(f"{label}: '{i}'" for label, i in ids.items())


def _unknown_instrument_ids(
    acquisition_ids: dict[str, str | None],
    instrument_ids: dict[str, str | None],
    merged_instrument: str | None,
    uncovered: dict[str, str | None],
) -> list[Issue]:
    """An error for each acquisition file naming an instrument_id no instrument has."""
    known = {*instrument_ids.values(), merged_instrument}
    hint = (
        " (no acquisition names "
        + join(f"{label}'s '{value}'" for label, value in uncovered.items())
        + ")"
        if uncovered
        else ""
    )
    found = []
    for label, value in acquisition_ids.items():
        if value not in known:
            shown = f"'{value}'" if value else "no instrument_id"
            found.append(
                _instrument_id_issue(
                    label,
                    f"{label} names {shown}, which matches no instrument "
                    f"({_listing(instrument_ids)}; merged: '{merged_instrument}'). Set "
                    "instrument_id to the id of the instrument this acquisition was recorded "
                    f"on{hint}.",
                )
            )
    return found


def _unnamed_instruments(
    uncovered: dict[str, str | None], merged_acquisition: str | None, merged_instrument: str | None
) -> list[Issue]:
    """An error for each instrument file that no acquisition names."""
    return [
        _instrument_id_issue(
            label,
            f"{label} (instrument_id '{value}') is merged into the session's instrument, "
            f"but no acquisition names it: the acquisition's instrument_id is "
            f"'{merged_acquisition}', the merged instrument's '{merged_instrument}' (the "
            "sorted unique ids joined with '_'). Add the acquisition recorded on "
            f"'{value}', or remove {label} if that instrument was not used.",
        )
        for label, value in uncovered.items()
    ]
