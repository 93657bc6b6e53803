"""The parameter reference of upload_job.json, generated from the pydantic model.

`docs/upload_job.md` is this module's output (`upload-processor schema upload-job --markdown`)
and a test checks the committed page still matches, so the reference cannot drift from the
model. The examples in it are validated against the JSON Schema by the same test.
"""

from __future__ import annotations

import json
from typing import Any

from upload_processor.domain.codeocean import RECORDED_ONLY
from upload_processor.domain.job_settings import AIND_SETTINGS
from upload_processor.domain.job_types import AIND_TASKS_NOT_RUN, DEFAULT_JOB_TYPES, TASK_IDS
from upload_processor.domain.upload_job import IGNORED_JOB_FIELDS, IGNORED_TASK_FIELDS, UploadJob

MINIMAL_EXAMPLE: dict[str, Any] = {
    "job_type": "default",
    "project_name": "Example Foraging Project",
    "subject_id": "750101",
    "acq_datetime": "2025-06-12T15:03:00-07:00",
    "modalities": ["behavior", "ecephys"],
    "user_email": "scientist@example.org",
}

OVERRIDE_EXAMPLE: dict[str, Any] = {
    **MINIMAL_EXAMPLE,
    "job_type": "ecephys",
    "email_notification_types": ["begin", "end", "fail"],
    "tasks": {
        "modality_transformation_settings": {"ecephys": {"job_settings": {"level": 8}}},
    },
}

FIELD_NOTES = {
    "job_type": "A named preset of tasks (`upload-processor job-types list`); `default` always exists.",
    "project_name": "The project the data belongs to; goes into data_description.",
    "subject_id": "The subject; part of the asset name, so at most 100 bytes, printable "
    '(no control or bidi characters), no `_`, spaces, backticks or `<>:;"/\\|?*{}^%[]~#`.',
    "acq_datetime": "Acquisition start, ISO 8601 with its UTC offset; a naive time takes the "
    "deployment's DefaultTimeZone (and the report says so).",
    "modalities": "Abbreviations (`ecephys`, `behavior`, ...) or `{name, abbreviation}` objects; "
    "one data folder per modality.",
    "platform": "Optional platform abbreviation; prefixes the asset name (the same rules as "
    "subject_id).",
    "user_email": "Where this job's alerts go (subscribe with `upload-processor notifications subscribe`).",
    "email_notification_types": "Subset of begin, end, fail, retry, all; default fail. "
    "`rejected` is always sent.",
    "s3_bucket": "private, open or default (= private): which archive bucket.",
    "tasks": "Per-task overrides of the job type, merged field by field; see below.",
    "files": "Written by `upload-processor submit`: the session's files and sizes; processing "
    "waits for all of them (bounded) before it starts.",
}


TASK_NOTES = {
    "gather_preliminary_metadata": "metadata assembly: `raise_if_invalid` (default true), "
    "`instrument_settings.instrument_id`, `data_description_settings` (tags, group, "
    "restrictions, data_summary, institution, funding_source, investigators), "
    "`metadata_service` (in a stored job type only: an upload may not name it)",
    "check_s3_folder_exists": "refuse an asset that already exists in the archive",
    "modality_transformation_settings": "per modality (`{modality: task}`) or for all: "
    "`codec` (zstd or none; flac or wavpack: the ecephys recordings as audio-codec Zarr, with "
    "`chunk_duration_s`, `lsb_correction` auto/off and `keep_raw`; the `ecephys` job type's "
    "ecephys modality uses flac), `level` (zstd 1-22, flac 0-8, wavpack 1-4); `skip_task` "
    "copies the files as they are",
    "gather_final_metadata": "`verify`: quick (size and S3 checksum, default) or full "
    "(decompress every object and compare with the source's SHA-256)",
    "remove_source_folders": 'opt-in, skipped unless asked for (`{"skip_task": false}`): '
    "once the asset is sealed and every object verified, remove the staged objects it was "
    "made from (data files, metadata files, upload_job.json; never the report), each only "
    "if it still has the ETag that was archived. The staging bucket is versioned: a removed "
    "object stays recoverable as a noncurrent version. The job record's `staging_cleanup` "
    "says what was removed and what was kept",
    "register_data_asset": "on by default: once the asset is sealed, the Catalog state puts "
    "its record (subject, project, modalities, acquisition time, data level, where "
    "`metadata.nd.json` is) in the deployment's catalog (`upload-processor assets search`); "
    '`{"skip_task": true}` here or on `update_docdb_record` skips it. `job_settings.'
    "docdb_version` is accepted (the deployment's CatalogBackend decides where records go)",
    "update_docdb_record": "the same Catalog state as `register_data_asset` (AIND updates its "
    "DocDB record there): skipping either skips the catalog record",
    "get_codeocean_asset_id": "on by default, when the deployment names a Code Ocean "
    "(`CodeOceanDomain`, `CodeOceanTokenSecret`; else recorded SKIPPED): the RegisterCodeOcean "
    "state makes a Code Ocean data asset over the sealed asset (external, nothing copied), "
    "waits until it is ready and records its id; `job_settings.docdb_version` is accepted",
    "codeocean_pipeline_settings": "per modality: `job_settings.pipeline_monitor_settings` "
    "(aind-codeocean-pipeline-monitor's shape). StartPipelines starts `run_params` (exactly one "
    "of `capsule_id` / `pipeline_id`; `version`, `parameters`, `named_parameters`, `processes`, "
    "`nextflow_profile`, `resume_run_id`, more `data_assets`: honoured) with the new data asset "
    "mounted at the asset's name, and records the computation id and a link. Recorded but not "
    "acted on (no monitor job follows the run): "
    + "; ".join(f"`{name}` ({why})" for name, why in RECORDED_ONLY.items())
    + ". A modality without job_settings runs nothing",
}


def _type_of(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return schema["$ref"].split("/")[-1]
    if schema.get("type") == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    if "enum" in schema:
        return ", ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    fmt = f" ({schema['format']})" if "format" in schema else ""
    return str(schema.get("type", "object")) + fmt


_NAMED = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "abbreviation": {"type": "string"}},
    "required": ["abbreviation"],
}


def schema() -> dict[str, Any]:
    """The JSON Schema of upload_job.json: the model's, widened where the parser accepts more
    (modalities and platform as `{name, abbreviation}` objects, as UploadJobConfigsV2 dumps
    them; a null email_notification_types meaning the default; ignored compatibility fields)."""
    out = UploadJob.model_json_schema()
    props = out["properties"]
    props["modalities"]["items"] = {"anyOf": [{"type": "string"}, _NAMED]}
    props["platform"]["anyOf"] = [{"type": "string"}, _NAMED, {"type": "null"}]
    notification = props["email_notification_types"]
    notification.pop("default", None)
    props["email_notification_types"] = {
        "anyOf": [notification, {"type": "null"}],
        "default": ["fail"],
    }
    for name in IGNORED_JOB_FIELDS:
        props[name] = {"description": "accepted for compatibility, ignored"}
    task = out["$defs"]["Task"]
    for name in IGNORED_TASK_FIELDS:
        task["properties"][name] = {"description": "accepted for compatibility, ignored"}
    return out


def _aind_settings() -> list[str]:
    """The section on the settings AIND's own tasks carry: accepted, each ignored for a reason."""
    lines = [
        "## AIND's task settings",
        "",
        "A job file written for aind-data-transfer-service keeps the `job_settings` AIND's "
        "own tasks read (aind-metadata-mapper, aind-data-transformation). Each is removed "
        "before the settings are checked and reported as a `job.setting_ignored` warning "
        "with its reason; any other unknown setting is an error.",
        "",
        "| task | setting | why it is ignored |",
        "|---|---|---|",
    ]
    for task_id, known in AIND_SETTINGS.items():
        lines += [f"| `{task_id}` | `{name}` | {reason} |" for name, reason in known.items()]
    return [*lines, ""]


def markdown() -> str:
    """The reference page: the fields, the tasks, the shipped job types, examples."""
    lines = _field_table(schema()) + _task_list() + ["", *_aind_settings()]
    lines += ["## The shipped job types", "", *_json_block(DEFAULT_JOB_TYPES)]
    lines += _examples()
    return "\n".join(lines)


def _json_block(value: Any) -> list[str]:
    return ["```json", json.dumps(value, indent=2), "```"]


def _field_table(model: dict[str, Any]) -> list[str]:
    """The title, what is accepted for compatibility, and one table row a field."""
    required = set(model.get("required", []))
    lines = [
        "# upload_job.json reference",
        "",
        "Generated from the model by `upload-processor schema upload-job --markdown`; do not edit.",
        "The JSON Schema itself: `upload-processor schema upload-job`.",
        "",
        "Field-compatible with `UploadJobConfigsV2` of aind-data-transfer-service. Its fields "
        f"that this pipeline does not use ({', '.join(IGNORED_JOB_FIELDS)}; in a task: "
        f"{', '.join(IGNORED_TASK_FIELDS)}) are accepted and reported as ignored; any other "
        "unknown field is an error.",
        "",
        "| field | type | required | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, spec in model["properties"].items():
        default = json.dumps(spec["default"]) if "default" in spec else ""
        if name == "email_notification_types":
            default = '["fail"]'
        cells = [
            f"`{name}`",
            _type_of(spec),
            "yes" if name in required else "no",
            default,
            FIELD_NOTES.get(name, spec.get("description", "")),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def _task_list() -> list[str]:
    """The task ids and their settings, then the aind task ids that are accepted, not run."""
    lines = [
        "",
        "## Tasks",
        "",
        "Each task has `skip_task` (default false), `job_settings` (an object) and "
        "`image_version`. Task ids:",
        "",
    ]
    lines += [f"- `{task_id}`: {TASK_NOTES.get(task_id, '')}" for task_id in TASK_IDS]
    return [
        *lines,
        "",
        "aind-data-transfer-service task ids this pipeline does not run (accepted, reported as "
        f"ignored): {', '.join(f'`{t}`' for t in AIND_TASKS_NOT_RUN)}.",
    ]


def _examples() -> list[str]:
    """The minimal job, one override, and where to see a job resolved."""
    return [
        "",
        "## Examples",
        "",
        "The minimal job:",
        "",
        *_json_block(MINIMAL_EXAMPLE),
        "",
        "Overriding one task's setting (the ecephys FLAC level, 0-8) while everything else "
        "comes from the `ecephys` job type:",
        "",
        *_json_block(OVERRIDE_EXAMPLE),
        "",
        "`upload-processor job-types resolve upload_job.json` prints the resolved job and where "
        "each value came from.",
        "",
    ]
