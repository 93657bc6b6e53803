"""Which staged files are metadata, of which core type, and which of them take part.

Metadata files are JSON files at the session root whose name starts with a core type
(``subject.json``, ``instrument_ephys.json``); everything else is data. Several files of one
type are merged only for instruments and acquisitions; an exact ``<type>.json`` wins over
``<type>_*.json`` files (merge rule 1). Metadata obtained elsewhere (the registry, the metadata
service) joins under a label ``"<core type>@<source>"`` that stands for its file name.

Rules: ``merge.exact_name_wins`` (warning), ``merge.multiple_files``.
"""

from __future__ import annotations

from collections.abc import Iterable

from upload_processor.domain.report import REPORT_FILENAME, Issue
from upload_processor.domain.upload_job import JOB_FILENAME

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

# Types whose several files are combined with the library's "+" (merge rule 1). The others
# must come as one file: the report's merged_from only records these two.
MERGEABLE_TYPES: tuple[str, ...] = ("instrument", "acquisition")
# Every type whose several files are folded with "+": also quality control, as AIND's
# GatherMetadataJob combines several quality_control*.json.
FOLDED_TYPES: tuple[str, ...] = (*MERGEABLE_TYPES, "quality_control")

NEVER_METADATA: frozenset[str] = frozenset({JOB_FILENAME, REPORT_FILENAME})

# Separates the core type from the source in a label of assemble(extra=...).
EXTRA_SEPARATOR = "@"

# Longest first, so that a type that is a prefix of another could never steal its files.
_TYPES_LONGEST_FIRST = tuple(sorted(CORE_TYPES, key=len, reverse=True))


def metadata_type_of(relative_path: str) -> str | None:
    """The core type a staged file holds, or None when the file is data.

    Metadata files are JSON files at the session root whose name starts with a core type;
    anything in a subfolder is data, even ``ecephys/settings.json``. The job file and our own
    report are never metadata, though they sit at the root.
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


def group_files(names: Iterable[str]) -> dict[str, list[str]]:
    """Metadata filenames by core type, each list sorted (merge order must not vary)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        core_type = metadata_type_of(name)
        if core_type is not None:
            groups.setdefault(core_type, []).append(name)
    return {core_type: sorted(names) for core_type, names in groups.items()}


def group_extra(labels: Iterable[str], staged: Iterable[str]) -> dict[str, list[str]]:
    """Extra labels by core type, sorted; a malformed or clashing label is the caller's bug."""
    staged = set(staged)
    groups: dict[str, list[str]] = {}
    for label in labels:
        core_type = extra_type_of(label)
        if label in staged:
            raise ValueError(f"extra label {label!r} is also the name of a staged file")
        groups.setdefault(core_type, []).append(label)
    return {core_type: sorted(labels) for core_type, labels in groups.items()}


def select_sources(
    core_type: str, names: list[str], labels: list[str], issues: list[Issue]
) -> list[str]:
    """The sources of one core type that take part (see assemble for the extra rules).

    Instruments, acquisitions and quality control: every file (after merge rule 1) and every
    extra label.
    Procedures: the one staged file and the extra ones (they are merged). Any other type:
    the one staged file, else the one extra; several are ``merge.multiple_files``.
    """
    if names:
        names = pick_exact_name(core_type, names, issues)
    if core_type in FOLDED_TYPES:
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


def pick_exact_name(core_type: str, names: list[str], issues: list[Issue]) -> list[str]:
    """Merge rule 1: an exact ``<type>.json`` wins over ``<type>_*.json`` files.

    The other files are ignored, each with a ``merge.exact_name_wins`` warning saying how to
    make it count, because a scientist may have meant them to merge.
    """
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
    """Only instrument, acquisition and quality control files are merged; other types must be
    one file."""
    listed = ", ".join(names)
    return Issue(
        severity="error",
        file=names[0],
        rule="merge.multiple_files",
        message=(
            f"Found several {core_type} files ({listed}) and no {core_type}.json. Only "
            f"instrument, acquisition and quality_control files are merged; combine these into a "
            "single "
            f"{core_type}.json (an exact {core_type}.json wins over the others)."
        ),
    )
