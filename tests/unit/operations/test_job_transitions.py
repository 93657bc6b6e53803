"""The job record's transitions (issue 13): random interleavings of two jobs' pipeline steps
and an operator's cancel and retry, against moto's DynamoDB and S3, never move a job where the
table forbids (a cancelled job never becomes PROCESSING) and never leave a lease that blocks
the asset after its holder stopped being live."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from tests.paths import ROOT
from upload_processor.adapters.jobs import ACTIVE, TRANSITIONS, JobStatus, JobStore, may_become
from upload_processor.errors import (
    AssetLockedError,
    JobStateConflictError,
    OperationRefusedError,
)
from upload_processor.operations.control import cancel
from upload_processor.pipeline.archive_guard import (
    acquire_asset_lock,
    holds_asset_lock,
    lock_holder,
    release_asset_lock,
    release_quietly,
)
from upload_processor_tools.local.template import load_template

TABLE = "jobs-transitions"
ARCHIVE = "archive-transitions"
_IDS = itertools.count()


def test_the_table_and_its_inverse_agree() -> None:
    assert TRANSITIONS[JobStatus.CANCELLED] == frozenset()
    assert JobStatus.CANCELLED not in may_become(JobStatus.PROCESSING)
    for target in JobStatus:
        for source in may_become(target):
            assert target in TRANSITIONS[source]


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[JobStore, Any]]:
    """template.yaml's jobs table and an archive bucket, on moto."""
    props = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]
    keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
    with mock_aws():
        dynamodb, s3 = (boto3.client(s, region_name="us-east-1") for s in ("dynamodb", "s3"))
        table = {k: props[k] for k in keys}
        dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", **table)
        s3.create_bucket(Bucket=ARCHIVE)
        yield JobStore(dynamodb, TABLE), s3


class World:
    """Two jobs of one asset, the steps each runs (as the handlers do them) and an operator."""

    def __init__(self, store: JobStore, s3: Any) -> None:
        self.store, self.s3 = store, s3
        n = next(_IDS)
        self.asset = f"asset-{n}"
        self.jobs = [f"job-{n}-a", f"job-{n}-b"]
        for job in self.jobs:
            store.create(
                {
                    "job_id": job,
                    "status": str(JobStatus.RECEIVED),
                    "asset_name": self.asset,
                    "archive_bucket": ARCHIVE,
                }
            )

    def status(self, job: str) -> str | None:
        record = self.store.get(job)
        return record.get("status") if record else None

    def gather(self, job: str) -> None:
        """GatherMetadata: PROCESSING first, then the lease (a lease refused fails the job)."""
        self.store.update(job, JobStatus.PROCESSING)
        try:
            acquire_asset_lock(self.s3, ARCHIVE, self.asset, job, job_status=self.status)
        except AssetLockedError:
            self.mark_failed(job)

    def finalize(self, job: str) -> None:
        """Finalize: only the lease holder seals the asset; then it ends the lease."""
        if not holds_asset_lock(self.s3, ARCHIVE, self.asset, job):
            self.mark_failed(job)
            return
        self.store.update(job, JobStatus.COMPLETE)
        release_quietly(self.s3, ARCHIVE, self.asset, job)

    def reject(self, job: str) -> None:
        release_quietly(self.s3, ARCHIVE, self.asset, job)
        self.store.update(job, JobStatus.REJECTED)

    def mark_failed(self, job: str) -> None:
        release_quietly(self.s3, ARCHIVE, self.asset, job)
        self.store.update(job, JobStatus.FAILED)

    def cancel(self, job: str) -> None:
        cancel(store=self.store, sfn=None, s3=self.s3, job=job)  # no execution recorded

    def retry(self, job: str) -> None:
        """What `retry` claims before it starts the new execution."""
        self.store.update(job, JobStatus.PROCESSING, expected=[JobStatus.FAILED])


STEPS: dict[str, Callable[[World, str], None]] = {
    "gather": World.gather,
    "finalize": World.finalize,
    "reject": World.reject,
    "fail": World.mark_failed,
    "cancel": World.cancel,
    "retry": World.retry,
}
REFUSALS = (JobStateConflictError, OperationRefusedError, AssetLockedError)


def _assert_no_stuck_lease(world: World) -> None:
    """A lease held by a job that is no longer live is taken over by the next job."""
    found = lock_holder(world.s3, ARCHIVE, world.asset)
    if found is None or world.status(found[0]["job_id"]) in ACTIVE:
        return
    probe = f"probe-{next(_IDS)}"
    assert (
        acquire_asset_lock(world.s3, ARCHIVE, world.asset, probe, job_status=world.status)
        == "taken over"
    )
    assert release_asset_lock(world.s3, ARCHIVE, world.asset, probe)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(STEPS)), st.sampled_from([0, 1])), max_size=14))
def test_random_interleavings_keep_to_the_table_and_leave_no_stuck_lease(
    aws: tuple[JobStore, Any], steps: list[tuple[str, int]]
) -> None:
    world = World(*aws)
    for step, which in steps:
        job = world.jobs[which]
        before = world.status(job)
        with contextlib.suppress(*REFUSALS):
            STEPS[step](world, job)
        after = world.status(job)
        assert after == before or JobStatus(after) in TRANSITIONS[JobStatus(before)], (
            step,
            before,
            after,
        )
        if before == JobStatus.CANCELLED:
            assert after == JobStatus.CANCELLED
        if step == "cancel" and after != before:  # cancel ends the lease of what it cancelled
            assert not holds_asset_lock(world.s3, ARCHIVE, world.asset, job)
        _assert_no_stuck_lease(world)
