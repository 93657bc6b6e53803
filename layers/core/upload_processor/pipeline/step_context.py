"""What a registration step is given besides its input: settings, clients, the job store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from upload_processor.adapters.jobs import JobStore
from upload_processor.settings import Settings


@dataclass(frozen=True)
class StepContext:
    """The deployment's settings, a boto3 client factory (adapters.aws.client) and the jobs."""

    settings: Settings
    client: Callable[[str], Any]
    store: JobStore
