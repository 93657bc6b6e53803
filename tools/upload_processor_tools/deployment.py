"""What the deployment's pipeline checks an upload with: its metadata service and its job types.

`validate`, `submit` and every `job-types` command take both from here, so that a session the
pipeline would accept is accepted before upload, and one it would reject is refused:

- the metadata service is the GatherMetadata function's own setting (`METADATA_SERVICE`, else
  its `REGISTRY_TABLE`), read from the deployed function; `--registry SPEC` overrides it;
- the job types are the shipped presets overlaid with the SSM documents under the Ingest
  function's `JOB_TYPES_PREFIX` (what ingest itself loads); `--prefix` overrides it.

With no deployment named (no `--stack`, `--endpoint-url` or saved default) the environment's
`METADATA_SERVICE` / `REGISTRY_TABLE` and the shipped job types are used, and `Checks.where`
says so; `--offline` uses no service and the shipped job types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from upload_processor.adapters.job_types_store import load_job_types
from upload_processor.adapters.metadata_service import (
    service_from_spec,
)
from upload_processor.domain.job_types import DEFAULT_JOB_TYPES
from upload_processor.domain.metadata_source import MetadataService
from upload_processor.settings import Settings
from upload_processor_tools.commands.locate import Locator

DEFAULT_PREFIX = "/upload-processor/job-types"  # template.yaml's JobTypesPrefix default


@dataclass
class Checks:
    """The metadata service and job types an upload is checked with, and where they came from."""

    service: MetadataService | None
    job_types: dict[str, dict[str, Any]]
    where: str
    # the Ingest function's DEFAULT_TIME_ZONE: what a naive acq_datetime is read in
    default_tz: str | None = None


def job_types_prefix(where: Locator, prefix: str | None) -> str:
    """The SSM prefix ingest reads: `prefix` if given, else the deployed Ingest function's."""
    if prefix:
        return prefix
    if where.located:
        return where.function_environment("IngestFunction").get("JOB_TYPES_PREFIX") or ""
    return DEFAULT_PREFIX


def job_types(where: Locator, prefix: str | None) -> dict[str, dict[str, Any]]:
    """The job types ingest resolves an upload with (shipped presets + the SSM documents)."""
    return load_job_types(job_types_prefix(where, prefix), ssm=where.client("ssm"), max_age=0)


def pipeline_checks(where: Locator, *, registry: str | None, offline: bool) -> Checks:
    """What the pipeline will check this upload with (see the module's docstring)."""
    if offline:
        return Checks(None, DEFAULT_JOB_TYPES, "offline: no metadata service, shipped job types")
    if not where.located:
        spec = registry or Settings.from_env().metadata_service_spec()
        return Checks(
            # the user's own credentials sign for the service they (or their environment) name
            service_from_spec(spec, sign=True),
            DEFAULT_JOB_TYPES,
            "no deployment named (--stack, --endpoint-url or `upload-processor configure`): "
            f"metadata service {spec or 'none'}, shipped job types",
        )
    dynamodb = where.client("dynamodb")
    own = Settings.from_env(where.function_environment("GatherMetadataFunction"))
    spec = registry or own.metadata_service_spec()
    deployment = where.stack or where.endpoint_url
    default_tz = where.function_environment("IngestFunction").get("DEFAULT_TIME_ZONE") or None
    return Checks(
        service_from_spec(
            spec, dynamodb=dynamodb, sign=True if registry else None, deployment_spec=spec
        ),
        job_types(where, None),
        f"as deployment {deployment} checks: metadata service {spec or 'none'}, default time "
        f"zone {default_tz or 'none'}",
        default_tz,
    )
