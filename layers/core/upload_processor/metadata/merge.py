"""Metadata assembly: from the staged metadata files to one validated ``Metadata``.

GatherMetadata hands us the raw bytes of every metadata file at the session root. We parse
each one, validate it on its own against its aind-data-schema 2.9.2 model, merge the
per-instrument ``instrument*.json`` / ``acquisition*.json`` files with the library's own ``+``
(merge rules, DESIGN.md), check what the library does not, and finally validate the whole as
``Metadata``. Every problem becomes an :class:`~upload_processor.domain.report.Issue` that names the
file, the field, a stable rule id and a fix, instead of an exception or a log line, because an
invalid session is a result to report to a scientist, not a crash.

Rules enforced here beyond the library's own validation (rule ids are stable):

- ``json.empty`` / ``json.malformed`` / ``json.not_object`` / ``json.duplicate_key``: a file
  that is not one JSON object. ``json.wrong_type``: a document of another core type (its
  ``object_type``, e.g. a Subject saved as ``acquisition_x.json``): one error naming the
  file to rename, instead of every field of the wrong model.
- ``schema.invalid``: the file does not validate on its own (an unknown field is one of these:
  every aind-data-schema model forbids extra fields). ``schema.version_mismatch``: the file
  declares another ``schema_version`` than aind-data-schema 2.9.2's model; the library
  silently rewrites it, so we check it ourselves.
- ``merge.exact_name_wins`` (warning), ``merge.multiple_files``: merge rule 1.
- ``merge.subject_id_mismatch``: ``subject_id`` differs between any acquisition, the subject,
  the procedures, the data description and the job (merge rule 2). The expected value is the
  one most sources give (ties: the job, then subject, procedures, data_description,
  acquisitions); every other source gets an error naming those that agree.
- ``merge.shared_device``: two instruments define a device of the same name, at any depth
  (assemblies included), other than one shared Harp clock (merge rule 3: a top-level
  ``HarpDevice`` with ``is_clock_generator=True`` in every file that has it).
  ``merge.clock_mismatch``: that shared clock differs between files.
- The merged ``instrument_id`` is ``"_".join(sorted(unique ids))`` of the instrument files, and
  the merged acquisition's ``instrument_id`` likewise of the acquisition files (the library's
  pairwise join depends on merge order for three or more files).
  ``merge.acquisition_instrument_id``: the two differ.
- ``merge.modalities_mismatch``: the job's modalities differ from what the acquisition's data
  streams record; a stream records a modality the instrument does not declare; or
  ``data_description.modalities`` differs from what the streams record.
- ``merge.acq_datetime_outside``: the job's ``acq_datetime`` is outside
  ``[acquisition_start_time, acquisition_end_time]``.
- ``merge.time_zone_lost``: the library's ``Acquisition.__add__`` drops a named
  ``acquisition_start_tz`` (it recomputes an integer offset). We put the name back when the
  files agree on it; files naming different zones, or a fixed offset that contradicts the
  named zone, are errors.
- ``data_description.name_mismatch``: ``data_description.name`` is not the asset name.
- ``procedures.duplicate``: a procedure is both in the staged procedures file and in the one
  from the metadata service.
- ``merge.failed``: the library's ``+`` refused; ``metadata.missing_file``;
  ``metadata.invalid``: the whole does not validate as ``Metadata``.

Merge order: files are folded in sorted name order (extra labels sort among them), never in
the order ``files`` lists them, so the merged result does not depend on that order. Which file
holds which content does matter for the order of merged lists (components, data streams,
notes), not for their members nor for the merged ``instrument_id``.

The library talks through ``logging`` and ``warnings`` too (a duplicated device is only
logged, a name/time mismatch only warned); those are captured while we call it and become
``library.warning`` issues, so nothing it says is lost in CloudWatch noise.

Not thread-safe: ``warnings.catch_warnings`` and the temporary logger changes are process-wide.
Lambda runs one invocation per process at a time, and local mode serialises invocations.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aind_data_schema.components.devices import Device, HarpDevice
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

from upload_processor.domain.report import REPORT_FILENAME, Issue, MergedFrom

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

# Separates the core type from the source in a label of assemble(extra=...).
EXTRA_SEPARATOR = "@"

# Longest first, so that a type that is a prefix of another could never steal its files.
_TYPES_LONGEST_FIRST = tuple(sorted(CORE_TYPES, key=len, reverse=True))
_LIBRARY_LOGGER = "aind_data_schema"
_SCHEMA = "aind-data-schema 2.9.2"
# Core types that carry a subject_id (merge rule 2), in tie-break priority order.
_SUBJECT_ID_TYPES: tuple[str, ...] = ("subject", "procedures", "data_description", "acquisition")
_PROCEDURE_LISTS: tuple[str, ...] = ("subject_procedures", "specimen_procedures")


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


def extra_type_of(label: str) -> str:
    """The core type of an ``extra`` label ``"<core type>@<source>"`` (see assemble).

    Raises ValueError for a label that does not follow the convention: that is a bug in the
    caller, not a problem of the user's session.
    """
    core_type, sep, source = label.partition(EXTRA_SEPARATOR)
    if not sep or not source or core_type not in CORE_TYPES:
        raise ValueError(
            f"extra label {label!r} must be '<core type>{EXTRA_SEPARATOR}<source>' with a core "
            f"type among {', '.join(CORE_TYPES)}, e.g. 'instrument@registry:447-EPHYS-1'"
        )
    return core_type


@dataclass(frozen=True)
class JobFacts:
    """What upload_job.json declares that the metadata must agree with.

    ``modalities`` are abbreviations (``"behavior"``, ``"ecephys"``); ``acq_datetime`` must be
    timezone-aware (the job parser applies the deployment's default zone to a naive one).
    ``file`` is the name issues about the job use.
    """

    subject_id: str
    modalities: tuple[str, ...]
    acq_datetime: datetime
    file: str = JOB_FILENAME

    def __post_init__(self) -> None:
        if self.acq_datetime.tzinfo is None or self.acq_datetime.utcoffset() is None:
            raise ValueError("JobFacts.acq_datetime must be timezone-aware")
        object.__setattr__(self, "modalities", tuple(self.modalities))


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


def assemble(
    files: dict[str, bytes],
    *,
    asset_name: str,
    location: str | None = None,
    job: JobFacts | None = None,
    extra: dict[str, dict] | None = None,
) -> Assembly:
    """Parse, validate, merge and validate as a whole the session's metadata files.

    ``files`` maps a root-relative filename to its raw bytes; names that are not metadata
    (see metadata_type_of) are skipped, so callers may pass every root file. ``location``
    becomes ``Metadata.location`` (required by the model); until the asset is archived the
    placeholder ``pending://<asset_name>`` stands in, and the metadata writer replaces it.

    ``job``: what upload_job.json declares; the checks against it (subject_id, modalities,
    acq_datetime) are skipped when it is None.

    ``extra``: metadata obtained elsewhere, already parsed, keyed by a label
    ``"<core type>@<source>"``, e.g. ``"instrument@registry:447-EPHYS-1"`` or
    ``"subject@service:750101"`` (see extra_type_of). The label stands for the file name in
    issues and in ``merged_from``. Each entry is validated like a file, then:

    - ``instrument`` / ``acquisition``: joins the merge as one more file of that type (after
      merge rule 1 picked the staged files);
    - ``procedures``: used when no procedures file was staged; when one was, the two are merged
      (their ``subject_procedures`` and ``specimen_procedures`` lists concatenated, the staged
      file first) and an entry present in both is a ``procedures.duplicate`` error;
    - any other type (``subject``, ...): used only when no file of that type was staged.

    Labels sort among the file names ("instrument@..." before "instrument_..."), which sets
    the merge order. The dicts in ``extra`` are not modified. A label that does not follow the
    convention, or equals a staged file name, raises ValueError (a caller bug); everything
    wrong with the metadata itself is an issue, never an exception.
    """
    extra = extra or {}
    result = Assembly()
    issues = result.issues
    staged = _group(files)
    extra_labels = _group_extra(extra, files)

    sources: dict[str, dict[str, BaseModel]] = {}
    for core_type in CORE_TYPES:
        labels = _select(
            core_type, staged.get(core_type, []), extra_labels.get(core_type, []), issues
        )
        if core_type in MERGEABLE_TYPES:
            setattr(result.merged_from, core_type, sorted(labels))
        validated: dict[str, BaseModel] = {}
        for label in labels:
            data = (
                _parse(label, files[label], issues)
                if label in files
                else _extra_object(label, extra[label], issues)
            )
            model = _validate(label, data, core_type, issues) if data is not None else None
            if model is not None:
                validated[label] = model
        if labels and len(validated) == len(labels):
            # A broken file: merging the rest would report a misleading whole.
            sources[core_type] = validated

    acquisitions_disagree = _check_subject_ids(sources, job, issues)

    models: dict[str, BaseModel] = {}
    for core_type, validated in sources.items():
        if core_type == "acquisition" and acquisitions_disagree:
            continue  # reported by _check_subject_ids; the library's "+" would refuse too
        merged = _merge(core_type, validated, set(files), issues)
        if merged is not None:
            models[core_type] = merged

    _check_instrument_ids(sources, models, issues)
    _check_modalities(sources, models, job, issues)
    _check_acq_datetime(sources, models, job, issues)
    _check_data_description_name(sources, asset_name, issues)
    _check_required(set(staged) | set(extra_labels), models, issues)

    for core_type, model in models.items():
        with _library_output() as said:
            result.core[core_type] = model.model_dump(mode="json")
        issues.extend(_library_issues(said, None, f"while writing {core_type}"))

    if not _has_errors(issues):
        result.metadata = _validate_whole(
            models, asset_name, location or f"pending://{asset_name}", issues
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


def _group_extra(extra: dict[str, Any], files: dict[str, bytes]) -> dict[str, list[str]]:
    """Extra labels by core type, sorted; a malformed or clashing label is the caller's bug."""
    groups: dict[str, list[str]] = {}
    for label in extra:
        core_type = extra_type_of(label)
        if label in files:
            raise ValueError(f"extra label {label!r} is also the name of a staged file")
        groups.setdefault(core_type, []).append(label)
    return {core_type: sorted(labels) for core_type, labels in groups.items()}


def _select(core_type: str, names: list[str], labels: list[str], issues: list[Issue]) -> list[str]:
    """The sources of one core type that take part (see assemble for the extra rules)."""
    if names:
        names = _pick_files(core_type, names, issues)
    if core_type in MERGEABLE_TYPES:
        return [*names, *labels]
    if len(names) > 1:
        issues.append(_multiple_files_issue(core_type, names))
        return []
    if core_type == "procedures":
        return [*names, *labels]
    chosen = names or labels
    if len(chosen) > 1:
        issues.append(_multiple_files_issue(core_type, chosen))
        return []
    return chosen


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
    except RecursionError:
        error(
            "json.malformed",
            f"{name} nests arrays or objects too deeply to be metadata; check that it is the "
            "file you meant to upload.",
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


def _extra_object(label: str, value: Any, issues: list[Issue]) -> dict | None:
    """An ``extra`` entry as a private copy (the library mutates the dicts it validates)."""
    if not isinstance(value, dict):
        issues.append(
            Issue(
                severity="error",
                file=label,
                rule="json.not_object",
                message=(
                    f"{label} holds a JSON {_json_kind(value)}, but metadata must be one JSON "
                    "object ({...}) as aind-data-schema writes it. Check the source it came from."
                ),
            )
        )
        return None
    return copy.deepcopy(value)


def _object_type(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("object_type")
    return field.default if field is not None and isinstance(field.default, str) else None


def _check_object_type(label: str, data: dict, core_type: str, issues: list[Issue]) -> bool:
    """A document declaring another core type's object_type is in the wrong file: one error
    saying so (validating it against the file's model would list every field as wrong)."""
    declared = data.get("object_type")
    expected = _object_type(MODELS[core_type])
    if not isinstance(declared, str) or expected is None or declared == expected:
        return True
    actual = next((t for t, m in MODELS.items() if _object_type(m) == declared), None)
    if actual is None:
        return True  # not a core type's: the model's own validation reports the value
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


def _validate(label: str, data: dict, core_type: str, issues: list[Issue]) -> BaseModel | None:
    """Validate one file on its own; errors name the file and the dotted field."""
    if not _check_object_type(label, data, core_type, issues):
        return None
    model = MODELS[core_type]
    version_ok = _check_schema_version(label, data, model, issues)
    with _library_output() as said:
        try:
            validated = model.model_validate(data)
        except ValidationError as exc:
            validated = None
            issues.extend(_validation_issues(exc, label, model.__name__))
    issues.extend(_library_issues(said, label, None))
    return validated if version_ok else None


def _check_schema_version(
    label: str, data: dict, model: type[BaseModel], issues: list[Issue]
) -> bool:
    """A declared schema_version must be the model's: the library overwrites any other value.

    A missing schema_version is accepted (the library fills it in), as the library does.
    """
    if "schema_version" not in data:
        return True
    expected = model.model_fields["schema_version"].default
    declared = data["schema_version"]
    if declared == expected:
        return True
    issues.append(
        Issue(
            severity="error",
            file=label,
            field="schema_version",
            rule="schema.version_mismatch",
            message=(
                f"{label} declares schema_version {_preview(declared)}, but {_SCHEMA} reads "
                f"{model.__name__} files of schema version {expected} (and would silently "
                f"relabel this one as {expected}). Regenerate the file with {_SCHEMA}, or set "
                f'schema_version to "{expected}" if its content already follows that version.'
            ),
        )
    )
    return False


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
            f"Unknown field '{last}' (value {_preview(err.get('input'))}) in {where}: "
            f"{_SCHEMA}'s {model_name} does not define it. Remove it or correct its spelling."
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


def _merge(
    core_type: str, validated: dict[str, BaseModel], staged: set[str], issues: list[Issue]
) -> Any:
    """The one model of a core type: its single source, or its sources merged."""
    if len(validated) == 1:
        return next(iter(validated.values()))
    if core_type == "instrument":
        return _merge_instruments(validated, issues)
    if core_type == "acquisition":
        return _merge_acquisitions(validated, issues)
    if core_type == "procedures":
        return _merge_procedures(validated, staged, issues)
    raise AssertionError(f"several {core_type} sources reached the merge")  # _select prevents it


def _fold(core_type: str, validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """Fold the sources with the library's ``+`` in sorted label order (merge rule 1).

    The library's merged lists (components, data streams, notes, ...) follow the fold order,
    so they follow the sorted file names, never the order in which ``files`` lists them.
    """
    order = sorted(validated)
    merged: Any = validated[order[0]]
    for done, label in enumerate(order[1:], start=1):
        with _library_output() as said:
            try:
                merged = merged + validated[label]
            except ValueError as exc:  # pydantic's ValidationError is a ValueError too
                merged = None
                issues.append(_merge_failed(core_type, order[:done], label, exc))
        sources = " + ".join(order[: done + 1])
        issues.extend(_library_issues(said, None, f"while merging {sources}"))
        if merged is None:
            return None
    return merged


def _combined_id(ids: Iterable[str | None]) -> str | None:
    """Merge rule 2's exception: the sorted unique ids joined with "_" (order-independent)."""
    unique = sorted({i for i in ids if i})
    return "_".join(unique) if unique else None


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


# ---- instruments


def _merge_instruments(validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """Merge rule 3 first (the library only logs a shared device), then ``+``, then the id."""
    if not _check_shared_devices(validated, issues):
        return None
    merged = _fold("instrument", validated, issues)
    if merged is None:
        return None
    instrument_id = _combined_id(getattr(m, "instrument_id", None) for m in validated.values())
    return merged.model_copy(update={"instrument_id": instrument_id})


@dataclass(frozen=True)
class _Occurrence:
    """Where one device sits in one instrument source."""

    label: str
    path: str  # dotted, e.g. "components.3.camera"
    device: Any
    top_level: bool


def _is_device(value: BaseModel) -> bool:
    """A device or an assembly of devices (assemblies are not Device subclasses)."""
    if isinstance(value, Device):
        return True
    return type(value).__module__ == Device.__module__ and isinstance(
        getattr(value, "name", None), str
    )


def _is_clock(device: Any) -> bool:
    return isinstance(device, HarpDevice) and device.is_clock_generator is True


def _devices(label: str, instrument: Any) -> list[_Occurrence]:
    """Every device of an instrument, nested ones included, with its dotted path."""
    found: list[_Occurrence] = []

    def visit(value: Any, path: str, top_level: bool) -> None:
        if isinstance(value, BaseModel):
            if _is_device(value):
                found.append(_Occurrence(label, path, value, top_level))
            for name, info in type(value).model_fields.items():
                if info.deprecated:  # reading it warns; its content lives in the new field
                    continue
                visit(getattr(value, name), f"{path}.{name}", False)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                visit(item, f"{path}.{index}", False)

    for index, component in enumerate(instrument.components):
        visit(component, f"components.{index}", True)
    return found


def _check_shared_devices(validated: dict[str, BaseModel], issues: list[Issue]) -> bool:
    """Merge rule 3: no device name in two instruments, except one identical Harp clock."""
    where: dict[str, dict[str, list[_Occurrence]]] = {}
    for label in sorted(validated):
        for occurrence in _devices(label, validated[label]):
            where.setdefault(occurrence.device.name, {}).setdefault(label, []).append(occurrence)
    shared = {name: per for name, per in where.items() if len(per) > 1}
    clocks = sorted(
        name
        for name, per in shared.items()
        if all(
            len(found) == 1 and found[0].top_level and _is_clock(found[0].device)
            for found in per.values()
        )
    )
    ok = True
    for name in sorted(shared):
        per = shared[name]
        if name in clocks and len(clocks) == 1:
            if not _same_clock(name, per, issues):
                ok = False
            continue
        ok = False
        if name in clocks:
            why = (
                f", but these instruments share {len(clocks)} clock generators "
                f"({', '.join(repr(c) for c in clocks)})"
            )
        else:
            why = _why_not_a_shared_clock(per)
        issues.append(_shared_device_issue(name, per, why))
    return ok


def _why_not_a_shared_clock(per: dict[str, list[_Occurrence]]) -> str:
    """Why the one exception of merge rule 3 does not cover this device."""
    found = [(label, o) for label in sorted(per) for o in per[label]]
    for label, o in found:
        if not o.top_level:
            return f", and in {label} it sits inside another component ({o.path})"
    for label, o in found:
        if not isinstance(o.device, HarpDevice):
            return f", and in {label} it is a {type(o.device).__name__}, not a HarpDevice"
    for label, o in found:
        if not _is_clock(o.device):
            return f", and in {label} it is not a clock generator (is_clock_generator is false)"
    for label in sorted(per):
        if len(per[label]) > 1:
            return f", and {label} defines it {len(per[label])} times"
    return ""


def _shared_device_issue(name: str, per: dict[str, list[_Occurrence]], why: str) -> Issue:
    labels = sorted(per)
    blamed = labels[-1]
    order = [blamed, *labels[:-1]]
    locations = "; ".join(f"{label}: {', '.join(o.path for o in per[label])}" for label in order)
    return Issue(
        severity="error",
        file=blamed,
        field=per[blamed][0].path,
        rule="merge.shared_device",
        message=(
            f"{_join(order)} {'both' if len(order) == 2 else 'all'} define device '{name}' "
            f"({locations}); only one Harp clock generator (a top-level HarpDevice with "
            f"is_clock_generator=true, identical in every file) may be shared{why}: rename the "
            "device or move it into one instrument."
        ),
    )


def _same_clock(name: str, per: dict[str, list[_Occurrence]], issues: list[Issue]) -> bool:
    """The shared clock is one physical device: every copy must be identical."""
    labels = sorted(per)
    reference = labels[0]
    expected = per[reference][0].device.model_dump(mode="json")
    same = True
    for label in labels[1:]:
        occurrence = per[label][0]
        actual = occurrence.device.model_dump(mode="json")
        if actual == expected:
            continue
        same = False
        keys = sorted(
            k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k)
        )
        diffs = "; ".join(
            f"{key} {_preview(actual.get(key))} here, {_preview(expected.get(key))} in {reference}"
            for key in keys
        )
        issues.append(
            Issue(
                severity="error",
                file=label,
                field=f"{occurrence.path}.{keys[0]}",
                rule="merge.clock_mismatch",
                message=(
                    f"{label} and {reference} both define the Harp clock generator '{name}', "
                    f"but the copies differ ({diffs}). A shared clock is one physical device: "
                    "make its entries identical in every instrument file (or, if these are two "
                    "devices, give one of them another name)."
                ),
            )
        )
    return same


# ---- acquisitions


def _merge_acquisitions(validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """``+``, then the order-independent instrument_id and the named time zone put back."""
    merged = _fold("acquisition", validated, issues)
    if merged is None:
        return None
    update: dict[str, Any] = {
        "instrument_id": _combined_id(getattr(a, "instrument_id", None) for a in validated.values())
    }
    zone = _named_time_zone(validated, issues)
    if zone is not None:
        update["acquisition_start_tz"] = zone
    return merged.model_copy(update=update)


def _named_time_zone(validated: dict[str, BaseModel], issues: list[Issue]) -> Any:
    """The IANA zone the acquisitions name, to keep through the merge; None if none or errors.

    ``Acquisition.__add__`` recomputes acquisition_start_tz from the earliest start time, which
    gives an integer offset for the fixed offsets that JSON datetimes carry: the name is lost.
    """
    labels = sorted(validated)
    named = {
        label: validated[label].acquisition_start_tz
        for label in labels
        if isinstance(validated[label].acquisition_start_tz, str)
    }
    if not named:
        return None
    reference = next(iter(named))
    zone = named[reference]
    ok = True
    for label, other in named.items():
        if other != zone:
            ok = False
            issues.append(
                Issue(
                    severity="error",
                    file=label,
                    field="acquisition_start_tz",
                    rule="merge.time_zone_lost",
                    message=(
                        f"{label} names the time zone '{other}' but {reference} names '{zone}': "
                        "the merged acquisition keeps one time zone, so one of them would be "
                        "lost. Set acquisition_start_tz to the same IANA zone (the zone of the "
                        "rig's clock) in every acquisition file."
                    ),
                )
            )
    if not ok:
        return None
    try:
        tz = ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):  # the library validated it: not expected
        return zone
    for label in labels:
        acquisition = validated[label]
        offset = acquisition.acquisition_start_tz
        if not isinstance(offset, int):
            continue
        start = acquisition.acquisition_start_time
        utc_offset = start.astimezone(tz).utcoffset()
        zone_hours = int(utc_offset.total_seconds() // 3600) if utc_offset is not None else 0
        if offset != zone_hours:
            ok = False
            issues.append(
                Issue(
                    severity="error",
                    file=label,
                    field="acquisition_start_tz",
                    rule="merge.time_zone_lost",
                    message=(
                        f"{label} gives the fixed UTC offset {offset:+d} h, but {reference} "
                        f"names the time zone '{zone}', which was UTC{zone_hours:+d} h when "
                        f"{label} started ({start.isoformat()}): merged, the acquisition would "
                        f"keep '{zone}' and lose this file's offset. Correct "
                        f"acquisition_start_tz (or the offset of the start time) in {label}, or "
                        f"set it to '{zone}' there too."
                    ),
                )
            )
    return zone if ok else None


# ---- procedures


def _merge_procedures(
    validated: dict[str, BaseModel], staged: set[str], issues: list[Issue]
) -> Any:
    """The staged procedures file plus the metadata service's: lists concatenated.

    The library has no ``+`` for Procedures. An entry present in both is an error: it would
    be recorded twice.
    """
    order = sorted(validated, key=lambda label: (label not in staged, label))
    base_label = order[0]
    with _library_output():  # dumps of validated models; the merged one is validated below
        base = validated[base_label].model_dump(mode="json")
        others = [(label, validated[label].model_dump(mode="json")) for label in order[1:]]
    seen = {key: [_canonical(item) for item in base.get(key) or []] for key in _PROCEDURE_LISTS}
    ok = True
    for label, other in others:
        for key in _PROCEDURE_LISTS:
            for item in other.get(key) or []:
                canonical = _canonical(item)
                if canonical in seen[key]:
                    index = seen[key].index(canonical)
                    issues.append(_duplicate_procedure(base_label, label, key, index, item))
                    continue
                base.setdefault(key, []).append(item)
                seen[key].append(canonical)
        base["notes"] = "\n".join(n for n in (base.get("notes"), other.get("notes")) if n) or None
        mine, theirs = base.get("global_coordinate_system"), other.get("global_coordinate_system")
        if mine is None:
            base["global_coordinate_system"] = theirs
        elif theirs is not None and theirs != mine:
            ok = False
            issues.append(
                Issue(
                    severity="error",
                    file=label,
                    field="global_coordinate_system",
                    rule="merge.failed",
                    message=(
                        f"Cannot merge {label} into {base_label}: their "
                        "global_coordinate_system differ. Use the same coordinate system in "
                        f"both, or leave it out of {base_label}."
                    ),
                )
            )
    if not ok:
        return None
    base.pop("coordinate_system", None)  # deprecated; its content is in the new field
    with _library_output() as said:
        try:
            merged = Procedures.model_validate(base)
        except ValidationError as exc:
            merged = None
            issues.extend(_validation_issues(exc, base_label, "Procedures", rule="merge.failed"))
    issues.extend(_library_issues(said, None, f"while merging {' + '.join(order)}"))
    return merged


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _duplicate_procedure(base: str, other: str, key: str, index: int, item: dict) -> Issue:
    kind = item.get("object_type") or "procedure"
    when = item.get("start_date")
    what = f"{kind} of {when}" if when else kind
    return Issue(
        severity="error",
        file=base,
        field=f"{key}.{index}",
        rule="procedures.duplicate",
        message=(
            f"{base} and {other} both hold the same {what} ({key}.{index} in {base}); the two "
            f"are merged, so it would be recorded twice. Remove it from {base}: {other} "
            "already provides it."
        ),
    )


# --------------------------------------------------------------------------- across files


def _join(items: Iterable[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _quoted(values: Iterable[str]) -> str:
    listed = sorted(values)
    return ", ".join(f"'{v}'" for v in listed) if listed else "none"


def _check_subject_ids(
    sources: dict[str, dict[str, BaseModel]], job: JobFacts | None, issues: list[Issue]
) -> bool:
    """Merge rule 2 for subject_id, across every file and the job.

    The expected value is the one most sources give, ties going to the earliest of: the job,
    subject, procedures, data_description, the acquisitions (sorted). Returns True when the
    acquisition files disagree among themselves (they cannot be merged then).
    """
    claims: list[tuple[str, str]] = []
    if job is not None:
        claims.append((job.file, job.subject_id))
    for core_type in _SUBJECT_ID_TYPES:
        for label, model in sorted(sources.get(core_type, {}).items()):
            value = getattr(model, "subject_id", None)
            if value is not None:
                claims.append((label, value))
    if not claims:
        return False
    counts = Counter(value for _, value in claims)
    expected = max(counts, key=counts.__getitem__)  # first maximum: insertion (priority) order
    agreeing = [label for label, value in claims if value == expected]
    job_too = " and upload_job.json" if job is not None else ""
    for label, value in claims:
        if value == expected:
            continue
        issues.append(
            Issue(
                severity="error",
                file=label,
                field="subject_id",
                rule="merge.subject_id_mismatch",
                message=(
                    f"{label} has subject_id '{value}' but {_join(agreeing)} "
                    f"{'has' if len(agreeing) == 1 else 'have'} subject_id '{expected}': every "
                    f"metadata file of a session{job_too} must name the same subject. Correct "
                    f"subject_id in {label} (and check that it belongs to this session)."
                ),
            )
        )
    acquisition_ids = {
        getattr(m, "subject_id", None) for m in sources.get("acquisition", {}).values()
    }
    return len(acquisition_ids) > 1


def _check_instrument_ids(
    sources: dict[str, dict[str, BaseModel]], models: dict[str, BaseModel], issues: list[Issue]
) -> None:
    """The (merged) acquisition's instrument_id must be the (merged) instrument's.

    Both are the sorted unique ids of their files joined with "_", so each acquisition file
    names its own instrument (or the acquisition, as one file, names the merged id).
    """
    instrument, acquisition = models.get("instrument"), models.get("acquisition")
    if instrument is None or acquisition is None:
        return
    merged_instrument = getattr(instrument, "instrument_id", None)
    merged_acquisition = getattr(acquisition, "instrument_id", None)
    if merged_acquisition == merged_instrument:
        return
    instrument_ids = {
        label: getattr(m, "instrument_id", None)
        for label, m in sorted(sources["instrument"].items())
    }
    acquisition_ids = {
        label: getattr(m, "instrument_id", None)
        for label, m in sorted(sources["acquisition"].items())
    }
    listing = ", ".join(f"{label}: '{i}'" for label, i in instrument_ids.items())
    known = {*instrument_ids.values(), merged_instrument}
    named = set(acquisition_ids.values())

    def error(file: str, message: str) -> None:
        issues.append(
            Issue(
                severity="error",
                file=file,
                field="instrument_id",
                rule="merge.acquisition_instrument_id",
                message=message,
            )
        )

    before = len(issues)
    uncovered = (
        {}
        if merged_instrument in named
        else {label: value for label, value in instrument_ids.items() if value not in named}
    )
    hint = (
        " (no acquisition names "
        + _join(f"{label}'s '{value}'" for label, value in uncovered.items())
        + ")"
        if uncovered
        else ""
    )
    for label, value in acquisition_ids.items():
        if value not in known:
            shown = f"'{value}'" if value else "no instrument_id"
            error(
                label,
                f"{label} names {shown}, which matches no instrument ({listing}; merged: "
                f"'{merged_instrument}'). Set instrument_id to the id of the instrument this "
                f"acquisition was recorded on{hint}.",
            )
    if len(issues) == before:  # every acquisition names a known id: some instrument is unnamed
        for label, value in uncovered.items():
            error(
                label,
                f"{label} (instrument_id '{value}') is merged into the session's instrument, "
                f"but no acquisition names it: the acquisition's instrument_id is "
                f"'{merged_acquisition}', the merged instrument's '{merged_instrument}' (the "
                "sorted unique ids joined with '_'). Add the acquisition recorded on "
                f"'{value}', or remove {label} if that instrument was not used.",
            )
    if len(issues) == before:
        acquisition_listing = ", ".join(f"{label}: '{i}'" for label, i in acquisition_ids.items())
        error(
            sorted(acquisition_ids)[0],
            f"The acquisition's instrument_id '{merged_acquisition}' ({acquisition_listing}) "
            f"differs from the merged instrument's '{merged_instrument}' ({listing}); both are "
            "the sorted unique ids joined with '_'. Let every acquisition file name the id of "
            "its own instrument (or, in a single acquisition file, the merged id).",
        )


def _abbreviations(modalities: Iterable[Any]) -> set[str]:
    out = set()
    for modality in modalities:
        if isinstance(modality, dict):
            out.add(str(modality.get("abbreviation")))
        else:
            out.add(str(getattr(modality, "abbreviation", modality)))
    return out


def _check_modalities(
    sources: dict[str, dict[str, BaseModel]],
    models: dict[str, BaseModel],
    job: JobFacts | None,
    issues: list[Issue],
) -> None:
    """The job, the instrument, the data description and the data streams must agree."""
    acquisition = models.get("acquisition")
    if acquisition is None:
        return
    acquisition_labels = sorted(sources["acquisition"])
    recorded = _abbreviations(m for s in acquisition.data_streams for m in s.modalities)

    def error(file: str, field_: str, message: str) -> None:
        issues.append(
            Issue(
                severity="error",
                file=file,
                field=field_,
                rule="merge.modalities_mismatch",
                message=message,
            )
        )

    if job is not None and set(job.modalities) != recorded:
        declared = set(job.modalities)
        gaps = []
        if declared - recorded:
            gaps.append(f"no data stream records {_quoted(declared - recorded)}")
        if recorded - declared:
            gaps.append(f"the data streams also record {_quoted(recorded - declared)}")
        error(
            job.file,
            "modalities",
            f"{job.file} declares modalities {_quoted(declared)}, but the acquisition "
            f"({_join(acquisition_labels)}) records {_quoted(recorded)}: {'; '.join(gaps)}. List "
            f"in {job.file} exactly the modalities the data streams record, or correct the "
            "streams' modalities.",
        )

    instrument = models.get("instrument")
    if instrument is not None:
        capable = _abbreviations(instrument.modalities)
        instrument_labels = _join(sorted(sources["instrument"]))
        for label in acquisition_labels:
            for index, stream in enumerate(sources["acquisition"][label].data_streams):
                if isinstance(stream, ExternalDataStream):
                    continue  # recorded without this instrument
                missing = _abbreviations(stream.modalities) - capable
                if missing:
                    error(
                        label,
                        f"data_streams.{index}.modalities",
                        f"{label} has a data stream recording {_quoted(missing)}, but the "
                        f"instrument ({instrument_labels}) declares only {_quoted(capable)}. Add "
                        "the modality to the instrument that records it, or correct the "
                        "stream's modalities.",
                    )

    description = models.get("data_description")
    if description is not None:
        described = _abbreviations(description.modalities)
        # One that repeats the job's (e.g. built from it) is covered by the job's error above.
        follows_job = job is not None and described == set(job.modalities)
        if described != recorded and not follows_job:
            (label,) = sources["data_description"]
            error(
                label,
                "modalities",
                f"{label} lists modalities {_quoted(described)}, but the acquisition "
                f"({_join(acquisition_labels)}) records {_quoted(recorded)}. "
                "data_description.modalities must list the modalities of the asset's data: "
                "correct it (or the data streams' modalities).",
            )


def _check_acq_datetime(
    sources: dict[str, dict[str, BaseModel]],
    models: dict[str, BaseModel],
    job: JobFacts | None,
    issues: list[Issue],
) -> None:
    """The job's acq_datetime lies within the acquisition (both ends included)."""
    acquisition = models.get("acquisition")
    if job is None or acquisition is None:
        return
    start, end = acquisition.acquisition_start_time, acquisition.acquisition_end_time
    when = job.acq_datetime
    if start <= when <= end:
        return
    side = "before the acquisition starts" if when < start else "after the acquisition ends"
    issues.append(
        Issue(
            severity="error",
            file=job.file,
            field="acq_datetime",
            rule="merge.acq_datetime_outside",
            message=(
                f"{job.file} gives acq_datetime {when.isoformat()}, {side} (from "
                f"{start.isoformat()} to {end.isoformat()} in "
                f"{_join(sorted(sources['acquisition']))}). acq_datetime names the asset and "
                "must fall within the acquisition: set it to the acquisition start time, or "
                "correct the acquisition's times."
            ),
        )
    )


def _check_data_description_name(
    sources: dict[str, dict[str, BaseModel]], asset_name: str, issues: list[Issue]
) -> None:
    """A supplied data description must describe this asset: its name is the asset name."""
    for label, description in sources.get("data_description", {}).items():
        name = getattr(description, "name", None)
        if name == asset_name:
            continue
        issues.append(
            Issue(
                severity="error",
                file=label,
                field="name",
                rule="data_description.name_mismatch",
                message=(
                    f"{label} has name {_preview(name)} but this upload's asset name is "
                    f"'{asset_name}' (from the job's platform, subject_id and acq_datetime). "
                    f"Set name to '{asset_name}', or correct the job if the asset name is wrong."
                ),
            )
        )


# --------------------------------------------------------------------------- the whole


def _check_required(present: set[str], models: dict[str, BaseModel], issues: list[Issue]) -> None:
    """A missing core file is an error (files present but broken are reported already)."""
    acquisition = models.get("acquisition")
    external_only = isinstance(acquisition, Acquisition) and all(
        isinstance(stream, ExternalDataStream) for stream in acquisition.data_streams
    )
    for core_type in REQUIRED_TYPES:
        if core_type in present:
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
