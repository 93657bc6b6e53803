"""Job types: named presets of `tasks`, and how an upload's own `tasks` override them.

Defaults ship with the code; a deployment adds or overrides presets in SSM Parameter Store, one
JSON document per job type under one prefix (read by `adapters.job_types_store`). The resolved job is what
actually runs: the job type's tasks, then the upload's, merged field by field (a nested
`job_settings` key overrides only itself). `resolve_job` also says where every value came from.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from upload_processor.domain import job_settings
from upload_processor.domain.report import Issue
from upload_processor.domain.upload_job import Task, UploadJob
from upload_processor.errors import UnknownJobTypeError, UploadJobError

TASK_IDS = (
    "gather_preliminary_metadata",
    "check_s3_folder_exists",
    "modality_transformation_settings",
    "gather_final_metadata",
    "remove_source_folders",
    "register_data_asset",
    "update_docdb_record",
    "get_codeocean_asset_id",
    "codeocean_pipeline_settings",
)
MODALITY_TASKS = ("modality_transformation_settings", "codeocean_pipeline_settings")
# Tasks a job must ask for: skipped unless the upload's tasks (or its job type) set
# `"skip_task": false`, even when a job type (say an SSM preset written before the task
# existed) leaves them out. `remove_source_folders` removes the staged session once its asset
# is sealed and verified (upload_processor.pipeline.staging_cleanup).
OPT_IN_TASKS: dict[str, dict[str, Any]] = {"remove_source_folders": {"skip_task": True}}
# Tasks every job type has, run unless skipped, even when a preset (say one stored before the
# task existed) leaves them out: the registration states after Finalize
# (upload_processor.domain.registration.STEP_TASKS).
DEFAULT_ON_TASKS: dict[str, dict[str, Any]] = {
    "register_data_asset": {},
    "update_docdb_record": {},
    # the Code Ocean data asset (when the deployment names a Code Ocean), and each modality's
    # pipeline (run only for a modality whose job_settings name one)
    "get_codeocean_asset_id": {},
    "codeocean_pipeline_settings": {},
}

# Task ids of aind-data-transfer-service (its v1 DAG and UploadJobConfigsV2 2.x) that this
# pipeline does not run (its own steps do the work, or the task is about Code Ocean, DocDB or
# Slurm): accepted in a job file and reported as ignored.
AIND_TASKS_NOT_RUN = (
    "send_job_start_email",
    "check_source_folders_exist",
    "create_folder",
    "create_staging_folder",
    "make_modality_list",
    "compress_data",
    "check_metadata_files",
    "upload_data_to_s3",
    "register_data_asset_to_codeocean",
    "run_codeocean_pipeline",
    "remove_folder",
    "remove_staging_folder",
    "send_job_end_email",
    "final_check_s3_folder_exist",
)

_CLEANUP = {"skip_task": True}  # opt-in: a job asks for it with {"skip_task": false}


def _preset(zstd_level: int) -> dict[str, Any]:
    """A shipped job type: every task on, the staging cleanup opt-in, zstd at `zstd_level`."""
    return {
        "tasks": {
            "gather_preliminary_metadata": {"job_settings": {"raise_if_invalid": True}},
            "check_s3_folder_exists": {},
            "modality_transformation_settings": {
                "job_settings": {"codec": "zstd", "level": zstd_level}
            },
            "gather_final_metadata": {},
            "remove_source_folders": dict(_CLEANUP),
        }
    }


def _ecephys_preset() -> dict[str, Any]:
    """The ecephys job type: the ecephys modality's recordings as FLAC Zarr (issue 15: ~23 %
    smaller than zstd-3 at nearly its speed, and FLAC runs in the Lambda runtime), every other
    modality's files zstd'd at level 5 (most of the bytes: worth the slower level)."""
    preset = _preset(5)
    zstd = preset["tasks"]["modality_transformation_settings"]
    preset["tasks"]["modality_transformation_settings"] = {
        modality: copy.deepcopy(zstd) for modality in ECEPHYS_SESSION_MODALITIES
    } | {"ecephys": {"job_settings": {"codec": "flac"}}}
    return preset


# The modalities an ecephys session usually declares besides ecephys: the ecephys job type
# gives them zstd level 5 (a per-modality preset gives any modality it does not name the
# task's defaults, zstd level 3).
ECEPHYS_SESSION_MODALITIES = ("behavior", "behavior-videos", "ecephys")

DEFAULT_JOB_TYPES: dict[str, dict[str, Any]] = {
    "default": _preset(3),
    "ecephys": _ecephys_preset(),
    "behavior": _preset(3),
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


@dataclass
class Resolution:
    """A resolved job, its warnings (ignored task ids), and where each task value came from."""

    resolved: dict[str, Any]
    notes: list[Issue] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def _leaves(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{prefix}.{key}"))
        return out
    return {prefix: value}


def resolve_job(
    job: UploadJob,
    job_types: dict[str, dict[str, Any]] | None = None,
    *,
    file: str = "upload_job.json",
) -> Resolution:
    """`resolve`, plus the ignored-task warnings and each task value's source: `upload_job.json`
    (an override), `job type <name>` (the preset) or `default` (the Task model's default)."""
    notes = [
        Issue(
            severity="warning",
            file=file,
            field=f"tasks.{task_id}",
            rule="job.task_ignored",
            message=f"task {task_id!r} is an aind-data-transfer-service task this pipeline does not "
            "run; it is ignored",
        )
        for task_id in sorted(job.tasks)
        if task_id in AIND_TASKS_NOT_RUN
    ]
    kept = job.model_copy(
        update={"tasks": {k: v for k, v in job.tasks.items() if k not in AIND_TASKS_NOT_RUN}}
    )
    resolved = resolve(kept, job_types, file=file)
    presets = job_types if job_types is not None else DEFAULT_JOB_TYPES
    preset_tasks = presets[job.job_type].get("tasks", {})
    overrides = {
        task_id: (
            {m: _task_dict(t) for m, t in value.items()}
            if isinstance(value, dict)
            else _task_dict(value)
        )
        for task_id, value in kept.tasks.items()
    }
    override_leaves = _leaves(overrides, "tasks")
    preset_leaves = _leaves(preset_tasks, "tasks")
    sources: dict[str, str] = {}
    for path in _leaves(resolved["tasks"], "tasks"):
        parts = path.split(".")
        # a per-modality task path is tasks.<id>.<modality>.<field...>; its override or preset
        # may be given for all modalities at once (tasks.<id>.<field...>)
        candidates = [path]
        if len(parts) > 2 and parts[1] in MODALITY_TASKS:
            candidates.append(".".join(parts[:2] + parts[3:]))
        if any(c in override_leaves for c in candidates):
            sources[path] = file
        elif any(c in preset_leaves for c in candidates):
            sources[path] = f"job type {job.job_type}"
        else:
            sources[path] = "default"
    return Resolution(resolved=resolved, notes=notes, sources=sources)


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
    _check_job_type(job, presets, file)
    preset_tasks = with_opt_in_tasks(presets[job.job_type].get("tasks", {}))
    _raise_if_any(_unknown_task_issues(job, preset_tasks, file))
    _raise_if_any(_per_modality_issues(job, file))
    tasks: dict[str, Any] = {}
    for task_id, preset in preset_tasks.items():
        override = job.tasks.get(task_id)
        if task_id in MODALITY_TASKS:
            tasks[task_id] = {
                modality: _resolve_modality_task(preset, override, modality)
                for modality in job.modalities
            }
        else:
            merged = (
                deep_merge(preset, _task_dict(override)) if isinstance(override, Task) else preset
            )
            tasks[task_id] = Task.model_validate(merged).model_dump()
    _raise_if_any(job_settings.check_tasks(tasks, file))

    # `files` can list tens of thousands of entries: gather reads it from the job file itself,
    # so the execution input stays small.
    resolved = job.model_dump(mode="json", exclude={"tasks", "files"})
    resolved["email_notification_types"] = sorted(job.email_notification_types)
    resolved["tasks"] = tasks
    return resolved


def _raise_if_any(issues: list[Issue]) -> None:
    """One UploadJobError carrying every issue of a check, so the report lists them all."""
    if issues:
        raise UploadJobError("; ".join(i.message for i in issues), issues=issues)


def _check_job_type(job: UploadJob, presets: dict[str, dict[str, Any]], file: str) -> None:
    """Refuse a job type this deployment does not define, naming the ones it does."""
    if job.job_type in presets:
        return
    message = (
        f"unknown job_type {job.job_type!r}; this deployment defines: {', '.join(sorted(presets))}"
    )
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


def _unknown_task_issues(job: UploadJob, preset_tasks: dict[str, Any], file: str) -> list[Issue]:
    """One error per task id the job type does not have (the ignored AIND ids were removed)."""
    return [
        Issue(
            severity="error",
            file=file,
            field=f"tasks.{task_id}",
            rule="job.unknown_task",
            message=f"job type {job.job_type!r} has no task {task_id!r}; valid task ids: "
            f"{', '.join(sorted(preset_tasks))} (aind-data-transfer-service tasks this "
            f"pipeline does not run are accepted and ignored: {', '.join(AIND_TASKS_NOT_RUN)})",
        )
        for task_id in sorted(set(job.tasks) - set(preset_tasks))
    ]


def _per_modality_issues(job: UploadJob, file: str) -> list[Issue]:
    """Per-modality overrides only for modality tasks, and only for declared modalities."""
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
    return issues


def _resolve_modality_task(preset: dict[str, Any], override: Any, modality: str) -> dict[str, Any]:
    """A modality task for one modality: its preset (per modality or for all), then the job's
    override (per modality or for all) merged over it, validated as a Task."""
    # a per-modality preset without this modality gives it the task's defaults
    base = preset.get(modality, {}) if _is_per_modality(preset) else preset
    if isinstance(override, dict):
        entry = override.get(modality)
        merged = deep_merge(base, _task_dict(entry)) if entry is not None else base
    elif isinstance(override, Task):
        merged = deep_merge(base, _task_dict(override))
    else:
        merged = copy.deepcopy(base)
    return Task.model_validate(merged).model_dump()


def with_opt_in_tasks(preset_tasks: dict[str, Any]) -> dict[str, Any]:
    """A preset's tasks with every opt-in task present, skipped unless the preset says
    otherwise: a job type that leaves one out (or gives it `{}`) never runs it by default; and
    every default-on task present (run unless the preset skips it)."""
    out = dict(preset_tasks)
    for task_id, base in {**DEFAULT_ON_TASKS, **OPT_IN_TASKS}.items():
        out[task_id] = deep_merge(base, preset_tasks.get(task_id) or {})
    return out


def _is_per_modality(preset: dict[str, Any]) -> bool:
    return bool(preset) and not set(preset) & {"skip_task", "job_settings", "image_version"}


def validate_preset(document: Any) -> None:
    """A preset is {"tasks": {task_id: Task or {modality: Task}}} with known task ids."""
    if not isinstance(document, dict) or set(document) - {"tasks", "description"}:
        raise ValueError(
            'a preset is a JSON object {"tasks": {...}} (and an optional "description")'
        )
    tasks = document.get("tasks", {})
    if not isinstance(tasks, dict):
        raise ValueError('"tasks" must be an object')
    unknown = sorted(set(tasks) - set(TASK_IDS))
    if unknown:
        raise ValueError(f"unknown task id(s) {', '.join(unknown)}; valid: {', '.join(TASK_IDS)}")
    for task_id, task in tasks.items():
        entries = task.values() if task_id in MODALITY_TASKS and _is_per_modality(task) else [task]
        for entry in entries:
            Task.model_validate(entry)
            problems = job_settings.check(
                task_id,
                (entry or {}).get("job_settings"),
                f"tasks.{task_id}.job_settings",
                "preset",
            )
            if problems:
                raise ValueError("; ".join(p.message for p in problems))
