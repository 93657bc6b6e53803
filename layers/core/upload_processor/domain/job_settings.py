"""What each task's `job_settings` may hold: a typo or a wrong type is an error that names the
field, never a setting silently ignored (a misspelt `raise_if_invalid` would let an invalid
session through).

Checked on the resolved job (job type defaults merged with the upload's overrides) at ingest,
and on every preset a deployment stores (`job-types put`, SSM). Light on purpose: ingest
imports it, and ingest never loads aind-data-schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from upload_processor.domain.report import Issue
from upload_processor.domain.units import DEFAULT_LEVEL

# The keys of gather_preliminary_metadata.job_settings.data_description_settings; their values
# are checked with aind-data-schema when GatherMetadata builds the data description.
DATA_DESCRIPTION_SETTINGS = (
    "tags",
    "group",
    "restrictions",
    "data_summary",
    "institution",
    "funding_source",
    "investigators",
)


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstrumentSettings(_Settings):
    """Which registered instrument the session used (fetched from the metadata service)."""

    instrument_id: str | None = Field(default=None, min_length=1)


class DataDescriptionSettings(_Settings):
    """Fields of the data description the job gives (the rest come from the job and the
    metadata service)."""

    tags: list[str] | None = None
    group: str | None = None
    restrictions: str | None = None
    data_summary: str | None = None
    institution: str | None = None
    funding_source: list[dict[str, Any]] | None = None
    investigators: list[dict[str, Any]] | None = None


class GatherPreliminarySettings(_Settings):
    """tasks.gather_preliminary_metadata.job_settings."""

    instrument_settings: InstrumentSettings | None = None
    data_description_settings: DataDescriptionSettings | None = None
    raise_if_invalid: StrictBool = True
    # where this job's registered metadata comes from, instead of the deployment's
    # MetadataService (same forms: "aind:https://...", "https://...", "none")
    metadata_service: str | None = Field(default=None, min_length=1)


class TransformationSettings(_Settings):
    """tasks.modality_transformation_settings[.<modality>].job_settings."""

    codec: Literal["zstd", "none"] = "zstd"
    level: int = Field(default=DEFAULT_LEVEL, ge=1, le=22)


class GatherFinalSettings(_Settings):
    """tasks.gather_final_metadata.job_settings."""

    verify: Literal["quick", "full"] = "quick"


class NoSettings(_Settings):
    """A task that takes no settings."""


SETTINGS_MODELS: dict[str, type[_Settings]] = {
    "gather_preliminary_metadata": GatherPreliminarySettings,
    "check_s3_folder_exists": NoSettings,
    "modality_transformation_settings": TransformationSettings,
    "gather_final_metadata": GatherFinalSettings,
    "remove_source_folders": NoSettings,
}


SettingsModel = TypeVar("SettingsModel", bound=_Settings)


def task_settings(
    job: Mapping[str, Any], task_id: str, model: type[SettingsModel]
) -> SettingsModel:
    """A task's typed job_settings in the resolved job (its defaults when it gives none).

    Ingest already rejected a job whose settings do not validate, so the stages read their
    settings through these models instead of re-implementing the defaults.
    """
    task = (job.get("tasks") or {}).get(task_id) or {}
    return model.model_validate(task.get("job_settings") or {})


def gather_settings(job: Mapping[str, Any]) -> GatherPreliminarySettings:
    """tasks.gather_preliminary_metadata.job_settings of the resolved job."""
    return task_settings(job, "gather_preliminary_metadata", GatherPreliminarySettings)


def verify_mode(job: Mapping[str, Any]) -> Literal["quick", "full"]:
    """`quick` (size and S3 checksum of every object) or `full` (also decompress and compare
    with the source's SHA-256): tasks.gather_final_metadata.job_settings.verify."""
    return task_settings(job, "gather_final_metadata", GatherFinalSettings).verify


def _message(where: str, error: dict[str, Any], model: type[_Settings]) -> str:
    field = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        parent = model
        for part in error["loc"][:-1]:
            info = parent.model_fields.get(str(part))
            annotation = getattr(info, "annotation", None)
            inner = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type)]
            parent = next((a for a in inner if issubclass(a, _Settings)), parent)
        valid = ", ".join(parent.model_fields) or "none (this task takes no settings)"
        return f"{where}.{field} is not a setting of this task (a typo?); valid: {valid}"
    return f"{where}.{field}: {error['msg']} (got {error.get('input')!r})"


def check(task_id: str, settings: Any, where: str, file: str) -> list[Issue]:
    """The problems of one task's job_settings (`where` is its dotted path, for messages)."""
    model = SETTINGS_MODELS.get(task_id)
    if model is None or settings is None:
        return []
    try:
        model.model_validate(settings)
    except ValidationError as exc:
        return [
            Issue(
                severity="error",
                file=file,
                field=f"{where}." + ".".join(str(p) for p in error["loc"])
                if error["loc"]
                else where,
                rule="job.unknown_setting"
                if error["type"] == "extra_forbidden"
                else "job.invalid_setting",
                message=_message(where, error, model),
            )
            for error in exc.errors()
        ]
    return []


def check_tasks(tasks: dict[str, Any], file: str) -> list[Issue]:
    """Every problem of a resolved job's tasks' job_settings."""
    issues: list[Issue] = []
    for task_id, task in tasks.items():
        if task_id == "modality_transformation_settings":
            for modality, entry in (task or {}).items():
                where = f"tasks.{task_id}.{modality}.job_settings"
                issues += check(task_id, (entry or {}).get("job_settings"), where, file)
        else:
            where = f"tasks.{task_id}.job_settings"
            issues += check(task_id, (task or {}).get("job_settings"), where, file)
    return issues
