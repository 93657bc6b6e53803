"""The port through which the pipeline reads registered metadata (subjects, procedures,
instruments, projects). The adapters in `upload_processor.adapters.metadata_service`
implement it; the domain and the metadata rules depend only on this.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class MetadataService(Protocol):
    """Registered metadata by id; None = not registered."""

    # whether a project's funding and investigators can be registered in it (`upload-processor
    # registry put project`): the project's own registry can, an AIND service cannot
    registers_projects: bool

    def get_subject(self, subject_id: str) -> dict[str, Any] | None:
        """The subject record."""
        ...

    def get_procedures(self, subject_id: str) -> dict[str, Any] | None:
        """The subject's procedures record."""
        ...

    def get_instrument(self, instrument_id: str) -> dict[str, Any] | None:
        """The instrument with the latest modification_date."""
        ...

    def get_project(self, project_name: str) -> dict[str, Any] | None:
        """A project's ``{"project_name", "funding_source": [Funding...], "investigators":
        [Person...]}`` (either list may be empty when the service knows only the other)."""
        ...
