"""The modalities the data streams record are the asset's: the job, the instrument and the
data description must agree with them.

Rule: ``merge.modalities_mismatch``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aind_data_schema.core.acquisition import ExternalDataStream
from pydantic import BaseModel

from upload_processor.domain.report import Issue
from upload_processor.metadata.job_facts import JobFacts
from upload_processor.metadata.wording import error, join, quoted


def abbreviations(modalities: Iterable[Any]) -> set[str]:
    """The abbreviations (``"ecephys"``) of modalities given as models, dicts or strings."""
    out = set()
    for modality in modalities:
        if isinstance(modality, dict):
            out.add(str(modality.get("abbreviation")))
        else:
            out.add(str(getattr(modality, "abbreviation", modality)))
    return out


def _mismatch(file: str, field: str, message: str) -> Issue:
    return error("merge.modalities_mismatch", file, field, message)


def check_modalities(
    sources: dict[str, dict[str, BaseModel]],
    models: dict[str, BaseModel],
    job: JobFacts | None,
    issues: list[Issue],
) -> None:
    """The job, the instrument, the data description and the data streams must agree.

    Skipped without a (merged) acquisition; each comparison is its own rule below.
    """
    acquisition = models.get("acquisition")
    if acquisition is None:
        return
    recorded = abbreviations(m for s in acquisition.data_streams for m in s.modalities)
    acquisition_labels = sorted(sources["acquisition"])
    if job is not None:
        check_job_modalities(job, recorded, acquisition_labels, issues)
    if models.get("instrument") is not None:
        check_stream_modalities(sources, models["instrument"], issues)
    if models.get("data_description") is not None:
        check_description_modalities(sources, models["data_description"], recorded, job, issues)


def check_job_modalities(
    job: JobFacts, recorded: set[str], acquisition_labels: list[str], issues: list[Issue]
) -> None:
    """The job's ``modalities`` must be exactly those the acquisition's data streams record.

    The error, on the job file, says which declared modality no stream records and which
    recorded one the job does not declare.
    """
    declared = set(job.modalities)
    if declared == recorded:
        return
    gaps = []
    if declared - recorded:
        gaps.append(f"no data stream records {quoted(declared - recorded)}")
    if recorded - declared:
        gaps.append(f"the data streams also record {quoted(recorded - declared)}")
    issues.append(
        _mismatch(
            job.file,
            "modalities",
            f"{job.file} declares modalities {quoted(declared)}, but the acquisition "
            f"({join(acquisition_labels)}) records {quoted(recorded)}: {'; '.join(gaps)}. List "
            f"in {job.file} exactly the modalities the data streams record, or correct the "
            "streams' modalities.",
        )
    )


def check_stream_modalities(
    sources: dict[str, dict[str, BaseModel]], instrument: Any, issues: list[Issue]
) -> None:
    """Each data stream may record only modalities the (merged) instrument declares.

    An ``ExternalDataStream`` is recorded without this instrument and is not checked. The
    error names the acquisition file and the stream (``data_streams.<i>.modalities``).
    """
    capable = abbreviations(instrument.modalities)
    instrument_labels = join(sorted(sources["instrument"]))
    for label in sorted(sources["acquisition"]):
        for index, stream in enumerate(sources["acquisition"][label].data_streams):
            if isinstance(stream, ExternalDataStream):
                continue
            missing = abbreviations(stream.modalities) - capable
            if missing:
                issues.append(
                    _mismatch(
                        label,
                        f"data_streams.{index}.modalities",
                        f"{label} has a data stream recording {quoted(missing)}, but the "
                        f"instrument ({instrument_labels}) declares only {quoted(capable)}. Add "
                        "the modality to the instrument that records it, or correct the "
                        "stream's modalities.",
                    )
                )


def check_description_modalities(
    sources: dict[str, dict[str, BaseModel]],
    description: Any,
    recorded: set[str],
    job: JobFacts | None,
    issues: list[Issue],
) -> None:
    """``data_description.modalities`` must list the modalities the data streams record.

    A description that repeats the job's modalities (e.g. built from the job) is covered by
    the job's error instead, so one mistake is reported once.
    """
    described = abbreviations(description.modalities)
    follows_job = job is not None and described == set(job.modalities)
    if described == recorded or follows_job:
        return
    (label,) = sources["data_description"]
    acquisition_labels = sorted(sources["acquisition"])
    issues.append(
        _mismatch(
            label,
            "modalities",
            f"{label} lists modalities {quoted(described)}, but the acquisition "
            f"({join(acquisition_labels)}) records {quoted(recorded)}. "
            "data_description.modalities must list the modalities of the asset's data: "
            "correct it (or the data streams' modalities).",
        )
    )
