"""StartPipelines: start each modality's Code Ocean capsule or pipeline on the new data asset
(AIND's `codeocean_pipeline_settings.<modality>.job_settings.pipeline_monitor_settings`).

Each run gets the asset mounted at its name (beside any data assets its `run_params` list);
its computation id and a link go on the job record (`registration.pipelines`, one
`<modality>.computation_id` / `<modality>.link` pair per modality). What a modality's settings
hold that this pipeline does not act on (`capture_settings`, the monitor's polling and alert
settings: domain.codeocean.RECORDED_ONLY) is listed as `<modality>.recorded_only`.

Never started twice: a modality whose computation is already recorded is not run again. A
transient fault before any run started is raised for the state's Retry; after some started,
the step records them and FAILED for the rest (instead of raising: the Catch would record the
failure without them), so `upload-processor register JOB` starts only the ones still missing.
"""

from __future__ import annotations

import logging
from typing import Any

from upload_processor.adapters.codeocean import CodeOceanClient
from upload_processor.domain.codeocean import PIPELINES_TASK, modality_pipelines, run_link
from upload_processor.domain.registration import (
    CODEOCEAN_ASSET_ID,
    Registration,
    RegistrationInput,
    StepOutcome,
    computation_key,
)
from upload_processor.errors import (
    CodeOceanError,
    ConfigurationError,
    TransientError,
    UploadJobError,
)
from upload_processor.pipeline.codeocean_step import NOOP, not_configured, open_client
from upload_processor.pipeline.step_context import StepContext

logger = logging.getLogger(__name__)

STEP = "pipelines"


def _why_none(job: dict[str, Any]) -> str:
    """Why no pipeline is started: every named one skipped, or none named."""
    entries = ((job.get("tasks") or {}).get(PIPELINES_TASK) or {}).values()
    named = [e for e in entries if isinstance(e, dict) and e.get("job_settings")]
    if named:
        return f"skip_task: true on every modality of {PIPELINES_TASK}"
    return f"the job names no pipeline ({PIPELINES_TASK}.<modality>.job_settings)"


def start(
    request: RegistrationInput, ctx: StepContext, *, codeocean: CodeOceanClient | None = None
) -> StepOutcome:
    """Start the job's pipelines on its Code Ocean data asset; what was started.

    SKIPPED when the job asks for none or Code Ocean is not configured; FAILED (naming the
    modality and Code Ocean's reason) when a run was refused or there is no data asset to
    mount; a TransientError is raised for the state's Retry only while nothing has started.
    """
    if request.finalize.noop:  # not started again for the same data
        return StepOutcome.skipped(NOOP)
    try:
        wanted = modality_pipelines(request.job)
    except UploadJobError as exc:
        return StepOutcome.failed(str(exc))
    if not wanted:
        return StepOutcome.skipped(_why_none(request.job))
    missing = not_configured(ctx.settings) if codeocean is None else None
    if missing:
        return StepOutcome.skipped(missing)
    steps = Registration.from_record(ctx.store.get(request.job_id)).steps
    asset = steps.get("codeocean")
    asset_id = (
        asset.details.get(CODEOCEAN_ASSET_ID)
        if asset is not None and asset.status == "OK"
        else None
    )
    if not asset_id:
        said = asset.line() if asset is not None else "not run"
        return StepOutcome.failed(f"not started: no Code Ocean data asset (codeocean {said})")
    recorded = steps.get(STEP)
    details = dict(recorded.details) if recorded is not None else {}
    todo = [p for p in wanted if computation_key(p.modality) not in details]
    if not todo:
        return StepOutcome.ok(**details)  # every one started before: nothing to ask Code Ocean
    refused: list[str] = []
    try:
        client = codeocean or open_client(ctx)
        for pipeline in todo:
            run = pipeline.settings.run_params
            try:
                computation = client.run(run, asset_id, mount=request.asset_name)
            except CodeOceanError as exc:
                refused.append(f"{pipeline.modality}: {exc}")
                continue
            logger.info("started %s for %s: %s", run.target, pipeline.modality, computation.id)
            details[computation_key(pipeline.modality)] = computation.id
            details[f"{pipeline.modality}.link"] = run_link(client.domain, run)
            if pipeline.recorded_only():
                details[f"{pipeline.modality}.recorded_only"] = ", ".join(pipeline.recorded_only())
    except ConfigurationError as exc:
        refused.append(str(exc))
    except TransientError as exc:
        if not details:
            raise  # nothing started yet: the state's Retry runs the step again
        # some runs started: record them (a Catch would record the failure without them) and
        # leave the rest to `upload-processor register JOB`, which starts only what is missing
        left = [p.modality for p in todo if computation_key(p.modality) not in details]
        refused.append(f"{', '.join(left)}: not started ({exc}); run `register` again")
    if refused:
        return StepOutcome.failed("; ".join(refused), **details)
    return StepOutcome.ok(**details)
