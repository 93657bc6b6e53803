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
"""

from __future__ import annotations

from upload_processor.adapters.metadata_service.aind import AindMetadataService
from upload_processor.adapters.metadata_service.http import HttpReply
from upload_processor.adapters.metadata_service.registry import (
    RegistryHttpService,
    RegistryTableService,
)
from upload_processor.adapters.metadata_service.spec import (
    OFFLINE_SPECS,
    SPEC_FORMS,
    is_deployment_registry,
    service_from_spec,
)

__all__ = [
    "OFFLINE_SPECS",
    "SPEC_FORMS",
    "AindMetadataService",
    "HttpReply",
    "RegistryHttpService",
    "RegistryTableService",
    "is_deployment_registry",
    "service_from_spec",
]
