"""An AIND-compatible metadata service (aind-metadata-service's v2 routes).

How aind-metadata-service answers (read from its source, v2 routes):

- 200: the record, valid against its aind-data-schema model;
- 400: the record *is* in the body, but it failed validation (the errors are in the
  ``X-Error-Message`` header). It is still the registered record: we return it and let
  GatherMetadata's validation report the problems;
- 404: not found;
- 406: the request was not acceptable: for subjects, "Subject ID ... is not valid. Please
  specify a numeric subject ID." (older releases used 406 for "invalid data" with the record
  under ``data``; then we return that record);
- 300: older releases' "Multiple Items Found" (the records under ``data``): ambiguous, an
  error that says so;
- the instrument route answers a *list* (every version it knows, with status 400 because the
  records are not validated): we keep the records whose ``instrument_id`` matches exactly and
  return the one with the latest ``modification_date``;
- the funding and investigators routes answer a *list* too: every aind-data-schema ``Funding``
  of the project (its ``fundee`` people included), and every ``Person`` investigator (the
  service fills in ORCID ids it can resolve). 200: all of them validate; 400: the list is in
  the body but some entries fail validation (``X-Error-Message``): we use it and let the
  data_description's validation report the problems; 404: the project is unknown (or has no
  such entries); 406: the project has subprojects and the name must say which one
  (``"<project> - <subproject>"``): a final error that says so; 300 (older releases'
  ``/funding`` route, several funding rows under ``data``): the rows, since a project may
  have several funding sources. Investigators are de-duplicated by name, as
  aind-metadata-mapper does.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from upload_processor.adapters.metadata_service.http import (
    HttpClient,
    HttpReply,
    refused,
)
from upload_processor.errors import MetadataRequestError

logger = logging.getLogger(__name__)

_ID_HINT = (
    "the service finds the request not acceptable, e.g. an id it cannot look up "
    "(aind-metadata-service wants numeric subject ids); fix the id in upload_job.json"
)
_PROJECT_HINT = (
    "the service finds the project name not acceptable: a project with subprojects must be "
    "named '<project> - <subproject>' (GET /api/v2/project_names lists them); fix project_name "
    "in upload_job.json"
)


class AindMetadataService(HttpClient):
    """An AIND-compatible metadata service (aind-metadata-service's /api/v2 routes)."""

    registers_projects = False

    def __repr__(self) -> str:
        return f"AindMetadataService({self.base_url})"

    @staticmethod
    def _unwrap(data: Any) -> Any:
        """Older releases wrap the record: ``{"message": ..., "data": record}``."""
        if isinstance(data, dict) and "data" in data and set(data) <= {"message", "data"}:
            return data["data"]
        return data

    def _record(self, reply: HttpReply, what: str, not_acceptable: str = _ID_HINT) -> Any:
        """The record(s) in a reply, or None for 404; raises for anything unusable.

        `not_acceptable` is the hint given with a 406 that carries no record."""
        if reply.status == 404:
            return None
        if reply.status in (200, 400):
            if reply.status == 400:
                logger.warning(
                    "metadata service: %s returned %s that does not validate (%s); using it",
                    reply.url,
                    what,
                    (reply.headers.get("X-Error-Message") or reply.message())[:500],
                )
            return self._unwrap(reply.json())
        if reply.status == 406:
            data = self._record_or_none(reply)
            if data is not None:  # older releases: 406 = the record failed validation
                logger.warning(
                    "metadata service: %s returned %s that does not validate (%s); using it",
                    reply.url,
                    what,
                    reply.message()[:500],
                )
                return data
            raise refused(reply, what, not_acceptable)
        if reply.status == 300:
            raise MetadataRequestError(
                f"{reply.url} found several records for {what} ({reply.message()}); "
                "it cannot tell which one this session used: add the file to the upload instead",
                url=reply.url,
                status=reply.status,
            )
        raise refused(reply, what)

    def _record_or_none(self, reply: HttpReply) -> Any:
        try:
            data = json.loads(reply.body)
        except ValueError:
            return None
        if isinstance(data, dict) and isinstance(data.get("data"), dict | list):
            return data["data"]
        return None

    def _single(self, route: str, kind: str, record_id: str) -> dict[str, Any] | None:
        what = f"{kind} {record_id!r}"
        data = self._record(self.get(self.url("api", "v2", route, record_id)), what)
        if data is None:
            return None
        if isinstance(data, list):
            if len(data) == 1 and isinstance(data[0], dict):
                return data[0]
            raise MetadataRequestError(
                f"{self.url('api', 'v2', route, record_id)} returned {len(data)} records for "
                f"{what}; it cannot tell which one this session used: add the file to the upload",
                url=self.url("api", "v2", route, record_id),
            )
        if not isinstance(data, dict):
            raise MetadataRequestError(
                f"{self.url('api', 'v2', route, record_id)} returned a "
                f"{type(data).__name__}, not a {kind} record",
                url=self.url("api", "v2", route, record_id),
            )
        return data

    def get_subject(self, subject_id: str) -> dict[str, Any] | None:
        """GET /api/v2/subject/{subject_id}."""
        return self._single("subject", "subject", subject_id)

    def get_procedures(self, subject_id: str) -> dict[str, Any] | None:
        """GET /api/v2/procedures/{subject_id}."""
        return self._single("procedures", "procedures of subject", subject_id)

    def get_instrument(self, instrument_id: str) -> dict[str, Any] | None:
        """GET /api/v2/instrument/{instrument_id}: the latest modification_date among the
        records whose instrument_id is exactly this one."""
        url = self.url("api", "v2", "instrument", instrument_id)
        data = self._record(self.get(url), f"instrument {instrument_id!r}")
        if data is None:
            return None
        records = data if isinstance(data, list) else [data]
        matching = [
            r
            for r in records
            if isinstance(r, dict)
            and r.get("instrument_id") == instrument_id
            and r.get("modification_date")
        ]
        if not matching:
            return None
        return max(matching, key=lambda r: str(r["modification_date"]))

    def _list(self, route: str, what: str, project_name: str) -> list[dict[str, Any]] | None:
        """A list route's records (None for 404); a single record becomes a list of one."""
        url = self.url("api", "v2", route, project_name)
        reply = self.get(url)
        data = self._record_or_none(reply) if reply.status == 300 else None
        if data is None:
            data = self._record(reply, what, _PROJECT_HINT)
        if data is None:
            return None
        records = data if isinstance(data, list) else [data]
        if not all(isinstance(r, dict) for r in records):
            raise MetadataRequestError(
                f"{url} returned {type(data).__name__} entries that are not {what} records",
                url=url,
                status=reply.status,
            )
        return records

    def get_project(self, project_name: str) -> dict[str, Any] | None:
        """GET /api/v2/funding/{project_name} and /api/v2/investigators/{project_name}: None
        when the service knows neither."""
        funding = self._list("funding", f"funding of project {project_name!r}", project_name)
        people = self._list(
            "investigators", f"investigators of project {project_name!r}", project_name
        )
        if funding is None and people is None:
            return None
        investigators: list[dict[str, Any]] = []
        seen: set[Any] = set()
        for person in people or []:
            name = person.get("name")
            if name not in seen:
                seen.add(name)
                investigators.append(person)
        return {
            "project_name": project_name,
            "funding_source": funding or [],
            "investigators": investigators,
        }
