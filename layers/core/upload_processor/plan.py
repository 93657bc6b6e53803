"""The file plan: one entry per staged data object, saying what the Map does with it."""

from __future__ import annotations

import posixpath
from typing import Literal

from pydantic import BaseModel

Action = Literal["compress", "copy"]

# Formats whose bytes are already compressed: recompressing them wastes time for nothing.
ALREADY_COMPRESSED = (
    ".zst",
    ".gz",
    ".bz2",
    ".xz",
    ".zip",
    ".7z",
    ".mp4",
    ".avi",
    ".mkv",
    ".mov",
    ".png",
    ".jpg",
    ".jpeg",
    ".tif.gz",
    ".h264",
    ".webm",
)


class PlanItem(BaseModel):
    """One object to move from staging into the asset."""

    source_key: str
    size: int
    etag: str
    dest_key: str
    action: Action
    codec: Literal["zstd"] | None = None
    level: int | None = None


def choose_action(relative_path: str) -> Action:
    """Copy what is already compressed as it is; compress everything else."""
    name = posixpath.basename(relative_path).lower()
    return "copy" if name.endswith(ALREADY_COMPRESSED) else "compress"


def plan_item(
    *, prefix: str, key: str, size: int, etag: str, asset_name: str, level: int = 3
) -> PlanItem:
    """Plan one staged object: its destination under the asset and its action."""
    relative = key[len(prefix) :].lstrip("/") if prefix else key
    action = choose_action(relative)
    dest = f"{asset_name}/{relative}" + (".zst" if action == "compress" else "")
    return PlanItem(
        source_key=key,
        size=size,
        etag=etag.strip('"'),
        dest_key=dest,
        action=action,
        codec="zstd" if action == "compress" else None,
        level=level if action == "compress" else None,
    )
