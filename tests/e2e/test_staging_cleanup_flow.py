"""The opt-in staging cleanup (task `remove_source_folders`) on the whole local flow.

Guarantee 1 (README "Operating"): staged data is read-only to the pipeline; the one exception is
asked for by the job, happens only after a verified archive copy (the manifest written), removes
only current versions (the versioned bucket keeps every archived byte behind a delete marker),
keeps the report, and keeps anything re-uploaded since. No-op, rejected and failed jobs never
clean up, whatever the job asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from e2e_support import ACQ, ASSET, JOB, REPORT, Staged, decompress
from e2e_support import keys as _current
from e2e_support import versions as _versions

from upload_processor_tools.local import LocalCloud
from upload_processor_tools.sample import build_session

CLEANUP = {"remove_source_folders": {"skip_task": False}}


def _job_body(session: Path, tasks: dict[str, Any] | None) -> bytes:
    job = json.loads((session / JOB).read_text())
    if tasks:
        job["tasks"] = {**job.get("tasks", {}), **tasks}
    return json.dumps(job).encode()


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
            body = decompress(body)
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
    record = staged.run(_job_body(staged.folder, CLEANUP))

    assert record["status"] == "COMPLETE", record
    manifest = _assert_archive_complete(cloud, session)
    report = f"rig-7/clean/{REPORT}"
    # the current staged objects are gone, all but the report
    assert _current(cloud, cloud.staging_bucket, "rig-7/clean/") == {report}
    # every version uploaded is still there, under a delete marker
    after = _versions(cloud, cloud.staging_bucket, "rig-7/clean/")
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
        record = staged.run(_job_body(staged.folder, CLEANUP))
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
    record = staged.run(_job_body(staged.folder, CLEANUP))
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
    record = second.run(_job_body(second.folder, CLEANUP))
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
    record = again.run(_job_body(again.folder, CLEANUP))
    assert record["status"] == "COMPLETE", record
    assert "already holds this exact session" in record["note"]
    assert record["staging_cleanup"]["removed"] == 0
    assert "archived nothing" in record["staging_cleanup"]["skipped"]
    again.assert_untouched()
