"""data_description built from the job, when the session does not supply one.

The asset's name, project, modalities, subject and acquisition time come from upload_job.json;
tags, group, restrictions, data summary and institution from the job's
`data_description_settings`; funding and investigators from the metadata service when it has
them, else from the settings' `funding_source` / `investigators` (aind-data-schema requires at
least one of each).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aind_data_schema.core.data_description import DataDescription
from aind_data_schema_models.data_name_patterns import DataLevel
from aind_data_schema_models.modalities import Modality
from aind_data_schema_models.organizations import Organization

DEFAULT_INSTITUTION = "AIND"
SETTINGS_FIELDS = (
    "tags",
    "group",
    "restrictions",
    "data_summary",
    "institution",
    "funding_source",
    "investigators",
)


class DataDescriptionError(ValueError):
    """The job does not say enough to build a valid data_description; the message says what."""


def build(
    job: dict[str, Any],
    asset_name: str,
    settings: dict[str, Any] | None = None,
    *,
    funding: list[dict[str, Any]] | None = None,
    investigators: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A validated data_description as a JSON-able dict; raises ValueError naming the setting."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(SETTINGS_FIELDS))
    if unknown:
        raise DataDescriptionError(
            f"unknown data_description_settings {', '.join(unknown)}; valid: {', '.join(SETTINGS_FIELDS)}"
        )
    institution = settings.get("institution") or DEFAULT_INSTITUTION
    try:
        organization = Organization.from_abbreviation(institution)
    except (KeyError, ValueError, AttributeError) as exc:
        try:
            organization = Organization.from_name(institution)
        except (KeyError, ValueError, AttributeError):
            raise DataDescriptionError(
                f"data_description_settings.institution {institution!r} is not an organization "
                "abbreviation or name known to aind-data-schema-models (e.g. 'AIND')"
            ) from exc
    funding = funding or settings.get("funding_source") or []
    investigators = investigators or settings.get("investigators") or []
    missing = [
        n for n, v in (("funding_source", funding), ("investigators", investigators)) if not v
    ]
    if missing:
        raise DataDescriptionError(
            f"no data_description.json in the session, and neither the metadata service nor the "
            f"job's data_description_settings give {' or '.join(missing)} for project "
            f"{job['project_name']!r}: add data_description.json, or set "
            f"tasks.gather_preliminary_metadata.job_settings.data_description_settings."
            f"{missing[0]} in upload_job.json"
        )
    model = DataDescription(
        name=asset_name,
        subject_id=job["subject_id"],
        creation_time=datetime.fromisoformat(job["acq_datetime"]),
        institution=organization,
        funding_source=funding,
        investigators=investigators,
        data_level=DataLevel.RAW,
        project_name=job["project_name"],
        modalities=[Modality.from_abbreviation(m) for m in job["modalities"]],
        tags=settings.get("tags"),
        group=settings.get("group"),
        restrictions=settings.get("restrictions"),
        data_summary=settings.get("data_summary"),
    )
    return model.model_dump(mode="json")
