"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from e2e_support import ROOT

from upload_processor_tools.local import LocalCloud


@pytest.fixture
def quick_cloud() -> Iterator[LocalCloud]:
    """The local cloud without the wait for listed files (for jobs that list none)."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with LocalCloud(ROOT, parameter_overrides={"FilesWaitSeconds": 0}) as cloud:
        yield cloud


@pytest.fixture
def no_metrics_warning() -> Iterator[None]:
    """Silence Powertools' warning for handlers that publish no metric."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    yield
