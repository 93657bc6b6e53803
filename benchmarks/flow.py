"""`flow`: the whole local flow against a plain boto3 loop doing the same work.

Each round builds a session with ``upload_processor_tools.sample.build_session`` (metadata
and a few data files), plus ``small_files`` small data files (three in four compressible CSV
logs, one in four incompressible PNG frames) and one large Neuropixels-like
``ecephys/continuous_probe.dat`` (a repeating 8 MiB block), and stages it under a prefix of
its own on the local cloud (``LocalCloud``: template.yaml in moto, handlers in-process, the
real ASL in moto's interpreter, default template parameters). Staging is the user's upload
and is not timed. Then, interleaved, round after round:

- the baseline, what a user would write instead: list the staged prefix, and for every
  object ``get_object``, compress it with zstandard at level 3 and ``put_object`` it (or
  ``upload_fileobj`` a streaming compressor above 8 MiB), or ``copy_object`` it server-side
  where the project's plan copies rather than compresses; into a bucket of its own, on the
  same moto S3, timed from the first request to the last;
- the project: ``upload_job.json`` is uploaded and the clock runs until the execution ends
  SUCCEEDED.

Goal: the flow's median wall time <= 1.5x the loop's. The time spent inside each Lambda
handler is recorded too (local mode runs them in-process, one at a time, under the runner's
lock), so the overhead can be split into what the handlers do around the transfers (gather,
per-batch results, finalize and verify) and what is left (moto's Step Functions
interpreter, polling).
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

from benchmarks import Row
from benchmarks.neuropixels import FRAME, neuropixels_like
from benchmarks.timing import fmt, spread
from upload_processor.domain.units import MiB

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
PREFIX = "rig-7/bench-flow"
RAW_BUCKET = "bench-flow-raw-loop"
GOAL = 1.5  # the flow's wall time <= 1.5x the raw loop's
STREAM_ABOVE = 8 * MiB  # the raw loop streams objects above this (upload_fileobj)
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


def build(
    folder: Path, *, small_files: int, large_bytes: int, acq: datetime = ACQ
) -> dict[str, Any]:
    """Write the session (without upload_job.json) and the job file beside it; `acq` (one per
    round) makes the asset's name, which the archive accepts once."""
    from upload_processor_tools.sample import build_session

    session = build_session(
        folder / "session", acq_datetime=acq, data_mb_per_modality=0.05, write_job=False
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
    job_source = build_session(folder / "job-source", acq_datetime=acq, data_mb_per_modality=0)
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


def _staged(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    return [obj for page in pages for obj in page.get("Contents", [])]


def raw_loop(s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """The baseline: list, then GET / compress / PUT (or CopyObject) every staged object."""
    import zstandard

    from upload_processor.domain.plan import plan_item

    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
    start = time.perf_counter()
    actions: dict[str, int] = {}
    bytes_in = bytes_out = 0
    for obj in _staged(s3, bucket, prefix):
        key = obj["Key"]
        action = plan_item(
            prefix=prefix, key=key, size=obj["Size"], etag=obj["ETag"], asset_name="raw"
        ).action
        actions[action] = actions.get(action, 0) + 1
        bytes_in += obj["Size"]
        if action == "copy":
            s3.copy_object(Bucket=RAW_BUCKET, Key=key, CopySource={"Bucket": bucket, "Key": key})
            bytes_out += obj["Size"]
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        if obj["Size"] > STREAM_ABOVE:
            s3.upload_fileobj(compressor.stream_reader(body, size=obj["Size"]), RAW_BUCKET, key)
            bytes_out += s3.head_object(Bucket=RAW_BUCKET, Key=key)["ContentLength"]
        else:
            data = compressor.compress(body.read())
            s3.put_object(Bucket=RAW_BUCKET, Key=key, Body=data)
            bytes_out += len(data)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "files": sum(actions.values()),
        "actions": actions,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
    }


def _flow(cloud: Any, job: Path, prefix: str, seen: set[str]) -> dict[str, Any]:
    """Upload the job file, wait for its execution; seconds from the upload to its end."""
    start = time.perf_counter()
    cloud.upload_session(job, prefix)
    deadline = time.monotonic() + 60
    while not (new := [e for e in cloud.executions() if e["executionArn"] not in seen]):
        if time.monotonic() > deadline:
            raise RuntimeError("uploading upload_job.json started no execution")
        time.sleep(0.05)
    (execution,) = new
    seen.add(execution["executionArn"])
    described = cloud.wait(execution["executionArn"], timeout=3600)
    seconds = time.perf_counter() - start
    if described["status"] != "SUCCEEDED":
        raise RuntimeError(
            f"the flow ended {described['status']}: {described.get('cause', '')[:2000]}"
        )
    record = cloud.job(execution["name"]) or {}
    manifest = json.loads(
        cloud.client("s3")
        .get_object(Bucket=cloud.archive_bucket, Key=f"{record['asset_name']}/manifest.json")[
            "Body"
        ]
        .read()
    )
    return {
        "seconds": seconds,
        "status": described["status"],
        "job_status": record.get("status"),
        "files": len(manifest["objects"]),
        "bytes_in": int(manifest["counts"]["bytes_in"]),
        "bytes_out": int(manifest["counts"]["bytes_out"]),
    }


def run(*, small_files: int, large_mb: float, repeat: int) -> dict[str, Any]:
    from upload_processor_tools.local import LocalCloud
    from upload_processor_tools.local.seam import RUNNER

    large_bytes = int(large_mb * MiB)
    handler_times: dict[str, list[float]] = {}
    flows, loops, seen = [], [], set()
    with tempfile.TemporaryDirectory(prefix="bench-flow-") as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        start = time.perf_counter()
        with LocalCloud() as cloud:
            deploy_s = time.perf_counter() - start
            names = {fn.name: logical for logical, fn in cloud.deployment.functions.items()}
            s3 = cloud.client("s3")
            s3.create_bucket(Bucket=RAW_BUCKET)
            for round_ in range(repeat):
                prefix = f"{PREFIX}-{round_}"
                built = build(
                    Path(tmp) / str(round_),
                    small_files=small_files,
                    large_bytes=large_bytes,
                    acq=ACQ + timedelta(minutes=round_),
                )
                cloud.upload_session(built["session"], prefix)
                loops.append(raw_loop(s3, cloud.staging_bucket, prefix))
                with _timed_handlers(RUNNER, handler_times):
                    flows.append(_flow(cloud, built["job"], prefix, seen))
    flow_s = spread([f["seconds"] for f in flows])
    loop_s = spread([loop["seconds"] for loop in loops])
    handlers = {
        names.get(name, name): {"calls": len(values), "seconds": sum(values) / repeat}
        for name, values in sorted(handler_times.items())
    }
    in_handlers = sum(h["seconds"] for h in handlers.values())
    last_flow, last_loop = flows[-1], loops[-1]
    return {
        "small_files": small_files,
        "large_mb": large_bytes / MiB,
        "small_mb": built["small_bytes"] / MiB,
        "repeat": repeat,
        "files": last_flow["files"],
        "bytes_in": last_flow["bytes_in"],
        "bytes_out": last_flow["bytes_out"],
        "job_status": last_flow["job_status"],
        "execution_status": last_flow["status"],
        "deploy_s": deploy_s,
        "flow_s": flow_s,
        "raw_loop_s": loop_s,
        "raw_loop": last_loop,
        "ratio": flow_s["median"] / loop_s["median"],
        "goal": GOAL,
        "handlers_per_round": handlers,
        "in_handlers_s": in_handlers,
        "outside_handlers_s": sum(flow_s["values"]) / repeat - in_handlers,
    }


def rows(result: dict[str, Any]) -> list[Row]:
    r = result
    what = f"{r['files']} objects, {r['bytes_in'] / MiB:.0f} MiB"
    return [
        Row(
            f"whole local flow, {what}: wall time vs a boto3 GET/compress/PUT loop",
            fmt(r["raw_loop_s"], "s", digits=1),
            fmt(r["flow_s"], "s", digits=1),
            f"{r['ratio']:.2f}",
            f"<= {GOAL}",
            r["ratio"] <= GOAL,
        )
    ]


def notes(result: dict[str, Any]) -> list[str]:
    r = result
    handlers = ", ".join(
        f"{name} {h['seconds']:.1f} s ({h['calls']} calls in all)"
        for name, h in r["handlers_per_round"].items()
    )
    loop = r["raw_loop"]
    return [
        f"flow: {r['files']} objects ({r['small_files']} small files of "
        f"{r['small_mb']:.1f} MiB, one of {r['large_mb']:g} MiB, the sample session's data), "
        f"{r['bytes_in'] / MiB:.1f} MiB in, {r['bytes_out'] / MiB:.1f} MiB out; job "
        f"{r['job_status']}; {r['repeat']} interleaved rounds; deploy {r['deploy_s']:.1f} s and "
        "staging uploads not counted.",
        f"flow: per round inside the handlers (serialised in-process): {handlers}; outside "
        f"them (moto's interpreter, polling) {r['outside_handlers_s']:.1f} s.",
        f"flow: the raw loop: {loop['files']} objects, every staged one (the flow's, and the "
        "metadata files it validates and rewrites) "
        f"({', '.join(f'{a} {n}' for a, n in sorted(loop['actions'].items()))}), "
        f"{loop['bytes_out'] / MiB:.1f} MiB out.",
    ]
