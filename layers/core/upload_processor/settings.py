"""Settings read from the environment, which template.yaml fills (and local mode mirrors)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from upload_processor.domain.units import MiB
from upload_processor.errors import ConfigurationError


def mib(value: str | None) -> int | None:
    """A size setting in MiB (0 or empty: let the code choose from the compression level)."""
    return int(float(value) * MiB) if value and float(value) > 0 else None


@dataclass(frozen=True)
class Settings:
    """What a handler needs to know about its deployment."""

    jobs_table: str
    topic_arn: str
    archive_bucket: str
    state_machine_arn: str
    default_time_zone: str | None
    open_archive_bucket: str = ""
    files_wait_seconds: float = 240.0
    chunk_threshold: int | None = None
    range_size: int | None = None
    job_types_prefix: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings; a missing one is reported when it is used, not at import."""
        return cls(
            jobs_table=os.environ.get("JOBS_TABLE", ""),
            topic_arn=os.environ.get("NOTIFICATION_TOPIC_ARN", ""),
            archive_bucket=os.environ.get("ARCHIVE_BUCKET", ""),
            state_machine_arn=os.environ.get("STATE_MACHINE_ARN", ""),
            default_time_zone=os.environ.get("DEFAULT_TIME_ZONE") or None,
            open_archive_bucket=os.environ.get("OPEN_ARCHIVE_BUCKET", ""),
            files_wait_seconds=float(os.environ.get("FILES_WAIT_SECONDS") or 240),
            chunk_threshold=mib(os.environ.get("CHUNK_THRESHOLD_MIB")),
            range_size=mib(os.environ.get("RANGE_SIZE_MIB")),
            job_types_prefix=os.environ.get("JOB_TYPES_PREFIX") or None,
        )

    def archive_for(self, s3_bucket: str) -> str:
        """The archive bucket a job's `s3_bucket` (private, open, default) selects."""
        if s3_bucket == "open":
            return self.require("open_archive_bucket")
        return self.require("archive_bucket")

    def require(self, name: str) -> str:
        """The named setting, or a ConfigurationError that names the variable to set."""
        value = getattr(self, name)
        if not value:
            env = {
                "jobs_table": "JOBS_TABLE",
                "topic_arn": "NOTIFICATION_TOPIC_ARN",
                "archive_bucket": "ARCHIVE_BUCKET",
                "open_archive_bucket": "OPEN_ARCHIVE_BUCKET",
                "state_machine_arn": "STATE_MACHINE_ARN",
            }.get(name, name.upper())
            raise ConfigurationError(f"environment variable {env} is not set")
        return value
