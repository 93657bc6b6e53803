"""Real AIND material through the local cloud (issue 12): a job file as AIND's
`UploadJobConfigsV2` writes it (AIND settings, v2 task ids, a naive acq_datetime) runs to
COMPLETE, the deployment's DefaultTimeZone read into its time and the report saying so."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path

from e2e_support import Staged, body

from tests.aind_support import aind_job, external_streams, quality_control, retimed
from upload_processor.domain.report import REPORT_FILENAME
from upload_processor_tools.sample import build_session


def test_an_aind_job_file_runs_unchanged_in_the_deployments_zone(
    quick_cloud, tmp_path: Path
) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    staged = Staged(quick_cloud, session, "rig-7/aind")
    record = staged.run(aind_job(session))
    assert record["status"] == "COMPLETE", record.get("error")
    assert record["asset_name"] == "750101_2025-06-12_15-03-00"  # LA in June: -07:00
    report = json.loads(
        body(quick_cloud, quick_cloud.staging_bucket, f"rig-7/aind/{REPORT_FILENAME}")
    )
    notes = {(i["rule"], i["field"]): i["message"] for i in report["issues"]}
    assert "America/Los_Angeles" in notes[("job.naive_datetime", "acq_datetime")]
    setting = "tasks.gather_preliminary_metadata.job_settings.metadata_dir"
    assert "staged session" in notes[("job.setting_ignored", setting)]
    assert ("job.task_ignored", "tasks.register_data_asset") not in notes  # the Catalog's
    assert ("job.task_ignored", "tasks.get_codeocean_asset_id") not in notes  # Code Ocean's
    assert ("job.task_ignored", "tasks.codeocean_pipeline_settings") not in notes
    assert record["registration"]["catalog"]["status"] == "OK"
    # this deployment names no Code Ocean: both steps say so (tests/e2e/test_codeocean.py runs them)
    for step in ("codeocean", "pipelines"):
        outcome = record["registration"][step]
        assert (outcome["status"], outcome["reason"]) == (
            "SKIPPED",
            "no Code Ocean domain configured",
        )
    staged.assert_untouched()


def test_an_older_minor_schema_version_is_archived_with_a_note(quick_cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    subject = json.loads((session / "subject.json").read_text())
    major = subject["schema_version"].split(".")[0]
    (session / "subject.json").write_text(json.dumps({**subject, "schema_version": f"{major}.0.0"}))
    staged = Staged(quick_cloud, session, "rig-7/older")
    record = staged.run()
    assert record["status"] == "COMPLETE", record.get("error")
    report = json.loads(
        body(quick_cloud, quick_cloud.staging_bucket, f"rig-7/older/{REPORT_FILENAME}")
    )
    (note,) = [i for i in report["issues"] if i["rule"] == "schema.version_older"]
    assert (note["severity"], note["file"]) == ("warning", "subject.json")


def test_microsecond_starts_in_utc_and_a_named_zone_are_archived(
    quick_cloud, tmp_path: Path
) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    later = timedelta(microseconds=474680)
    behavior, ecephys = session / "acquisition_behavior.json", session / "acquisition_ecephys.json"
    behavior.write_bytes(retimed(behavior.read_bytes(), lambda t: t + later, "America/Los_Angeles"))
    ecephys.write_bytes(retimed(ecephys.read_bytes(), lambda t: (t + later).astimezone(UTC), 0))
    staged = Staged(quick_cloud, session, "rig-7/utc")
    record = staged.run()
    assert record["status"] == "COMPLETE", record.get("error")
    report = json.loads(
        body(quick_cloud, quick_cloud.staging_bucket, f"rig-7/utc/{REPORT_FILENAME}")
    )
    assert [i["file"] for i in report["issues"] if i["rule"] == "merge.fixed_offset"] == [
        "acquisition_ecephys.json"
    ]


def test_naive_metadata_times_are_read_in_the_deployments_zone(quick_cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    for path in session.glob("acquisition_*.json"):
        path.write_bytes(retimed(path.read_bytes(), lambda t: t.replace(tzinfo=None)))
    staged = Staged(quick_cloud, session, "rig-7/naive")
    record = staged.run()
    assert record["status"] == "COMPLETE", record.get("error")
    report = json.loads(
        body(quick_cloud, quick_cloud.staging_bucket, f"rig-7/naive/{REPORT_FILENAME}")
    )
    notes = [i for i in report["issues"] if i["rule"] == "metadata.naive_datetime"]
    assert len(notes) == 2 and all("America/Los_Angeles" in i["message"] for i in notes)


def test_a_library_crash_rejects_the_job_with_a_report(quick_cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    for path in session.glob("acquisition_*.json"):
        path.write_bytes(external_streams(path.read_bytes()))
    staged = Staged(quick_cloud, session, "rig-7/crash")
    record = staged.run()
    assert record["status"] == "REJECTED", record.get("error")
    report = json.loads(
        body(quick_cloud, quick_cloud.staging_bucket, f"rig-7/crash/{REPORT_FILENAME}")
    )
    assert "library.crash" in [i["rule"] for i in report["issues"] if i["severity"] == "error"]
    staged.assert_untouched()


def test_several_quality_control_files_are_merged_into_the_asset(
    quick_cloud, tmp_path: Path
) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    (session / "quality_control_ecephys.json").write_bytes(quality_control("drift", "ecephys"))
    (session / "quality_control_behavior.json").write_bytes(quality_control("frames", "behavior"))
    record = Staged(quick_cloud, session, "rig-7/qc").run()
    assert record["status"] == "COMPLETE", record.get("error")
    metadata = json.loads(
        body(quick_cloud, quick_cloud.archive_bucket, f"{record['asset_name']}/metadata.nd.json")
    )
    assert [m["name"] for m in metadata["quality_control"]["metrics"]] == ["frames", "drift"]


def test_validation_comes_before_the_archive_decision(quick_cloud, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    assert Staged(quick_cloud, session, "rig-7/first").run()["status"] == "COMPLETE"

    # an invalid session whose asset name exists: rejected for what is wrong with it
    (session / "behavior" / "extra.csv").write_text("a,b\n")
    subject = json.loads((session / "subject.json").read_text())
    (session / "subject.json").write_text(json.dumps({**subject, "subject_id": "750999"}))
    invalid = Staged(quick_cloud, session, "rig-7/invalid").run()
    assert invalid["status"] == "REJECTED", invalid.get("error")
    report = json.loads(body(quick_cloud, quick_cloud.staging_bucket, invalid["report_key"]))
    assert "merge.subject_id_mismatch" in [i["rule"] for i in report["issues"]]

    # a valid but different session: fails on the existing asset, and still shows its report
    (session / "subject.json").write_text(json.dumps(subject))
    different = Staged(quick_cloud, session, "rig-7/different").run()
    assert different["status"] == "FAILED"
    assert different["error"].startswith("AssetExistsError")
    report = json.loads(body(quick_cloud, quick_cloud.staging_bucket, different["report_key"]))
    assert report["status"] == "valid"


def test_a_declared_modality_without_a_stream_is_archived_with_a_warning(
    quick_cloud, tmp_path: Path
) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    job = json.loads((session / "upload_job.json").read_text())
    job["modalities"] = [*job["modalities"], "behavior-videos"]
    (session / "upload_job.json").write_text(json.dumps(job))
    (session / "behavior-videos").mkdir()
    (session / "behavior-videos" / "face_camera.avi").write_bytes(b"frames")
    record = Staged(quick_cloud, session, "rig-7/videos").run()
    assert record["status"] == "COMPLETE", record.get("error")
    report = json.loads(body(quick_cloud, quick_cloud.staging_bucket, record["report_key"]))
    assert "merge.modality_without_stream" in [i["rule"] for i in report["issues"]]


def test_a_rejection_message_a_scientist_can_act_on(quick_cloud, tmp_path: Path) -> None:
    """Issue 12 point 9 through the local cloud: the SNS rejection lists the errors sorted by
    file, a key-field conflict as its leaf path and two values, a misnamed notes file as one
    entry, and never says "accepted"."""
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    instrument = json.loads((session / "instrument_ecephys.json").read_text())
    instrument["global_coordinate_system"]["axes"][1]["direction"] = "Right_to_left"
    (session / "instrument_ecephys.json").write_text(json.dumps(instrument))
    (session / "instrument_calibration_notes.json").write_text(json.dumps({"notes": "3 mW"}))
    queue = quick_cloud.subscribe_queue("point9", {"event": ["rejected"]})
    record = Staged(quick_cloud, session, "rig-7/point9").run()
    assert record["status"] == "REJECTED", record.get("error")
    report = json.loads(body(quick_cloud, quick_cloud.staging_bucket, record["report_key"]))
    errors = [
        (i["file"], i["rule"], i["field"]) for i in report["issues"] if i["severity"] == "error"
    ]
    assert errors == [
        ("instrument_calibration_notes.json", "json.not_metadata", None),
    ], "a broken instrument file leaves the others unmerged: one entry, nothing else blamed"
    (message,) = quick_cloud.messages(queue)
    assert "instrument_calibration_notes.json is not an Instrument" in message["Message"]

    # the notes file renamed (now data), the conflict remains: named leaf by leaf, and the
    # errors of several files listed in file order
    (session / "instrument_calibration_notes.json").rename(session / "calibration_notes.json")
    subject = json.loads((session / "subject.json").read_text())
    (session / "subject.json").write_text(json.dumps({**subject, "subject_id": "750999"}))
    queue = quick_cloud.subscribe_queue("point9b", {"event": ["rejected"]})
    record = Staged(quick_cloud, session, "rig-7/point9b").run()
    assert record["status"] == "REJECTED", record.get("error")
    (message,) = quick_cloud.messages(queue)
    text = message["Message"].split("--- details (JSON) ---", 1)[0]
    assert (
        "instrument_ecephys.json, field global_coordinate_system.axes.1.direction: "
        "instrument_ecephys.json and instrument_behavior.json disagree on "
        'global_coordinate_system.axes.1.direction: "Right_to_left" here, "Left_to_right"'
    ) in text
    assert "object_type=" not in text and "accepted" not in text.lower()
    problems = text.split("Problems to fix:", 1)[1].split("\n\n", 1)[0]
    files = [
        line.split("* ", 1)[1].split(":", 1)[0].split(",", 1)[0]
        for line in problems.splitlines()
        if "* " in line
    ]
    assert len(set(files)) >= 2 and files == sorted(files), files
