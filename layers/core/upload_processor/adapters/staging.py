"""Where a session's files are read from: the staging bucket, or a local folder.

The Lambda and `upload-processor validate` run the same gather code; only the source differs.
Both list the session root-relative, and both are read-only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from upload_processor.adapters.s3 import join, list_objects


@dataclass(frozen=True)
class Entry:
    """One file of the session."""

    relative: str
    size: int
    etag: str
    key: str  # the S3 key, or the local path


class SessionSource(Protocol):
    """A read-only view of a session folder."""

    def entries(self) -> list[Entry]:
        """Every file, sorted by relative path."""
        ...

    def read(self, relative: str) -> tuple[bytes, str]:
        """A small file's bytes and its version id ("" when unversioned)."""
        ...


class S3Session:
    """A session under a staging prefix."""

    def __init__(
        self, s3: Any, bucket: str, prefix: str, versions: dict[str, str] | None = None
    ) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.versions = versions or {}

    def entries(self) -> list[Entry]:
        """List the prefix (paginated)."""
        out = []
        for obj in list_objects(self.s3, self.bucket, f"{self.prefix}/" if self.prefix else ""):
            key = obj["Key"]
            rel = key[len(self.prefix) + 1 :] if self.prefix else key
            if rel and not rel.endswith("/"):
                out.append(Entry(rel, int(obj["Size"]), obj.get("ETag", "").strip('"'), key))
        return sorted(out, key=lambda e: e.relative)

    def read(self, relative: str) -> tuple[bytes, str]:
        """Read one object, at its pinned version when one is known."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": join(self.prefix, relative)}
        if self.versions.get(relative):
            kwargs["VersionId"] = self.versions[relative]
        out = self.s3.get_object(**kwargs)
        return out["Body"].read(), out.get("VersionId") or ""


class LocalSession:
    """A session laid out in a local folder, as it would be staged."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entries(self) -> list[Entry]:
        """Walk the folder; ETags are MD5s, as S3 gives single-part uploads."""
        out = []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            rel = path.relative_to(self.root).as_posix()
            size = path.stat().st_size
            out.append(Entry(rel, size, "", str(path)))
        return out

    def read(self, relative: str) -> tuple[bytes, str]:
        """The file's bytes."""
        return (self.root / relative).read_bytes(), ""


def md5_etag(body: bytes) -> str:
    """The ETag S3 gives a single-part upload of these bytes."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest()
