"""The Catalog state: one catalog record per sealed asset (tasks `register_data_asset`,
`update_docdb_record`).

The record's fields come from the asset's own `metadata.nd.json` (read from the archive, so the
catalog says what the asset holds) with the job's where it has none (domain.catalog), and the
Code Ocean data asset id and pipeline runs the steps before it recorded on the job. It is
put by asset name into the stack's AssetsTable (adapters.catalog): a re-run replaces it, never
adds one. When the deployment also points at AIND's DocDB (`CATALOG_BACKEND=docdb:https://...`)
the same record is upserted there (adapters.catalog_docdb). A no-op job (the archive already
held this exact session) archived nothing: the job that sealed the asset catalogued it.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from upload_processor.adapters.catalog import CatalogStore
from upload_processor.adapters.s3 import read_bytes
from upload_processor.domain.catalog import CatalogEntry, entry_from_metadata
from upload_processor.domain.registration import (
    CODEOCEAN_ASSET_ID,
    COMPUTATION_SUFFIX,
    Registration,
    RegistrationInput,
    StepOutcome,
    utc_now,
)
from upload_processor.errors import RegistrationError, error_code, is_transient
from upload_processor.pipeline.step_context import StepContext

DOCDB_PREFIX = "docdb:"


def codeocean_fields(registration: Registration) -> dict[str, Any]:
    """What the Code Ocean steps (they run before the catalog) recorded that the record
    carries: the data asset's id and each modality's pipeline run, when they succeeded."""
    fields: dict[str, Any] = {}
    asset = registration.steps.get("codeocean")
    if asset is not None and asset.status == "OK" and asset.details.get(CODEOCEAN_ASSET_ID):
        fields["codeocean_asset_id"] = asset.details[CODEOCEAN_ASSET_ID]
    runs = registration.steps.get("pipelines")
    if runs is not None:
        fields["codeocean_computations"] = {
            key[: -len(COMPUTATION_SUFFIX)]: value
            for key, value in runs.details.items()
            if key.endswith(COMPUTATION_SUFFIX)
        }
    return fields


def _metadata(s3: Any, request: RegistrationInput) -> dict[str, Any] | None:
    """The asset's metadata.nd.json, or None when the asset has none (it is optional)."""
    try:
        return json.loads(read_bytes(s3, request.archive_bucket, request.metadata_key))
    except ClientError as exc:
        if is_transient(exc) or error_code(exc) not in ("NoSuchKey", "404"):
            raise
        return None


def entry_for(s3: Any, request: RegistrationInput) -> tuple[CatalogEntry, dict[str, Any] | None]:
    """The sealed asset's catalog record, and its metadata document (None: it has none)."""
    bucket, name = request.archive_bucket, request.asset_name
    metadata = _metadata(s3, request)
    try:
        entry = entry_from_metadata(
            metadata,
            request.job,
            asset_name=name,
            archive_uri=request.archive_uri,
            metadata_uri=f"s3://{bucket}/{request.metadata_key}",
            manifest_uri=f"s3://{bucket}/{request.manifest_key}",
            job_id=request.job_id,
            counts=request.finalize.model_dump(include={"files", "bytes_in", "bytes_out"}),
            registered_at=utc_now(),
        )
    except (ValueError, KeyError) as exc:
        raise RegistrationError(
            f"{name}/metadata.nd.json: no catalog record can be made from it ({exc})"
        ) from exc
    return entry, metadata


def register(request: RegistrationInput, ctx: StepContext) -> StepOutcome:
    """Put the asset's record into the catalog (and DocDB when configured)."""
    if request.finalize.noop:
        return StepOutcome.skipped(
            "the archive already held this exact session; the job that sealed it catalogued it"
        )
    entry, metadata = entry_for(ctx.client("s3"), request)
    recorded = Registration.from_record(ctx.store.get(request.job_id))
    entry = entry.model_copy(update=codeocean_fields(recorded))
    table = ctx.settings.require("assets_table")
    CatalogStore(ctx.client("dynamodb"), table).put(entry)
    details = {"catalog_table": table, "asset_name": entry.asset_name}
    backend = ctx.settings.catalog_backend
    if backend.startswith(DOCDB_PREFIX):
        from upload_processor.adapters.catalog_docdb import DocDbCatalog

        docdb = DocDbCatalog.from_url(backend[len(DOCDB_PREFIX) :])
        details["docdb_id"] = docdb.upsert(entry, metadata)
    return StepOutcome.ok(**details)
