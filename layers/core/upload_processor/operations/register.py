"""`upload-processor register JOB`: redo the registration steps a COMPLETE job is missing.

After Code Ocean or the catalog was down (the job COMPLETE with `registration: FAILED
(...)`), or for a job archived before a step existed, this runs again, in-process and in the
state machine's order, exactly the steps whose outcome is missing or FAILED, with the same
code the states run (pipeline.registration.run) and the input the job's execution gave them
(its Finalize state's output). A step that is OK or SKIPPED is left as it is, and each step is
idempotent on its own (the Code Ocean asset is looked up before one is made, a started
pipeline is not started again, the catalog record is put by asset name, the announcement is
claimed once), so running `register` twice changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from upload_processor.adapters.jobs import JobStore
from upload_processor.domain.registration import STEPS, Registration, RegistrationInput
from upload_processor.errors import JobNotFoundError, OperationRefusedError
from upload_processor.pipeline import registration
from upload_processor.settings import Settings

SEALED_BY = "Finalize"  # the state whose output every registration state reads


def _finalize_output(sfn: Any, execution_arn: str) -> dict[str, Any] | None:
    """The Finalize state's output in the execution's history (newest first), or None."""
    paginator = sfn.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=execution_arn, reverseOrder=True):
        for event in page.get("events", []):
            details = event.get("stateExitedEventDetails") or {}
            if event.get("type") == "TaskStateExited" and details.get("name") == SEALED_BY:
                return dict(json.loads(details.get("output") or "{}"))
    return None


def registration_input(sfn: Any, record: dict[str, Any]) -> RegistrationInput:
    """What the job's registration states were given: its execution's state after Finalize."""
    job_id = record["job_id"]
    execution_arn = record.get("execution_arn")
    output = _finalize_output(sfn, str(execution_arn)) if execution_arn else None
    if not output or "finalize" not in output or "gather" not in output:
        raise OperationRefusedError(
            f"job {job_id}: its execution's history has no Finalize output to register from "
            "(expired, or the job never reached Finalize); re-upload upload_job.json instead"
        )
    return RegistrationInput.model_validate(
        {
            **output,
            "step": STEPS[0],
            "gather": output["gather"]["result"],
            "finalize": output["finalize"]["result"],
        }
    )


def redo(
    store: JobStore,
    sfn: Any,
    job: str,
    *,
    settings: Settings,
    client: Callable[[str], Any],
) -> dict[str, Any]:
    """Run the job's missing or FAILED registration steps; what each did and the job's
    registration summary after. A step that raises (a transient fault: try again later) is
    reported with its error and leaves its recorded outcome as it was."""
    record = store.find(job)
    if record is None:
        raise JobNotFoundError(f"no job or asset named {job!r}")
    if record.get("status") != "COMPLETE":
        raise OperationRefusedError(
            f"job {record['job_id']} is {record.get('status')}: only a COMPLETE job's asset is "
            "registered (retry a FAILED job with `upload-processor retry`)"
        )
    before = Registration.from_record(record).steps
    todo = [s for s in STEPS if s not in before or before[s].status == "FAILED"]
    base = registration_input(sfn, record) if todo else None
    ran: list[dict[str, Any]] = []
    for step in todo:
        assert base is not None
        request = base.model_copy(update={"step": step})
        try:
            ran.append(registration.run(request, settings=settings, client=client))
        except Exception as exc:  # transient past the clients' own retries: say so, go on
            ran.append({"step": step, "status": "ERROR", "reason": f"{type(exc).__name__}: {exc}"})
    after = Registration.from_record(store.get(record["job_id"]))
    return {
        "job_id": record["job_id"],
        "asset_name": record.get("asset_name"),
        "ran": ran,
        "kept": [s for s in STEPS if s in before and s not in todo],
        "registration": after.summary(),
        "steps": {name: outcome.model_dump(mode="json") for name, outcome in after.ordered()},
    }
