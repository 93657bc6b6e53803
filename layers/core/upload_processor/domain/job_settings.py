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

from upload_processor.domain.codeocean import PipelineJobSettings
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


_MAPPER = (
    "an aind-metadata-mapper setting: this pipeline runs no mapper, it reads the metadata "
    "files staged with the session (write the acquisition file yourself)"
)
_SLURM = "a Slurm setting of AIND's cluster: the pipeline sizes its own Step Functions workers"

# Settings AIND's own tasks carry in `job_settings` (aind-metadata-mapper's GatherMetadataJob
# and aind-data-transformation's job settings, as aind-data-transfer-service's examples write
# them), each with why this pipeline does not need it. A job file written for AIND keeps them:
# they are removed before the settings are checked and reported as ignored, never an error.
AIND_SETTINGS: dict[str, dict[str, str]] = {
    "gather_preliminary_metadata": {
        "metadata_dir": "the metadata files are read from the top folder of the staged session, "
        "which is what this path names on AIND's shared drive; put them there",
        "metadata_dir_force": "the staged metadata files are always used as they are",
        "directory_to_write_to": "the metadata is written into the asset itself",
        "metadata_service_domain": "the deployment's MetadataService parameter names the "
        "metadata service; an upload may not choose it",
        "location_map": "the files' places in the asset are fixed by their names",
        "job_settings_name": "a tag of aind-metadata-mapper's settings classes",
        "subject_settings": _MAPPER,
        "session_settings": _MAPPER,
        "acquisition_settings": _MAPPER,
        "procedures_settings": _MAPPER,
        "raw_data_description_settings": _MAPPER,
        "processing_settings": _MAPPER,
        "rig_settings": _MAPPER,
        "metadata_settings": _MAPPER,
    },
    "modality_transformation_settings": {
        "input_source": "the modality's data are the staged session's folder named for it; a "
        "path on AIND's shared drive means nothing here",
        "output_directory": "the output is the asset's prefix in the archive bucket",
        "compression_requested": "compression is chosen with `codec` and `level`",
        "s3_location": "the output is the asset's prefix in the archive bucket",
        "num_of_partitions": _SLURM,
        "job_settings_name": "a tag of aind-data-transformation's settings classes",
        "log_level": "the functions log at the deployment's level",
    },
}


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


class CatalogSettings(_Settings):
    """`register_data_asset` / `update_docdb_record` (the Catalog state after Finalize).

    `docdb_version` is AIND's (which DocDB the record goes to); here it is recorded on the
    catalog record, the deployment's CatalogBackend says where records go."""

    docdb_version: str = "v2"


SETTINGS_MODELS: dict[str, type[BaseModel]] = {
    "gather_preliminary_metadata": GatherPreliminarySettings,
    "check_s3_folder_exists": NoSettings,
    "modality_transformation_settings": TransformationSettings,
    "gather_final_metadata": GatherFinalSettings,
    "remove_source_folders": NoSettings,
    "register_data_asset": CatalogSettings,
    "update_docdb_record": CatalogSettings,
    "get_codeocean_asset_id": CatalogSettings,
    "codeocean_pipeline_settings": PipelineJobSettings,
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


def _message(where: str, error: dict[str, Any], model: type[BaseModel]) -> str:
    field = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        parent = model
        for part in error["loc"][:-1]:
            info = parent.model_fields.get(str(part))
            annotation = getattr(info, "annotation", None)
            inner = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type)]
            parent = next((a for a in inner if issubclass(a, BaseModel)), parent)
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
        if task_id in ("modality_transformation_settings", "codeocean_pipeline_settings"):
            for modality, entry in (task or {}).items():
                where = f"tasks.{task_id}.{modality}.job_settings"
                issues += check(task_id, (entry or {}).get("job_settings"), where, file)
        else:
            where = f"tasks.{task_id}.job_settings"
            issues += check(task_id, (task or {}).get("job_settings"), where, file)
    return issues
