"""Code Ocean in a job: which pipelines a modality starts, and what the data asset says.

AIND's job files (aind-data-transfer-service's `custom_codeocean_pipeline_settings.py`) write
`tasks.codeocean_pipeline_settings.<modality>.job_settings.pipeline_monitor_settings`, the
settings of `aind-codeocean-pipeline-monitor` (`PipelineMonitorSettings`). This pipeline starts
the run (`run_params`) with the new data asset mounted, and records the computation; it does not
monitor the run or capture its results (there is no monitor job here), so those fields are
accepted, kept on the job, and reported as recorded-only (`RECORDED_ONLY`). A typo in any of
them is an error naming the field, as for every other task's settings.

Pure: no SDK, no AWS (the adapter turns these into the SDK's request types).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from upload_processor.errors import UploadJobError

PIPELINES_TASK = "codeocean_pipeline_settings"

# pipeline_monitor_settings fields accepted and kept, but not acted on, each with why.
RECORDED_ONLY: dict[str, str] = {
    "capture_settings": "the results are not captured as a data asset: no monitor job waits "
    "for the run to finish (capture them in Code Ocean, or run AIND's pipeline monitor capsule)",
    "alert_url": "no monitor job follows the run; the job's own notifications say it started",
    "computation_polling_interval": "the run is started, not watched",
    "computation_timeout": "the run is started, not watched",
    "data_asset_ready_polling_interval": "the upload's own data asset waits by the deployment's "
    "CodeOceanReadyTimeout; there is no captured asset to wait for",
    "data_asset_ready_timeout": "as data_asset_ready_polling_interval",
    "job_type": "every run uses the deployment's one Code Ocean token",
}
# run_params fields passed to Code Ocean as they are.
HONOURED_RUN_PARAMS = (
    "capsule_id",
    "pipeline_id",
    "version",
    "resume_run_id",
    "nextflow_profile",
    "data_assets",
    "parameters",
    "named_parameters",
    "processes",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunAsset(_Strict):
    """One more data asset to mount (beside the upload's own, which is always mounted)."""

    id: str = Field(min_length=1)
    mount: str | None = None


class NamedParam(_Strict):
    """A named parameter of the capsule or pipeline."""

    param_name: str = Field(min_length=1)
    value: str


class ProcessParams(_Strict):
    """Parameters of one process of a pipeline."""

    name: str = Field(min_length=1)
    parameters: list[str] | None = None
    named_parameters: list[NamedParam] | None = None


class RunParamsSettings(_Strict):
    """Code Ocean's RunParams: a capsule or a pipeline to run, and its parameters."""

    capsule_id: str | None = Field(default=None, min_length=1)
    pipeline_id: str | None = Field(default=None, min_length=1)
    version: int | None = None
    resume_run_id: str | None = None
    nextflow_profile: str | None = None
    data_assets: list[RunAsset] | None = None
    parameters: list[str] | None = None
    named_parameters: list[NamedParam] | None = None
    processes: list[ProcessParams] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> RunParamsSettings:
        if bool(self.capsule_id) == bool(self.pipeline_id):
            raise ValueError("set exactly one of capsule_id or pipeline_id")
        return self

    @property
    def target(self) -> str:
        """`capsule <id>` or `pipeline <id>`, for messages."""
        return f"capsule {self.capsule_id}" if self.capsule_id else f"pipeline {self.pipeline_id}"


class PipelineMonitorSettings(_Strict):
    """aind-codeocean-pipeline-monitor's settings: `run_params` is honoured, the rest recorded."""

    run_params: RunParamsSettings
    capture_settings: dict[str, Any] | None = None
    alert_url: str | None = None
    computation_polling_interval: float | None = None
    computation_timeout: float | None = None
    data_asset_ready_polling_interval: float | None = None
    data_asset_ready_timeout: float | None = None
    job_type: str | None = None


class PipelineJobSettings(_Strict):
    """tasks.codeocean_pipeline_settings.<modality>.job_settings."""

    pipeline_monitor_settings: PipelineMonitorSettings


class ModalityPipeline(BaseModel):
    """One modality's pipeline to start for an asset."""

    model_config = ConfigDict(frozen=True)

    modality: str
    settings: PipelineMonitorSettings

    def recorded_only(self) -> list[str]:
        """The fields this job set that are kept but not acted on (for the outcome's note)."""
        given = self.settings.model_dump(exclude_none=True)
        return [name for name in RECORDED_ONLY if name in given]


def settings_problems(job: Mapping[str, Any]) -> list[str]:
    """Every problem of the job's codeocean_pipeline_settings, each naming its field and the
    fix (empty when they are all usable)."""
    task = (job.get("tasks") or {}).get(PIPELINES_TASK) or {}
    if not isinstance(task, Mapping):
        return [f"tasks.{PIPELINES_TASK} must map each modality to its task"]
    problems: list[str] = []
    for modality, entry in task.items():
        where = f"tasks.{PIPELINES_TASK}.{modality}.job_settings"
        if not isinstance(entry, Mapping):
            problems.append(f"tasks.{PIPELINES_TASK}.{modality} must be an object")
            continue
        if entry.get("skip_task") is True or not entry.get("job_settings"):
            continue
        try:
            PipelineJobSettings.model_validate(entry.get("job_settings") or {})
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                at = f"{where}.{field}" if field else where
                if error["type"] == "extra_forbidden":
                    problems.append(f"{at} is not a setting of this task (a typo?)")
                else:
                    problems.append(f"{at}: {error['msg']}")
    return problems


def modality_pipelines(job: Mapping[str, Any]) -> list[ModalityPipeline]:
    """The pipelines the resolved job asks for, one per modality not skipped, in job order.

    A setting that does not validate is an UploadJobError naming each field (the asset is
    already sealed: the step records it FAILED, the archive is untouched).
    """
    problems = settings_problems(job)
    if problems:
        raise UploadJobError("; ".join(problems))
    task = (job.get("tasks") or {}).get(PIPELINES_TASK) or {}
    found: list[ModalityPipeline] = []
    for modality, entry in task.items():
        if entry.get("skip_task") is True or not entry.get("job_settings"):
            continue  # skipped, or no pipeline named for this modality
        settings = PipelineJobSettings.model_validate(entry.get("job_settings") or {})
        found.append(
            ModalityPipeline(modality=modality, settings=settings.pipeline_monitor_settings)
        )
    return found


class AssetDescription(BaseModel):
    """What the Code Ocean data asset says about the upload: from its data description."""

    model_config = ConfigDict(frozen=True)

    name: str
    subject_id: str = ""
    modalities: tuple[str, ...] = ()
    platform: str = ""
    project_name: str = ""
    data_level: str = "raw"
    description: str = ""

    def tags(self) -> list[str]:
        """Keywords Code Ocean searches by: data level, subject, modalities, platform, and
        `upload-processor` (what this deployment registered)."""
        tags = [self.data_level, self.subject_id, *self.modalities, self.platform, TAG]
        return list(dict.fromkeys(t for t in tags if t))

    def custom_metadata(self) -> dict[str, str]:
        """AIND's custom metadata fields of a data asset (`data level`, `subject id`,
        `modality`, `experiment type`, `project name`): the ones this upload has."""
        fields = {
            "data level": self.data_level,
            "subject id": self.subject_id,
            "modality": ", ".join(self.modalities),
            "experiment type": self.platform,
            "project name": self.project_name,
        }
        return {k: v for k, v in fields.items() if v}


TAG = "upload-processor"


def _abbreviation(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("abbreviation") or value.get("name") or "")
    return str(value or "")


def describe_asset(
    asset_name: str, data_description: Mapping[str, Any], job: Mapping[str, Any]
) -> AssetDescription:
    """The asset's description from its data description (metadata.nd.json's), the job
    filling what it lacks (the platform: aind-data-schema 2 dropped it from the description)."""
    dd, modalities = data_description, data_description.get("modalities") or job.get("modalities")
    return AssetDescription(
        name=asset_name,
        subject_id=str(dd.get("subject_id") or job.get("subject_id") or ""),
        modalities=tuple(m for m in (_abbreviation(x) for x in modalities or []) if m),
        platform=_abbreviation(dd.get("platform") or job.get("platform")),
        project_name=str(dd.get("project_name") or job.get("project_name") or ""),
        data_level=str(dd.get("data_level") or "raw"),
        description=str(dd.get("data_summary") or ""),
    )


def data_asset_link(domain: str, asset_id: str) -> str:
    """Where a person sees the data asset in Code Ocean's web app."""
    return f"{domain.rstrip('/')}/data-assets/{asset_id}"


def run_link(domain: str, run: RunParamsSettings) -> str:
    """Where a person sees the capsule or pipeline (and its runs) in Code Ocean's web app."""
    return f"{domain.rstrip('/')}/capsule/{run.capsule_id or run.pipeline_id}"
