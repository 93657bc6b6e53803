"""Bad input, case by case, through the real local flow (issue 6).

Every case stages a session (built by `upload_processor_tools.sample.build_session`, then spoiled)
into the local cloud's staging bucket, uploads `upload_job.json` last, and checks what a
scientist gets back: the job's final status, the report issue (rule, file, field, a message
that says how to fix it), the SNS message, and that nothing was lost: every staged object
version is as uploaded, the report is the one object added, and the archive holds nothing of
a job that did not complete.

The cases share one local cloud (a fresh one per case would take minutes); each has its own
staging prefix and its own subject id, hence its own asset name. A case that needs another
deployment setting (no default time zone) gets a cloud of its own, deployed when it runs.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from upload_processor.adapters.s3 import join
from upload_processor.domain.archive import lock_key
from upload_processor.domain.report import REPORT_FILENAME
from upload_processor.domain.units import MiB
from upload_processor.domain.upload_job import JOB_FILENAME, MAX_JOB_BYTES
from upload_processor.pipeline.ingest import execution_name
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.sample import build_session

ROOT = Path(__file__).resolve().parents[2]
ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
QUICK = {"FilesWaitSeconds": 0}


# --- the cases -----------------------------------------------------------------------------


@dataclass
class Setup:
    """What a case does to a valid session before it is staged."""

    folder: Path
    job: dict[str, Any]
    job_bytes: bytes | None = None  # upload_job.json verbatim (default: `job` as JSON)
    extra: dict[str, bytes] = field(default_factory=dict)  # relative key -> body, put as is
    at_bucket_root: bool = False  # upload_job.json at the bucket root, not under the prefix
    refuse: str | None = None  # relative key whose GetObject/CopyObject S3 answers 403


@dataclass(frozen=True)
class Case:
    id: str
    arrange: Callable[[Setup], None]
    status: str  # the job's final status
    rule: str | None  # the report issue's rule (None: a fault, no report issue)
    file: str | None  # the issue's file (for a fault: a text the job's error names)
    field: str | None
    fix: str  # a piece of the message that says what to do
    also: tuple[str, ...] = ()  # other error rules the report may hold beside `rule`
    overrides: tuple[tuple[str, Any], ...] = ()  # deployment parameters for this case


def job_bytes(body: bytes) -> Callable[[Setup], None]:
    def arrange(s: Setup) -> None:
        s.job_bytes = body

    return arrange


def job_set(**changes: Any) -> Callable[[Setup], None]:
    def arrange(s: Setup) -> None:
        s.job.update(changes)

    return arrange


def job_drop(name: str) -> Callable[[Setup], None]:
    def arrange(s: Setup) -> None:
        del s.job[name]

    return arrange


def tasks(value: dict[str, Any]) -> Callable[[Setup], None]:
    return job_set(tasks=value)


def put(relative: str, body: bytes) -> Callable[[Setup], None]:
    """Stage an extra object under the prefix with exactly this key (odd keys included)."""

    def arrange(s: Setup) -> None:
        s.extra[relative] = body

    return arrange


def write(relative: str, body: bytes) -> Callable[[Setup], None]:
    """Replace (or add) a file of the session folder."""

    def arrange(s: Setup) -> None:
        path = s.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    return arrange


def edit_json(relative: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Setup], None]:
    def arrange(s: Setup) -> None:
        path = s.folder / relative
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return arrange


def remove_folder(name: str) -> Callable[[Setup], None]:
    def arrange(s: Setup) -> None:
        for path in sorted((s.folder / name).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (s.folder / name).rmdir()

    return arrange


def procedures_holding_the_subject(s: Setup) -> None:
    (s.folder / "procedures.json").write_bytes((s.folder / "subject.json").read_bytes())


def at_bucket_root(s: Setup) -> None:
    s.at_bucket_root = True


def refuse(relative: str) -> Callable[[Setup], None]:
    def arrange(s: Setup) -> None:
        s.refuse = relative

    return arrange


def listed_larger_than_staged(s: Setup) -> None:
    """upload_job.json lists a 40 GiB file whose upload never finished (only a start of it)."""
    size = (s.folder / "ecephys" / "continuous.dat").stat().st_size
    s.job["files"] = [{"path": "ecephys/continuous.dat", "size": size + 40 * 1024**3}]


def deeply_nested_job(s: Setup) -> None:
    s.job["tasks"] = {"gather_preliminary_metadata": {"job_settings": {}}}
    inner: dict[str, Any] = {}
    node = s.job["tasks"]["gather_preliminary_metadata"]["job_settings"]
    node["deep"] = inner
    for _ in range(150):
        inner["x"] = {}
        inner = inner["x"]


def chain(*steps: Callable[[Setup], None]) -> Callable[[Setup], None]:
    def arrange(s: Setup) -> None:
        for step in steps:
            step(s)

    return arrange


def duplicate_s3_bucket(s: Setup) -> None:
    """`"s3_bucket": "private"` first, `"s3_bucket": "open"` last: json.loads keeps "open"."""
    body = json.dumps({"s3_bucket": "private", **s.job})
    s.job_bytes = (body[:-1] + ', "s3_bucket": "open"}').encode()


DD_SETTINGS = "tasks.gather_preliminary_metadata.job_settings.data_description_settings"
HUGE_JOB = b'{"job_type": "default", "notes": "' + b"x" * (5 * MiB) + b'"}'
LONG_NAME = "a" * 300 + ".dat"
# short enough for S3 under a short prefix, too long once under `<asset_name>/` with `.zst`
LONG_KEY = "ecephys/" + "/".join(["d" * 199] * 5) + ".dat"
FIFTY_MB_JSON = b'{"notes": "' + b"n" * (50 * MiB) + b'"}'

CASES = [
    # -- upload_job.json: unreadable as a job ---------------------------------------------
    Case("job-malformed-json", job_bytes(b'{"job_type": "default",'), "REJECTED",
         "job.malformed", JOB_FILENAME, None, "fix the syntax"),
    Case("job-empty", job_bytes(b""), "REJECTED",
         "job.empty", JOB_FILENAME, None, "write the job as a JSON object"),
    Case("job-whitespace-only", job_bytes(b" \n\t\n"), "REJECTED",
         "job.empty", JOB_FILENAME, None, "write the job as a JSON object"),
    Case("job-huge", job_bytes(HUGE_JOB), "REJECTED",
         "job.too_large", JOB_FILENAME, None, f"at most {MAX_JOB_BYTES} bytes"),
    Case("job-array", job_bytes(b'[{"job_type": "default"}]'), "REJECTED",
         "job.not_object", JOB_FILENAME, None, "one JSON object"),
    Case("job-string", job_bytes(b'"default"'), "REJECTED",
         "job.not_object", JOB_FILENAME, None, "one JSON object"),
    Case("job-not-utf8", job_bytes(b'{"job_type": "d\xe9fault"}'), "REJECTED",
         "job.malformed", JOB_FILENAME, None, "UTF-8"),
    Case("job-nested-too-deep", deeply_nested_job, "REJECTED",
         "job.malformed", JOB_FILENAME, None, "levels deep"),
    # -- upload_job.json: a field wrong ---------------------------------------------------
    Case("unknown-job-type", job_set(job_type="no-such-type"), "REJECTED",
         "job.unknown_job_type", JOB_FILENAME, "job_type", "this deployment defines: "),
    Case("unknown-modality", job_set(modalities=["behavior", "ephys"]), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "modalities", "use one of: "),
    Case("unknown-task-id", tasks({"compress_everything": {"skip_task": True}}), "REJECTED",
         "job.unknown_task", JOB_FILENAME, "tasks.compress_everything", "valid task ids: "),
    Case("unknown-field", job_set(subjectid="750101"), "REJECTED",
         "job.unknown_field", JOB_FILENAME, "subjectid", "remove it"),
    Case("unknown-task-field",
         tasks({"gather_preliminary_metadata": {"skip": True}}), "REJECTED",
         "job.unknown_field", JOB_FILENAME, "tasks.gather_preliminary_metadata.skip",
         "remove it"),
    Case("misspelt-job-setting",
         tasks({"gather_preliminary_metadata": {"job_settings": {"raise_if_invalidd": False}}}),
         "REJECTED", "job.unknown_setting", JOB_FILENAME,
         "tasks.gather_preliminary_metadata.job_settings.raise_if_invalidd", "a typo?"),
    Case("compression-level-out-of-range",
         tasks({"modality_transformation_settings": {"ecephys": {"job_settings": {"level": 99}}}}),
         "REJECTED", "job.invalid_setting", JOB_FILENAME,
         "tasks.modality_transformation_settings.ecephys.job_settings.level", "22"),
    Case("missing-required-field", job_drop("project_name"), "REJECTED",
         "job.missing_field", JOB_FILENAME, "project_name", "add it"),
    Case("acq-datetime-not-a-date", job_set(acq_datetime="yesterday at noon"), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "acq_datetime", "2025-06-12T15:03:00-07:00"),
    Case("subject-id-with-underscore", job_set(subject_id="7502_14"), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "subject_id", "may not contain '_', '/'"),
    Case("subject-id-with-slash", job_set(subject_id="7502/15"), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "subject_id", "may not contain '_', '/'"),
    Case("bad-notification-type", job_set(email_notification_types=["sometimes"]), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "email_notification_types.0", "'fail'"),
    # -- UploadJobConfigsV2 fields we do not use: warnings, and the job completes -----------
    Case("ignored-s3-prefix", job_set(s3_prefix="ecephys_750101_2025-06-12_15-03-00"),
         "COMPLETE", "job.field_ignored", JOB_FILENAME, "s3_prefix", "ignored"),
    Case("ignored-task-image",
         tasks({"gather_preliminary_metadata": {"image": "ghcr.io/x/y", "skip_task": False}}),
         "COMPLETE", "job.field_ignored", JOB_FILENAME,
         "tasks.gather_preliminary_metadata.image", "ignored"),
    Case("naive-datetime-read-in-default-zone", job_set(acq_datetime="2025-06-12T15:03:00"),
         "COMPLETE", "job.naive_datetime", JOB_FILENAME, "acq_datetime", "America/Los_Angeles"),
    # -- staged keys that cannot become archive keys ----------------------------------------
    Case("key-with-dotdot", put("ecephys/../escape.dat", b"x"), "REJECTED",
         "session.bad_key", "ecephys/../escape.dat", None, "rename it"),
    Case("key-with-leading-slash", put("/ecephys/rooted.dat", b"x"), "REJECTED",
         "session.bad_key", "/ecephys/rooted.dat", None, "no leading '/'"),
    Case("key-with-control-character", put("ecephys/bell\x07.dat", b"x"), "REJECTED",
         "session.bad_key", "ecephys/bell\x07.dat", None, "U+0007"),
    Case("key-with-very-long-name", put(f"ecephys/{LONG_NAME}", b"x"), "REJECTED",
         "session.bad_key", f"ecephys/{LONG_NAME}", None, "at most 255 bytes"),
    Case("key-too-long-for-the-archive", put(LONG_KEY, b"x"), "REJECTED",
         "session.bad_key", LONG_KEY, None, "S3 keys are at most 1024 bytes"),
    # -- data folders and modalities ---------------------------------------------------------
    Case("declared-modality-without-folder", remove_folder("ecephys"), "REJECTED",
         "session.missing_modality_folder", "ecephys/", "modalities",
         "or remove 'ecephys' from modalities"),
    Case("folder-of-undeclared-modality", put("fib/photometry.csv", b"t,v\n0,1\n"), "REJECTED",
         "session.undeclared_modality_folder", "fib/", "modalities", "add 'fib' to modalities"),
    # -- files: empty, very large ------------------------------------------------------------
    Case("zero-byte-data-file", put("behavior/empty_log.txt", b""), "COMPLETE",
         "session.empty_file", "behavior/empty_log.txt", None, "upload it again"),
    Case("zero-byte-metadata-file", write("subject.json", b""), "REJECTED",
         "json.empty", "subject.json", None, "Upload the complete file"),
    Case("very-large-file-not-fully-staged", listed_larger_than_staged, "FAILED",
         None, "ecephys/continuous.dat", None, "upload them, then upload upload_job.json again"),
    Case("metadata-file-of-50-mb", put("acquisition_raw.json", FIFTY_MB_JSON), "REJECTED",
         "json.too_large", "acquisition_raw.json", None, "move it into its modality's folder"),
    # -- metadata files that are not what they claim -----------------------------------------
    Case("metadata-not-json", write("instrument_behavior.json", b"rig: 7\nmouse: 750101\n"),
         "REJECTED", "json.malformed", "instrument_behavior.json", None, "Fix the syntax"),
    Case("metadata-not-utf8", write("subject.json", b'{"subject_id": "\xff"}'), "REJECTED",
         "json.malformed", "subject.json", None, "Save it as UTF-8"),
    Case("metadata-not-an-object", write("subject.json", b'[{"subject_id": "750101"}]'),
         "REJECTED", "json.not_object", "subject.json", None, "one JSON object"),
    Case("metadata-duplicate-key",
         write("procedures.json", b'{"subject_id": "1", "subject_id": "2"}'), "REJECTED",
         "json.duplicate_key", "procedures.json", None, "Keep a single entry"),
    Case("metadata-of-the-wrong-type", procedures_holding_the_subject, "REJECTED",
         "json.wrong_type", "procedures.json", "object_type", "Rename it to subject.json"),
    Case("metadata-field-of-the-wrong-type",
         edit_json("subject.json", lambda d: d.update(subject_details="a mouse")), "REJECTED",
         "schema.invalid", "subject.json", "subject_details", "Correct this value in subject.json"),
    # -- where the job file is, what S3 lets us read -----------------------------------------
    Case("job-at-bucket-root", at_bucket_root, "REJECTED",
         "job.at_bucket_root", JOB_FILENAME, None, "put the session in its own folder"),
    Case("unreadable-metadata-file-403", refuse("subject.json"), "FAILED",
         None, "subject.json", None, "give the pipeline read access"),
    Case("unreadable-data-file-403", refuse("behavior/behavior_32.bin"), "FAILED",
         None, "behavior/behavior_32.bin", None, "give the pipeline read access"),
    # -- issue 13: what got through before ----------------------------------------------------
    Case("job-duplicate-key", duplicate_s3_bucket, "REJECTED",
         "job.duplicate_key", JOB_FILENAME, "s3_bucket", "keep a single entry"),
    Case("job-nan-in-settings", tasks({"gather_preliminary_metadata": {"job_settings": {
         "data_description_settings": {"funding_source": [float("nan")]}}}}), "REJECTED",
         "job.not_finite", JOB_FILENAME, f"{DD_SETTINGS}.funding_source.0", "a number or null"),
    Case("job-infinity-in-settings",
         tasks({"modality_transformation_settings": {"ecephys": {"job_settings": {
             "level": float("inf")}}}}), "REJECTED", "job.not_finite", JOB_FILENAME,
         "tasks.modality_transformation_settings.ecephys.job_settings.level", "a number or null"),
    Case("subject-id-with-tab", job_set(subject_id="770\t007"), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "subject_id", "U+0009"),
    Case("subject-id-with-nul", job_set(subject_id="770\x00007"), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "subject_id", "U+0000"),
    Case("subject-id-with-bidi-override", job_set(subject_id="770\u202e007"), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "subject_id", "U+202E"),
    Case("subject-id-too-long", job_set(subject_id="7" * 240), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "subject_id", "at most 100 bytes"),
    Case("platform-with-windows-reserved-character", job_set(platform="ecephys*"), "REJECTED",
         "job.invalid_field", JOB_FILENAME, "platform", "Windows"),
    Case("archive-key-collision",
         chain(put("ecephys/extra.dat", b"raw"), put("ecephys/extra.dat.zst", b"zstd?")),
         "REJECTED", "session.archive_key_collision", "ecephys/extra.dat", None,
         "'ecephys/extra.dat' and 'ecephys/extra.dat.zst'"),
    Case("upload-names-its-metadata-service",
         tasks({"gather_preliminary_metadata": {"job_settings": {
             "metadata_service": "http://127.0.0.1:9"}}}), "REJECTED",
         "job.forbidden_setting", JOB_FILENAME,
         "tasks.gather_preliminary_metadata.job_settings.metadata_service", "remove it"),
    # -- a naive acq_datetime where the deployment has no default time zone (its own cloud) --
    Case("naive-datetime-without-default-zone", job_set(acq_datetime="2025-06-12T15:03:00"),
         "REJECTED", "job.naive_datetime", JOB_FILENAME, "acq_datetime",
         "write it with its offset", overrides=(("DefaultTimeZone", ""),)),
]  # fmt: skip


# --- the local cloud, shared ---------------------------------------------------------------


class Clouds:
    """One running local cloud at a time, redeployed only when a case needs other settings."""

    def __init__(self) -> None:
        self.current: LocalCloud | None = None
        self.key: tuple[tuple[str, Any], ...] | None = None
        self.inbox = ""

    def get(self, overrides: tuple[tuple[str, Any], ...]) -> LocalCloud:
        if self.current is not None and self.key == overrides:
            return self.current
        self.close()
        cloud = LocalCloud(ROOT, parameter_overrides={**QUICK, **dict(overrides)})
        self.current, self.key = cloud.__enter__(), overrides
        self.inbox = cloud.subscribe_queue("everything")  # no filter: every message
        return cloud

    def close(self) -> None:
        if self.current is not None:
            self.current.__exit__(None, None, None)
            self.current = None


@pytest.fixture(scope="module")
def clouds() -> Iterator[Clouds]:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    shared = Clouds()
    try:
        yield shared
    finally:
        shared.close()


# --- helpers -------------------------------------------------------------------------------


def versions(
    cloud: LocalCloud, bucket: str, prefix: str = "", delimiter: str = ""
) -> dict[str, list[tuple[str, str]]]:
    """Every version and delete marker: key -> sorted [(version id, ETag or DELETE)]."""
    s3 = cloud.client("s3")
    out: dict[str, list[tuple[str, str]]] = {}
    try:
        for page in s3.get_paginator("list_object_versions").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter=delimiter
        ):
            for v in page.get("Versions", []):
                out.setdefault(v["Key"], []).append((v["VersionId"], v["ETag"]))
            for d in page.get("DeleteMarkers", []):
                out.setdefault(d["Key"], []).append((d["VersionId"], "DELETE"))
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 500:
            raise
        # moto cannot list the versions of a key holding a control character (S3 can): key by
        # key, then, and for such a key its current version
        out = {}
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            key = obj["Key"]
            try:
                out[key] = [
                    (v["VersionId"], v["ETag"])
                    for v in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
                    if v["Key"] == key
                ]
            except ClientError:
                head = s3.head_object(Bucket=bucket, Key=key)
                out[key] = [(head["VersionId"], head["ETag"])]
    return {k: sorted(v) for k, v in out.items()}


def staged_versions(cloud: LocalCloud, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """The versions under the case's prefix and at the bucket root (other cases' objects are
    not this case's business, and moto lists some of them badly)."""
    bucket = cloud.staging_bucket
    return {**versions(cloud, bucket, "", "/"), **versions(cloud, bucket, f"{prefix}/")}


def current_keys(cloud: LocalCloud, bucket: str) -> set[str]:
    paginator = cloud.client("s3").get_paginator("list_objects_v2")
    return {
        o["Key"] for page in paginator.paginate(Bucket=bucket) for o in page.get("Contents", [])
    }


def assert_nothing_lost(
    cloud: LocalCloud,
    *,
    prefix: str,
    staged_before: dict[str, list[tuple[str, str]]],
    archive_before: set[str],
    report_key: str,
    job_id: str,
    status: str,
    asset_name: str,
) -> None:
    """Staged data is never modified or deleted (the report is the one object added), and
    the archive holds nothing of a job that did not complete."""
    staged_after = staged_versions(cloud, prefix)
    # every staged object keeps exactly the versions it had: same ids, same ETags, no
    # delete marker; no other object appeared but the report
    assert {k: v for k, v in staged_after.items() if k != report_key} == {
        k: v for k, v in staged_before.items() if k != report_key
    }
    report_versions = staged_after.get(report_key, [])
    assert all(etag != "DELETE" for _, etag in report_versions)
    assert set(staged_before.get(report_key, [])) <= set(report_versions)

    archive_after = current_keys(cloud, cloud.archive_bucket)
    assert archive_before <= archive_after  # nothing of other jobs removed
    added = archive_after - archive_before
    assert lock_key(asset_name) not in archive_after  # the asset's lease was released
    if status == "COMPLETE":
        # the asset, and nothing left in the work area
        assert added and all(k.startswith(f"{asset_name}/") for k in added), added
        return
    # not one version (nor a delete marker) under the asset's name, ever
    assert versions(cloud, cloud.archive_bucket, f"{asset_name}/") == {}
    if status == "REJECTED":
        assert added == set()
    else:  # a failed job's work area is kept for an operator's retry; nothing else
        assert all(k.startswith(f"_jobs/{job_id}/") for k in added), added


def refusing(bucket: str, key: str) -> Callable[..., None]:
    """A botocore hook for the handlers' clients (boto3's default session): S3 answers 403
    to every read of one staged object."""

    def hook(params: dict, **_: object) -> None:
        source = params.get("CopySource")
        copied = isinstance(source, dict) and source.get("Key") == key
        if (params.get("Bucket") == bucket and params.get("Key") == key) or copied:
            raise ClientError(
                {
                    "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                "GetObject",
            )

    return hook


READS = ("s3.GetObject", "s3.CopyObject", "s3.UploadPartCopy", "s3.HeadObject")


def run_case(cloud: LocalCloud, case: Case, setup: Setup, prefix: str) -> dict[str, Any]:
    """Stage the session, upload upload_job.json last, wait for the job; what happened."""
    s3 = cloud.client("s3")
    staging = cloud.staging_bucket
    for path in sorted(p for p in setup.folder.rglob("*") if p.is_file()):
        s3.upload_file(str(path), staging, f"{prefix}/{path.relative_to(setup.folder).as_posix()}")
    for relative, body in setup.extra.items():
        s3.put_object(Bucket=staging, Key=f"{prefix}/{relative}", Body=body)
    job_key = JOB_FILENAME if setup.at_bucket_root else f"{prefix}/{JOB_FILENAME}"
    staged_before = staged_versions(cloud, prefix)
    archive_before = current_keys(cloud, cloud.archive_bucket)

    body = setup.job_bytes if setup.job_bytes is not None else json.dumps(setup.job).encode()
    events = boto3._get_default_session().events
    hook = refusing(staging, f"{prefix}/{setup.refuse}") if setup.refuse else None
    for operation in READS if hook else ():
        events.register(f"before-parameter-build.{operation}", hook)
    try:
        out = s3.put_object(Bucket=staging, Key=job_key, Body=body)
        staged_before.setdefault(job_key, []).append((out["VersionId"], out["ETag"]))
        staged_before[job_key].sort()
        job_id = execution_name(staging, job_key, out["VersionId"])
        record = cloud.job(job_id)
        assert record is not None, "ingest recorded no job"
        if record.get("execution_arn"):
            cloud.wait(record["execution_arn"])
    finally:
        for operation in READS if hook else ():
            events.unregister(f"before-parameter-build.{operation}", hook)
    return {
        "job_id": job_id,
        "record": cloud.job(job_id) or {},
        "staged_before": staged_before,
        "archive_before": archive_before,
        "report_key": join("" if setup.at_bucket_root else prefix, REPORT_FILENAME),
    }


# --- the table ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_answer_and_loses_nothing(
    clouds: Clouds, tmp_path: Path, case: Case
) -> None:
    cloud = clouds.get(case.overrides)
    number = CASES.index(case)
    subject_id = f"7502{number:02d}"
    prefix = f"b{number:02d}"  # short: the long-key case needs room under S3's 1024 bytes
    folder = build_session(
        tmp_path / "s",
        subject_id=subject_id,
        acq_datetime=ACQ,
        data_mb_per_modality=0.02,
        write_job=False,
    )
    job = {
        "job_type": "default",
        "project_name": "Example Foraging Project",
        "subject_id": subject_id,
        "acq_datetime": ACQ.isoformat(),
        "modalities": ["behavior", "ecephys"],
        "user_email": "scientist@example.org",
    }
    setup = Setup(folder=folder, job=job)
    case.arrange(setup)
    asset_name = f"{subject_id}_2025-06-12_15-03-00"
    cloud.messages(clouds.inbox)  # drain: only this case's messages count

    got = run_case(cloud, case, setup, prefix)
    record, s3 = got["record"], cloud.client("s3")

    assert record.get("status") == case.status, record.get("error") or record
    messages = cloud.messages(clouds.inbox)
    report = None
    if got["report_key"] in {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=cloud.staging_bucket, Prefix=got["report_key"]).get(
            "Contents", []
        )
    }:
        report = json.loads(
            s3.get_object(Bucket=cloud.staging_bucket, Key=got["report_key"])["Body"].read()
        )

    if case.status == "FAILED":
        # a fault, not the session's content: the error names the object and the fix
        error = record["error"]
        assert case.file in error and case.fix in error, error
        assert "Traceback" not in error
        (message,) = messages
        assert message["MessageAttributes"]["event"]["Value"] == "fail"
        assert case.file in message["Message"] and case.fix in message["Message"]
        assert "Traceback" not in message["Message"]
    else:
        assert report is not None, "no report beside the staged data"
        matching = [i for i in report["issues"] if i["rule"] == case.rule]
        assert matching, report["issues"]
        issue = next((i for i in matching if i["file"] == case.file), matching[0])
        assert (issue["file"], issue["field"]) == (case.file, case.field), issue
        assert case.fix in issue["message"], issue["message"]
        errors = {i["rule"] for i in report["issues"] if i["severity"] == "error"}
        if case.status == "REJECTED":
            assert issue["severity"] == "error"
            assert report["status"] == "invalid"
            assert errors <= {case.rule, *case.also}, report["issues"]
            assert record.get("report_key") == got["report_key"]
            (message,) = messages
            assert message["MessageAttributes"]["event"]["Value"] == "rejected"
            assert case.fix in message["Message"]
            assert "Traceback" not in message["Message"]
        else:  # COMPLETE, with a warning that says what was done
            assert issue["severity"] == "warning"
            assert report["status"] == "valid" and errors == set(), report["issues"]
            assert messages == []  # the default notification types are {fail}
            assert record["asset_name"] == asset_name

    assert_nothing_lost(
        cloud,
        prefix=prefix,
        staged_before=got["staged_before"],
        archive_before=got["archive_before"],
        report_key=got["report_key"],
        job_id=got["job_id"],
        status=case.status,
        asset_name=asset_name,
    )


def test_the_table_covers_at_least_thirty_distinct_bad_inputs() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
