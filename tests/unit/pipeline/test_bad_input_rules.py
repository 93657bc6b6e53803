"""The rules tests/e2e/test_bad_input.py drove into the core, each checked on its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from upload_processor.adapters.s3 import read_bytes
from upload_processor.adapters.staging import LocalSession
from upload_processor.domain.archive import failure_key, results_key
from upload_processor.domain.upload_job import (
    JOB_FILENAME,
    MAX_JOB_BYTES,
    parse_listed_files,
    parse_upload_job,
)
from upload_processor.errors import ObjectTooLargeError, TransferError, UploadJobError
from upload_processor.pipeline.gather import gather_session
from upload_processor.pipeline.transfer.batch import _record_failure, collect_failures
from upload_processor_tools.sample import build_session

JOB = {
    "job_type": "default",
    "project_name": "P",
    "subject_id": "750101",
    "acq_datetime": "2025-06-12T15:03:00",  # naive: only Ingest knows the default time zone
    "modalities": ["behavior"],
    "files": [{"path": "behavior/a.bin", "size": 3}],
}


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bucket")
        yield client


def test_listed_files_are_read_without_the_deployment_settings() -> None:
    """Gather re-reads `files` from a job Ingest accepted with its default time zone."""
    with pytest.raises(UploadJobError):
        parse_upload_job(json.dumps(JOB).encode())  # the whole job needs the time zone
    listed = parse_listed_files(json.dumps(JOB).encode())
    assert [(f.path, f.size) for f in listed] == [("behavior/a.bin", 3)]
    assert parse_listed_files(json.dumps({**JOB, "files": None}).encode()) == []


def test_a_bad_listed_file_names_its_field() -> None:
    raw = json.dumps({**JOB, "files": [{"path": "a", "size": -1}]}).encode()
    with pytest.raises(UploadJobError) as caught:
        parse_listed_files(raw)
    assert [(i.rule, i.field) for i in caught.value.issues] == [
        ("job.invalid_field", "files.0.size")
    ]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"[1]", "holds an array"),
        (b'"default"', "holds a string"),
        (b"7", "holds a number"),
        (b"null", "holds null"),
        (b"true", "holds a boolean"),
    ],
)
def test_a_job_that_is_not_an_object_says_what_it_holds_and_what_to_write(
    raw: bytes, words: str
) -> None:
    with pytest.raises(UploadJobError) as caught:
        parse_upload_job(raw)
    (issue,) = caught.value.issues
    assert issue.rule == "job.not_object" and words in issue.message
    assert "one JSON object" in issue.message


def test_a_job_that_is_not_utf8_says_so_and_where() -> None:
    with pytest.raises(UploadJobError) as caught:
        parse_upload_job(b'{"job_type": "d\xe9fault"}')
    (issue,) = caught.value.issues
    assert (issue.rule, issue.file, issue.field) == ("job.malformed", JOB_FILENAME, None)
    assert "not UTF-8 text (invalid byte at offset 15)" in issue.message
    assert "save it as UTF-8" in issue.message


def test_a_job_with_a_utf8_bom_still_parses() -> None:
    job = {**JOB, "acq_datetime": "2025-06-12T15:03:00-07:00"}
    parsed, _ = parse_upload_job(b"\xef\xbb\xbf" + json.dumps(job).encode())
    assert parsed.subject_id == "750101"


def test_an_unparsable_acq_datetime_names_the_format() -> None:
    with pytest.raises(UploadJobError) as caught:
        parse_upload_job(json.dumps({**JOB, "acq_datetime": "yesterday"}).encode())
    (issue,) = caught.value.issues
    assert issue.field == "acq_datetime"
    assert "e.g. 2025-06-12T15:03:00-07:00" in issue.message


def test_read_bytes_refuses_a_large_object_from_its_size(s3: Any) -> None:
    s3.put_object(Bucket="bucket", Key="k", Body=b"x" * (MAX_JOB_BYTES + 1))
    with pytest.raises(ObjectTooLargeError) as caught:
        read_bytes(s3, "bucket", "k", max_bytes=MAX_JOB_BYTES)
    assert caught.value.size == MAX_JOB_BYTES + 1
    assert read_bytes(s3, "bucket", "k", max_bytes=MAX_JOB_BYTES + 1) == b"x" * (MAX_JOB_BYTES + 1)
    s3.put_object(Bucket="bucket", Key="empty", Body=b"")
    assert read_bytes(s3, "bucket", "empty", max_bytes=10) == b""


def test_recorded_transfer_failures_are_named_unless_the_batch_later_succeeded(s3: Any) -> None:
    error = TransferError("S3 refused the transfer", source="s3://s/a", dest="s3://d/a")
    _record_failure(s3, "bucket", failure_key("job-1", "batch-a"), error)
    _record_failure(s3, "bucket", failure_key("job-1", "batch-b"), error)
    s3.put_object(Bucket="bucket", Key=results_key("job-1", "batch-b"), Body=b"[]")
    assert collect_failures(s3, "bucket", "job-1") == [
        "TransferError: s3://s/a -> s3://d/a: S3 refused the transfer"
    ]
    assert collect_failures(s3, "bucket", "job-2") == []


def test_a_zero_byte_data_file_is_a_warning_naming_it(tmp_path: Path) -> None:
    acq = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
    folder = build_session(tmp_path / "s", acq_datetime=acq, data_mb_per_modality=0.01)
    (folder / "behavior" / "empty.log").write_bytes(b"")
    job, notes = parse_upload_job((folder / JOB_FILENAME).read_bytes())
    gathered = gather_session(
        LocalSession(folder),
        job.model_dump(mode="json"),
        job_notes=[n.model_dump(mode="json") for n in notes],
    )
    empty = [i for i in gathered.report.issues if i.rule == "session.empty_file"]
    assert [(i.severity, i.file) for i in empty] == [("warning", "behavior/empty.log")]
    assert "upload it again" in empty[0].message
    assert gathered.report.status == "valid", gathered.report.summary()
