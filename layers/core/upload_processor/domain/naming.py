"""The asset name: `[<platform>_]<subject_id>_<YYYY-MM-DD_HH-MM-SS>`.

Built exactly as aind-data-transfer-service builds `s3_prefix` (its label, then
`build_data_name`), in the acquisition time's own offset with fractional seconds dropped, so
that it equals `data_description.name` and matches aind-data-schema's raw-data pattern.
"""

from __future__ import annotations

import re
from datetime import datetime

from aind_data_schema_models.data_name_patterns import DataRegex, build_data_name

_RAW = re.compile(DataRegex.RAW.value)


def asset_name(subject_id: str, acq_datetime: datetime, platform: str | None = None) -> str:
    """The archive folder and data_description.name of a raw session."""
    if acq_datetime.tzinfo is None:
        raise ValueError("acq_datetime must carry a time zone to name an asset")
    label = f"{platform}_{subject_id}" if platform else subject_id
    name = build_data_name(label=label, creation_datetime=acq_datetime.replace(microsecond=0))
    if not _RAW.match(name):
        raise ValueError(f"asset name {name!r} does not match {DataRegex.RAW.value}")
    return name
