"""`flow`: the whole local flow for a session of many small files and one large file.

A session is built with ``upload_processor_tools.sample.build_session`` (metadata and a few data
files), plus ``small_files`` small data files (three in four compressible CSV logs that are
compressed, one in four PNG frames that are copied as they are) and one large Neuropixels-like
``ecephys/continuous_probe.dat`` (a repeating 8 MiB block, written as it is generated).

On the local cloud (``LocalCloud``: template.yaml in moto, handlers in-process, the real ASL
in moto's interpreter, default template parameters) the data is staged first (not timed: that
is the user's upload), then ``upload_job.json`` is uploaded and the clock runs until the
execution ends: the total wall time, from the trigger to SUCCEEDED.

The baseline is the per-file work: after the flow, ``transfer()`` runs again on every object
the asset's manifest lists, planned by ``plan.plan_item`` exactly as GatherMetadata plans it,
directly against the same moto S3 (into a bench bucket), each call timed on its own. The
orchestration overhead is total wall time / the sum of those per-file times. Files/s and
MiB/s are given for both.

The time spent inside each Lambda handler is recorded too (local mode runs them in-process,
one at a time, under the runner's lock), so the overhead can be split into what the handlers
do around the transfers (gather, per-batch results, finalize and verify) and what is left
(moto's Step Functions interpreter, polling).
"""

from __future__ import annotations

import contextlib
import json
import random
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.neuropixels import FRAME, neuropixels_like
from upload_processor.domain.units import MiB

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
PREFIX = "rig-7/bench-flow"
DIRECT_BUCKET = "bench-flow-direct"
LARGE_NAME = "ecephys/continuous_probe.dat"
BLOCK = (8 * MiB // FRAME) * FRAME


def _csv(rng: random.Random, size: int) -> bytes:
    """A trial log: compressible, not trivially."""
    lines, total, t = [], 0, rng.uniform(0, 10)
    while total < size:
        t += rng.expovariate(4.0)
        line = f"{t:.4f},{rng.randrange(8)},{rng.choice('LRN')},{rng.gauss(0, 1):.5f}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def build(folder: Path, *, small_files: int, large_bytes: int) -> dict[str, Any]:
    """Write the session (without upload_job.json) and the job file beside it."""
    from upload_processor_tools.sample import build_session

    session = build_session(
        folder / "session", acq_datetime=ACQ, data_mb_per_modality=0.05, write_job=False
    )
    rng = random.Random(7)
    logs, frames = session / "behavior" / "trials", session / "behavior" / "frames"
    logs.mkdir(parents=True, exist_ok=True)
    frames.mkdir(parents=True, exist_ok=True)
    small_bytes = 0
    for i in range(small_files):
        size = rng.randint(1024, 32 * 1024)
        if i % 4 == 3:
            data = rng.randbytes(size)
            (frames / f"frame_{i:05d}.png").write_bytes(data)
        else:
            data = _csv(rng, size)
            (logs / f"trial_{i:05d}.csv").write_bytes(data)
        small_bytes += len(data)
    block = neuropixels_like(min(BLOCK, large_bytes), seed=3)
    with (session / LARGE_NAME).open("wb") as out:
        written = 0
        while written < large_bytes:
            chunk = block[: large_bytes - written]
            out.write(chunk)
            written += len(chunk)
    # The job file comes from a session of its own; the folder uploaded last holds only it.
    job_source = build_session(folder / "job-source", acq_datetime=ACQ, data_mb_per_modality=0)
    job = folder / "job"
    job.mkdir()
    (job / "upload_job.json").write_bytes((job_source / "upload_job.json").read_bytes())
    return {"session": session, "job": job, "small_bytes": small_bytes}


@contextlib.contextmanager
def _timed_handlers(runner: Any, times: dict[str, list[float]]) -> Iterator[None]:
    """Record the seconds each in-process Lambda invocation spends in its handler.

    The runner serialises invocations under its (reentrant) lock; the clock starts once this
    invocation holds it, so waiting for another invocation is not counted as work.
    """
    original = runner.invoke

    def invoke(name: str, *args: Any, **kwargs: Any) -> Any:  # whatever the runner takes
        with runner.lock:
            start = time.perf_counter()
            try:
                return original(name, *args, **kwargs)
            finally:
                times.setdefault(name, []).append(time.perf_counter() - start)

    runner.invoke = invoke
    try:
        yield
    finally:
        del runner.invoke  # back to the class's method


def _staged(s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj
    return out


def _direct(cloud: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """transfer() on every object of the manifest, directly against the same moto S3."""
    from upload_processor.adapters.aws import client
    from upload_processor.domain.plan import plan_item
    from upload_processor.pipeline.transfer import transfer

    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=DIRECT_BUCKET)
    staged = _staged(s3, cloud.staging_bucket)
    worker_s3 = client("s3")  # what the Transfer function uses
    per_file: list[float] = []
    actions: dict[str, int] = {}
    large_s = 0.0
    bytes_in = bytes_out = 0
    for entry in manifest["objects"]:
        head = staged[entry["source_key"]]
        item = plan_item(
            prefix=PREFIX,
            key=entry["source_key"],
            size=head["Size"],
            etag=head["ETag"],
            asset_name=manifest["asset_name"],
        )
        if item.dest_key != entry["dest_key"]:
            raise AssertionError(
                f"the benchmark's plan ({item.dest_key}) is not the flow's ({entry['dest_key']})"
            )
        start = time.perf_counter()
        result = transfer(
            worker_s3, item, source_bucket=cloud.staging_bucket, dest_bucket=DIRECT_BUCKET
        )
        seconds = time.perf_counter() - start
        per_file.append(seconds)
        if entry["source_key"].endswith(LARGE_NAME):
            large_s = seconds
        actions[item.action] = actions.get(item.action, 0) + 1
        bytes_in += result.bytes_in
        bytes_out += result.bytes_out
    return {
        "files": len(per_file),
        "seconds": sum(per_file),
        "large_file_s": large_s,
        "small_files_s": sum(per_file) - large_s,
        "actions": actions,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
    }


def run(*, small_files: int, large_mb: float) -> dict[str, Any]:
    from upload_processor_tools.local import LocalCloud
    from upload_processor_tools.local.seam import RUNNER

    large_bytes = int(large_mb * MiB)
    handler_times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-flow-") as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        start = time.perf_counter()
        built = build(Path(tmp), small_files=small_files, large_bytes=large_bytes)
        build_s = time.perf_counter() - start

        start = time.perf_counter()
        with LocalCloud() as cloud:
            deploy_s = time.perf_counter() - start
            names = {fn.name: logical for logical, fn in cloud.deployment.functions.items()}

            start = time.perf_counter()
            cloud.upload_session(built["session"], PREFIX)
            staging_s = time.perf_counter() - start

            with _timed_handlers(RUNNER, handler_times):
                start = time.perf_counter()
                cloud.upload_session(built["job"], PREFIX)
                deadline = time.monotonic() + 60
                while not (executions := cloud.executions()):
                    if time.monotonic() > deadline:
                        raise RuntimeError("uploading upload_job.json started no execution")
                    time.sleep(0.05)
                (execution,) = executions
                described = cloud.wait(execution["executionArn"], timeout=3600)
                total_s = time.perf_counter() - start
            if described["status"] != "SUCCEEDED":
                raise RuntimeError(
                    f"the flow ended {described['status']}: {described.get('cause', '')[:2000]}"
                )
            record = cloud.job(execution["name"]) or {}
            asset = record["asset_name"]
            manifest = json.loads(
                cloud.client("s3")
                .get_object(Bucket=cloud.archive_bucket, Key=f"{asset}/manifest.json")["Body"]
                .read()
            )
            direct = _direct(cloud, manifest)

    files = len(manifest["objects"])
    bytes_in = int(manifest["counts"]["bytes_in"])
    handlers = {
        names.get(name, name): {"calls": len(values), "seconds": sum(values)}
        for name, values in sorted(handler_times.items())
    }
    in_handlers = sum(h["seconds"] for h in handlers.values())
    return {
        "small_files": small_files,
        "large_mb": large_bytes / MiB,
        "small_mb": built["small_bytes"] / MiB,
        "files": files,
        "bytes_in": bytes_in,
        "bytes_out": int(manifest["counts"]["bytes_out"]),
        "job_status": record.get("status"),
        "execution_status": described["status"],
        "build_s": build_s,
        "deploy_s": deploy_s,
        "staging_s": staging_s,
        "total_s": total_s,
        "files_per_s": files / total_s,
        "mb_per_s": bytes_in / MiB / total_s,
        "per_file_work_s": direct["seconds"],
        "direct": direct,
        "direct_files_per_s": direct["files"] / direct["seconds"],
        "direct_mb_per_s": direct["bytes_in"] / MiB / direct["seconds"],
        "overhead_ratio": total_s / direct["seconds"],
        "handlers": handlers,
        "in_handlers_s": in_handlers,
        "outside_handlers_s": total_s - in_handlers,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool | None]]:
    r = result
    what = f"{r['files']} objects, {r['bytes_in'] / MiB:.0f} MiB"
    return [
        (
            f"wall time vs sum of per-file transfer(), {what}",
            f"{r['total_s']:.1f} s",
            f"{r['per_file_work_s']:.1f} s",
            f"{r['overhead_ratio']:.2f}",
            "report",
            None,
        ),
        (
            "  files/s (flow vs direct transfer())",
            f"{r['files_per_s']:.0f}",
            f"{r['direct_files_per_s']:.0f}",
            f"{r['files_per_s'] / r['direct_files_per_s']:.2f}",
            "",
            None,
        ),
        (
            "  MiB/s (flow vs direct transfer())",
            f"{r['mb_per_s']:.1f}",
            f"{r['direct_mb_per_s']:.1f}",
            f"{r['mb_per_s'] / r['direct_mb_per_s']:.2f}",
            "",
            None,
        ),
    ]


def notes(result: dict[str, Any]) -> list[str]:
    r = result
    handlers = ", ".join(
        f"{name} {h['seconds']:.1f} s / {h['calls']} call(s)" for name, h in r["handlers"].items()
    )
    d = r["direct"]
    return [
        f"flow: {r['files']} objects ({r['small_files']} small files of "
        f"{r['small_mb']:.1f} MiB, one of {r['large_mb']:g} MiB, the sample session's data), "
        f"{r['bytes_in'] / MiB:.1f} MiB in, "
        f"{r['bytes_out'] / MiB:.1f} MiB out; job {r['job_status']}; staging upload "
        f"{r['staging_s']:.1f} s and deploy {r['deploy_s']:.1f} s not counted.",
        f"flow: time inside the handlers (serialised in-process): {handlers}; outside them "
        f"(moto's interpreter, polling) {r['outside_handlers_s']:.1f} s.",
        f"flow: direct transfer(): large file {d['large_file_s']:.1f} s, "
        f"{d['files'] - 1} small files {d['small_files_s']:.1f} s "
        f"({', '.join(f'{a} {n}' for a, n in sorted(d['actions'].items()))}).",
    ]
