"""A metadata service from a deployment's setting (METADATA_SERVICE in template.yaml)."""

from __future__ import annotations

from typing import Any

from upload_processor.adapters.metadata_service.aind import AindMetadataService
from upload_processor.adapters.metadata_service.http import SPEC_FORMS
from upload_processor.adapters.metadata_service.registry import (
    RegistryHttpService,
    RegistryTableService,
)
from upload_processor.domain.metadata_source import MetadataService
from upload_processor.errors import ConfigurationError

OFFLINE_SPECS = frozenset({"none", "offline", "off"})


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
