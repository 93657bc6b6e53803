"""The registration states after Finalize: run one step, record its outcome on the job.

Every registration state (statemachine/upload.asl.json: Catalog, RegisterCodeOcean,
StartPipelines, Announce) invokes RegisterFunction with a `RegistrationInput` naming its
`step`; `run` looks the step up in `STEPS` and records what it returns
(`registration.<step>` on the job record). A step the job turned off (domain.registration.
STEP_TASKS) is recorded SKIPPED without running. A step raises to fail: TransientError is
retried by its state; anything else (or a transient fault past its retries) goes to the
state's Catch, which invokes the function again with `error` set: `run` then records
`FAILED (reason)` and the execution goes on. Nothing here changes the job's status or
touches the sealed asset: the job stays COMPLETE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from upload_processor.adapters.jobs import JobStore
from upload_processor.adapters.notify import cause_text
from upload_processor.domain.registration import RegistrationInput, StepOutcome, skipped_by
from upload_processor.errors import transient_as_retryable
from upload_processor.pipeline import announce, catalog_step, codeocean_step, pipelines_step
from upload_processor.pipeline.step_context import StepContext
from upload_processor.settings import Settings

logger = logging.getLogger(__name__)


Step = Callable[[RegistrationInput, StepContext], StepOutcome]


# The steps by name (domain.registration.STEPS); the Code Ocean steps join them here.
STEPS: dict[str, Step] = {
    "catalog": catalog_step.register,
    "codeocean": codeocean_step.register,
    "pipelines": pipelines_step.start,
    "announce": announce.announce,
}


def failure_reason(error: Any) -> str:
    """A Catch's `$.error` ({Error, Cause}) as one short line: `Error: message`."""
    name = str(getattr(error, "Error", "") or "error")
    cause = cause_text(str(getattr(error, "Cause", "") or ""))
    text = f"{name}: {cause}" if cause and cause != name else name
    return text if len(text) <= 300 else text[:299] + "…"


def run(
    request: RegistrationInput, *, settings: Settings, client: Callable[[str], Any]
) -> dict[str, Any]:
    """Run (or, with `error`, record the failure of) one registration step; the outcome as
    recorded, with the step's name."""
    store = JobStore(client("dynamodb"), settings.require("jobs_table"))
    ctx = StepContext(settings=settings, client=client, store=store)
    step = request.step
    with transient_as_retryable(f"registration step {step} of {request.asset_name}"):
        if request.error is not None:
            outcome = StepOutcome.failed(failure_reason(request.error))
            logger.warning("registration step %s failed: %s", step, outcome.reason)
        elif (task := skipped_by(request.job, step)) is not None:
            outcome = StepOutcome.skipped(f"task {task} has skip_task: true")
        elif step not in STEPS:
            outcome = StepOutcome.skipped(f"this deployment does not run the {step} step")
        else:
            outcome = STEPS[step](request, ctx)
        store.record_registration(request.job_id, step, outcome)
    return {"step": step, **outcome.model_dump(mode="json")}
