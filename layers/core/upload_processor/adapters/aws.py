"""boto3 clients, made where they are used (no module-level side effects).

`AWS_ENDPOINT_URL` (honoured by boto3 itself) points every client at a local cloud.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=120
)


def client(service: str) -> Any:
    """A boto3 client with standard retries (backoff with jitter on throttling and 5xx)."""
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]
