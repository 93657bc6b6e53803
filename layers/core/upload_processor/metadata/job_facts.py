"""What upload_job.json declares that the metadata must agree with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from upload_processor.domain.upload_job import JOB_FILENAME


@dataclass(frozen=True)
class JobFacts:
    """What upload_job.json declares that the metadata must agree with.

    ``modalities`` are abbreviations (``"behavior"``, ``"ecephys"``); ``acq_datetime`` must be
    timezone-aware (the job parser applies the deployment's default zone to a naive one).
    ``file`` is the name issues about the job use. ``default_tz`` is the deployment's
    DefaultTimeZone: naive timestamps in the metadata files are read in it.
    """

    subject_id: str
    modalities: tuple[str, ...]
    acq_datetime: datetime
    file: str = JOB_FILENAME
    default_tz: str | None = None

    def __post_init__(self) -> None:
        if self.acq_datetime.tzinfo is None or self.acq_datetime.utcoffset() is None:
            raise ValueError("JobFacts.acq_datetime must be timezone-aware")
        object.__setattr__(self, "modalities", tuple(self.modalities))
