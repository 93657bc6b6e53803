"""The modalities the data streams record are the asset's: the job, the instrument and the
data description must declare them.

The policy, as AIND applies it (its real records list modalities whose data has no stream of
its own, e.g. behavior videos, and instruments with no modalities): a data stream recording a
modality that is not declared is an error (``merge.modalities_mismatch``); a declared modality
no stream records (``merge.modality_without_stream``) and an instrument that declares no
modalities (``merge.instrument_without_modalities``) are warnings.
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
    """The job's ``modalities`` must declare every modality the data streams record.

    A recorded modality the job does not declare is an error on the job file; a declared one
    no stream records is a warning (see the module's policy).
    """
    _declared_against_streams(
        job.file, set(job.modalities), recorded, acquisition_labels, issues, job.file
    )


def _declared_against_streams(
    label: str,
    declared: set[str],
    recorded: set[str],
    acquisition_labels: list[str],
    issues: list[Issue],
    fix_in: str,
) -> None:
    acquisition = f"the acquisition ({join(acquisition_labels)})"
    undeclared = recorded - declared
    if undeclared:
        issues.append(
            _mismatch(
                label,
                "modalities",
                f"{label} declares modalities {quoted(declared)}, but the data streams of "
                f"{acquisition} also record {quoted(undeclared)}. Every modality the data holds "
                f"must be declared: add it to modalities in {fix_in}, or correct the streams' "
                "modalities.",
            )
        )
    unrecorded = declared - recorded
    if unrecorded:
        issues.append(
            Issue(
                severity="warning",
                file=label,
                field="modalities",
                rule="merge.modality_without_stream",
                message=(
                    f"{label} declares {quoted(unrecorded)}, but no data stream of {acquisition} "
                    "records it. Accepted (a modality's files may have no stream of their own, "
                    "as behavior videos often do): check that its data is staged."
                ),
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
    if not capable:
        issues.append(
            Issue(
                severity="warning",
                file=sorted(sources["instrument"])[0],
                field="modalities",
                rule="merge.instrument_without_modalities",
                message=(
                    f"The instrument ({instrument_labels}) declares no modalities, so the data "
                    "streams' modalities were not checked against it. Accepted; list the "
                    "modalities the instrument records in its modalities."
                ),
            )
        )
        return
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
    """``data_description.modalities`` must list the modalities the data streams record (one
    it lists that no stream records is a warning).

    A description that repeats the job's modalities (e.g. built from the job) is covered by
    the job's error instead, so one mistake is reported once.
    """
    described = abbreviations(description.modalities)
    follows_job = job is not None and described == set(job.modalities)
    if described == recorded or follows_job:
        return
    (label,) = sources["data_description"]
    _declared_against_streams(
        label, described, recorded, sorted(sources["acquisition"]), issues, label
    )
