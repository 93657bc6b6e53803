"""Metadata assembly: from the staged metadata files to one validated ``Metadata``.

GatherMetadata hands us the raw bytes of every metadata file at the session root. In order:
pick the files that take part (files), parse each one (parse) and validate it on its own
against its aind-data-schema 2.9.2 model (validate), check the subject ids across files
(rules.identity), merge each core type's sources with the library's own ``+`` (fold), check
what the library does not (rules), and finally validate the whole as ``Metadata``. Every
problem becomes an :class:`~upload_processor.domain.report.Issue` that names the file, the
field, a stable rule id and a fix, instead of an exception or a log line, because an invalid
session is a result to report to a scientist, not a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from upload_processor.domain.report import Issue, MergedFrom
from upload_processor.metadata.files import (
    CORE_TYPES,
    MERGEABLE_TYPES,
    group_extra,
    group_files,
    select_sources,
)
from upload_processor.metadata.fold import merge_sources
from upload_processor.metadata.job_facts import JobFacts
from upload_processor.metadata.library_log import library_issues, library_output
from upload_processor.metadata.local_time import localize_naive
from upload_processor.metadata.parse import extra_object, parse_file
from upload_processor.metadata.rules.completeness import (
    check_data_description_name,
    check_required,
)
from upload_processor.metadata.rules.identity import check_instrument_ids, check_subject_ids
from upload_processor.metadata.rules.modalities import check_modalities
from upload_processor.metadata.rules.streams import check_shared_active_devices
from upload_processor.metadata.rules.time import check_acq_datetime
from upload_processor.metadata.validate import validate_file, validate_metadata


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
    staged = group_files(files)
    extra_labels = group_extra(extra, files)
    zone = job.default_tz if job is not None else None
    sources = _validated_sources(files, extra, staged, extra_labels, result, zone)

    acquisitions_disagree = check_subject_ids(sources, job, issues)
    models: dict[str, BaseModel] = {}
    for core_type, validated in sources.items():
        if core_type == "acquisition" and acquisitions_disagree:
            continue  # reported by check_subject_ids; the library's "+" would refuse too
        merged = merge_sources(core_type, validated, set(files), issues)
        if merged is not None:
            models[core_type] = merged

    check_instrument_ids(sources, models, issues)
    check_modalities(sources, models, job, issues)
    check_acq_datetime(sources, models, job, issues)
    check_shared_active_devices(sources, models, issues)
    check_data_description_name(sources, asset_name, issues)
    check_required(set(staged) | set(extra_labels), models, issues)

    for core_type, model in models.items():
        with library_output() as said:
            result.core[core_type] = model.model_dump(mode="json")
        issues.extend(library_issues(said, None, f"while writing {core_type}"))

    if not result.errors:
        result.metadata = validate_metadata(
            models,
            asset_name,
            location or f"pending://{asset_name}",
            issues,
            files=sorted(label for validated in sources.values() for label in validated),
        )
    return result


def _validated_sources(
    files: dict[str, bytes],
    extra: dict[str, dict],
    staged: dict[str, list[str]],
    extra_labels: dict[str, list[str]],
    result: Assembly,
    default_tz: str | None,
) -> dict[str, dict[str, BaseModel]]:
    """Each core type's sources, parsed and validated on their own, by label.

    A core type with any broken source is left out: merging the rest would report a
    misleading whole. Naive timestamps are read in ``default_tz`` (local_time). Records ``merged_from`` for the mergeable types on the way.
    """
    issues = result.issues
    sources: dict[str, dict[str, BaseModel]] = {}
    for core_type in CORE_TYPES:
        labels = select_sources(
            core_type, staged.get(core_type, []), extra_labels.get(core_type, []), issues
        )
        if core_type in MERGEABLE_TYPES:
            setattr(result.merged_from, core_type, sorted(labels))
        validated: dict[str, BaseModel] = {}
        for label in labels:
            data = (
                parse_file(label, files[label], issues)
                if label in files
                else extra_object(label, extra[label], issues)
            )
            if data is not None:
                data = localize_naive(label, data, default_tz, issues)
            model = validate_file(label, data, core_type, issues) if data is not None else None
            if model is not None:
                validated[label] = model
        if labels and len(validated) == len(labels):
            sources[core_type] = validated
    return sources
