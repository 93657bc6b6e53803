"""What happens to an asset after it is sealed: its registration steps and their outcomes.

The state machine runs, after Finalize, one state per step (statemachine/upload.asl.json):
`Catalog` → `RegisterCodeOcean` → `StartPipelines` → `Announce`. Each step records its
`StepOutcome` on the job record (`registration.<step>`, adapters.jobs.JobStore.
record_registration) and never un-archives: a step that fails is recorded `FAILED` with its
reason and the next step runs; the job stays COMPLETE. `Announce` runs last and reads the
outcomes back from the job record, so it reports whatever steps ran.

A job turns a step off with AIND's task ids (aind-data-transfer-service's `tasks`): the step
is skipped (recorded `SKIPPED`, with the task that said so) when any of its tasks has
`"skip_task": true` in the resolved job (`STEP_TASKS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from upload_processor.domain.archive import MANIFEST
from upload_processor.domain.contracts import GatherResult, JobPayload, StateError

StepName = Literal["codeocean", "pipelines", "catalog", "announce"]
# In the state machine's order: the catalog record carries what the Code Ocean steps recorded.
STEPS: tuple[str, ...] = ("codeocean", "pipelines", "catalog", "announce")
StepStatus = Literal["OK", "FAILED", "SKIPPED"]
METADATA_FILE = "metadata.nd.json"

# The AIND task ids that turn each step off (`"skip_task": true` on any of them skips it).
# The detail keys the Code Ocean steps record and the catalog reads back: the data asset's id,
# and one "<modality>.computation_id" per pipeline run started.
CODEOCEAN_ASSET_ID = "codeocean_asset_id"
COMPUTATION_SUFFIX = ".computation_id"


def computation_key(modality: str) -> str:
    """The detail key of a modality's pipeline run (registration.pipelines)."""
    return f"{modality}{COMPUTATION_SUFFIX}"


STEP_TASKS: dict[str, tuple[str, ...]] = {
    "catalog": ("register_data_asset", "update_docdb_record"),
    "codeocean": ("register_data_asset_to_codeocean", "get_codeocean_asset_id"),
    "pipelines": ("codeocean_pipeline_settings", "run_codeocean_pipeline"),
    "announce": (),
}


def utc_now() -> str:
    """Now, ISO 8601 UTC with milliseconds and `Z` (the job records' format)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StepOutcome(BaseModel):
    """One registration step's outcome, as the job record keeps it.

    `details` holds what the step made (`codeocean_asset_id`, `computation_id`, `link`,
    `catalog_key`, `event_id`, ...): strings only, so the record and `status` show them as is.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: StepStatus
    reason: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    at: str = Field(default_factory=utc_now)

    @classmethod
    def ok(cls, **details: str) -> StepOutcome:
        """The step did its work; `details` say what it made."""
        return cls(status="OK", details={k: str(v) for k, v in details.items()})

    @classmethod
    def failed(cls, reason: str, **details: str) -> StepOutcome:
        """The step could not do its work; `reason` says why, for the job's status line."""
        return cls(status="FAILED", reason=reason, details={k: str(v) for k, v in details.items()})

    @classmethod
    def skipped(cls, reason: str) -> StepOutcome:
        """The job (or the deployment) turned the step off; `reason` says which setting."""
        return cls(status="SKIPPED", reason=reason)

    def line(self) -> str:
        """`OK`, `SKIPPED (why)`, `FAILED (why)`."""
        return f"{self.status} ({self.reason})" if self.reason else self.status


class Registration(BaseModel):
    """Every step's outcome so far, as the job record's `registration` map holds it."""

    model_config = ConfigDict(extra="ignore")

    steps: dict[str, StepOutcome] = Field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> Registration:
        """The registration of a job record (`JobStore.get`); empty when none has run."""
        raw = (record or {}).get("registration") or {}
        return cls(steps={k: StepOutcome.model_validate(v) for k, v in raw.items()})

    def ordered(self) -> list[tuple[str, StepOutcome]]:
        """The steps in the order the state machine runs them (unknown ones last)."""
        rank = {name: i for i, name in enumerate(STEPS)}
        return sorted(self.steps.items(), key=lambda kv: (rank.get(kv[0], len(STEPS)), kv[0]))

    def failures(self) -> list[tuple[str, StepOutcome]]:
        """The failed steps, in order."""
        return [(n, o) for n, o in self.ordered() if o.status == "FAILED"]

    def summary(self, *, ignore: tuple[str, ...] = ()) -> str:
        """The job's one-line registration outcome: `OK`, `SKIPPED` (every step turned off),
        `FAILED (codeocean: 401 Unauthorized; catalog: ...)`, or `PENDING` (none ran yet).
        `ignore`: steps left out (Announce summarises the steps before it)."""
        steps = [(n, o) for n, o in self.ordered() if n not in ignore]
        if not steps:
            return "PENDING"
        failed = [f"{n}: {o.reason or 'failed'}" for n, o in steps if o.status == "FAILED"]
        if failed:
            return f"FAILED ({'; '.join(failed)})"
        if all(o.status == "SKIPPED" for _, o in steps):
            return "SKIPPED"
        return "OK"


def skipped_by(job: Mapping[str, Any], step: str) -> str | None:
    """The task id that turns `step` off in the resolved job (`"skip_task": true`), or None."""
    tasks = job.get("tasks") or {}
    for task_id in STEP_TASKS.get(step, ()):
        task = tasks.get(task_id)
        if isinstance(task, Mapping) and task.get("skip_task") is True:
            return task_id
    return None


class FinalizeResult(BaseModel):
    """What Finalize returns for a complete job (the ASL keeps it at `$.finalize.result`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: str
    asset_name: str
    archive_uri: str
    noop: bool = False
    files: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class RegistrationInput(JobPayload):
    """What every registration state's task receives: the step, the job, gather's result and
    Finalize's. `error` is set only by a step's Catch (the step failed past its retries): the
    handler then records `FAILED (reason)` for `step` and does nothing else."""

    omit_when_none: ClassVar[frozenset[str]] = frozenset({"error"})

    step: StepName
    gather: GatherResult
    finalize: FinalizeResult
    error: StateError | None = None

    @property
    def asset_name(self) -> str:
        """The sealed asset's name (its prefix in the archive bucket)."""
        return self.gather.asset_name

    @property
    def archive_bucket(self) -> str:
        """The archive bucket holding the asset."""
        return self.gather.archive_bucket

    @property
    def archive_uri(self) -> str:
        """s3://<archive>/<asset>/ (Finalize's)."""
        return self.finalize.archive_uri

    @property
    def manifest_key(self) -> str:
        """The asset's manifest (written last: its presence marks the asset complete)."""
        return f"{self.asset_name}/{MANIFEST}"

    @property
    def metadata_key(self) -> str:
        """The asset's merged metadata document."""
        return f"{self.asset_name}/{METADATA_FILE}"
