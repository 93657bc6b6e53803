"""Where registered metadata comes from: the client side of the metadata service.

GatherMetadata and the CLI ask a `MetadataService` for a subject, a subject's procedures, the
latest version of an instrument, or a project's funding and investigators (for the
data_description it builds). Three backends:

- `RegistryTableService` reads the project's registry table directly (local mode; and in AWS
  the Gather function, which reads the registry table of its own stack);
- `RegistryHttpService` calls the project's registry REST API, signing requests with SigV4
  (service ``execute-api``) when AWS credentials are available; built from a setting, only
  the deployment's own registry URL is signed (`is_deployment_registry`);
- `AindMetadataService` calls an AIND-compatible metadata service
  (``/api/v2/subject/{id}``, ``/api/v2/procedures/{id}``, ``/api/v2/instrument/{id}``,
  ``/api/v2/funding/{project_name}``, ``/api/v2/investigators/{project_name}``).

`service_from_spec` builds one from a setting (METADATA_SERVICE in template.yaml).

HTTP uses the standard library only (urllib), so the Lambda layer gains no dependency. Every
URL is https (plain http only for a loopback host), no redirect is followed, every
request has a timeout; 5xx, 429, connection errors and timeouts are retried with exponential
backoff and jitter; 4xx never are. "Not found" (404) is an answer (None), not an error.

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

import http.client
import json
import logging
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

from upload_processor.errors import (
    ConfigurationError,
    MetadataRequestError,
    MetadataServiceError,
)

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_BACKOFF_SECONDS = 20.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
OFFLINE_SPECS = frozenset({"none", "offline", "off"})
# The only hosts a plain-http service URL may name: a service on this machine (local mode and
# tests), whose traffic never crosses a network.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
SPEC_FORMS = (
    "'' or 'none' (offline), 'registry-table:<TableName>', 'https://<registry api url>' "
    "or 'aind:https://<aind-metadata-service url>'"
)


@runtime_checkable
class MetadataService(Protocol):
    """Registered metadata by id; None = not registered."""

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


# --------------------------------------------------------------------------- registry table
# Errors that retrying will not cure: a wrong table name, missing permissions.
_FINAL_DYNAMODB_ERRORS = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException"}
)


class RegistryTableService:
    """Reads the registry table directly (a `RegistryStore`)."""

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


# --------------------------------------------------------------------------- HTTP
@dataclass(frozen=True)
class HttpReply:
    """One HTTP response."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or a MetadataRequestError naming the URL."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            snippet = self.body[:200].decode("utf-8", "replace")
            raise MetadataRequestError(
                f"{self.url} answered {self.status} with a body that is not JSON: {snippet!r}",
                url=self.url,
                status=self.status,
            ) from None

    def message(self) -> str:
        """The service's own words about an error (`message` / `detail`), or a snippet."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return self.body[:200].decode("utf-8", "replace").strip()
        if isinstance(data, dict):
            for key in ("message", "detail", "Message", "errorMessage"):
                if data.get(key):
                    return str(data[key])
        return json.dumps(data)[:200]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answer a redirect with its own reply instead of following it."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


class _HttpClient:
    """GET with a timeout on every request and retries with backoff + jitter."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"metadata service URL {base_url!r} is not an http(s) URL; use one of {SPEC_FORMS}"
            )
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ConfigurationError(
                f"metadata service URL {base_url!r} is plain http; use https (http is accepted "
                "only for a service on this machine: 127.0.0.1, ::1 or localhost)"
            )
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, backoff)
        self.max_backoff = max_backoff
        self._sleep = sleep
        # No redirect is followed: urllib would resend every header (a signature included)
        # to wherever a redirect points. A 3xx is an answer like any other.
        self._opener = urllib.request.build_opener(_NoRedirect)

    def url(self, *parts: str) -> str:
        """base_url + path segments, each one percent-encoded (ids may hold any character)."""
        return self.base_url + "".join("/" + quote(part, safe="") for part in parts)

    def headers(self, method: str, url: str, body: bytes | None = None) -> dict[str, str]:
        """Request headers (subclasses sign here; called again for every attempt)."""
        headers = {"Accept": "application/json", "User-Agent": "upload-processor"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _once(self, method: str, url: str, body: bytes | None) -> HttpReply:
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in __init__
            url, data=body, headers=self.headers(method, url, body), method=method
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
                return HttpReply(url, response.status, dict(response.headers.items()), body)
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read(MAX_RESPONSE_BYTES + 1) if exc.fp is not None else b""
            return HttpReply(url, exc.code, dict(exc.headers.items()) if exc.headers else {}, body)

    def _delay(self, attempt: int, reply: HttpReply | None) -> float:
        if reply is not None:
            retry_after = reply.headers.get("Retry-After") or reply.headers.get("retry-after")
            if retry_after and retry_after.strip().isdigit():
                return min(float(retry_after), self.max_backoff)
        cap = min(self.max_backoff, self.backoff * (2**attempt))
        return random.uniform(cap / 2, cap)  # noqa: S311 - jitter, not cryptography

    def get(self, url: str) -> HttpReply:
        """GET url; returns the first non-retryable reply (2xx, 3xx, 4xx other than 429).

        Raises MetadataServiceError (naming the URL) when every attempt failed transiently.
        """
        return self.request("GET", url)

    def request(self, method: str, url: str, body: bytes | None = None) -> HttpReply:
        """One request with retries (see `get`); `body` is sent as JSON."""
        attempts = self.retries + 1
        problem = ""
        for attempt in range(attempts):
            reply: HttpReply | None = None
            try:
                reply = self._once(method, url, body)
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                # URLError, ConnectionError and socket timeouts are OSErrors.
                reason = getattr(exc, "reason", None) or exc
                if _is_timeout(exc):
                    problem = f"no answer within the {self.timeout:g}s timeout"
                else:
                    problem = f"request failed: {type(reason).__name__}: {reason}"
            else:
                if len(reply.body) > MAX_RESPONSE_BYTES:
                    raise MetadataRequestError(
                        f"{url} answered more than {MAX_RESPONSE_BYTES} bytes", url=url
                    )
                if reply.status not in RETRY_STATUSES:
                    return reply
                problem = f"HTTP {reply.status}: {reply.message()}"
            if attempt + 1 < attempts:
                delay = self._delay(attempt, reply)
                logger.warning(
                    "metadata service: %s for %s; retry %d of %d in %.2fs",
                    problem,
                    url,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                self._sleep(delay)
        raise MetadataServiceError(
            f"metadata service unavailable: {method} {url} failed {attempts} time"
            f"{'s' if attempts != 1 else ''}; last: {problem}",
            url=url,
        )


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    reason = getattr(exc, "reason", None)
    return isinstance(reason, TimeoutError)


def _refused(reply: HttpReply, what: str, hint: str = "") -> MetadataRequestError:
    return MetadataRequestError(
        f"{reply.url} refused the request for {what}: HTTP {reply.status}: {reply.message()}"
        + (f" ({hint})" if hint else ""),
        url=reply.url,
        status=reply.status,
    )


def _auth_hint(status: int) -> str:
    if status in (401, 403):
        return (
            "the registry API accepts only SigV4-signed requests from principals allowed "
            "execute-api:Invoke; check the AWS credentials in use"
        )
    return ""


_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class RegistryHttpService(_HttpClient):
    """The project's registry REST API (template.yaml `RegistryApi`; IAM auth).

    Requests are signed with SigV4 (service ``execute-api``) when credentials are available:
    given `credentials` (botocore credentials), else those of `session` (a boto3 or botocore
    session), else the default credential chain. Set ``sign=False`` to send them unsigned.
    """

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
            raise _refused(reply, f"{kind} {record_id!r}", _auth_hint(reply.status))
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


_ID_HINT = (
    "the service finds the request not acceptable, e.g. an id it cannot look up "
    "(aind-metadata-service wants numeric subject ids); fix the id in upload_job.json"
)
_PROJECT_HINT = (
    "the service finds the project name not acceptable: a project with subprojects must be "
    "named '<project> - <subproject>' (GET /api/v2/project_names lists them); fix project_name "
    "in upload_job.json"
)


class AindMetadataService(_HttpClient):
    """An AIND-compatible metadata service (aind-metadata-service's /api/v2 routes)."""

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
            raise _refused(reply, what, not_acceptable)
        if reply.status == 300:
            raise MetadataRequestError(
                f"{reply.url} found several records for {what} ({reply.message()}); "
                "it cannot tell which one this session used: add the file to the upload instead",
                url=reply.url,
                status=reply.status,
            )
        raise _refused(reply, what)

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


# --------------------------------------------------------------------------- configuration
def is_deployment_registry(url: str, deployment_spec: str | None) -> bool:
    """Whether `url` is the registry API the deployment is configured with (its
    METADATA_SERVICE, `Settings.metadata_service_spec()`, as a plain http(s) URL): the stack's
    own IAM-authorised API, the one host that may see the role's SigV4 credentials."""
    own = (deployment_spec or "").strip()
    if not own.startswith(("https://", "http://")):
        return False
    return url.strip().rstrip("/") == own.rstrip("/")


def service_from_spec(
    spec: str | None,
    *,
    dynamodb: Any = None,
    sign: bool | None = None,
    deployment_spec: str | None = None,
    **http_options: Any,
) -> MetadataService | None:
    """A metadata service from a setting; None means offline (no service).

    `sign` (registry URLs only): whether requests carry SigV4 credentials. By default only
    the deployment's own registry API (`is_deployment_registry` against `deployment_spec`)
    receives them: a URL that came from elsewhere (a stored job type) is called unsigned, so
    the role's credentials never reach another host. The CLI passes True for the URL its
    user named.

    ``None`` / ``""`` / ``"none"`` → None; ``"registry-table:<TableName>"`` →
    RegistryTableService; ``"https://..."`` / ``"http://..."`` → RegistryHttpService;
    ``"aind:https://..."`` → AindMetadataService. `http_options` (timeout, retries, backoff,
    ...) go to the HTTP clients.
    """
    text = (spec or "").strip()
    if not text or text.lower() in OFFLINE_SPECS:
        return None
    if text.startswith("registry-table:"):
        table = text.split(":", 1)[1].strip()
        if not table:
            raise ConfigurationError(f"metadata service {spec!r} names no table; use {SPEC_FORMS}")
        return RegistryTableService.for_table(table, dynamodb=dynamodb)
    if text.startswith("aind:"):
        return AindMetadataService(text[len("aind:") :].strip(), **http_options)
    if text.startswith(("https://", "http://")):
        if sign is None:
            sign = is_deployment_registry(text, deployment_spec)
        return RegistryHttpService(text, sign=sign, **http_options)
    raise ConfigurationError(f"metadata service {spec!r} is not understood; use {SPEC_FORMS}")
