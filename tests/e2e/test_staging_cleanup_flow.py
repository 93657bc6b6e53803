"""The opt-in staging cleanup (task `remove_source_folders`) on the whole local flow.

Guarantee 1 (README "Operating"): staged data is read-only to the pipeline; the one exception is
asked for by the job, happens only after a verified archive copy (the manifest written), removes
only current versions (the versioned bucket keeps every archived byte behind a delete marker),
keeps the report, and keeps anything re-uploaded since. No-op, rejected and failed jobs never
clean up, whatever the job asked for.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
import zstandard

from upload_processor.ingest import execution_name
from upload_processor.local import LocalCloud
from upload_processor.sample import build_session

ROOT = Path(__file__).resolve().parents[2]
ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
JOB = "upload_job.json"
REPORT = "upload_report.json"
CLEANUP = {"remove_source_folders": {"skip_task": False}}


@pytest.fixture
def quick_cloud() -> Iterator[LocalCloud]:
    """The local cloud without the wait for listed files (none of these jobs list any)."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with LocalCloud(ROOT, parameter_overrides={"FilesWaitSeconds": 0}) as cloud:
        yield cloud


def _versions(cloud: LocalCloud, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """Every version and delete marker under a staging prefix: key -> [(version id, ETag or
    DELETE)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    paginator = cloud.client("s3").get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=cloud.staging_bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            out.setdefault(v["Key"], []).append((v["VersionId"], v["ETag"]))
        for d in page.get("DeleteMarkers", []):
            out.setdefault(d["Key"], []).append((d["VersionId"], "DELETE"))
    return {k: sorted(v) for k, v in out.items()}


def _current(cloud: LocalCloud, bucket: str, prefix: str) -> set[str]:
    paginator = cloud.client("s3").get_paginator("list_objects_v2")
    return {
        o["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    }


def _job_body(session: Path, tasks: dict[str, Any] | None) -> bytes:
    job = json.loads((session / JOB).read_text())
    if tasks:
        job["tasks"] = {**job.get("tasks", {}), **tasks}
    return json.dumps(job).encode()


class Staged:
    """A session staged under a prefix, with the staging versions before its job ran."""

    def __init__(self, cloud: LocalCloud, folder: Path, prefix: str) -> None:
        self.cloud, self.folder, self.prefix = cloud, folder, prefix
        s3 = cloud.client("s3")
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != JOB):
            s3.upload_file(str(path), cloud.staging_bucket, f"{prefix}/{path.relative_to(folder)}")
        self.before: dict[str, list[tuple[str, str]]] = {}

    def run(self, tasks: dict[str, Any] | None = None) -> dict[str, Any]:
        """Upload upload_job.json (with these task overrides), wait for the job; its record."""
        key = f"{self.prefix}/{JOB}"
        body = _job_body(self.folder, tasks)
        self.before = _versions(self.cloud, f"{self.prefix}/")
        out = self.cloud.client("s3").put_object(
            Bucket=self.cloud.staging_bucket, Key=key, Body=body
        )
        self.before.setdefault(key, []).append((out["VersionId"], out["ETag"]))
        self.before[key].sort()
        job_id = execution_name(self.cloud.staging_bucket, key, out["VersionId"])
        record = self.cloud.job(job_id)
        assert record is not None, "ingest recorded no job"
        if record.get("execution_arn"):
            self.execution = self.cloud.wait(record["execution_arn"])
        return self.cloud.job(job_id) or {}

    def assert_untouched(self) -> None:
        """Every staged object version is as uploaded; only the report was added."""
        after = _versions(self.cloud, f"{self.prefix}/")
        report = f"{self.prefix}/{REPORT}"
        assert {k: v for k, v in after.items() if k != report} == self.before
        assert all(etag != "DELETE" for _, etag in after.get(report, []))


def _assert_archive_complete(cloud: LocalCloud, session: Path) -> dict[str, Any]:
    """The sealed asset holds every staged data file, byte for byte."""
    s3 = cloud.client("s3")
    manifest = json.loads(
        s3.get_object(Bucket=cloud.archive_bucket, Key=f"{ASSET}/manifest.json")["Body"].read()
    )
    archived = _current(cloud, cloud.archive_bucket, f"{ASSET}/")
    data = sorted(
        p for p in session.rglob("*") if p.is_file() and "/" in p.relative_to(session).as_posix()
    )
    assert len(manifest["objects"]) == len(data)
    by_source = {Path(o["source_key"]).as_posix(): o for o in manifest["objects"]}
    for path in data:
        relative = path.relative_to(session).as_posix()
        entry = next(o for k, o in by_source.items() if k.endswith("/" + relative))
        assert entry["dest_key"] in archived
        body = s3.get_object(Bucket=cloud.archive_bucket, Key=entry["dest_key"])["Body"].read()
        if entry["action"] == "compress":
            reader = zstandard.ZstdDecompressor().stream_reader(
                io.BytesIO(body), read_across_frames=True
            )
            body = reader.read()
        assert body == path.read_bytes(), relative
    for key in manifest["metadata"]:
        assert key in archived
    return manifest


# --- (1) a job that does not ask: staging untouched ---------------------------------------------


def test_a_job_without_the_task_leaves_staging_untouched(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    staged = Staged(cloud, session, "rig-7/keep")
    record = staged.run()
    assert record["status"] == "COMPLETE", record
    assert "staging_cleanup" not in record
    staged.assert_untouched()
    manifest = _assert_archive_complete(cloud, session)
    # the manifest records the staged originals and the job file, with their ETags
    recorded = {e["source_key"]: e for e in manifest["staged_metadata"]}
    assert f"rig-7/keep/{JOB}" in recorded
    for key, entry in recorded.items():
        versions = dict(staged.before[key])
        assert versions[entry["source_version_id"]] == f'"{entry["source_etag"]}"'


# --- (2) a job that asks: removed after the verified copy, recoverable ---------------------------


def test_a_job_asking_for_cleanup_removes_current_versions_only_after_sealing(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    staged = Staged(cloud, session, "rig-7/clean")
    record = staged.run(CLEANUP)

    assert record["status"] == "COMPLETE", record
    manifest = _assert_archive_complete(cloud, session)
    report = f"rig-7/clean/{REPORT}"
    # the current staged objects are gone, all but the report
    assert _current(cloud, cloud.staging_bucket, "rig-7/clean/") == {report}
    # every version uploaded is still there, under a delete marker
    after = _versions(cloud, "rig-7/clean/")
    s3 = cloud.client("s3")
    for key, versions in staged.before.items():
        assert set(versions) <= set(after[key]), key
        markers = [v for v, etag in after[key] if etag == "DELETE"]
        assert len(markers) == 1, key  # one delete marker, no version deleted
        for version, etag in versions:  # each previous version still readable
            head = s3.head_object(Bucket=cloud.staging_bucket, Key=key, VersionId=version)
            assert head["ETag"] == etag
    assert all(etag != "DELETE" for _, etag in after[report])
    # what was removed: every staged data file, metadata file and the job file
    assert set(staged.before) == {
        o["source_key"] for o in manifest["objects"] + manifest["staged_metadata"]
    }
    cleanup = record["staging_cleanup"]
    assert cleanup["removed"] == len(staged.before)
    assert cleanup["kept"] == [] and cleanup["kept_count"] == 0
    assert "error" not in cleanup
    output = json.loads(staged.execution["output"])
    assert output["finalize"]["result"]["staging_cleanup"]["removed"] == len(staged.before)


def test_a_file_re_uploaded_while_the_job_finishes_is_kept_and_listed(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    """Overwritten after its transfer, before the cleanup: its ETag no longer matches."""
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    staged = Staged(cloud, session, "rig-7/busy")
    changed = "rig-7/busy/behavior/" + next(
        p.name for p in sorted((session / "behavior").iterdir()) if p.is_file()
    )
    user = cloud.client("s3")  # the user's client: not the handlers' default session

    def reupload(params: dict[str, Any], **_: Any) -> None:
        if str(params.get("Key", "")).endswith("/manifest.json"):
            user.put_object(Bucket=cloud.staging_bucket, Key=changed, Body=b"a second take")

    events = boto3._get_default_session().events
    events.register("before-parameter-build.s3.PutObject", reupload)
    try:
        record = staged.run(CLEANUP)
    finally:
        events.unregister("before-parameter-build.s3.PutObject", reupload)

    assert record["status"] == "COMPLETE", record
    cleanup = record["staging_cleanup"]
    assert [k["key"] for k in cleanup["kept"]] == [changed]
    assert "changed since it was archived" in cleanup["kept"][0]["reason"]
    assert cleanup["kept_count"] == 1
    assert cleanup["removed"] == len(staged.before) - 1
    assert _current(cloud, cloud.staging_bucket, "rig-7/busy/") == {
        changed,
        f"rig-7/busy/{REPORT}",
    }
    body = cloud.client("s3").get_object(Bucket=cloud.staging_bucket, Key=changed)["Body"].read()
    assert body == b"a second take"
    _assert_archive_complete(cloud, session)  # the archived copy is the original


# --- (3) rejected, failed and no-op jobs never clean up -----------------------------------------


def test_a_rejected_job_asking_for_cleanup_deletes_nothing(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05, conflicting_subject_id="7"
    )
    staged = Staged(cloud, session, "rig-7/rejected")
    record = staged.run(CLEANUP)
    assert record["status"] == "REJECTED", record
    assert "staging_cleanup" not in record
    staged.assert_untouched()


def test_a_failed_job_asking_for_cleanup_deletes_nothing(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    assert Staged(cloud, session, "rig-7/first").run()["status"] == "COMPLETE"

    (session / "behavior" / "extra.csv").write_text("a,b\n")  # another session, same asset
    second = Staged(cloud, session, "rig-7/second")
    record = second.run(CLEANUP)
    assert record["status"] == "FAILED", record
    assert record["error"].startswith("AssetExistsError")
    assert "staging_cleanup" not in record
    second.assert_untouched()


def test_a_no_op_job_asking_for_cleanup_deletes_nothing_and_says_why(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.05)
    assert Staged(cloud, session, "rig-7/first").run()["status"] == "COMPLETE"

    again = Staged(cloud, session, "rig-7/again")
    record = again.run(CLEANUP)
    assert record["status"] == "COMPLETE", record
    assert "already holds this exact session" in record["note"]
    assert record["staging_cleanup"]["removed"] == 0
    assert "archived nothing" in record["staging_cleanup"]["skipped"]
    again.assert_untouched()
