"""Faults with stable names: the state machine matches them by name (DESIGN.md, house style).

An invalid session is *not* an exception: it is a result that a Choice state routes. These are
for what goes wrong around it.
"""

from __future__ import annotations

from typing import Any


class UploadProcessorError(Exception):
    """Base of every fault the pipeline raises on purpose."""


class TransientError(UploadProcessorError):
    """A fault worth retrying (throttling, 5xx): the ASL retries it with backoff."""


class UploadJobError(UploadProcessorError):
    """upload_job.json cannot be read or parsed; the message says which field and how to fix."""

    def __init__(self, message: str, issues: list[Any] | None = None) -> None:
        super().__init__(message)
        self.issues = list(issues or [])


class UnknownJobTypeError(UploadJobError):
    """The job names a job type this deployment does not define."""


class ConfigurationError(UploadProcessorError):
    """The deployment is missing a setting (an environment variable from template.yaml)."""


class AssetExistsError(UploadProcessorError):
    """The archive already holds a different asset under the same name: nothing is overwritten."""


class JobNotFoundError(UploadProcessorError):
    """No job record with that id."""
