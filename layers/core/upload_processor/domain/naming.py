"""The asset name: `[<platform>_]<subject_id>_<YYYY-MM-DD_HH-MM-SS>`.

Built exactly as aind-data-transfer-service builds `s3_prefix` (its label, then
`build_data_name`), in the acquisition time's own offset with fractional seconds dropped, so
that it equals `data_description.name` and matches aind-data-schema's raw-data pattern.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from aind_data_schema_models.data_name_patterns import DataRegex, build_data_name

_RAW = re.compile(DataRegex.RAW.value)

# The asset folder must be one valid name on S3, POSIX and Windows file systems and in Code
# Ocean, which mounts assets as folders: 255 bytes is the POSIX NAME_MAX (and, in UTF-16
# units, the Windows limit). A name part (subject_id, platform) gets at most 100 UTF-8 bytes,
# so that both together with the 20-character `_YYYY-MM-DD_HH-MM-SS` stay under 255 bytes.
MAX_NAME_PART_BYTES = 100
# Windows refuses `<>:"/\|?*` in names; S3's guidelines add the characters to avoid in keys
# (they need URL encoding and break tools): `{}^%`[]~#`. `;` breaks Code Ocean's mounts.
_UNSAFE_NAME_CHARS = frozenset('<>:"/\\|?*{}^%`[]~#;')
# Unicode categories that are invisible or reorder text: control (Cc, NUL included), format
# (Cf: bidi overrides such as U+202E, zero-width characters), separators other than a plain
# space, private use, surrogates and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cs", "Cn"})


def name_part_problem(value: str) -> str | None:
    """Why `value` cannot be part of an asset name (subject_id, platform), or None.

    The asset name becomes an S3 prefix, a folder on POSIX and Windows when downloaded, and
    a Code Ocean data asset: only printable characters safe on all of them, at most
    MAX_NAME_PART_BYTES bytes. Windows' other rule (no trailing dot or space) never applies:
    the name ends with the acquisition time, and spaces are refused.
    """
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_PART_BYTES:
        return (
            f"is {size} bytes long; at most {MAX_NAME_PART_BYTES} bytes, so that the asset "
            "folder name stays under the 255 bytes file systems allow"
        )
    invisible = sorted({c for c in value if unicodedata.category(c) in _UNSAFE_CATEGORIES})
    if invisible:
        shown = ", ".join(f"U+{ord(c):04X}" for c in invisible)
        return f"contains invisible or control character(s) {shown}; use printable characters"
    unsafe = sorted(set(value) & _UNSAFE_NAME_CHARS)
    if unsafe:
        return (
            f"contains {' '.join(repr(c) for c in unsafe)}, which S3 keys, Windows or Code Ocean "
            "do not accept in a folder name; remove them"
        )
    return None


def asset_name(subject_id: str, acq_datetime: datetime, platform: str | None = None) -> str:
    """The archive folder and data_description.name of a raw session."""
    if acq_datetime.tzinfo is None:
        raise ValueError("acq_datetime must carry a time zone to name an asset")
    label = f"{platform}_{subject_id}" if platform else subject_id
    name = build_data_name(label=label, creation_datetime=acq_datetime.replace(microsecond=0))
    if not _RAW.match(name):
        raise ValueError(f"asset name {name!r} does not match {DataRegex.RAW.value}")
    return name


class NamedJob(Protocol):
    """The fields that name an asset, as the parsed upload job (domain.upload_job) holds them."""

    @property
    def subject_id(self) -> str:
        """The subject the session recorded."""
        ...

    @property
    def acq_datetime(self) -> datetime:
        """When the session was acquired, with its time zone."""
        ...

    @property
    def platform(self) -> str | None:
        """The platform abbreviation, when the job names one."""
        ...


def job_asset_name(job: NamedJob | Mapping[str, Any]) -> str:
    """The asset name of a job: the parsed job (ingest) or its resolved JSON form (the stages'
    execution input, acq_datetime an ISO string). The one place a job becomes its asset name,
    so that ingest's record and gather's archive folder always agree."""
    if isinstance(job, Mapping):
        acq = datetime.fromisoformat(job["acq_datetime"])
        return asset_name(job["subject_id"], acq, job.get("platform"))
    return asset_name(job.subject_id, job.acq_datetime, job.platform)
