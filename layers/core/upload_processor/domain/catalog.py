"""The catalog of archived assets: what one record holds and what a search asks.

One record per sealed asset, keyed by its name, with the metadata's key fields (subject,
project, modalities, acquisition time, data level) and where its `metadata.nd.json` is, so an
asset can be found without listing a bucket. The fields come from the asset's merged metadata
(`metadata.nd.json`: `data_description`, `subject`, `acquisition`) and, where it says nothing,
from the job (`upload_job.json` carries subject, project, modalities and acq_datetime).

`acquired_at` is the acquisition time in UTC (`YYYY-MM-DDTHH:MM:SSZ`): a string that sorts
as time, which the catalog's indexes range over (`--since` / `--until`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from upload_processor.errors import InvalidQueryError


class CatalogEntry(BaseModel):
    """One archived asset, as the catalog keeps it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    asset_name: str
    subject_id: str
    project_name: str = ""
    modalities: list[str] = Field(default_factory=list)  # abbreviations: ecephys, behavior...
    acquired_at: str  # UTC, `...Z`
    acquisition_time: str = ""  # as the metadata writes it (its own offset)
    data_level: str = "raw"
    platform: str = ""
    archive_uri: str
    metadata_uri: str  # s3://<archive>/<asset>/metadata.nd.json
    manifest_uri: str
    job_id: str
    files: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    registered_at: str = ""
    # What the Code Ocean steps before the catalog recorded (registration.codeocean/pipelines)
    codeocean_asset_id: str = ""
    codeocean_computations: dict[str, str] = Field(default_factory=dict)  # modality -> run id


def utc_key(moment: str | datetime) -> str:
    """An ISO time (any offset; naive means UTC) as the catalog's sortable UTC string."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _abbreviation(modality: Any) -> str:
    if isinstance(modality, Mapping):
        return str(modality.get("abbreviation") or modality.get("name") or "")
    return str(modality)


def entry_from_metadata(
    metadata: Mapping[str, Any] | None,
    job: Mapping[str, Any],
    *,
    asset_name: str,
    archive_uri: str,
    metadata_uri: str,
    manifest_uri: str,
    job_id: str,
    counts: Mapping[str, int] | None = None,
    registered_at: str = "",
) -> CatalogEntry:
    """The catalog record of a sealed asset: key fields from its merged metadata, the job's
    where the metadata has none."""
    doc = metadata or {}
    description = doc.get("data_description") or {}
    subject = doc.get("subject") or {}
    acquisition = doc.get("acquisition") or {}
    modalities = [_abbreviation(m) for m in description.get("modalities") or []]
    if not modalities:
        modalities = [_abbreviation(m) for m in job.get("modalities") or []]
    when = (
        acquisition.get("acquisition_start_time")
        or description.get("creation_time")
        or job.get("acq_datetime")
    )
    if not when:
        raise ValueError(f"{asset_name}: neither metadata.nd.json nor the job gives a time")
    platform = job.get("platform")
    counts = counts or {}
    return CatalogEntry(
        asset_name=asset_name,
        subject_id=str(
            subject.get("subject_id") or description.get("subject_id") or job["subject_id"]
        ),
        project_name=str(description.get("project_name") or job.get("project_name") or ""),
        modalities=sorted({m.lower() for m in modalities if m}),
        acquired_at=utc_key(str(when)),
        acquisition_time=str(when),
        data_level=str(description.get("data_level") or "raw"),
        platform=_abbreviation(platform) if platform else "",
        archive_uri=archive_uri,
        metadata_uri=metadata_uri,
        manifest_uri=manifest_uri,
        job_id=job_id,
        files=int(counts.get("files", 0)),
        bytes_in=int(counts.get("bytes_in", 0)),
        bytes_out=int(counts.get("bytes_out", 0)),
        registered_at=registered_at,
    )


def _bound(value: str | date | datetime | None, *, upper: bool, name: str) -> str | None:
    """A --since/--until value as a UTC key; a bare date covers its whole day."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return utc_key(value)
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    try:
        if len(text) == 10:
            date.fromisoformat(text)
            return f"{text}T23:59:59Z" if upper else f"{text}T00:00:00Z"
        return utc_key(text)
    except ValueError:
        raise InvalidQueryError(
            f"{name} {text!r} is not a date (YYYY-MM-DD) or an ISO time "
            "(YYYY-MM-DDTHH:MM:SS, with an offset or UTC)"
        ) from None


class AssetQuery(BaseModel):
    """A catalog search: any of subject, project, modality, data level, and a time range."""

    model_config = ConfigDict(frozen=True)

    subject: str | None = None
    project: str | None = None
    modality: str | None = None
    data_level: str | None = None
    since: str | None = None  # UTC key (AssetQuery.build turns dates into keys)
    until: str | None = None
    limit: int = Field(default=50, ge=1, le=1000)

    @classmethod
    def build(
        cls,
        *,
        subject: str | None = None,
        project: str | None = None,
        modality: str | None = None,
        data_level: str | None = None,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        limit: int = 50,
    ) -> AssetQuery:
        """A query from user input; InvalidQueryError names a bad date or limit."""
        if not 1 <= int(limit) <= 1000:
            raise InvalidQueryError(f"limit must be between 1 and 1000, got {limit}")
        low = _bound(since, upper=False, name="since")
        high = _bound(until, upper=True, name="until")
        if low and high and low > high:
            raise InvalidQueryError(f"since ({since}) is after until ({until})")
        return cls(
            subject=subject or None,
            project=project or None,
            modality=modality.lower() if modality else None,
            data_level=data_level or None,
            since=low,
            until=high,
            limit=int(limit),
        )

    def matches(self, entry: CatalogEntry) -> bool:
        """Whether an entry meets every condition (the backends' filter after their index)."""
        return (
            (self.subject is None or entry.subject_id == self.subject)
            and (self.project is None or entry.project_name == self.project)
            and (self.modality is None or self.modality in entry.modalities)
            and (self.data_level is None or entry.data_level == self.data_level)
            and (self.since is None or entry.acquired_at >= self.since)
            and (self.until is None or entry.acquired_at <= self.until)
        )
