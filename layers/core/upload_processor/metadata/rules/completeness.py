"""A raw data asset carries every core file, and its data description describes it.

Rules: ``metadata.missing_file``, ``data_description.name_mismatch``.
"""

from __future__ import annotations

from aind_data_schema.core.acquisition import Acquisition, ExternalDataStream
from pydantic import BaseModel

from upload_processor.domain.report import Issue
from upload_processor.metadata.wording import preview

# What a raw data asset must carry. aind-data-schema's Metadata only *warns* when a file of
# its "subject" file set is missing; an upload that really rejects treats them as required.
# The instrument is not needed when every acquisition stream is an ExternalDataStream.
REQUIRED_TYPES: tuple[str, ...] = (
    "data_description",
    "subject",
    "procedures",
    "acquisition",
    "instrument",
)


def check_required(present: set[str], models: dict[str, BaseModel], issues: list[Issue]) -> None:
    """Every type of REQUIRED_TYPES must be supplied (staged, or fetched as an extra).

    The instrument may be absent when every data stream is an ExternalDataStream (recorded
    without it). A missing type is ``metadata.missing_file`` with no file; files present but
    broken are reported by their own rules already.
    """
    acquisition = models.get("acquisition")
    external_only = isinstance(acquisition, Acquisition) and all(
        isinstance(stream, ExternalDataStream) for stream in acquisition.data_streams
    )
    for core_type in REQUIRED_TYPES:
        if core_type in present:
            continue
        if core_type == "instrument" and external_only:
            continue
        issues.append(
            Issue(
                severity="error",
                file=None,
                rule="metadata.missing_file",
                message=(
                    f"No {core_type} metadata: a raw data asset needs {core_type}.json (or "
                    f"{core_type}_*.json files) at the session root. Add it, or configure the "
                    f"job to fetch it (subject and procedures come from the metadata service, "
                    f"an instrument from instrument_settings.instrument_id)."
                ),
            )
        )


def check_data_description_name(
    sources: dict[str, dict[str, BaseModel]], asset_name: str, issues: list[Issue]
) -> None:
    """A supplied data description's ``name`` must be the asset name.

    The asset name comes from the job (platform, subject_id, acq_datetime); a description of
    another name describes another asset: ``data_description.name_mismatch``.
    """
    for label, description in sources.get("data_description", {}).items():
        name = getattr(description, "name", None)
        if name == asset_name:
            continue
        issues.append(
            Issue(
                severity="error",
                file=label,
                field="name",
                rule="data_description.name_mismatch",
                message=(
                    f"{label} has name {preview(name)} but this upload's asset name is "
                    f"'{asset_name}' (from the job's platform, subject_id and acq_datetime). "
                    f"Set name to '{asset_name}', or correct the job if the asset name is wrong."
                ),
            )
        )
