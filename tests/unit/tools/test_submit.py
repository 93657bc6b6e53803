"""submit: the staging URI, the file list, the resume rule, the job file, the exit codes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import typer
from moto import mock_aws
from typer.testing import CliRunner

from upload_processor.domain.units import MiB
from upload_processor.errors import SessionLayoutError, SubmitUploadError, SubmitUsageError
from upload_processor.pipeline.ingest import execution_name
from upload_processor_tools.commands import submit as submit_cli
from upload_processor_tools.sample import build_session
from upload_processor_tools.submit import (
    LocalFile,
    StagingLocation,
    Submitter,
    already_staged,
    job_document,
    session_files,
    sha256_file,
    transfer_config,
)

BUCKET = "staging"


def _run(args: list[str]):
    app = typer.Typer()
    app.command()(submit_cli.submit)
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://b/rig-7/s1", "b", "rig-7/s1"),
        ("s3://b/rig-7/s1/", "b", "rig-7/s1"),
        (" s3://b/a ", "b", "a"),
    ],
)
def test_staging_uri(uri: str, bucket: str, prefix: str) -> None:
    location = StagingLocation.parse(uri)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert location.key("x/y.dat") == f"{prefix}/x/y.dat"


@pytest.mark.parametrize("uri", ["", "b/x", "https://b/x", "s3://", "s3://b", "s3://b/", "s3:///x"])
def test_bad_staging_uris_are_usage_errors(uri: str) -> None:
    with pytest.raises(SubmitUsageError):
        StagingLocation.parse(uri)


def test_session_files_leave_out_the_job_and_report_and_refuse_a_nested_job(
    tmp_path: Path,
) -> None:
    (tmp_path / "ecephys").mkdir()
    (tmp_path / "ecephys" / "a.dat").write_bytes(b"abc")
    (tmp_path / "subject.json").write_text("{}")
    (tmp_path / "upload_job.json").write_text("{}")
    (tmp_path / "upload_report.json").write_text("{}")
    assert [(f.relative, f.size) for f in session_files(tmp_path)] == [
        ("ecephys/a.dat", 3),
        ("subject.json", 2),
    ]
    (tmp_path / "ecephys" / "upload_job.json").write_text("{}")
    with pytest.raises(SessionLayoutError, match=r"ecephys/upload_job\.json"):
        session_files(tmp_path)


def test_job_document_lists_every_file_and_replaces_a_stale_list(tmp_path: Path) -> None:
    files = [LocalFile("b/x.dat", tmp_path, 5), LocalFile("subject.json", tmp_path, 2)]
    raw = json.dumps({"job_type": "default", "files": [{"path": "old", "size": 1}]}).encode()
    out = json.loads(job_document(raw, files))
    assert out["job_type"] == "default"
    assert out["files"] == [{"path": "b/x.dat", "size": 5}, {"path": "subject.json", "size": 2}]
    with pytest.raises(SessionLayoutError):
        job_document(b"[1]", files)


def test_already_staged_compares_size_and_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    file = LocalFile("f", path, 5, sha256_file(path))
    assert file.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert not already_staged(None, file)
    assert already_staged({"ContentLength": 5, "Metadata": {"sha256": file.sha256}}, file)
    assert not already_staged({"ContentLength": 4, "Metadata": {"sha256": file.sha256}}, file)
    assert not already_staged({"ContentLength": 5, "Metadata": {"sha256": "0" * 64}}, file)
    # no metadata: a whole-object ChecksumSHA256 will do, a composite (multipart) one will not
    assert already_staged({"ContentLength": 5, "ChecksumSHA256": file.sha256_b64}, file)
    composite = {"ContentLength": 5, "ChecksumSHA256": file.sha256_b64 + "-2"}
    assert not already_staged(composite, file)
    assert not already_staged({"ContentLength": 5}, file)


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def _session(tmp_path: Path) -> Path:
    root = build_session(tmp_path / "s", data_mb_per_modality=0.05)
    (root / "ecephys" / "big.dat").write_bytes(bytes(range(256)) * (6 * MiB // 256))
    return root


def test_submit_uploads_then_resumes_skipping_what_is_staged(s3, tmp_path: Path) -> None:
    root = _session(tmp_path)
    location = StagingLocation(BUCKET, "rig-7/s1")
    job_raw = (root / "upload_job.json").read_bytes()
    submitter = Submitter(s3, location, config=transfer_config(5, 4))

    first = submitter.submit(session_files(root), job_raw)
    assert len(first.uploaded) == len(session_files(root)) and not first.skipped
    assert first.job_key == "rig-7/s1/upload_job.json"
    assert first.job_id == execution_name(BUCKET, first.job_key, first.version_id)
    big = s3.head_object(Bucket=BUCKET, Key="rig-7/s1/ecephys/big.dat", ChecksumMode="ENABLED")
    assert big["ETag"].strip('"').endswith("-2")  # multipart
    assert big["Metadata"]["sha256"] == sha256_file(root / "ecephys" / "big.dat")

    # same size, other bytes: sent again; everything else skipped
    (root / "subject.json").write_text((root / "subject.json").read_text().replace("7", "8"))
    second = submitter.submit(session_files(root), job_raw)
    assert [f.relative for f in second.uploaded] == ["subject.json"]
    assert len(second.skipped) == len(session_files(root)) - 1
    assert second.replaced_job and second.job_id != first.job_id
    staged_job = json.loads(s3.get_object(Bucket=BUCKET, Key=first.job_key)["Body"].read())
    assert {f["path"] for f in staged_job["files"]} == {f.relative for f in session_files(root)}


def test_an_object_staged_by_another_tool_is_compared_by_its_checksum(s3, tmp_path: Path) -> None:
    root = _session(tmp_path)
    location = StagingLocation(BUCKET, "rig-7/s2")
    body = (root / "subject.json").read_bytes()
    s3.put_object(Bucket=BUCKET, Key="rig-7/s2/subject.json", Body=body, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=BUCKET, Key="rig-7/s2/procedures.json", Body=b"x" * 5)
    todo, done = Submitter(s3, location).plan(session_files(root))
    assert [f.relative for f in done] == ["subject.json"]
    assert "procedures.json" in {f.relative for f in todo}


def test_a_missing_bucket_is_an_upload_failure(s3, tmp_path: Path) -> None:
    root = _session(tmp_path)
    with pytest.raises(SubmitUploadError, match="no-such-bucket"):
        Submitter(s3, StagingLocation("no-such-bucket", "x")).submit(
            session_files(root), (root / "upload_job.json").read_bytes()
        )


def test_cli_exit_codes_before_any_upload(tmp_path: Path) -> None:
    root = build_session(tmp_path / "ok", data_mb_per_modality=0.01)
    assert _run([str(root), "--staging", "not-a-uri"]).exit_code == 2
    assert _run([str(root), "--staging", "s3://bucket"]).exit_code == 2
    assert _run([str(tmp_path / "missing"), "--staging", "s3://b/x"]).exit_code == 2
    assert (
        _run([str(root), "--staging", "s3://b/x", "--job", str(tmp_path / "no.json")]).exit_code
        == 2
    )

    bad = build_session(tmp_path / "bad", data_mb_per_modality=0.01, conflicting_subject_id="999")
    result = _run([str(bad), "--staging", "s3://b/x"])
    assert result.exit_code == 1
    assert "INVALID" in result.stdout and "subject_id" in result.stdout
    assert "not submitted" in result.stderr


def test_cli_upload_failure_names_the_file_and_writes_no_job(
    s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build_session(tmp_path / "s", data_mb_per_modality=0.01)

    def broken(params: dict, **_: object) -> None:
        if params["Key"].endswith("ecephys/settings.json"):
            raise ConnectionError("injected")

    def client(endpoint_url: str | None = None, **_: object):
        s3.meta.events.register("before-parameter-build.s3.PutObject", broken)
        return s3

    monkeypatch.setattr(submit_cli, "s3_client", client)
    result = _run([str(root), "--staging", f"s3://{BUCKET}/rig-7/s3"])
    assert result.exit_code == 3, result.output
    assert "ecephys/settings.json" in result.stderr
    assert "run the same command again" in result.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "rig-7/s3/upload_job.json" not in keys


def _odd_session(tmp_path: Path) -> tuple[Path, Path]:
    """A valid session plus a link out of it, a dangling link, a FIFO and a directory loop."""
    root = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the session")
    (root / "behavior" / "leak.txt").symlink_to(outside)
    (root / "behavior" / "gone.dat").symlink_to(tmp_path / "no-such-file")
    os.mkfifo(root / "behavior" / "pipe")
    (root / "ecephys" / "loop").symlink_to(root / "ecephys", target_is_directory=True)
    return root, outside


def test_cli_refuses_links_out_dangling_links_fifos_and_loops_listing_each(
    s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = _odd_session(tmp_path)
    monkeypatch.setattr(submit_cli, "s3_client", lambda *_, **__: s3)
    result = _run([str(root), "--staging", f"s3://{BUCKET}/rig-7/odd"])
    assert result.exit_code == 1, result.output
    for path, reason in [
        ("behavior/leak.txt", "leaves the session folder"),
        ("behavior/gone.dat", "dangling"),
        ("behavior/pipe", "FIFO"),
        ("ecephys/loop", "loop"),
    ]:
        line = next((x for x in result.stderr.splitlines() if path in x), "")
        assert reason in line, result.stderr
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0  # nothing uploaded


def test_follow_symlinks_uploads_a_link_inside_the_folder_as_its_target(
    s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    (root / "behavior" / "copy.bin").symlink_to(root / "behavior" / "behavior_32.bin")
    monkeypatch.setattr(submit_cli, "s3_client", lambda *_, **__: s3)
    refused = _run([str(root), "--staging", f"s3://{BUCKET}/rig-7/in"])
    assert refused.exit_code == 1 and "--follow-symlinks" in refused.stderr, refused.output
    result = _run([str(root), "--staging", f"s3://{BUCKET}/rig-7/in", "--follow-symlinks"])
    assert result.exit_code == 0, result.output
    staged = s3.get_object(Bucket=BUCKET, Key="rig-7/in/behavior/copy.bin")["Body"].read()
    assert staged == (root / "behavior" / "behavior_32.bin").read_bytes()
