"""The contracts between the state machine's stages: what each Lambda task receives and returns.

statemachine/upload.asl.json moves these between the stages by JSON path (`$.gather.result.
plan_key`, `$.functions.transfer`, ...); a test walks the ASL and checks every path it reads
against these models, so a renamed field fails a unit test instead of an execution. The JSON
shapes are the ones the state machine and `events/` carry: a field that is absent today (a
no-op's `note`, a retried execution's `retry_of`) is left out of the dump while it is None.

Who writes what:
- `ExecutionInput`: Ingest (and `operations.control` for a retry, adding `retry_of`); it is
  GatherMetadata's payload and the state every later task reads from.
- `GatherResult`: GatherMetadata, kept by the ASL at `$.gather.result`.
- `TransferBatchInput`: the Map's ItemSelector (one plan batch); `TransferBatchResult`: Transfer.
- `FinalizeInput` (`CompleteInput` | `RejectedInput` | `FailedInput`): the Finalize, Reject and
  MarkFailed tasks' Parameters, told apart by `outcome`.
- `domain.registration.RegistrationInput`: the registration states' (Catalog, ..., Announce)
  Parameters, with Finalize's result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_serializer

VerifyMode = Literal["quick", "full"]


class Contract(BaseModel):
    """A stage payload: unknown keys are ignored (the state carries more than one task reads),
    and the fields in `omit_when_none` are left out of the dump while they are None."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    omit_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if not (k in self.omit_when_none and v is None)}


class Functions(Contract):
    """The function (a pinned published version, else the alias `live`) each task invokes."""

    gather: str
    transfer: str
    finalize: str
    registration: str  # the registration states after Finalize (domain.registration)


class JobPayload(Contract):
    """What every stage is given about the job: its id, resolved job and staged session."""

    job_id: str = Field(min_length=1)
    job: dict[str, Any]
    bucket: str = Field(min_length=1)
    prefix: str = ""

    @property
    def staging_uri(self) -> str:
        """s3:// address of the session folder."""
        return f"s3://{self.bucket}/{self.prefix}/" if self.prefix else f"s3://{self.bucket}/"


class ExecutionInput(JobPayload):
    """The execution input: the staged job file, its resolved job and the functions to run."""

    omit_when_none: ClassVar[frozenset[str]] = frozenset(
        {"job_version_id", "functions", "retry_of"}
    )

    job_key: str | None = None
    job_version_id: str | None = None
    job_notes: list[dict[str, Any]] = Field(default_factory=list)
    functions: Functions | None = None
    retry_of: str | None = None  # the execution this one retries (operations.control)


class GatherCounts(Contract):
    """What the plan moves."""

    files: int = 0
    bytes_in: int = 0


class GatherResult(Contract):
    """GatherMetadata's result: what the Choice routes on and what Transfer and Finalize read."""

    omit_when_none: ClassVar[frozenset[str]] = frozenset({"note"})

    status: str
    asset_name: str
    reject: bool
    noop: bool = False
    note: str | None = None  # a no-op: why nothing is archived
    report_key: str
    summary: str
    error_count: int = 0
    warning_count: int = 0
    archive_bucket: str
    metadata_versions: dict[str, str] = Field(default_factory=dict)
    plan_key: str | None = None  # None when rejected (no plan)
    verify: VerifyMode = "quick"
    counts: GatherCounts = Field(default_factory=GatherCounts)


class GatherState(Contract):
    """What the ASL keeps at `$.gather` (GatherMetadata's ResultSelector)."""

    result: GatherResult


class TransferBatchInput(Contract):
    """One Map item, as the ItemSelector builds it: a batch of plan items and where they go.

    `batch` stays raw dicts: a batch's id is a hash of exactly the items the plan holds.
    """

    omit_when_none: ClassVar[frozenset[str]] = frozenset({"function"})

    batch: list[dict[str, Any]]
    job_id: str = Field(min_length=1)
    source_bucket: str = Field(min_length=1)
    dest_bucket: str = Field(min_length=1)
    verify: VerifyMode = "quick"
    function: str | None = None  # the Transfer function the iteration invokes


class TransferBatchResult(Contract):
    """Transfer's summary of one batch (the per-object results go to the work area)."""

    batch: str
    objects: int
    bytes_in: int
    bytes_out: int
    resumed: bool
    reused: int = 0


class StateError(Contract):
    """What a Catch puts at `$.error`: the error's name and its cause (often JSON)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    Error: str = ""
    Cause: str = ""


class CompleteInput(JobPayload):
    """Finalize: verify and seal the asset."""

    outcome: Literal["complete"]
    job_key: str | None = None
    job_version_id: str | None = None
    gather: GatherResult


class RejectedInput(JobPayload):
    """Reject: the session is invalid and the job asks to reject it."""

    outcome: Literal["rejected"]
    gather: GatherResult


class FailedInput(JobPayload):
    """MarkFailed: a step failed; `step` names it (the ASL's `$.failed_step`)."""

    outcome: Literal["failed"]
    error: StateError = Field(default_factory=StateError)
    step: str | None = None


FinalizeInput = Annotated[
    CompleteInput | RejectedInput | FailedInput, Field(discriminator="outcome")
]
_FINALIZE_INPUT: TypeAdapter[CompleteInput | RejectedInput | FailedInput] = TypeAdapter(
    FinalizeInput
)


def parse_finalize_input(event: Mapping[str, Any]) -> CompleteInput | RejectedInput | FailedInput:
    """A Finalize payload as the model of its outcome. An unknown outcome is a ValueError that
    lists the valid ones; a missing or mistyped field, pydantic's ValidationError naming it."""
    outcome = event.get("outcome")
    if outcome not in ("complete", "rejected", "failed"):
        raise ValueError(f"unknown outcome {outcome!r}; expected complete, rejected or failed")
    return _FINALIZE_INPUT.validate_python(event)
