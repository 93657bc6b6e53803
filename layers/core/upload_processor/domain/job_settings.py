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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

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
        # aind-ephys-transformation's EphysJobSettings (its compressor_name, compressor_kwargs
        # and compress_chunk_duration are read: see TransformationSettings)
        "reader_name": "the recording's format is read from its own files (structure.oebin, .meta)",
        "clip_n_frames": "the binaries are left out of ecephys_clipped/ entirely: their samples "
        "are in the Zarr",
        "check_timestamps": "the recording's sizes are checked against its description instead",
        "compress_write_output_format": "the output is always Zarr",
        "compress_max_windows_filename_len": "the store names are AIND's, whatever the OS",
        "compress_job_save_kwargs": _SLURM,
        "scale_num_chunks_per_segment": "the LSB correction is detected on the stream's first "
        "chunk (`lsb_correction`)",
        "scale_chunk_size": "the LSB correction is detected on the stream's first chunk "
        "(`lsb_correction`)",
        "random_seed": "the LSB correction reads no random sample",
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


# The lossless audio codecs of the ecephys transformation (issue 15) and their level ranges;
# zstd's are its own. `level` None is the codec's default (zstd: DEFAULT_LEVEL).
AUDIO_CODECS = ("flac", "wavpack")
# What the ecephys layer (layers/ecephys/requirements.txt) ships: wavpack-numcodecs' wheels
# bundle a libwavpack built for glibc >= 2.35, Lambda's python3.12 runtime has 2.34. A job
# asking for WavPack is refused at ingest, naming the fix, rather than failing mid-transfer.
SHIPPED_AUDIO_CODECS = ("flac",)
LEVELS: dict[str, tuple[int, int]] = {"zstd": (1, 22), "flac": (0, 8), "wavpack": (1, 4)}


class TransformationSettings(_Settings):
    """tasks.modality_transformation_settings[.<modality>].job_settings.

    `codec` zstd (every file a zstd stream) or none (copied as is) apply to any modality. The
    audio codecs (flac, wavpack) select the ecephys transformation: in the `ecephys` modality,
    Open Ephys and SpikeGLX binaries become one Zarr per stream
    (`<asset>/ecephys/ecephys_compressed/<stream>.zarr`, chunks of `chunk_duration_s`, an
    exact per-channel LSB correction when `lsb_correction` is auto, the original binary
    also archived zstd'd when `keep_raw`); every other file is zstd'd as usual.
    """

    codec: Literal["zstd", "none", "flac", "wavpack"] = "zstd"
    level: int | None = None
    chunk_duration_s: float = Field(default=1.0, gt=0, le=60)
    lsb_correction: Literal["auto", "off"] = "auto"
    keep_raw: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _aind_names(cls, data: Any) -> Any:
        """aind-ephys-transformation's names for the same settings: `compressor_name`
        ("wavpack", ...) is `codec`, `compressor_kwargs.level` is `level`,
        `compress_chunk_duration` ("1s", "500ms") is `chunk_duration_s`."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        if "compressor_name" in out:
            name = out.pop("compressor_name")
            out.setdefault("codec", name.lower() if isinstance(name, str) else name)
        kwargs = out.pop("compressor_kwargs", None)
        if isinstance(kwargs, dict) and "level" in kwargs:
            out.setdefault("level", kwargs["level"])
        duration = out.pop("compress_chunk_duration", None)
        if isinstance(duration, str) and "chunk_duration_s" not in out:
            text = duration.strip().lower()
            scale = 0.001 if text.endswith("ms") else 1.0
            out["chunk_duration_s"] = text.removesuffix("ms").removesuffix("s") or duration
            try:
                out["chunk_duration_s"] = float(out["chunk_duration_s"]) * scale
            except ValueError:
                out["chunk_duration_s"] = duration  # reported as not a number
        return out

    @field_validator("codec")
    @classmethod
    def _shipped(cls, codec: str) -> str:
        if codec in AUDIO_CODECS and codec not in SHIPPED_AUDIO_CODECS:
            raise ValueError(
                f"codec {codec!r} is not available in this deployment (wavpack-numcodecs needs "
                "glibc 2.35, the Lambda runtime has 2.34): use 'flac' (lossless too, about as "
                "small) or 'zstd'"
            )
        return codec

    @field_validator("level")
    @classmethod
    def _level_of_its_codec(cls, level: int | None, info: ValidationInfo) -> int | None:
        """A level outside the codec's range is an error naming the range (zstd 1-22, flac
        0-8, wavpack 1-4), not a silent clamp."""
        codec = info.data.get("codec", "zstd")
        bounds = LEVELS.get(codec)
        if level is not None and bounds and not bounds[0] <= level <= bounds[1]:
            raise ValueError(
                f"{level} is not a {codec} level: use {bounds[0]}-{bounds[1]} "
                f"(or leave level out for {codec}'s default)"
            )
        return level

    @property
    def zstd_level(self) -> int:
        """The zstd level of the files this task compresses with zstd."""
        return self.level if self.codec == "zstd" and self.level is not None else DEFAULT_LEVEL

    @property
    def ecephys_transformation(self) -> bool:
        """Whether the ecephys binaries become audio-codec Zarr (an audio codec is chosen)."""
        return self.codec in AUDIO_CODECS


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
