"""`upload-processor status JOB` shows each registration step: a failure with its reason, what
an OK step made, a skipped one with why; the summary line first."""

from __future__ import annotations

import io

from rich.console import Console

from upload_processor.domain.registration import StepOutcome
from upload_processor.operations.status import registration_summary
from upload_processor_tools.commands.status import _render_registration


def test_a_failed_step_is_shown_with_its_reason_and_the_others_with_theirs() -> None:
    record = {
        "job_id": "j",
        "status": "COMPLETE",
        "registration": {
            "announce": StepOutcome.ok(event_id="e-1").model_dump(mode="json"),
            "catalog": StepOutcome.failed("ResourceNotFoundException: no table").model_dump(
                mode="json"
            ),
            "codeocean": StepOutcome.skipped(
                "task get_codeocean_asset_id has skip_task: true"
            ).model_dump(mode="json"),
        },
    }
    summary = registration_summary(record)
    assert summary is not None
    assert summary["summary"] == "FAILED (catalog: ResourceNotFoundException: no table)"
    assert [s["step"] for s in summary["steps"]] == ["codeocean", "catalog", "announce"]
    out = io.StringIO()
    _render_registration(Console(file=out, width=160, color_system=None), summary)
    text = out.getvalue()
    assert "Registration FAILED (catalog: ResourceNotFoundException: no table)" in text
    assert "skip_task: true" in text and "event_id=e-1" in text
    assert registration_summary({"job_id": "j", "status": "PROCESSING"}) is None
