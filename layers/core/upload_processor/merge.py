"""Metadata assembly: from the staged metadata files to one validated ``Metadata``.

GatherMetadata hands us the raw bytes of every metadata file at the session root. We parse
each one, validate it on its own against its aind-data-schema 2.9.2 model, merge the
per-instrument ``instrument*.json`` / ``acquisition*.json`` files with the library's own ``+``
(merge rules, DESIGN.md), and finally validate the whole as ``Metadata``. Every problem becomes
an :class:`~upload_processor.report.Issue` that names the file, the field, a stable rule id and
a fix, instead of an exception or a log line, because an invalid session is a result to report
to a scientist, not a crash.

The library talks through ``logging`` and ``warnings`` too (a duplicated device is only
logged, a name/time mismatch only warned); those are captured while we call it and become
``library.warning`` issues, so nothing it says is lost in CloudWatch noise.

Not thread-safe: ``warnings.catch_warnings`` and the temporary logger changes are process-wide.
Lambda runs one invocation per process at a time, and local mode serialises invocations.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from aind_data_schema.core.acquisition import Acquisition, ExternalDataStream
from aind_data_schema.core.data_description import DataDescription
from aind_data_schema.core.instrument import Instrument
from aind_data_schema.core.metadata import Metadata
from aind_data_schema.core.model import Model
from aind_data_schema.core.procedures import Procedures
from aind_data_schema.core.processing import Processing
from aind_data_schema.core.quality_control import QualityControl
from aind_data_schema.core.subject import Subject
from pydantic import BaseModel, ValidationError

from upload_processor.report import REPORT_FILENAME, Issue, MergedFrom

CORE_TYPES: tuple[str, ...] = (
    "instrument",
    "acquisition",
    "subject",
    "procedures",
    "data_description",
    "processing",
    "quality_control",
    "model",
)

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

# Types whose several files are combined with the library's "+" (merge rule 1). The others
# must come as one file: the report's merged_from only records these two.
MERGEABLE_TYPES: tuple[str, ...] = ("instrument", "acquisition")

# What a raw data asset must carry. aind-data-schema's Metadata only *warns* when a file of
# its "subject" file set is missing; an upload that really rejects treats them as required.
# The instrument is not needed when every acquisition stream is an ExternalDataStream.
REQUIRED_TYPES: tuple[str, ...] = (
    "data_description",
    "subject",
    "procedures",
    "acquisition",
    "instrument",
)

JOB_FILENAME = "upload_job.json"
NEVER_METADATA: frozenset[str] = frozenset({JOB_FILENAME, REPORT_FILENAME})

# Longest first, so that a type that is a prefix of another could never steal its files.
_TYPES_LONGEST_FIRST = tuple(sorted(CORE_TYPES, key=len, reverse=True))
_LIBRARY_LOGGER = "aind_data_schema"
_SCHEMA = "aind-data-schema 2.9.2"


def metadata_type_of(relative_path: str) -> str | None:
    """The core type a staged file holds, or None when the file is data.

    Metadata files are JSON files at the session root whose name starts with a core type
    (DESIGN.md, "Contracts"); anything in a subfolder is data, even ``ecephys/settings.json``.
    The job file and our own report are never metadata, though they sit at the root.
    """
    if "/" in relative_path or "\\" in relative_path:
        return None
    if relative_path in NEVER_METADATA or not relative_path.endswith(".json"):
        return None
    for core_type in _TYPES_LONGEST_FIRST:
        if relative_path.startswith(core_type):
            return core_type
    return None


@dataclass
class Assembly:
    """Everything assemble() found: merged core files, provenance, issues, the Metadata.

    ``core`` holds a JSON-able dict per core type that validated (merged where several files
    were given), even when other types failed, so a report can show what did work.
    ``metadata`` is the full ``Metadata`` dump only when there is no error at all.
    """

    core: dict[str, dict] = field(default_factory=dict)
    merged_from: MergedFrom = field(default_factory=MergedFrom)
    issues: list[Issue] = field(default_factory=list)
    metadata: dict | None = None

    @property
    def errors(self) -> list[Issue]:
        """The issues that make the session invalid."""
        return [i for i in self.issues if i.severity == "error"]


def assemble(files: dict[str, bytes], *, asset_name: str, location: str | None = None) -> Assembly:
    """Parse, validate, merge and validate as a whole the session's metadata files.

    ``files`` maps a root-relative filename to its raw bytes; names that are not metadata
    (see metadata_type_of) are skipped, so callers may pass every root file. ``location``
    becomes ``Metadata.location`` (required by the model); until the asset is archived the
    placeholder ``pending://<asset_name>`` stands in, and the metadata writer replaces it.
    """
    result = Assembly()
    groups = _group(files)
    models: dict[str, BaseModel] = {}

    for core_type in CORE_TYPES:
        names = groups.get(core_type)
        if not names:
            continue
        names = _pick_files(core_type, names, result.issues)
        if len(names) > 1 and core_type not in MERGEABLE_TYPES:
            result.issues.append(_multiple_files_issue(core_type, names))
            continue
        if core_type in MERGEABLE_TYPES:
            setattr(result.merged_from, core_type, list(names))

        validated: dict[str, BaseModel] = {}
        for name in names:
            model = _load(name, files[name], MODELS[core_type], result.issues)
            if model is not None:
                validated[name] = model
        if len(validated) != len(names):
            continue  # a broken file: merging the rest would report a misleading whole
        merged = _merge(core_type, validated, result.issues)
        if merged is not None:
            models[core_type] = merged

    _check_required(groups, models, result.issues)

    for core_type, model in models.items():
        with _library_output() as said:
            result.core[core_type] = model.model_dump(mode="json")
        result.issues.extend(_library_issues(said, None, f"while writing {core_type}"))

    if not _has_errors(result.issues):
        result.metadata = _validate_whole(
            models, asset_name, location or f"pending://{asset_name}", result.issues
        )
    return result


# --------------------------------------------------------------------------- grouping


def _group(files: dict[str, bytes]) -> dict[str, list[str]]:
    """Metadata filenames by core type, each list sorted (merge order must not vary)."""
    groups: dict[str, list[str]] = {}
    for name in files:
        core_type = metadata_type_of(name)
        if core_type is not None:
            groups.setdefault(core_type, []).append(name)
    return {core_type: sorted(names) for core_type, names in groups.items()}


def _pick_files(core_type: str, names: list[str], issues: list[Issue]) -> list[str]:
    """Merge rule 1: an exact ``<type>.json`` wins; the others are ignored, with a warning."""
    exact = f"{core_type}.json"
    if exact not in names or len(names) == 1:
        return names
    for name in names:
        if name != exact:
            issues.append(
                Issue(
                    severity="warning",
                    file=name,
                    rule="merge.exact_name_wins",
                    message=(
                        f"{name} was ignored because {exact} is present and an exact "
                        f"{exact} wins over {core_type}_*.json files. If {name} should count, "
                        f"fold its content into {exact} or remove {exact} so the files merge."
                    ),
                )
            )
    return [exact]


def _multiple_files_issue(core_type: str, names: list[str]) -> Issue:
    """Only instrument and acquisition files are merged; other types must be one file."""
    listed = ", ".join(names)
    return Issue(
        severity="error",
        file=names[0],
        rule="merge.multiple_files",
        message=(
            f"Found several {core_type} files ({listed}) and no {core_type}.json. Only "
            f"instrument and acquisition files are merged; combine these into a single "
            f"{core_type}.json (an exact {core_type}.json wins over the others)."
        ),
    )


# --------------------------------------------------------------------------- one file


class _DuplicateKeyError(ValueError):
    """A JSON object repeats a key (json.loads would silently keep the last one)."""


class _NonFiniteError(ValueError):
    """NaN / Infinity: not JSON, and not storable in the metadata database."""


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKeyError(key)
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise _NonFiniteError(name)


def _parse(name: str, raw: bytes, issues: list[Issue]) -> dict | None:
    """Bytes to a JSON object, or None with an error issue saying exactly what is wrong."""

    def error(rule: str, message: str) -> None:
        issues.append(Issue(severity="error", file=name, rule=rule, message=message))

    if not raw.strip():
        error(
            "json.empty",
            f"{name} is empty. Upload the complete file (a JSON object), or delete it if it "
            "was written by mistake.",
        )
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        error(
            "json.malformed",
            f"{name} is not UTF-8 text (invalid byte at offset {exc.start}). Save it as UTF-8 "
            "JSON.",
        )
        return None
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
        )
    except _DuplicateKeyError as exc:
        error(
            "json.duplicate_key",
            f"{name} repeats the key '{exc.args[0]}' inside one object, so one of the values "
            "would be silently lost. Keep a single entry for that key.",
        )
        return None
    except _NonFiniteError as exc:
        error(
            "json.malformed",
            f"{name} contains {exc.args[0]}, which is not valid JSON. Use a number or null.",
        )
        return None
    except json.JSONDecodeError as exc:
        error(
            "json.malformed",
            f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            "Fix the syntax (a JSON validator or `python -m json.tool` shows the spot).",
        )
        return None
    if not isinstance(data, dict):
        error(
            "json.not_object",
            f"{name} holds a JSON {_json_kind(data)}, but a metadata file must be one JSON "
            "object ({...}) as aind-data-schema writes it.",
        )
        return None
    return data


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _load(name: str, raw: bytes, model: type[BaseModel], issues: list[Issue]) -> BaseModel | None:
    """Parse and validate one file on its own; errors name the file and the dotted field."""
    data = _parse(name, raw, issues)
    if data is None:
        return None
    with _library_output() as said:
        try:
            validated = model.model_validate(data)
        except ValidationError as exc:
            validated = None
            issues.extend(_validation_issues(exc, name, model.__name__))
    issues.extend(_library_issues(said, name, None))
    return validated


def _validation_issues(
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
            f"of {_SCHEMA} for what it holds."
        )
    if kind == "extra_forbidden":
        return (
            f"Unknown field '{last}' (value {_preview(err.get('input'))}): {_SCHEMA}'s "
            f"{model_name} does not define it. Remove it or correct its spelling."
        )
    if kind in ("value_error", "assertion_error"):
        fix = f"Correct {file}" if file else "Make the metadata files consistent with each other"
        return (
            f"{_sentence(_check_detail(err, msg))} {fix} so that this check passes "
            f"({model_name}, {_SCHEMA})."
        )
    return (
        f"{msg} (got {_preview(err.get('input'))}). Correct this value in {where} "
        f"({model_name}, {_SCHEMA})."
    )


def _check_detail(err: Any, msg: str) -> str:
    """The text of a failed validator; the library sometimes raises ValueError(list)."""
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, BaseException) and cause.args and isinstance(cause.args[0], list):
        return "; ".join(" ".join(str(part).split()) for part in cause.args[0])
    detail = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return " ".join(detail.split())


def _sentence(text: str) -> str:
    """End a message taken from the library with a full stop, so ours can follow it."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _preview(value: Any, limit: int = 80) -> str:
    """A short, single-line rendering of an offending value."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- merging


def _merge(core_type: str, validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """Fold the files with the library's ``+`` in sorted filename order (merge rule 1)."""
    names = sorted(validated)
    if len(names) == 1:
        return validated[names[0]]
    if core_type == "acquisition" and not _same_subject(validated, issues):
        return None
    merged: Any = validated[names[0]]
    for done, name in enumerate(names[1:], start=1):
        with _library_output() as said:
            try:
                merged = merged + validated[name]
            except ValueError as exc:  # pydantic's ValidationError is a ValueError too
                merged = None
                issues.append(_merge_failed(core_type, names[:done], name, exc))
        sources = " + ".join(names[: done + 1])
        issues.extend(_library_issues(said, None, f"while merging {sources}"))
        if merged is None:
            return None
    return merged


def _same_subject(validated: dict[str, BaseModel], issues: list[Issue]) -> bool:
    """Merge rule 2 for acquisitions, checked before the library's ``+``.

    The library does refuse to add acquisitions of different subjects, but its message names
    neither file and its text is not stable; this one is.
    """
    names = sorted(validated)
    reference = names[0]
    expected = validated[reference].subject_id
    same = True
    for name in names[1:]:
        actual = validated[name].subject_id
        if actual != expected:
            same = False
            issues.append(
                Issue(
                    severity="error",
                    file=name,
                    field="subject_id",
                    rule="merge.subject_id_mismatch",
                    message=(
                        f"{name} has subject_id '{actual}' but {reference} has subject_id "
                        f"'{expected}': every acquisition file of a session must name the same "
                        "subject. Correct subject_id in the wrong file (and check that the "
                        "files belong to the same session)."
                    ),
                )
            )
    return same


def _merge_failed(core_type: str, merged: list[str], name: str, exc: Exception) -> Issue:
    if isinstance(exc, ValidationError):
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or core_type}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
    else:
        detail = " ".join(str(exc).split())
    detail = detail.rstrip(".")
    return Issue(
        severity="error",
        file=name,
        rule="merge.failed",
        message=(
            f"Cannot merge {name} into {' + '.join(merged)}: {detail}. Make the {core_type} "
            "files agree on the fields named here, or upload a single "
            f"{core_type}.json."
        ),
    )


# --------------------------------------------------------------------------- the whole


def _check_required(
    groups: dict[str, list[str]], models: dict[str, BaseModel], issues: list[Issue]
) -> None:
    """A missing core file is an error (files present but broken are reported already)."""
    acquisition = models.get("acquisition")
    external_only = isinstance(acquisition, Acquisition) and all(
        isinstance(stream, ExternalDataStream) for stream in acquisition.data_streams
    )
    for core_type in REQUIRED_TYPES:
        if core_type in groups:
            continue
        if core_type == "instrument" and external_only:
            continue
        issues.append(
            Issue(
                severity="error",
                file=None,
                rule="metadata.missing_file",
                message=(
                    f"No {core_type} metadata: a raw data asset needs {core_type}.json (or "
                    f"{core_type}_*.json files) at the session root. Add it, or configure the "
                    f"job to fetch it (subject and procedures come from the metadata service, "
                    f"an instrument from instrument_settings.instrument_id)."
                ),
            )
        )


def _validate_whole(
    models: dict[str, BaseModel], asset_name: str, location: str, issues: list[Issue]
) -> dict | None:
    """Merge rule 4: validate the merged result with every other file, as one Metadata.

    Built from the validated models, never from dicts: given dicts, Metadata only *warns*
    about an invalid core file and constructs it unvalidated.
    """
    with _library_output() as said:
        try:
            metadata = Metadata(name=asset_name, location=location, **models)
        except ValidationError as exc:
            metadata = None
            issues.extend(_validation_issues(exc, None, "Metadata", rule="metadata.invalid"))
        dumped = metadata.model_dump(mode="json") if metadata is not None else None
    issues.extend(_library_issues(said, None, "while validating the whole asset"))
    return dumped


def _has_errors(issues: list[Issue]) -> bool:
    return any(i.severity == "error" for i in issues)


# --------------------------------------------------------------------------- library output


class _ListHandler(logging.Handler):
    """Collects the library's log messages instead of letting them reach the log stream."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@cache
def _field_deprecation_messages() -> frozenset[str]:
    """Messages pydantic emits when code *reads* a deprecated field of a library model.

    The library reads its own deprecated ``coordinate_system`` fields while validating, so
    these DeprecationWarnings fire for every file and say nothing about the user's data (the
    user-facing "'coordinate_system' is deprecated" warning comes from a validator and is
    kept).
    """
    messages: set[str] = set()
    pending: list[type] = [BaseModel]
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                pending.append(sub)
        if not cls.__module__.startswith("aind_data_schema"):
            continue
        for info in getattr(cls, "model_fields", {}).values():
            message = info.deprecation_message
            if message:
                messages.add(message)
    return frozenset(messages)


@contextmanager
def _library_output() -> Iterator[list[str]]:
    """Capture what aind-data-schema logs (WARNING and up) and warns, as a list of texts.

    The list is complete once the ``with`` block has exited.
    """
    said: list[str] = []
    logger = logging.getLogger(_LIBRARY_LOGGER)
    handler = _ListHandler(said)
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
        noise = _field_deprecation_messages()
        for warning in caught:
            text = str(warning.message)
            if issubclass(warning.category, DeprecationWarning) and text in noise:
                continue
            said.append(text)
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate
        logger.setLevel(old_level)


def _library_issues(said: list[str], file: str | None, context: str | None) -> list[Issue]:
    """Each distinct captured message as a warning issue."""
    issues = []
    for text in dict.fromkeys(" ".join(t.split()) for t in said):
        where = f" ({context})" if context else ""
        issues.append(
            Issue(
                severity="warning",
                file=file,
                rule="library.warning",
                message=(
                    f"{_SCHEMA} warned{where}: {_sentence(text)} The session is accepted, "
                    "but check the value(s) it names."
                ),
            )
        )
    return issues
