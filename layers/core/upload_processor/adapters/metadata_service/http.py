"""HTTP for the metadata services: urllib only (the layer gains no dependency), https only
(plain http only for a loopback host), no redirect followed (it would carry the signature
elsewhere), a timeout on every request, retries with backoff and jitter on 5xx, 429 and
connection errors; "not found" (404) is an answer, not an error.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from upload_processor.domain.units import MiB
from upload_processor.errors import ConfigurationError, MetadataRequestError, MetadataServiceError

logger = logging.getLogger(__name__)

# what a METADATA_SERVICE setting may be (error messages quote it)
SPEC_FORMS = (
    "'' or 'none' (offline), 'registry-table:<TableName>', 'https://<registry api url>' "
    "or 'aind:https://<aind-metadata-service url>'"
)

MAX_RESPONSE_BYTES = 32 * MiB
MAX_BACKOFF_SECONDS = 20.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The only hosts a plain-http service URL may name: a service on this machine (local mode and
# tests), whose traffic never crosses a network.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


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


class HttpClient:
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
                if is_timeout(exc):
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


def is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    reason = getattr(exc, "reason", None)
    return isinstance(reason, TimeoutError)


def refused(reply: HttpReply, what: str, hint: str = "") -> MetadataRequestError:
    return MetadataRequestError(
        f"{reply.url} refused the request for {what}: HTTP {reply.status}: {reply.message()}"
        + (f" ({hint})" if hint else ""),
        url=reply.url,
        status=reply.status,
    )


def auth_hint(status: int) -> str:
    if status in (401, 403):
        return (
            "the registry API accepts only SigV4-signed requests from principals allowed "
            "execute-api:Invoke; check the AWS credentials in use"
        )
    return ""
