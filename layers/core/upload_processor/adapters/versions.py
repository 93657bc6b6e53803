"""Version pinning: which published version of each pipeline function a job's tasks run on.

Every deploy publishes the three pipeline functions (template.yaml: `AutoPublishAlias: live`,
`AutoPublishAliasAllProperties`, the core layer's `PublishLambdaVersion`) and writes the core
package's version into each published Lambda version's description (`VersionDescription:
"upload-processor <CodeVersion>"`). Published versions are retained across deploys, so the
code of every earlier deploy stays runnable.

A task's `image_version` ("v1.1.0" or "1.1.0": a leading v is dropped) pins its function to
the newest published Lambda version carrying that code version; without a pin the task runs
on the alias `live`, i.e. the latest deploy. An unknown version is a `PinError` (an
UploadJobError: ingest rejects the job) that lists the versions available.

Tasks map to functions as the state machine runs them:

- `gather_preliminary_metadata` and `check_s3_folder_exists` → GatherMetadataFunction. The
  existence check is a step of GatherMetadata, not code of its own: it follows
  gather_preliminary_metadata's pin (a pin on either pins the function; two different pins
  are an error).
- `modality_transformation_settings` → TransferFunction. One Map runs every modality's
  batches on one function, so one modality cannot run on another version than the others:
  every modality pins the same version, or none does (anything else is an error, rather than
  silently running the unpinned modalities on the pinned code, or the reverse).
- `gather_final_metadata` → FinalizeFunction (which also runs the Reject and MarkFailed
  steps: a job pinned to a version records its outcome with that version's code).
- `remove_source_folders` (the opt-in staging cleanup, a step of Finalize) → FinalizeFunction
  as well: a pin on either pins the function; two different pins are an error.
- the registration tasks (`register_data_asset`, `update_docdb_record`, the Code Ocean ones:
  upload_processor.domain.registration.STEP_TASKS) → RegisterFunction, which runs every
  registration state after Finalize (Catalog ... Announce).

Ingest writes the resolved ARNs into the execution input (`functions`: {"gather",
"transfer", "finalize", "registration"}) and every Lambda task of the state machine invokes
`$.functions.<role>`. `upload-processor versions` lists what each function has published.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from upload_processor.domain.report import Issue
from upload_processor.errors import ConfigurationError, PinError

ALIAS = "live"  # template.yaml: AutoPublishAlias of the pipeline functions
DESCRIPTION_PREFIX = "upload-processor "  # template.yaml: VersionDescription
ROLES = ("gather", "transfer", "finalize", "registration")
LOGICAL_IDS = {
    "gather": "GatherMetadataFunction",
    "transfer": "TransferFunction",
    "finalize": "FinalizeFunction",
    "registration": "RegisterFunction",
}
TASK_FUNCTIONS = {
    "gather_preliminary_metadata": "gather",
    "check_s3_folder_exists": "gather",
    "modality_transformation_settings": "transfer",
    "gather_final_metadata": "finalize",
    "remove_source_folders": "finalize",
    "register_data_asset": "registration",
    "update_docdb_record": "registration",
    "register_data_asset_to_codeocean": "registration",
    "get_codeocean_asset_id": "registration",
    "codeocean_pipeline_settings": "registration",
    "run_codeocean_pipeline": "registration",
}
_FILE = "upload_job.json"


@dataclass(frozen=True)
class PublishedVersion:
    """One published Lambda version of a pipeline function."""

    version: str  # Lambda's version number, "1", "2", ...
    arn: str  # the qualified ARN (function:<name>:<version>)
    code_version: str | None  # the core package version it carries (None: not ours)
    description: str = ""
    last_modified: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def normalise_version(value: str) -> str:
    """ "v1.1.0", "V1.1.0", " 1.1.0 " → "1.1.0" (image tags carry a v, package versions not)."""
    text = value.strip()
    if len(text) > 1 and text[0] in "vV" and text[1].isdigit():
        text = text[1:]
    return text


def code_version_of(description: str | None) -> str | None:
    """The code version a published version's description records, or None."""
    match = re.fullmatch(re.escape(DESCRIPTION_PREFIX.strip()) + r"\s+(\S+)\s*", description or "")
    return normalise_version(match.group(1)) if match else None


def version_description(code_version: str) -> str:
    """The description a deploy gives a published version (template.yaml VersionDescription)."""
    return f"{DESCRIPTION_PREFIX}{code_version}"


def list_versions(lambda_client: Any, function_name: str) -> list[PublishedVersion]:
    """The function's published versions (not $LATEST), oldest first."""
    out = []
    paginator = lambda_client.get_paginator("list_versions_by_function")
    for page in paginator.paginate(FunctionName=function_name):
        for entry in page.get("Versions", []):
            if entry.get("Version") == "$LATEST":
                continue
            out.append(
                PublishedVersion(
                    version=str(entry["Version"]),
                    arn=entry["FunctionArn"],
                    code_version=code_version_of(entry.get("Description")),
                    description=entry.get("Description") or "",
                    last_modified=entry.get("LastModified") or "",
                )
            )
    return sorted(out, key=lambda v: int(v.version) if v.version.isdigit() else -1)


def alias_arn(lambda_client: Any, function_name: str, alias: str = ALIAS) -> str:
    """The ARN of the function's alias (what an unpinned task runs on)."""
    try:
        return lambda_client.get_alias(FunctionName=function_name, Name=alias)["AliasArn"]
    except lambda_client.exceptions.ResourceNotFoundException as exc:
        raise ConfigurationError(
            f"function {function_name} has no alias {alias!r}: deploy template.yaml, whose "
            f"pipeline functions publish a version and point {alias!r} at it (AutoPublishAlias)"
        ) from exc


@dataclass(frozen=True)
class Pin:
    """The version one function is pinned to, and which task fields asked for it."""

    version: str  # normalised
    given: str  # as written
    fields: tuple[str, ...]


def task_pins(resolved_job: Mapping[str, Any], *, file: str = _FILE) -> dict[str, Pin]:
    """{role: Pin} for the functions the resolved job's tasks pin; raises PinError when pins
    that must agree do not (see the module docstring)."""
    tasks = resolved_job.get("tasks") or {}
    by_role: dict[str, list[tuple[str, str]]] = {}  # role -> [(field, image_version)]
    issues: list[Issue] = []
    for task_id, role in TASK_FUNCTIONS.items():
        task = tasks.get(task_id)
        if not isinstance(task, Mapping):
            continue
        if task_id == "modality_transformation_settings" and not _is_task(task):
            entries = {m: t for m, t in task.items() if isinstance(t, Mapping)}
            pins = {m: _pin(t) for m, t in entries.items()}
            given = {m: v for m, v in pins.items() if v is not None}
            if given and (
                len(given) != len(pins) or len({normalise_version(v) for v in given.values()}) > 1
            ):
                listed = ", ".join(f"{m}: {pins[m] or 'none'}" for m in sorted(pins))
                issues.append(
                    Issue(
                        severity="error",
                        file=file,
                        field=f"tasks.{task_id}",
                        rule="job.mixed_version_pins",
                        message=f"tasks.{task_id} pins image_version per modality ({listed}); "
                        "every modality's files are transferred by one function in one Map, so "
                        "pin all modalities to the same version, or none (give image_version "
                        "once for the whole task)",
                    )
                )
                continue
            if given:
                by_role.setdefault(role, []).extend(
                    (f"tasks.{task_id}.{m}.image_version", v) for m, v in sorted(given.items())
                )
        else:
            value = _pin(task)
            if value is not None:
                by_role.setdefault(role, []).append((f"tasks.{task_id}.image_version", value))
    out: dict[str, Pin] = {}
    for role, entries in by_role.items():
        versions = {normalise_version(v) for _, v in entries}
        if len(versions) > 1:
            listed = ", ".join(f"{f} = {v!r}" for f, v in entries)
            issues.append(
                Issue(
                    severity="error",
                    file=file,
                    field=entries[0][0].rsplit(".", 1)[0],
                    rule="job.conflicting_version_pins",
                    message=f"{listed}: these tasks run in the same function "
                    f"({LOGICAL_IDS[role]}), so they cannot run on different versions; pin "
                    "them to the same version, or pin one of them",
                )
            )
            continue
        out[role] = Pin(
            version=versions.pop(), given=entries[0][1], fields=tuple(f for f, _ in entries)
        )
    if issues:
        raise PinError("; ".join(i.message for i in issues), issues=issues)
    return out


def _is_task(value: Mapping[str, Any]) -> bool:
    return bool(set(value) & {"skip_task", "job_settings", "image_version"}) or not value


def _pin(task: Mapping[str, Any]) -> str | None:
    value = task.get("image_version")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value)


def resolve_pins(
    resolved_job: Mapping[str, Any],
    lambda_client: Any,
    function_names: Mapping[str, str],
    *,
    file: str = _FILE,
) -> dict[str, str]:
    """{"gather", "transfer", "finalize", "registration": the function ARN each step invokes}.

    A pinned function: the qualified ARN of its newest published version carrying the pinned
    code version. Otherwise: its alias `live`. Raises PinError (naming the task and listing
    the available versions) when a pin matches no published version.
    """
    pins = task_pins(resolved_job, file=file)
    out: dict[str, str] = {}
    issues: list[Issue] = []
    for role in ROLES:
        name = function_names[role]
        pin = pins.get(role)
        if pin is None:
            out[role] = alias_arn(lambda_client, name)
            continue
        published = list_versions(lambda_client, name)
        matches = [v for v in published if v.code_version == pin.version]
        if matches:
            out[role] = matches[-1].arn
            continue
        available = available_code_versions(published)
        choices = ", ".join(f"v{v}" for v in available) if available else "none published"
        issues.append(
            Issue(
                severity="error",
                file=file,
                field=pin.fields[0],
                rule="job.unknown_version",
                message=f"{' and '.join(pin.fields)} = {pin.given!r}: no published version of "
                f"{LOGICAL_IDS[role]} carries code version {pin.version}; available: {choices} "
                "(`upload-processor versions` lists them); pin one of these, or remove "
                "image_version to run the latest",
            )
        )
    if issues:
        raise PinError("; ".join(i.message for i in issues), issues=issues)
    return out


def available_code_versions(published: list[PublishedVersion]) -> list[str]:
    """The distinct code versions, in the order they were first published."""
    seen: list[str] = []
    for version in published:
        if version.code_version and version.code_version not in seen:
            seen.append(version.code_version)
    return seen


def describe(lambda_client: Any, function_names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Per pipeline function: its tasks, its published versions and where `live` points."""
    out = []
    for role in ROLES:
        name = function_names[role]
        published = list_versions(lambda_client, name)
        try:
            alias = lambda_client.get_alias(FunctionName=name, Name=ALIAS)
            live: str | None = str(alias["FunctionVersion"])
        except lambda_client.exceptions.ResourceNotFoundException:
            live = None
        out.append(
            {
                "function": role,
                "logical_id": LOGICAL_IDS[role],
                "name": name,
                "tasks": [t for t, r in TASK_FUNCTIONS.items() if r == role],
                "alias": {"name": ALIAS, "version": live},
                "code_versions": available_code_versions(published),
                "versions": [v.to_dict() | {"live": v.version == live} for v in published],
            }
        )
    return out
