"""upload_job.json: the job request, field-compatible with `UploadJobConfigsV2`.

A job file written for aind-data-transfer-service works here: its fields that we do not use
(the computed `s3_prefix`, a task's `image`, ...) are accepted and reported as ignored; any
other unknown field is an error, because a typo silently dropped is a job silently wrong.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aind_data_schema_models.modalities import Modality
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from upload_processor.domain.job_settings import AIND_SETTINGS
from upload_processor.domain.naming import name_part_problem
from upload_processor.domain.report import Issue
from upload_processor.domain.strict_json import loads_strict
from upload_processor.domain.units import MiB
from upload_processor.errors import ConfigurationError, StrictJsonError, UploadJobError

JOB_FILENAME = "upload_job.json"
MAX_JOB_BYTES = 1 * MiB
MAX_JOB_DEPTH = 100  # nesting levels of objects/arrays; deeper input is refused, not recursed

NotificationType = Literal["begin", "end", "fail", "retry", "all"]

# Fields UploadJobConfigsV2 (and its Task) has that this pipeline does not use.
IGNORED_JOB_FIELDS = ("s3_prefix",)
IGNORED_TASK_FIELDS = ("image", "image_resources", "command_script", "retry_count")

_MODALITIES = {m().abbreviation.lower(): m().abbreviation for m in Modality.ALL}
_FORBIDDEN_NAME_CHARS = set('<>:;"/|? \\_')


class Task(BaseModel):
    """One task's settings, as aind-data-transfer-service's `Task` (the fields we run)."""

    model_config = ConfigDict(extra="forbid")

    skip_task: bool = False
    image_version: str | None = None
    job_settings: dict[str, Any] | None = None


_TASK_KEYS = frozenset({"skip_task", "job_settings", "image_version", *IGNORED_TASK_FIELDS})


def _is_per_modality_task(value: Any) -> bool:
    """A task entry keyed by modality (`{"ecephys": {...}}`) rather than one task's settings."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, dict) for v in value.values())
        and not set(value) & _TASK_KEYS
    )


# One validation branch per entry, chosen up front: a plain union would report an error in
# both branches, with pydantic's branch labels ("Task", "dict[str,Task]") in the field path.
TaskEntry = Annotated[
    Annotated[Task, Tag("task")] | Annotated[dict[str, Task], Tag("per_modality")],
    Discriminator(lambda v: "per_modality" if _is_per_modality_task(v) else "task"),
]


class ListedFile(BaseModel):
    """A file of the session, as `submit` lists it so that processing waits for all of them."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="Path relative to the session folder")
    size: int = Field(ge=0, description="Size in bytes")


_LISTED_FILES: TypeAdapter[list[ListedFile] | None] = TypeAdapter(list[ListedFile] | None)


class UploadJob(BaseModel):
    """The parsed job request; `modalities` and `platform` hold abbreviations."""

    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(min_length=1)
    project_name: str = Field(min_length=1)
    subject_id: str = Field(min_length=1)
    acq_datetime: datetime
    modalities: list[str] = Field(min_length=1)
    platform: str | None = None
    user_email: str | None = None
    email_notification_types: set[NotificationType] = Field(default_factory=lambda: {"fail"})
    s3_bucket: Literal["private", "open", "default"] = "default"
    tasks: dict[str, TaskEntry] = Field(default_factory=dict)
    files: list[ListedFile] | None = Field(
        default=None,
        description=(
            "The session's files with their sizes (written by `upload-processor submit`): "
            "processing waits, bounded, until every one is staged"
        ),
    )

    @field_validator("modalities", mode="before")
    @classmethod
    def _modality_abbreviations(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            abbreviation = item.get("abbreviation") if isinstance(item, dict) else item
            if not isinstance(abbreviation, str):
                raise ValueError(f"a modality must be an abbreviation string, got {item!r}")
            canonical = _MODALITIES.get(abbreviation.lower())
            if canonical is None:
                raise ValueError(
                    f"unknown modality {abbreviation!r}; use one of: {', '.join(sorted(_MODALITIES.values()))}"
                )
            if canonical not in out:
                out.append(canonical)
        return out

    @field_validator("email_notification_types", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        # UploadJobConfigsV2 dumps an unset value as null: it means the default, fail
        return ["fail"] if value is None else value

    @field_validator("acq_datetime", mode="before")
    @classmethod
    def _iso_string(cls, value: Any) -> Any:
        if not isinstance(value, str | datetime):
            raise ValueError(
                "acq_datetime must be an ISO 8601 string with its UTC offset, "
                "e.g. 2025-06-12T15:03:00-07:00"
            )
        return value

    @field_validator("platform", mode="before")
    @classmethod
    def _platform_abbreviation(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = value.get("abbreviation")
        if isinstance(value, str) and (set(value) & _FORBIDDEN_NAME_CHARS or not value):
            raise ValueError(f"platform {value!r} may not contain '_', '/', spaces or <>:;\"|?\\")
        problem = name_part_problem(value) if isinstance(value, str) else None
        if problem:
            raise ValueError(f"platform {value!r} {problem}")
        return value

    @field_validator("subject_id")
    @classmethod
    def _subject_id_in_names(cls, value: str) -> str:
        bad = sorted(set(value) & _FORBIDDEN_NAME_CHARS)
        if bad:
            raise ValueError(
                f"subject_id {value!r} contains {' '.join(repr(c) for c in bad)}; the asset name "
                "is '<subject_id>_<date>_<time>', so the subject id may not contain '_', '/', "
                'spaces or <>:;"|?\\'
            )
        problem = name_part_problem(value)
        if problem:
            raise ValueError(
                f"subject_id {value!r} {problem}; the asset name is '<subject_id>_<date>_<time>'"
            )
        return value

    @field_validator("user_email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is not None and (
            value.count("@") != 1 or value.startswith("@") or "." not in value.split("@")[1]
        ):
            raise ValueError(f"user_email {value!r} is not an email address")
        return value or None


def job_too_large(size: int, file: str = JOB_FILENAME) -> UploadJobError:
    """The rejection of a job file over MAX_JOB_BYTES (Ingest refuses it from its size)."""
    message = (
        f"{file} is {size} bytes; a job file is at most {MAX_JOB_BYTES} bytes (1 MB), so it was "
        "not read. It holds the job's fields only (job_type, project_name, subject_id, "
        "acq_datetime, modalities, tasks, ...): put data and metadata in files of their own"
    )
    return UploadJobError(message, issues=[_issue(file, None, "job.too_large", message)])


_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _load_object(raw: bytes, file: str) -> dict[str, Any]:
    if len(raw) > MAX_JOB_BYTES:
        raise job_too_large(len(raw), file)
    if not raw.strip():
        raise UploadJobError(
            f"{file} is empty",
            issues=[
                _issue(
                    file, None, "job.empty", "the job file is empty; write the job as a JSON object"
                )
            ],
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = (
            f"{file} is not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8 "
            "JSON and upload it again"
        )
        raise UploadJobError(
            message, issues=[_issue(file, None, "job.malformed", message)]
        ) from exc
    try:
        data = loads_strict(text)
        too_deep = _nested_deeper_than(data, MAX_JOB_DEPTH)
    except json.JSONDecodeError as exc:
        message = f"{file} is not valid JSON ({exc}); fix the syntax and upload it again"
        raise UploadJobError(
            message, issues=[_issue(file, None, "job.malformed", message)]
        ) from exc
    except StrictJsonError as exc:
        raise _not_strict(exc, file) from exc
    except RecursionError:  # nested deeper than the JSON parser itself can go
        too_deep = True
    if too_deep:
        message = (
            f"{file} nests objects or arrays more than {MAX_JOB_DEPTH} levels deep; "
            "a job file is an object with a few levels of settings: remove the deep nesting "
            "(see `upload-processor schema upload-job`)"
        )
        raise UploadJobError(message, issues=[_issue(file, None, "job.malformed", message)])
    if not isinstance(data, dict):
        kind = _JSON_KINDS.get(type(data), "a number")
        message = (
            f"{file} holds {kind}, but a job file is one JSON object ({{...}}) with the fields "
            "job_type, project_name, subject_id, acq_datetime and modalities; write it as such"
        )
        raise UploadJobError(message, issues=[_issue(file, None, "job.not_object", message)])
    return data


def _not_strict(exc: StrictJsonError, file: str) -> UploadJobError:
    """One issue per repeated key or NaN/Infinity, each naming its field."""
    issues = []
    for kind, field, detail in exc.problems:
        if kind == "duplicate_key":
            message = (
                f"{file} repeats the key '{detail}' in one object (field '{field}'), so one of "
                "its values would be silently lost; keep a single entry for that key and upload "
                f"{file} again"
            )
            issues.append(_issue(file, field, "job.duplicate_key", message))
        else:
            message = (
                f"{file} holds {detail} at '{field}', which is not a JSON number (Step Functions "
                f"refuses it); write a number or null there and upload {file} again"
            )
            issues.append(_issue(file, field or None, "job.not_finite", message))
    summary = "; ".join(i.message for i in issues)
    return UploadJobError(f"{file} is not valid JSON: {summary}", issues=issues)


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON data nests containers more than limit levels (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _issue(file: str, field: str | None, rule: str, message: str, severity: str = "error") -> Issue:
    return Issue(severity=severity, file=file, field=field, rule=rule, message=message)


def _strip_ignored(data: dict[str, Any], file: str) -> list[Issue]:
    """Remove the UploadJobConfigsV2 fields we accept but do not use, and say so."""
    notes = []
    for name in IGNORED_JOB_FIELDS:
        if name in data:
            data.pop(name)
            notes.append(
                _issue(
                    file,
                    name,
                    "job.field_ignored",
                    f"'{name}' is accepted for compatibility with "
                    "aind-data-transfer-service and ignored here",
                    severity="warning",
                )
            )
    tasks = data.get("tasks")
    if isinstance(tasks, dict):
        for task_id, task in tasks.items():
            entries = [(f"tasks.{task_id}", task)]
            if _is_per_modality_task(task):
                entries = [(f"tasks.{task_id}.{k}", v) for k, v in task.items()]
            for path, entry in entries:
                if not isinstance(entry, dict):
                    continue
                for name in IGNORED_TASK_FIELDS:
                    if name in entry and entry.pop(name) is not None:  # a null is no setting
                        notes.append(
                            _issue(
                                file,
                                f"{path}.{name}",
                                "job.field_ignored",
                                f"task field '{name}' is an aind-data-transfer-service setting this "
                                "pipeline does not use; it is ignored",
                                severity="warning",
                            )
                        )
                notes += _strip_aind_settings(AIND_SETTINGS.get(task_id, {}), entry, path, file)
    return notes


def _strip_aind_settings(
    known: dict[str, str], entry: dict[str, Any], path: str, file: str
) -> list[Issue]:
    """Remove from one task's job_settings the AIND settings it carries, each with its reason."""
    settings = entry.get("job_settings")
    if not isinstance(settings, dict):
        return []
    notes = []
    for name in [n for n in settings if n in known]:
        value = repr(settings.pop(name))
        value = value if len(value) <= 80 else value[:77] + "..."
        notes.append(
            _issue(
                file,
                f"{path}.job_settings.{name}",
                "job.setting_ignored",
                f"'{name}' ({value}) is a setting of AIND's own task; it is ignored here: "
                f"{known[name]}",
                severity="warning",
            )
        )
    return notes


def _apply_time_zone(data: dict[str, Any], default_tz: str | None, file: str) -> list[Issue]:
    value = data.get("acq_datetime")
    if not isinstance(value, str):
        return []
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return []  # the model reports the bad value with its field
    if parsed.tzinfo is not None:
        return []
    if not default_tz:
        message = (
            f"acq_datetime {value!r} has no UTC offset and this deployment has no default time zone; "
            "write it with its offset, e.g. 2025-06-12T15:03:00-07:00 (or deploy with the "
            "DefaultTimeZone parameter; `upload-processor validate --default-tz ZONE` checks a "
            "session as such a deployment would)"
        )
        raise UploadJobError(
            message, issues=[_issue(file, "acq_datetime", "job.naive_datetime", message)]
        )
    try:
        zone = ZoneInfo(default_tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"the deployment's DEFAULT_TIME_ZONE {default_tz!r} is not a time zone"
        ) from exc
    data["acq_datetime"] = parsed.replace(tzinfo=zone).isoformat()
    return [
        _issue(
            file,
            "acq_datetime",
            "job.naive_datetime",
            f"acq_datetime {value!r} has no UTC offset; it was read in the deployment's default time "
            f"zone {default_tz} as {data['acq_datetime']}",
            severity="warning",
        )
    ]


def parse_upload_job(
    raw: bytes, *, file: str = JOB_FILENAME, default_tz: str | None = None
) -> tuple[UploadJob, list[Issue]]:
    """Parse upload_job.json; returns the job and its warnings, or raises UploadJobError.

    The error carries one Issue per problem (each naming the field and the fix), so a
    rejection can list them all at once instead of one per upload attempt.
    """
    data = _load_object(raw, file)
    notes = _strip_ignored(data, file)
    notes += _apply_time_zone(data, default_tz, file)
    try:
        job = UploadJob.model_validate(data)
    except ValidationError as exc:
        issues = [_validation_issue(file, err) for err in exc.errors()]
        summary = "; ".join(f"{i.field or file}: {i.message}" for i in issues)
        raise UploadJobError(f"{file} is not a valid upload job: {summary}", issues=issues) from exc
    _refuse_own_service(job, file)
    return job, notes


def _refuse_own_service(job: UploadJob, file: str) -> None:
    """An upload may not name the metadata service GatherMetadata calls.

    GatherMetadata calls that service with the deployment's network position (and, for the
    registry, its role's credentials): which hosts it may reach is the deployment's choice
    (its MetadataService parameter, or a stored job type), never a staged file's.
    """
    task = job.tasks.get("gather_preliminary_metadata")
    entries = task.items() if isinstance(task, dict) else [("", task)]
    for modality, entry in entries:
        if entry is None or "metadata_service" not in (entry.job_settings or {}):
            continue
        path = "tasks.gather_preliminary_metadata" + (f".{modality}" if modality else "")
        field = f"{path}.job_settings.metadata_service"
        message = (
            f"{field} is set in {file}, but an upload may not choose the metadata service (the "
            "pipeline would call that host with its own access); remove it: the deployment's "
            "MetadataService parameter or a stored job type names the service"
        )
        raise UploadJobError(
            message, issues=[_issue(file, field, "job.forbidden_setting", message)]
        )


def parse_listed_files(raw: bytes, *, file: str = JOB_FILENAME) -> list[ListedFile]:
    """Only the `files` list of a job file that Ingest accepted.

    Ingest checked the rest with the deployment's settings (a naive acq_datetime took the
    default time zone there); parsing the whole file again without them would fail the job.
    """
    data = _load_object(raw, file)
    try:
        return _LISTED_FILES.validate_python(data.get("files")) or []
    except ValidationError as exc:
        issues = [
            _validation_issue(file, {**err, "loc": ("files", *err["loc"])}) for err in exc.errors()
        ]
        summary = "; ".join(f"{i.field}: {i.message}" for i in issues)
        raise UploadJobError(f"{file} is not a valid upload job: {summary}", issues=issues) from exc


def _validation_issue(file: str, err: Any) -> Issue:
    parts = [p for p in err["loc"] if not str(p).startswith(("function-after", "function-before"))]
    if len(parts) > 2 and parts[0] == "tasks" and parts[2] in ("task", "per_modality"):
        del parts[2]  # the TaskEntry branch tag is not a field of the file
    loc = ".".join(str(p) for p in parts)
    kind = err["type"]
    if kind == "extra_forbidden":
        message = f"unknown field '{loc}'; remove it (see `upload-processor schema upload-job`)"
        rule = "job.unknown_field"
    elif kind == "missing":
        message = f"required field '{loc}' is missing; add it"
        rule = "job.missing_field"
    else:
        message = f"{err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})"
        if kind.startswith(("datetime_", "date_")):
            message += (
                f"; write {loc} as an ISO 8601 date and time with its UTC offset, "
                "e.g. 2025-06-12T15:03:00-07:00"
            )
        rule = "job.invalid_field"
    return _issue(file, loc or None, rule, message)
