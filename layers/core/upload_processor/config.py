"""Settings read from the environment, which template.yaml fills (and local mode mirrors)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from upload_processor.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    """What a handler needs to know about its deployment."""

    jobs_table: str
    topic_arn: str
    archive_bucket: str
    state_machine_arn: str
    default_time_zone: str | None

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings; a missing one is reported when it is used, not at import."""
        return cls(
            jobs_table=os.environ.get("JOBS_TABLE", ""),
            topic_arn=os.environ.get("NOTIFICATION_TOPIC_ARN", ""),
            archive_bucket=os.environ.get("ARCHIVE_BUCKET", ""),
            state_machine_arn=os.environ.get("STATE_MACHINE_ARN", ""),
            default_time_zone=os.environ.get("DEFAULT_TIME_ZONE") or None,
        )

    def require(self, name: str) -> str:
        """The named setting, or a ConfigurationError that names the variable to set."""
        value = getattr(self, name)
        if not value:
            env = {
                "jobs_table": "JOBS_TABLE",
                "topic_arn": "NOTIFICATION_TOPIC_ARN",
                "archive_bucket": "ARCHIVE_BUCKET",
                "state_machine_arn": "STATE_MACHINE_ARN",
            }.get(name, name.upper())
            raise ConfigurationError(f"environment variable {env} is not set")
        return value
