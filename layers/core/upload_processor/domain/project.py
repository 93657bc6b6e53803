"""A project's funding and investigators: the registry's ``project`` kind.

aind-data-schema has no project document, but its `DataDescription` requires at least one
`Funding` and one investigator (`Person`), and those belong to the project, not to a session.
The registry keeps them per ``project_name`` so that every session of the project gets them
in the data_description the pipeline builds (aind-metadata-service answers the same from its
``/api/v2/funding`` and ``/api/v2/investigators`` routes)::

    {"project_name": "Example Foraging Project",
     "funding_source": [{"funder": {"name": "Allen Institute", "abbreviation": "AI"}}],
     "investigators": [{"name": "Jane Doe"}]}

Imported lazily (aind-data-schema is slow to import).
"""

from __future__ import annotations

from typing import Literal

from aind_data_schema.components.identifiers import Person
from aind_data_schema.core.data_description import Funding
from pydantic import BaseModel, ConfigDict, Field


class Project(BaseModel):
    """What the registry holds for a project (validated with aind-data-schema 2.9.2 models)."""

    model_config = ConfigDict(extra="forbid")

    object_type: Literal["Project"] = "Project"
    project_name: str = Field(
        min_length=1, description="Exactly the project_name of upload_job.json."
    )
    funding_source: list[Funding] = Field(
        min_length=1, description="aind-data-schema Funding entries (funder, grant, fundees)."
    )
    investigators: list[Person] = Field(
        min_length=1, description="Key investigators (aind-data-schema Person)."
    )
