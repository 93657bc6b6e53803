"""`submit` → `local serve` → job COMPLETE, across processes.

The local cloud runs in a subprocess (`upload-processor local serve --port <free>`); this
process submits sessions to it through its endpoint and reads the job records back through
it. Also: a submit interrupted midway resumes and sends only the files that are missing, and
the server stops cleanly on SIGINT.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.aind_support import aind_job
from upload_processor.adapters.jobs import JobStore
from upload_processor.domain.units import MiB
from upload_processor_tools.commands import submit as submit_cli
from upload_processor_tools.local.server import free_port
from upload_processor_tools.sample import build_session
from upload_processor_tools.submit import s3_client

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ("COMPLETE", "FAILED", "REJECTED", "CANCELLED")
ACQ2 = datetime(2025, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=-7)))


def _mounted(*args: str) -> bool:
    """Whether `upload-processor <args>` exists (commands are mounted in cli.py)."""
    from upload_processor_tools import cli

    return CliRunner().invoke(cli.app, [*args, "--help"]).exit_code == 0


def _submit(args: list[str]):
    """Run `upload-processor submit ...` in this process (the mounted command, or the same
    function as a one-command app)."""
    if _mounted("submit"):
        from upload_processor_tools import cli

        return CliRunner().invoke(cli.app, ["submit", *args])
    app = typer.Typer()
    app.command()(submit_cli.submit)
    return CliRunner().invoke(app, args)


@dataclass
class Served:
    """The `local serve` subprocess and what it printed."""

    process: subprocess.Popen
    endpoint: str
    names: dict[str, str]
    stdout: list[str] = field(default_factory=list)
    stderr_path: Path | None = None

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1")

    def job(self, job_id: str) -> dict | None:
        return JobStore(self.client("dynamodb"), self.names["jobs table"]).get(job_id)

    def wait_job(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        record = None
        while time.monotonic() < deadline:
            record = self.job(job_id)
            if record and record.get("status") in TERMINAL:
                return record
            time.sleep(0.25)
        raise AssertionError(f"job {job_id} not finished after {timeout}s: {record}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    if _mounted("local", "serve"):
        command = [sys.executable, "-m", "upload_processor_tools.cli", "local", "serve"]
    else:
        command = [sys.executable, "-m", "upload_processor_tools.local.serve_cli"]
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    stderr_path = tmp_path_factory.mktemp("serve") / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("ready:"):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(90):
            raise AssertionError(
                f"local serve printed no ready line; stdout: {lines}; stderr: {stderr_path.read_text()}"
            )
        names = {}
        for line in lines:
            match = re.match(r"^([a-z][a-z -]*?)\s{2,}(\S+)", line)
            if match:
                names[match.group(1)] = match.group(2)
        endpoint = f"http://127.0.0.1:{port}"
        assert names["endpoint"] == endpoint
        yield Served(process, endpoint, names, lines, stderr_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_serve_prints_the_endpoint_and_the_names(served: Served) -> None:
    for name in (
        "staging bucket",
        "archive bucket",
        "ingest queue",
        "notification topic",
        "jobs table",
        "state machine",
    ):
        assert served.names.get(name), (name, served.stdout)
    text = "\n".join(served.stdout)
    assert f"export AWS_ENDPOINT_URL={served.endpoint}" in text
    assert f"aws --endpoint-url {served.endpoint} s3 ls" in text
    # the AWS CLI's view: the template's buckets are there
    buckets = {b["Name"] for b in served.client("s3").list_buckets()["Buckets"]}
    assert served.names["staging bucket"] in buckets
    # the functions talk to the server: their environment names it
    config = served.client("lambda").get_function_configuration(
        FunctionName="upload-local-IngestFunction"
    )
    assert config["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == served.endpoint


def test_submit_runs_the_job_to_complete_across_processes(served: Served, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.5)
    staging = f"s3://{served.names['staging bucket']}/rig-7/session-1"
    result = _submit([str(session), "--staging", staging, "--endpoint-url", served.endpoint])
    assert result.exit_code == 0, result.output
    job_id = re.search(r"^job id: (\S+)$", result.stdout, re.M).group(1)
    assert f"upload-processor status {job_id}" in result.stdout
    files = sorted(p for p in session.rglob("*") if p.is_file() and p.name != "upload_job.json")
    assert f"uploaded {len(files)} file(s)" in result.stdout
    assert "skipped 0 " in result.stdout

    record = served.wait_job(job_id)
    assert record["status"] == "COMPLETE", (record.get("error"), record.get("report_key"))
    asset = record["asset_name"]
    s3 = served.client("s3")
    keys = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=served.names["archive bucket"], Prefix=f"{asset}/")[
            "Contents"
        ]
    }
    assert {f"{asset}/manifest.json", f"{asset}/metadata.nd.json"} <= keys
    assert f"{asset}/ecephys/continuous.dat.zst" in keys
    # the job file as staged lists every file and its size
    staged_job = json.loads(
        s3.get_object(Bucket=served.names["staging bucket"], Key="rig-7/session-1/upload_job.json")[
            "Body"
        ].read()
    )
    assert staged_job["files"] == [
        {"path": p.relative_to(session).as_posix(), "size": p.stat().st_size} for p in files
    ]
    # the metadata carries the whole file's SHA-256 (what a resumed submit compares)
    head = s3.head_object(
        Bucket=served.names["staging bucket"],
        Key="rig-7/session-1/ecephys/continuous.dat",
        ChecksumMode="ENABLED",
    )
    assert head["ChecksumSHA256"]
    assert len(head["Metadata"]["sha256"]) == 64

    if _mounted("status"):  # `upload-processor status`, built alongside; the record is the check
        from upload_processor_tools import cli

        shown = CliRunner().invoke(
            cli.app, ["status", job_id, "--endpoint-url", served.endpoint, "--json"]
        )
        assert shown.exit_code == 0, shown.output
        assert job_id in shown.stdout and "COMPLETE" in shown.stdout


class _Calls:
    """Counts the S3 writes submit makes; optionally fails the n-th PutObject of a data file,
    once the multipart upload has completed (so that one is staged when the run stops)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.counts: Counter[str] = Counter()
        self.keys: list[str] = []
        self.lock = threading.Lock()
        self.multipart_done = threading.Event()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def factory(endpoint_url: str | None = None, **kwargs: object):
            client = s3_client(endpoint_url, **kwargs)
            for operation in ("PutObject", "CreateMultipartUpload", "UploadPart"):
                client.meta.events.register(f"before-parameter-build.s3.{operation}", self.hook)
            client.meta.events.register(
                "after-call.s3.CompleteMultipartUpload", lambda **_: self.multipart_done.set()
            )
            return client

        monkeypatch.setattr(submit_cli, "s3_client", factory)

    def hook(self, model, params, **_: object) -> None:
        name = model.name
        key = params.get("Key", "")
        if key.endswith("/upload_job.json"):
            self.counts["job"] += 1
            return
        with self.lock:
            self.counts[name] += 1
            if name != "UploadPart":
                self.keys.append(key)
            fail = name == "PutObject" and self.counts[name] == self.fail_at
        if fail:
            self.multipart_done.wait(30)
            raise ConnectionError("injected: the network went away")


def test_an_interrupted_submit_resumes_sending_only_the_missing_files(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = build_session(tmp_path / "s", subject_id="750102", data_mb_per_modality=0.5)
    # a multipart file (parts of 5 MiB), early in the upload order
    big = random.Random(7).randbytes(6 * MiB)
    (session / "behavior" / "aaa_big.bin").write_bytes(big)
    files = sorted(p for p in session.rglob("*") if p.is_file() and p.name != "upload_job.json")
    prefix = "rig-7/session-2"
    staging = f"s3://{served.names['staging bucket']}/{prefix}"
    args = [str(session), "--staging", staging, "--endpoint-url", served.endpoint]
    args += ["--part-size-mib", "5", "--concurrency", "2"]
    s3 = served.client("s3")
    bucket = served.names["staging bucket"]

    first = _Calls(fail_at=3)
    first.install(monkeypatch)
    result = _submit(args)
    assert result.exit_code == 3, result.output
    assert "upload failed" in result.stderr
    assert "injected: the network went away" in result.stderr
    failed_file = re.search(r"upload of (\S+) failed", result.stderr).group(1)
    assert (session / failed_file).is_file()
    assert first.counts["CreateMultipartUpload"] == 1  # the big file went up in parts
    staged = {
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", [])
    }
    assert f"{prefix}/upload_job.json" not in staged  # nothing started
    assert f"{prefix}/behavior/aaa_big.bin" in staged
    assert f"{prefix}/{failed_file}" not in staged
    assert 3 <= len(staged) < len(files)

    second = _Calls()
    second.install(monkeypatch)
    result = _submit(args)
    assert result.exit_code == 0, result.output
    missing = len(files) - len(staged)
    assert f"uploaded {missing} file(s)" in result.stdout
    assert f"skipped {len(staged)} already in staging" in result.stdout
    # only the missing files were sent: no PutObject or multipart upload for a staged one
    assert sorted(second.keys) == sorted(
        f"{prefix}/{p.relative_to(session).as_posix()}"
        for p in files
        if f"{prefix}/{p.relative_to(session).as_posix()}" not in staged
    )
    assert second.counts["CreateMultipartUpload"] == 0
    assert second.counts["job"] == 1
    versions = Counter(
        v["Key"] for v in s3.list_object_versions(Bucket=bucket, Prefix=f"{prefix}/")["Versions"]
    )
    data_versions = {k: n for k, n in versions.items() if not k.endswith("upload_job.json")}
    assert set(data_versions.values()) <= {1}, data_versions  # nothing sent twice

    job_id = re.search(r"^job id: (\S+)$", result.stdout, re.M).group(1)
    record = served.wait_job(job_id)
    assert record["status"] == "COMPLETE", (record.get("error"), record.get("report_key"))
    manifest = json.loads(
        s3.get_object(
            Bucket=served.names["archive bucket"], Key=f"{record['asset_name']}/manifest.json"
        )["Body"].read()
    )
    # random bytes: zstd does not shrink them, so the file is archived as is (the smaller)
    (big_entry,) = [o for o in manifest["objects"] if "behavior/aaa_big.bin" in o["dest_key"]]
    assert big_entry["dest_key"].endswith("behavior/aaa_big.bin")
    assert big_entry["stored"] == "as_is" and big_entry["bytes_out"] == len(big)


def test_submit_fails_with_exit_3_naming_a_missing_bucket(served: Served, tmp_path: Path) -> None:
    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    result = _submit(
        [str(session), "--staging", "s3://no-such-bucket/x", "--endpoint-url", served.endpoint]
    )
    assert result.exit_code == 3, result.output
    assert "no-such-bucket" in result.stderr


# --- issue 14: the README's loop, as written, against `local serve` --------------------------


def _readme_block(heading: str, index: int) -> list[str]:
    """The `index`-th ```bash block under README's `heading`, one command per line."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n")[index + 1].split("```", 1)[0]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """A shell without AWS or upload-processor variables: only what the README sets counts."""
    keep = ("PATH", "HOME", "PYENV_ROOT", "PYTHONPATH", "LANG", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["COLUMNS"] = "80"
    return env


def _sh(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run(
        ["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, f"{script}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    return out


def _job_id(output: str) -> str:
    return re.search(r"^job id: (\S+)$", output, re.M).group(1)


def _walk(
    lines: list[str],
    fill: dict[str, str],
    env: dict[str, str],
    cwd: Path,
    served: Served,
    prelude: str = "",
) -> list[subprocess.CompletedProcess]:
    """Run README lines in order, placeholders filled in; JOB_ID is the job the line before
    submitted, once it has finished."""
    outputs: list[subprocess.CompletedProcess] = []
    for line in lines:
        if "JOB_ID" in line:
            fill["JOB_ID"] = _job_id(outputs[-1].stdout)
            served.wait_job(fill["JOB_ID"])
        for placeholder, value in fill.items():
            line = line.replace(placeholder, value)
        outputs.append(_sh(f"{prelude}\n{line}" if prelude else line, env, cwd))
    return outputs


def test_the_readme_daily_loop_and_local_blocks_work_as_written(
    served: Served, tmp_path: Path
) -> None:
    port = served.endpoint.rsplit(":", 1)[1]
    env = _clean_env(tmp_path)
    staging = served.names["staging bucket"]

    # Daily loop: `configure` names the deployment once (here the local cloud's endpoint for
    # `--stack STACK_NAME`: local mode has no CloudFormation stack); nothing else is set.
    daily = _readme_block("Daily loop", 0)
    assert [line.split()[1] for line in daily] == [
        "configure",
        "validate",
        "submit",
        "status",
        "notifications",
    ]
    session = build_session(
        tmp_path / "daily", acq_datetime=ACQ2 - timedelta(days=1), data_mb_per_modality=0.05
    )
    daily = [
        line.replace("--stack STACK_NAME", f"--endpoint-url {served.endpoint}") for line in daily
    ]
    fill = {"SESSION_DIR": str(session), "STAGING_BUCKET": staging}
    outputs = _walk(daily, fill, env, tmp_path, served)
    assert "checked as deployment" in outputs[1].stderr  # validate used the deployment's checks
    assert "COMPLETE" in outputs[3].stdout
    # at 80 columns nothing is folded mid-id: a longer line is one field and one unbroken value
    wide = [line for line in outputs[3].stdout.splitlines() if len(line) > 80]
    assert all(len(line.split()) <= 2 for line in wide), outputs[3].stdout
    policy = json.loads(outputs[4].stdout)["filter_policy"]
    assert {"end", "fail", "rejected"} <= set(policy["event"])

    # The local block: `eval "$(upload-processor local env ...)"` makes every later line work,
    # the AWS CLI's too, with no saved configuration.
    (tmp_path / "config" / "upload-processor" / "config").unlink()
    local = _readme_block("Daily loop", 1)
    assert local[0].startswith("upload-processor local serve --port 5050")
    prelude = local[1].split("#")[0].replace("5050", port)
    other = build_session(tmp_path / "local", acq_datetime=ACQ2, data_mb_per_modality=0.05)
    fill = {"SESSION_DIR": str(other)}
    out = _walk(local[2:], fill, env, tmp_path, served, prelude=prelude)[-1]
    asset = served.wait_job(fill["JOB_ID"])["asset_name"]
    assert f"{asset}/manifest.json" in out.stdout  # aws s3 ls of the archive


def test_the_readmes_subscription_receives_a_rejection_and_serve_shows_it(
    served: Served, tmp_path: Path
) -> None:
    email = "you@example.org"
    sns, sqs = served.client("sns"), served.client("sqs")
    topic = served.names["notification topic"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    readme = next(s for s in subscriptions if s["Endpoint"] == email)  # the walk above set it
    policy = sns.get_subscription_attributes(SubscriptionArn=readme["SubscriptionArn"])[
        "Attributes"
    ]["FilterPolicy"]
    # moto keeps no mail: an SQS queue with the very filter the README's command set stands in
    url = sqs.create_queue(QueueName="readme-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["QueueArn"],
        Attributes={"FilterPolicy": policy},
    )
    bad = build_session(
        tmp_path / "bad",
        acq_datetime=ACQ2 + timedelta(days=3),
        conflicting_subject_id="750999",
        user_email=email,
        data_mb_per_modality=0.01,
    )
    staging = f"s3://{served.names['staging bucket']}/rig-7/rejected"
    result = _submit(
        [str(bad), "--staging", staging, "--no-validate", "--endpoint-url", served.endpoint]
    )
    assert result.exit_code == 0, result.output
    assert served.wait_job(_job_id(result.stdout))["status"] == "REJECTED"
    events = []
    for _ in range(10):
        for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []):
            events.append(json.loads(message["Body"])["MessageAttributes"]["event"]["Value"])
        if "rejected" in events:
            break
    assert "rejected" in events
    deadline = time.monotonic() + 10
    while not any("alert" in line and "rejected" in line for line in served.stdout):
        assert time.monotonic() < deadline, served.stdout[-20:]
        time.sleep(0.2)


def _cli(*args: str) -> Any:
    from upload_processor_tools import cli

    return CliRunner().invoke(cli.app, list(args))


def test_submit_checks_with_the_deployments_registry_and_job_types(
    served: Served, tmp_path: Path
) -> None:
    endpoint = ["--endpoint-url", served.endpoint]
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ2 + timedelta(days=5), data_mb_per_modality=0.01
    )
    registered = tmp_path / "registered"
    registered.mkdir()
    for name in ("subject.json", "procedures.json"):  # they live in the stack's registry only
        (session / name).rename(registered / name)
    for kind in ("subject", "procedures"):
        put = _cli("registry", "put", kind, str(registered / f"{kind}.json"), *endpoint)
        assert put.exit_code == 0, put.output
    # a job type defined in the deployment only, partial and explicitly based on another
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({"tasks": {"modality_transformation_settings": {}}}))
    assert _cli("job-types", "put", "fast", str(fast), *endpoint).exit_code == 1
    assert (
        _cli("job-types", "put", "fast", str(fast), "--based-on", "default", *endpoint).exit_code
        == 0
    )
    assert "fast" in _cli("job-types", "list", *endpoint).stdout
    staging = f"s3://{served.names['staging bucket']}/rig-7/registered"
    offline = _cli("submit", str(session), "--staging", staging, "--offline", *endpoint)
    assert offline.exit_code == 1  # without the deployment's registry: no subject
    rows = [r.split("│") for r in offline.stdout.splitlines() if r.startswith("│ error")]
    assert rows and all(r[2].strip() not in ("", "-") for r in rows), offline.stdout
    job = json.loads((session / "upload_job.json").read_text())
    (session / "upload_job.json").write_text(json.dumps({**job, "job_type": "fast"}))
    checked = _cli("validate", str(session), *endpoint)
    assert checked.exit_code == 0, checked.output  # the deployment's job type and registry
    result = _cli("submit", str(session), "--staging", staging, *endpoint)
    assert result.exit_code == 0, result.output
    record = served.wait_job(_job_id(result.stdout))
    assert record["status"] == "COMPLETE", (record.get("error"), record.get("report_key"))

    # a rejected upload still names its asset, so `status ASSET` finds it
    job["job_type"] = "no-such-type"
    (session / "upload_job.json").write_text(json.dumps({**job, "subject_id": "750103"}))
    staging = f"s3://{served.names['staging bucket']}/rig-7/unknown-type"
    result = _cli("submit", str(session), "--staging", staging, "--no-validate", *endpoint)
    record = served.wait_job(_job_id(result.stdout))
    assert record["status"] == "REJECTED" and record["asset_name"]
    shown = _cli("status", record["asset_name"], "--json", *endpoint)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["job"]["status"] == "REJECTED"


def test_validate_reads_a_naive_aind_time_in_the_deployments_zone(
    served: Served, tmp_path: Path
) -> None:
    session = build_session(
        tmp_path / "s", acq_datetime=ACQ2 + timedelta(days=9), data_mb_per_modality=0.01
    )
    (session / "upload_job.json").write_bytes(aind_job(session))
    checked = _cli("validate", str(session), "--json", "--endpoint-url", served.endpoint)
    assert checked.exit_code == 0, checked.output  # no --default-tz: the deployment's zone
    assert "default time zone America/Los_Angeles" in checked.stderr
    naive = [i for i in json.loads(checked.stdout)["issues"] if i["rule"] == "job.naive_datetime"]
    assert "America/Los_Angeles" in naive[0]["message"]


def test_serve_stops_cleanly_on_sigint(served: Served) -> None:
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(30) == 0
    assert "stopped" in served.stderr_path.read_text()
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", int(served.endpoint.rsplit(":", 1)[1])), 1)
