"""Validation against aind-data-schema 2.9.2: one file on its own, and the whole as Metadata.

Every pydantic error becomes one issue naming the file, the dotted field and a fix a scientist
can act on, instead of pydantic's wording.

Rules: ``json.wrong_type``: a document of another core type (its ``object_type``, e.g. a
Subject saved as ``acquisition_x.json``): one error naming the file to rename, instead of
every field of the wrong model. ``json.not_metadata``: a file named like a core type that is
not metadata at all (an object_type of no core type, or no object_type, no schema_version and
few of the model's required fields): one error saying to rename it. ``schema.invalid``: the file does not validate on its own (an
unknown field is one of these: every aind-data-schema model forbids extra fields).
``schema.version_mismatch``: the file declares a ``schema_version`` of another major version
than the model's (``schema.version_older`` / ``schema.version_newer``: same major, a warning).
``metadata.invalid``: the whole does not validate as ``Metadata`` (merge rule 4).
"""

from __future__ import annotations

from typing import Any

from aind_data_schema.core.acquisition import Acquisition
from aind_data_schema.core.data_description import DataDescription
from aind_data_schema.core.instrument import Instrument
from aind_data_schema.core.metadata import Metadata
from aind_data_schema.core.model import Model
from aind_data_schema.core.procedures import Procedures
from aind_data_schema.core.processing import Processing
from aind_data_schema.core.quality_control import QualityControl
from aind_data_schema.core.subject import Subject
from pydantic import BaseModel, ValidationError

from upload_processor.domain.report import Issue
from upload_processor.metadata.files import EXTRA_SEPARATOR
from upload_processor.metadata.library_log import library_crash, library_issues, library_output
from upload_processor.metadata.wording import SCHEMA, join, preview, sentence

MODELS: dict[str, type[BaseModel]] = {
    "instrument": Instrument,
    "acquisition": Acquisition,
    "subject": Subject,
    "procedures": Procedures,
    "data_description": DataDescription,
    "processing": Processing,
    "quality_control": QualityControl,
    "model": Model,
}


def validate_file(label: str, data: dict, core_type: str, issues: list[Issue]) -> BaseModel | None:
    """Validate one file on its own; errors name the file and the dotted field."""
    if not check_object_type(label, data, core_type, issues):
        return None
    model = MODELS[core_type]
    version_ok = check_schema_version(label, data, model, issues)
    validated = None
    with library_output() as said, library_crash([label], f"reading {label}", issues):
        try:
            validated = model.model_validate(data)
        except ValidationError as exc:
            issues.extend(validation_issues(exc, label, model.__name__))
    issues.extend(library_issues(said, label, None))
    return validated if version_ok else None


def _object_type(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("object_type")
    return field.default if field is not None and isinstance(field.default, str) else None


def check_object_type(label: str, data: dict, core_type: str, issues: list[Issue]) -> bool:
    """A document must declare its file's ``object_type``, if it declares one of a core type.

    One declaring another core type's object_type is in the wrong file: one
    ``json.wrong_type`` error naming the file to rename it to (validating it against the
    file's model would list every field as wrong). An object_type of no core type is left to
    the model's own validation.
    """
    declared = data.get("object_type")
    expected = _object_type(MODELS[core_type])
    if expected is None or declared == expected:
        return True
    staged = EXTRA_SEPARATOR not in label  # a document from a service has no name to change
    if not isinstance(declared, str):
        return not staged or _looks_like(label, data, core_type, issues)
    actual = next((t for t, m in MODELS.items() if _object_type(m) == declared), None)
    if actual is None and (not staged or _other_major(data, MODELS[core_type])):
        return True  # the model's validation, or the version policy (1.x "Rig"), says why
    if actual is None:
        issues.append(_not_metadata(label, core_type, f"its object_type is {preview(declared)}"))
        return False
    issues.append(
        Issue(
            severity="error",
            file=label,
            field="object_type",
            rule="json.wrong_type",
            message=(
                f"{label} holds a {declared} document (object_type {declared!r}), but a file "
                f"named {core_type}*.json must hold {expected} metadata (object_type "
                f"{expected!r}). Rename it to {actual}.json if it is the session's {actual}, or "
                f"replace it with the {expected} file."
            ),
        )
    )
    return False


def _other_major(data: dict, model: type[BaseModel]) -> bool:
    """The document declares a schema_version of another major version than the model's."""
    theirs = _version(data.get("schema_version"))
    ours = _version(model.model_fields["schema_version"].default)
    return theirs is not None and ours is not None and theirs[0] != ours[0]


def _looks_like(label: str, data: dict, core_type: str, issues: list[Issue]) -> bool:
    """A document without ``object_type`` is read as the file's type unless it is plainly not
    one: no ``schema_version`` and at most half of the model's required fields. Such a file is
    data whose name happens to start with a core type (``instrument_calibration_notes.json``):
    one ``json.not_metadata`` error, instead of one "required field" error per field.
    """
    model = MODELS[core_type]
    required = [name for name, info in model.model_fields.items() if info.is_required()]
    present = [name for name in required if name in data]
    if "schema_version" in data or not required or len(present) * 2 > len(required):
        return True
    has = f"only {join(present)}" if present else "none"
    issues.append(
        _not_metadata(
            label,
            core_type,
            f"it has no object_type nor schema_version, and {has} of the {model.__name__}'s "
            f"required fields ({join(required)})",
        )
    )
    return False


def _not_metadata(label: str, core_type: str, why: str) -> Issue:
    name = MODELS[core_type].__name__
    article = "an" if name[0] in "AEIOU" else "a"
    return Issue(
        severity="error",
        file=label,
        field=None,
        rule="json.not_metadata",
        message=(
            f"{label} is not {article} {name}: {why}. A JSON file at the session's top level "
            f"whose name starts with '{core_type}' is read as {name} metadata. If it is data "
            f"(notes, settings, a calibration), rename it so that its name does not start with "
            f"a core type (e.g. notes_{label}) or move it into a folder; if it is the session's "
            f"{name}, write it with {SCHEMA} (object_type {_object_type(MODELS[core_type])!r})."
        ),
    )


def _version(value: Any) -> tuple[int, ...] | None:
    parts = value.split(".") if isinstance(value, str) else []
    return (
        tuple(int(p) for p in parts)
        if len(parts) == 3 and all(p.isdigit() for p in parts)
        else None
    )


def check_schema_version(
    label: str, data: dict, model: type[BaseModel], issues: list[Issue]
) -> bool:
    """The version policy: the library reads every file of its own major version.

    aind-data-schema validates older 2.x documents on purpose (and relabels them with its own
    version), so a file of the same major version is accepted: an older minor/patch with a
    note (``schema.version_older``), a newer one with a warning (``schema.version_newer``: a
    field it adds would be refused as unknown). Another major version, or no version at all, is
    ``schema.version_mismatch``, whose fix names the upgrade path. A missing schema_version is
    accepted (the library fills it in). A document the metadata service returned is never the
    user's to fix: its entries say where it came from and what the operator can do.
    """
    if "schema_version" not in data:
        return True
    expected = model.model_fields["schema_version"].default
    declared = data["schema_version"]
    theirs, ours = _version(declared), _version(expected)
    if declared == expected or ours is None:
        return True
    name = model.__name__
    a_name = f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"
    from_service = EXTRA_SEPARATOR in label
    same_major = theirs is not None and theirs[0] == ours[0]
    if same_major and theirs < ours:
        rule, severity = "schema.version_older", "warning"
        message = (
            f"Note: {label} is {a_name} of schema version {declared}, older than {SCHEMA}'s "
            f"{expected}; the library reads it (same major version) and the asset records it "
            f"as {expected}."
        )
    elif same_major:
        rule, severity = "schema.version_newer", "warning"
        message = (
            f"{label} is {a_name} of schema version {declared}, newer than {SCHEMA}'s "
            f"{expected}: it was checked with the older rules, and a field the newer version "
            "adds would be refused as unknown. Upgrade the deployment's aind-data-schema to read "
            "it as written."
        )
    else:
        rule, severity = "schema.version_mismatch", "error"
        message = (
            f"{label} declares schema_version {preview(declared)}, but {SCHEMA} reads {name} "
            f"files of major version {ours[0]} ({expected}) only. "
            + (
                f"Upgrade the file to {expected} (AIND's aind-metadata-upgrader converts 1.x "
                f"documents), or write it again with {SCHEMA}."
                if theirs is None or theirs[0] < ours[0]
                else f"It was written by a newer aind-data-schema: the deployment must be "
                f"upgraded to read it, or write the file with {SCHEMA}."
            )
        )
    if from_service:
        message += (
            " This document came from the metadata service, not from the session: the "
            "operator updates the service's record or the deployment's aind-data-schema."
        )
    issues.append(
        Issue(severity=severity, file=label, field="schema_version", rule=rule, message=message)
    )
    return severity != "error"


def validation_issues(
    exc: ValidationError, file: str | None, model_name: str, rule: str = "schema.invalid"
) -> list[Issue]:
    """One issue per pydantic error, each with a message a scientist can act on."""
    issues = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err.get("loc", ())]
        issues.append(
            Issue(
                severity="error",
                file=file,
                field=".".join(loc) or None,
                rule=rule,
                message=_describe(err, loc, file, model_name),
            )
        )
    return issues


def _describe(err: Any, loc: list[str], file: str | None, model_name: str) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    where = file or "the metadata"
    last = loc[-1] if loc else model_name
    if kind == "missing":
        return (
            f"Required field '{last}' is missing. Add it to {where}; see the {model_name} model "
            f"of {SCHEMA} for what it holds."
        )
    if kind == "extra_forbidden":
        return (
            f"Unknown field '{last}' (value {preview(err.get('input'))}) in {where}: "
            f"{SCHEMA}'s {model_name} does not define it. Remove it or correct its spelling."
        )
    if kind in ("value_error", "assertion_error"):
        fix = f"Correct {file}" if file else "Make the metadata files consistent with each other"
        return (
            f"{sentence(_check_detail(err, msg))} {fix} so that this check passes "
            f"({model_name}, {SCHEMA})."
        )
    return (
        f"{msg} (got {preview(err.get('input'))}). Correct this value in {where} "
        f"({model_name}, {SCHEMA})."
    )


def _check_detail(err: Any, msg: str) -> str:
    """The text of a failed validator; the library sometimes raises ValueError(list)."""
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, BaseException) and cause.args and isinstance(cause.args[0], list):
        return "; ".join(" ".join(str(part).split()) for part in cause.args[0])
    detail = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return " ".join(detail.split())


def validate_metadata(
    models: dict[str, BaseModel],
    asset_name: str,
    location: str,
    issues: list[Issue],
    files: list[str] | None = None,
) -> dict | None:
    """Merge rule 4: the merged result, with every other file, must validate as one Metadata.

    Built from the validated models, never from dicts: given dicts, Metadata only *warns*
    about an invalid core file and constructs it unvalidated. Its errors are
    ``metadata.invalid``; the result is the JSON dump, or None. ``files`` (the sources) are
    named if the library crashes.
    """
    dumped = None
    doing = "validating the whole asset as Metadata"
    with library_output() as said, library_crash(files or [], doing, issues):
        try:
            metadata = Metadata(name=asset_name, location=location, **models)
        except ValidationError as exc:
            metadata = None
            issues.extend(validation_issues(exc, None, "Metadata", rule="metadata.invalid"))
        dumped = metadata.model_dump(mode="json") if metadata is not None else None
    issues.extend(library_issues(said, None, "while validating the whole asset"))
    return dumped
