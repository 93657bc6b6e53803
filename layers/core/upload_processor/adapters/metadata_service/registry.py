"""The project's own registry, read directly (its DynamoDB table) or through its REST API."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from upload_processor.adapters.metadata_service.http import (
    HttpClient,
    auth_hint,
    refused,
)
from upload_processor.errors import MetadataRequestError, MetadataServiceError

# Errors that retrying will not cure: a wrong table name, missing permissions.
_FINAL_DYNAMODB_ERRORS = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException"}
)


class RegistryTableService:
    """Reads the registry table directly (a `RegistryStore`)."""

    registers_projects = True

    def __init__(self, store: Any) -> None:
        self.store = store

    @classmethod
    def for_table(cls, table_name: str, *, dynamodb: Any = None) -> RegistryTableService:
        """A service on a table; `dynamodb` is a boto3 client (default: a new one)."""
        from upload_processor.adapters.registry import RegistryStore

        if dynamodb is None:
            from upload_processor.adapters.aws import client

            dynamodb = client("dynamodb")
        return cls(RegistryStore(dynamodb, table_name))

    def __repr__(self) -> str:
        return f"RegistryTableService(registry-table:{self.store.table_name})"

    def _latest(self, kind: str, record_id: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            record = self.store.get_latest(kind, record_id)
        except (ClientError, BotoCoreError) as exc:
            # boto3's own retries (standard mode) have already run.
            where = f"registry-table:{self.store.table_name}"
            code = (
                exc.response.get("Error", {}).get("Code", "")
                if isinstance(exc, ClientError)
                else ""
            )
            final = code in _FINAL_DYNAMODB_ERRORS
            error = MetadataRequestError if final else MetadataServiceError
            raise error(f"cannot read {kind} {record_id!r} from {where}: {exc}", url=where) from exc
        return record.document if record else None

    def get_subject(self, subject_id: str) -> dict[str, Any] | None:
        """The subject's latest version."""
        return self._latest("subject", subject_id)

    def get_procedures(self, subject_id: str) -> dict[str, Any] | None:
        """The latest procedures of the subject."""
        return self._latest("procedures", subject_id)

    def get_instrument(self, instrument_id: str) -> dict[str, Any] | None:
        """The instrument with the latest modification_date."""
        return self._latest("instrument", instrument_id)

    def get_project(self, project_name: str) -> dict[str, Any] | None:
        """The project's latest funding and investigators."""
        return self._latest("project", project_name)


_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class RegistryHttpService(HttpClient):
    """The project's registry REST API (template.yaml `RegistryApi`; IAM auth).

    Requests are signed with SigV4 (service ``execute-api``) when credentials are available:
    given `credentials` (botocore credentials), else those of `session` (a boto3 or botocore
    session), else the default credential chain. Set ``sign=False`` to send them unsigned.
    """

    registers_projects = True

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10,
        retries: int = 4,
        backoff: float = 0.5,
        session: Any = None,
        credentials: Any = None,
        region: str | None = None,
        sign: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(base_url, timeout=timeout, retries=retries, backoff=backoff, sleep=sleep)
        self.sign = sign
        self._session = session
        self._credentials = credentials
        host = urlsplit(base_url).hostname or ""
        match = _EXECUTE_API_HOST.search(host)
        self._region = region or (match.group(1) if match else None)

    def __repr__(self) -> str:
        return f"RegistryHttpService({self.base_url})"

    @property
    def region(self) -> str:
        """The region requests are signed for: given, else the API's host, else botocore's
        (AWS_REGION, the config file), else us-east-1."""
        if self._region is None:
            import botocore.session

            self._region = botocore.session.get_session().get_config_variable("region")
        return self._region or "us-east-1"

    def _resolve_credentials(self) -> Any:
        if self._credentials is None and self.sign:
            if self._session is not None:
                self._credentials = self._session.get_credentials()
            else:
                import botocore.session

                self._credentials = botocore.session.get_session().get_credentials()
        return self._credentials

    def headers(self, method: str, url: str, body: bytes | None = None) -> dict[str, str]:
        """Accept JSON; SigV4-signed when credentials are available (fresh for every attempt)."""
        headers = super().headers(method, url, body)
        credentials = self._resolve_credentials() if self.sign else None
        if credentials is None:
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        frozen = (
            credentials.get_frozen_credentials()
            if hasattr(credentials, "get_frozen_credentials")
            else credentials
        )
        request = AWSRequest(method=method, url=url, headers=headers, data=body or b"")
        SigV4Auth(frozen, "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())

    def _get(self, collection: str, kind: str, record_id: str) -> dict[str, Any] | None:
        reply = self.get(self.url(collection, record_id))
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise refused(reply, f"{kind} {record_id!r}", auth_hint(reply.status))
        data = reply.json()
        if not isinstance(data, dict):
            raise MetadataRequestError(
                f"{reply.url} answered a {type(data).__name__}, not a {kind} record",
                url=reply.url,
                status=reply.status,
            )
        return data

    def get_subject(self, subject_id: str) -> dict[str, Any] | None:
        """GET /subjects/{subject_id}."""
        return self._get("subjects", "subject", subject_id)

    def get_procedures(self, subject_id: str) -> dict[str, Any] | None:
        """GET /procedures/{subject_id}."""
        return self._get("procedures", "procedures of subject", subject_id)

    def get_instrument(self, instrument_id: str) -> dict[str, Any] | None:
        """GET /instruments/{instrument_id} (the registry answers the latest version)."""
        return self._get("instruments", "instrument", instrument_id)

    def get_project(self, project_name: str) -> dict[str, Any] | None:
        """GET /projects/{project_name}: the project's funding and investigators."""
        return self._get("projects", "project", project_name)
