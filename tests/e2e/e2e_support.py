"""Shared by the guarantee tests: a session staged under a prefix, and what S3 holds.

`Staged` remembers every staging version before its job ran, so a test can assert that the
pipeline added only the report and modified or deleted nothing.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import zstandard

from upload_processor.pipeline.ingest import execution_name
from upload_processor_tools.local import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
ASSET = "750101_2025-06-12_15-03-00"
JOB = "upload_job.json"
REPORT = "upload_report.json"


def versions(cloud: LocalCloud, bucket: str, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """Every version and delete marker under a prefix: key -> [(version id, ETag or DELETE)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    paginator = cloud.client("s3").get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            out.setdefault(v["Key"], []).append((v["VersionId"], v["ETag"]))
        for d in page.get("DeleteMarkers", []):
            out.setdefault(d["Key"], []).append((d["VersionId"], "DELETE"))
    return {k: sorted(v) for k, v in out.items()}


def keys(cloud: LocalCloud, bucket: str, prefix: str) -> set[str]:
    """The current keys under a prefix."""
    paginator = cloud.client("s3").get_paginator("list_objects_v2")
    return {
        o["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    }


def body(cloud: LocalCloud, bucket: str, key: str) -> bytes:
    """An object's bytes."""
    return cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def decompress(data: bytes) -> bytes:
    """A whole zstd stream (one frame or many) decompressed."""
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    return reader.read()


def archived_data(cloud: LocalCloud, asset: str) -> dict[str, bytes]:
    """What a reader gets from a sealed asset, going by its manifest alone: every data file's
    bytes by its session-relative path, decompressed when the manifest says `stored: "zstd"`
    and as they are when it says `"as_is"` (nothing is guessed from the key)."""
    manifest = json.loads(body(cloud, cloud.archive_bucket, f"{asset}/manifest.json"))
    out: dict[str, bytes] = {}
    for entry in manifest["objects"]:
        data = body(cloud, cloud.archive_bucket, entry["dest_key"])
        relative = entry["dest_key"][len(asset) + 1 :]
        if entry["stored"] == "zstd":
            relative, data = relative.removesuffix(".zst"), decompress(data)
        out[relative] = data
    return out


def session_data(folder: Path) -> dict[str, bytes]:
    """A session folder's data files (in a subfolder) by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "/" in p.relative_to(folder).as_posix()
    }


# The sample session's data files that zstd does not shrink, stored as is: the video (planned
# as a copy: an already compressed format) and a 136-byte text file (zstd's frame makes it 138).
SAMPLE_AS_IS = {"behavior/video.mp4", "ecephys/sync_messages.txt"}


def archived_key(asset: str, relative: str, as_is: set[str] = SAMPLE_AS_IS) -> str:
    """A data file's key in the asset: its plain name when stored as is, else `.zst`."""
    return f"{asset}/{relative}" + ("" if relative in as_is else ".zst")


class Staged:
    """A session staged under a prefix: the staging bucket's versions before its job ran."""

    def __init__(self, cloud: LocalCloud, folder: Path, prefix: str) -> None:
        self.cloud, self.folder, self.prefix = cloud, folder, prefix
        self.execution: dict[str, Any] = {}
        s3 = cloud.client("s3")
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != JOB):
            s3.upload_file(str(path), cloud.staging_bucket, f"{prefix}/{path.relative_to(folder)}")
        self.before = versions(cloud, cloud.staging_bucket, f"{prefix}/")

    def trigger(self, job_body: bytes | None = None) -> str:
        """Upload upload_job.json (its arrival starts the job); returns the job id."""
        key = f"{self.prefix}/{JOB}"
        job_body = job_body if job_body is not None else (self.folder / JOB).read_bytes()
        out = self.cloud.client("s3").put_object(
            Bucket=self.cloud.staging_bucket, Key=key, Body=job_body
        )
        self.before.setdefault(key, []).append((out["VersionId"], out["ETag"]))
        self.before[key].sort()
        return execution_name(self.cloud.staging_bucket, key, out["VersionId"])

    def run(self, job_body: bytes | None = None) -> dict[str, Any]:
        """Trigger and wait for the job's execution; returns the job record."""
        job_id = self.trigger(job_body)
        record = self.cloud.job(job_id)
        assert record is not None, "ingest recorded no job"
        if record.get("execution_arn"):
            self.execution = self.cloud.wait(record["execution_arn"])
        return self.cloud.job(job_id) or {}

    def assert_untouched(self) -> None:
        """Guarantee 1: every staged object version is as uploaded; only the report was added."""
        after = versions(self.cloud, self.cloud.staging_bucket, f"{self.prefix}/")
        report = f"{self.prefix}/{REPORT}"
        assert {k: v for k, v in after.items() if k != report} == self.before
        assert all(etag != "DELETE" for _, etag in after.get(report, []))


def s3_event_body(bucket: str, key: str, version_id: str) -> str:
    """The body S3 puts on the ingest queue for one new object version."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {"key": key, "versionId": version_id},
                    },
                }
            ]
        }
    )


class LocalHttpService:
    """An HTTP service on 127.0.0.1 for the handlers to call: `answer(path)` gives the status
    and the JSON payload of each GET (default: 404); `headers` keeps every request's headers
    (lower-cased names), in order."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, payload = service.answer(self.path)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, path: str) -> tuple[int, Any]:
        """The status and JSON payload for a GET of `path`."""
        return 404, {"message": "Not found"}

    def __enter__(self) -> LocalHttpService:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
