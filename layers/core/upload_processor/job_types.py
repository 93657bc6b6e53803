"""Job types: named presets of `tasks`, and how an upload's own `tasks` override them.

Defaults ship with the code; a deployment adds or overrides presets (SSM, a later issue). The
resolved job is what actually runs: the job type's tasks, then the upload's, field by field.
"""

from __future__ import annotations

import copy
from typing import Any

from upload_processor.errors import UnknownJobTypeError, UploadJobError
from upload_processor.report import Issue
from upload_processor.upload_job import Task, UploadJob

TASK_IDS = (
    "gather_preliminary_metadata",
    "check_s3_folder_exists",
    "modality_transformation_settings",
    "gather_final_metadata",
)
MODALITY_TASKS = ("modality_transformation_settings",)

_GATHER = {"job_settings": {"raise_if_invalid": True}}
_COMPRESS = {"job_settings": {"codec": "zstd", "level": 3}}

DEFAULT_JOB_TYPES: dict[str, dict[str, Any]] = {
    "default": {
        "tasks": {
            "gather_preliminary_metadata": _GATHER,
            "check_s3_folder_exists": {},
            "modality_transformation_settings": _COMPRESS,
            "gather_final_metadata": {},
        }
    },
    "ecephys": {
        "tasks": {
            "gather_preliminary_metadata": _GATHER,
            "check_s3_folder_exists": {},
            "modality_transformation_settings": {"job_settings": {"codec": "zstd", "level": 5}},
            "gather_final_metadata": {},
        }
    },
    "behavior": {
        "tasks": {
            "gather_preliminary_metadata": _GATHER,
            "check_s3_folder_exists": {},
            "modality_transformation_settings": _COMPRESS,
            "gather_final_metadata": {},
        }
    },
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge override into a copy of base, key by key: a nested key overrides only itself."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _task_dict(task: Task) -> dict[str, Any]:
    return task.model_dump(exclude_unset=True)


def resolve(
    job: UploadJob,
    job_types: dict[str, dict[str, Any]] | None = None,
    *,
    file: str = "upload_job.json",
) -> dict[str, Any]:
    """The fully resolved job (JSON-able): every field of the job, tasks merged over the preset.

    Modality-specific tasks resolve to one entry per declared modality.
    """
    presets = job_types if job_types is not None else DEFAULT_JOB_TYPES
    if job.job_type not in presets:
        message = f"unknown job_type {job.job_type!r}; this deployment defines: {', '.join(sorted(presets))}"
        raise UnknownJobTypeError(
            message,
            issues=[
                Issue(
                    severity="error",
                    file=file,
                    field="job_type",
                    rule="job.unknown_job_type",
                    message=message,
                )
            ],
        )
    preset_tasks: dict[str, Any] = presets[job.job_type].get("tasks", {})
    unknown = sorted(set(job.tasks) - set(preset_tasks))
    if unknown:
        issues = [
            Issue(
                severity="error",
                file=file,
                field=f"tasks.{task_id}",
                rule="job.unknown_task",
                message=f"job type {job.job_type!r} has no task {task_id!r}; valid task ids: "
                f"{', '.join(sorted(preset_tasks))}",
            )
            for task_id in unknown
        ]
        raise UploadJobError("; ".join(i.message for i in issues), issues=issues)

    issues = []
    for task_id, override in job.tasks.items():
        if isinstance(override, dict) and task_id not in MODALITY_TASKS:
            issues.append(
                Issue(
                    severity="error",
                    file=file,
                    field=f"tasks.{task_id}",
                    rule="job.task_not_per_modality",
                    message=f"task {task_id!r} is not modality-specific: give one task, not one per modality",
                )
            )
        elif isinstance(override, dict):
            issues += [
                Issue(
                    severity="error",
                    file=file,
                    field=f"tasks.{task_id}.{modality}",
                    rule="job.undeclared_modality",
                    message=f"tasks.{task_id} configures modality {modality!r}, which the job does not declare in "
                    f"modalities ({', '.join(job.modalities)}): add it there or remove this entry",
                )
                for modality in override
                if modality not in job.modalities
            ]
    if issues:
        raise UploadJobError("; ".join(i.message for i in issues), issues=issues)

    tasks: dict[str, Any] = {}
    for task_id, preset in preset_tasks.items():
        override = job.tasks.get(task_id)
        if task_id in MODALITY_TASKS:
            per_modality: dict[str, Any] = {}
            for modality in job.modalities:
                # a per-modality preset without this modality gives it the task's defaults
                base = preset.get(modality, {}) if _is_per_modality(preset) else preset
                if isinstance(override, dict):
                    entry = override.get(modality)
                    merged = deep_merge(base, _task_dict(entry)) if entry is not None else base
                elif isinstance(override, Task):
                    merged = deep_merge(base, _task_dict(override))
                else:
                    merged = copy.deepcopy(base)
                per_modality[modality] = Task.model_validate(merged).model_dump()
            tasks[task_id] = per_modality
        else:
            merged = (
                deep_merge(preset, _task_dict(override)) if isinstance(override, Task) else preset
            )
            tasks[task_id] = Task.model_validate(merged).model_dump()

    # `files` can list tens of thousands of entries: gather reads it from the job file itself,
    # so the execution input stays small.
    resolved = job.model_dump(mode="json", exclude={"tasks", "files"})
    resolved["email_notification_types"] = sorted(job.email_notification_types)
    resolved["tasks"] = tasks
    return resolved


def _is_per_modality(preset: dict[str, Any]) -> bool:
    return bool(preset) and not set(preset) & {"skip_task", "job_settings", "image_version"}
