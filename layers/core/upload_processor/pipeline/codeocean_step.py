"""RegisterCodeOcean: a Code Ocean data asset over the sealed asset (AIND's
`get_codeocean_asset_id`, "register to Code Ocean").

The data asset reads the archive where it is (an AWS S3 source, `keep_on_external_storage`:
nothing is copied), carries the data description's tags and custom metadata, and is waited
for until Code Ocean has made it ready (the deployment's CodeOceanReadyTimeout). Its id and
link go on the job record (`registration.codeocean`), which `status` shows.

Never two data assets for one archive asset: the recorded id is reused, else Code Ocean is
searched (by name and our tag) before anything is created, so a retried state, a re-run of
the job or `upload-processor register JOB` finds the asset made before, even one still being
made. A deployment without a Code Ocean domain or token skips the step and says so.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from upload_processor.adapters import s3 as s3_io
from upload_processor.adapters.aws import client as aws_client
from upload_processor.adapters.codeocean import CodeOceanClient, connect, read_token
from upload_processor.domain.codeocean import data_asset_link, describe_asset
from upload_processor.domain.registration import (
    CODEOCEAN_ASSET_ID,
    Registration,
    RegistrationInput,
    StepOutcome,
)
from upload_processor.errors import CodeOceanError, ConfigurationError
from upload_processor.pipeline.step_context import StepContext
from upload_processor.settings import Settings

logger = logging.getLogger(__name__)

STEP = "codeocean"
NO_TOKEN = "no Code Ocean token configured"  # noqa: S105 (a reason, not a secret)
NO_DOMAIN = "no Code Ocean domain configured"
METADATA_MAX_BYTES = 16 * 1000 * 1000
NOOP = (
    "the archive already held this exact session; the job that sealed it registers it "
    "(`upload-processor register` on that job)"
)


def not_configured(settings: Settings) -> str | None:
    """Why this deployment cannot talk to Code Ocean (no domain, no token), or None."""
    if not settings.codeocean_domain:
        return NO_DOMAIN
    if not settings.codeocean_token_secret:
        return NO_TOKEN
    return None


def open_client(ctx: StepContext) -> CodeOceanClient:
    """The SDK client for the deployment's domain, with the token from Secrets Manager.

    In Lambda (the context's factory is adapters.aws.client) through Powertools' default
    provider, cached across warm invocations; elsewhere (`upload-processor register`, tests)
    through the context's own client, so the token comes from the deployment the caller named.
    """
    secrets = None if ctx.client is aws_client else ctx.client("secretsmanager")
    token = read_token(ctx.settings.codeocean_token_secret, secrets=secrets)
    return CodeOceanClient(connect(ctx.settings.codeocean_domain, token))


def _data_description(request: RegistrationInput, ctx: StepContext) -> dict[str, Any]:
    """The sealed asset's data description (metadata.nd.json's), {} if it has none."""
    try:
        raw = s3_io.read_bytes(
            ctx.client("s3"),
            request.archive_bucket,
            request.metadata_key,
            max_bytes=METADATA_MAX_BYTES,
        )
    except Exception as exc:
        if s3_io.is_not_found(exc):
            return {}
        raise
    document = json.loads(raw)
    found = document.get("data_description") if isinstance(document, dict) else None
    return found if isinstance(found, dict) else {}


def register(
    request: RegistrationInput, ctx: StepContext, *, codeocean: CodeOceanClient | None = None
) -> StepOutcome:
    """The asset's Code Ocean data asset, made (or found) and ready; its id and link.

    A refusal (401, 403, a failed or never-ready asset) is the FAILED outcome with Code Ocean's
    reason; a TransientError (429, 5xx, unreachable) is raised for the state's Retry.
    """
    settings = ctx.settings
    if request.finalize.noop:
        return StepOutcome.skipped(NOOP)
    missing = not_configured(settings) if codeocean is None else None
    if missing:
        return StepOutcome.skipped(missing)
    recorded = Registration.from_record(ctx.store.get(request.job_id)).steps.get(STEP)
    if (
        recorded is not None
        and recorded.status == "OK"
        and recorded.details.get(CODEOCEAN_ASSET_ID)
    ):
        return recorded  # made before: nothing to ask Code Ocean
    asset = None
    try:
        client = codeocean or open_client(ctx)
        asset = client.find_asset(request.asset_name)
        if asset is None:
            description = describe_asset(
                request.asset_name, _data_description(request, ctx), request.job
            )
            asset = client.create_asset(description, request.archive_bucket, request.asset_name)
            logger.info("created Code Ocean data asset %s for %s", asset.id, request.asset_name)
        else:
            logger.info("reusing Code Ocean data asset %s for %s", asset.id, request.asset_name)
        asset = client.wait_ready(
            asset,
            timeout=settings.codeocean_ready_timeout,
            poll=settings.codeocean_poll_seconds,
        )
    except (CodeOceanError, ConfigurationError) as exc:
        made = {CODEOCEAN_ASSET_ID: asset.id} if asset is not None else {}
        return StepOutcome.failed(str(exc), **made)
    return StepOutcome.ok(
        **{CODEOCEAN_ASSET_ID: asset.id, "link": data_asset_link(client.domain, asset.id)}
    )
