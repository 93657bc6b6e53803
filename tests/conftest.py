"""Shared test setup: fake AWS credentials everywhere, so nothing can reach a real account."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest

from tests.paths import ROOT

for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)
# never a developer's saved deployment (`upload-processor configure`): tests name their own
os.environ["UPLOAD_PROCESSOR_CONFIG_FILE"] = os.devnull
os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture
def cloud() -> Iterator[object]:
    """A fresh local cloud: template.yaml deployed on moto, handlers in-process."""
    from upload_processor_tools.local import LocalCloud

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with LocalCloud(ROOT) as local:
        yield local
