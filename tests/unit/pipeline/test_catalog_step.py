"""The catalog record carries what the Code Ocean steps before it recorded on the job."""

from __future__ import annotations

from upload_processor.domain.registration import Registration, StepOutcome
from upload_processor.pipeline.catalog_step import codeocean_fields


def _registration(**steps: StepOutcome) -> Registration:
    return Registration(steps=steps)


def test_a_registered_asset_and_its_runs_are_carried() -> None:
    fields = codeocean_fields(
        _registration(
            codeocean=StepOutcome.ok(codeocean_asset_id="a-1", link="https://co/data-assets/a-1"),
            pipelines=StepOutcome.ok(
                **{"ecephys.computation_id": "c-1", "ecephys.link": "https://co/capsule/x"}
            ),
        )
    )
    assert fields == {"codeocean_asset_id": "a-1", "codeocean_computations": {"ecephys": "c-1"}}


def test_a_failed_or_skipped_registration_carries_no_id() -> None:
    assert codeocean_fields(_registration(codeocean=StepOutcome.failed("401"))) == {}
    assert codeocean_fields(_registration(codeocean=StepOutcome.skipped("no token"))) == {}
    assert codeocean_fields(_registration()) == {}


def test_runs_started_before_a_partial_failure_are_still_carried() -> None:
    partial = StepOutcome.failed("behavior: not started", **{"ecephys.computation_id": "c-2"})
    assert codeocean_fields(_registration(pipelines=partial)) == {
        "codeocean_computations": {"ecephys": "c-2"}
    }
