"""data_description built from the job, when the session does not supply one.

The asset's name, project, modalities, subject and acquisition time come from upload_job.json;
tags, group, restrictions, data summary and institution from the job's
`data_description_settings`. Funding and investigators (aind-data-schema 2.9.2 requires at
least one of each) come, field by field, from the settings' `funding_source` /
`investigators` when the job gives them (explicit settings win), else from the metadata
service's record of the project (`lookup`: the registry's ``project`` kind, or
aind-metadata-service's funding and investigators routes). When neither has them the
data_description cannot be built and the report's error says what is missing and how to
supply it: register the project, add data_description.json, or set the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aind_data_schema.core.data_description import DataDescription
from aind_data_schema_models.data_name_patterns import DataLevel
from aind_data_schema_models.modalities import Modality
from aind_data_schema_models.organizations import Organization

from upload_processor.domain.job_settings import DATA_DESCRIPTION_SETTINGS
from upload_processor.errors import DataDescriptionError, MetadataRequestError

DEFAULT_INSTITUTION = "AIND"
SETTINGS_FIELDS = DATA_DESCRIPTION_SETTINGS


@dataclass(frozen=True)
class ProjectLookup:
    """A project's funding and investigators as the metadata service gave them.

    `funding` / `investigators` are None when not asked for (the settings give them) or not
    found; `looked_in` says where they were looked for, and `problem` why the service gave
    nothing (both go into the error when a required field is still missing).
    """

    funding: list[dict[str, Any]] | None = None
    investigators: list[dict[str, Any]] | None = None
    looked_in: str = ""  # empty: no metadata service is configured
    problem: str | None = None
    registry: bool = False  # the project's own registry: `registry put project` registers it


def lookup(service: Any, project_name: str, settings: dict[str, Any] | None) -> ProjectLookup:
    """Ask the metadata service for the project's funding and investigators the settings do
    not give; no request when they give both (or there is no service).

    A refusal (MetadataRequestError: 4xx, an unusable answer) is recorded in `problem`; a
    transient failure (MetadataServiceError) propagates, to be retried like any other.
    """
    settings = settings if isinstance(settings, dict) else {}
    wanted = [f for f in ("funding_source", "investigators") if not settings.get(f)]
    if service is None:
        return ProjectLookup()
    looked_in = f"the metadata service ({service!r})"
    registry = bool(getattr(service, "registers_projects", False))
    if not wanted:
        return ProjectLookup(looked_in=looked_in, registry=registry)
    try:
        record = service.get_project(project_name)
    except MetadataRequestError as exc:
        return ProjectLookup(looked_in=looked_in, problem=str(exc), registry=registry)
    if record is None:
        return ProjectLookup(
            looked_in=looked_in,
            problem=f"project {project_name!r} is not registered there",
            registry=registry,
        )
    return ProjectLookup(
        funding=list(record.get("funding_source") or []) or None,
        investigators=list(record.get("investigators") or []) or None,
        looked_in=looked_in,
        registry=registry,
    )


def _missing_message(job: dict[str, Any], missing: list[str], found: ProjectLookup | None) -> str:
    project = job["project_name"]
    found = found or ProjectLookup()
    if found.looked_in:
        where = f"looked in the job's data_description_settings and {found.looked_in}" + (
            f": {found.problem}" if found.problem else ""
        )
    else:
        where = "looked in the job's data_description_settings; no metadata service is configured"
    if found.registry:
        register = (
            f"register the project's funding and investigators (`upload-processor registry put "
            f'project FILE`, FILE = {{"project_name": "{project}", "funding_source": [...], '
            f'"investigators": [...]}})'
        )
    elif found.looked_in:
        register = (
            f"have project {project!r} (exactly this name) given funding and investigators in "
            "the AIND metadata service"
        )
    else:
        register = "configure a metadata service that has the project"
    return (
        f"no data_description.json in the session, and no {' or '.join(missing)} for project "
        f"{project!r} ({where}); aind-data-schema requires at least one of each: {register}, "
        f"add data_description.json, or set tasks.gather_preliminary_metadata.job_settings."
        f"data_description_settings.{missing[0]} in upload_job.json"
    )


def build(
    job: dict[str, Any],
    asset_name: str,
    settings: dict[str, Any] | None = None,
    *,
    funding: list[dict[str, Any]] | None = None,
    investigators: list[dict[str, Any]] | None = None,
    found: ProjectLookup | None = None,
) -> dict[str, Any]:
    """A validated data_description as a JSON-able dict; raises ValueError naming the setting.

    Funding and investigators: the settings' when given, else `funding` / `investigators`,
    else `found`'s (what `lookup` got from the metadata service).
    """
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
    funding = settings.get("funding_source") or funding or (found.funding if found else None) or []
    investigators = (
        settings.get("investigators")
        or investigators
        or (found.investigators if found else None)
        or []
    )
    missing = [
        n for n, v in (("funding_source", funding), ("investigators", investigators)) if not v
    ]
    if missing:
        raise DataDescriptionError(_missing_message(job, missing, found))
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
