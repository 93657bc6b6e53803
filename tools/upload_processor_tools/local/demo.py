"""`upload-processor local demo`: two sessions through the whole flow on the local cloud.

The first is a valid behavior + ecephys session: it ends as an archived, verified asset. It
carries no data_description.json: the pipeline builds it from the job and the project's funding
and investigators, which the demo registers in the local registry first (as a lab registers its
projects once). Once sealed, the asset is catalogued (its catalog record is shown, as
`upload-processor assets show` prints it) and announced: a subscriber's EventBridge rule (an SQS
target) receives `Upload Asset Archived`. The second has acquisitions that disagree on
subject_id: it is rejected (`Upload Job Rejected`) and the user receives an SNS message saying
what to fix. The demo checks both outcomes itself and says if either is off.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from upload_processor_tools.commands.common import human_size, plural, short_id
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.sample import build_session, project_record

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))


@dataclass
class DemoOutcome:
    """What the demo saw; `ok` is the exit status's source."""

    problems: list[str] = field(default_factory=list)
    asset_keys: list[str] = field(default_factory=list)
    rejection: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Both sessions behaved as described."""
        return not self.problems


def _run_session(cloud: LocalCloud, console: Console, folder: Path, prefix: str) -> dict[str, Any]:
    before = {e["executionArn"] for e in cloud.executions()}
    started = time.monotonic()
    keys = cloud.upload_session(folder, prefix)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    console.print(
        f"  uploaded {plural(len(keys), 'file')} ({human_size(size)}), upload_job.json last, to"
    )
    console.print(f"    s3://{cloud.staging_bucket}/{prefix}/", soft_wrap=True)
    new = [e for e in cloud.executions() if e["executionArn"] not in before]
    if len(new) != 1:
        raise RuntimeError(f"expected one execution for {prefix}, found {len(new)}")
    console.print(f"  job {short_id(new[0]['name'])}: its workflow started")
    out = cloud.wait(new[0]["executionArn"])
    console.print(
        f"  workflow done in {time.monotonic() - started:.1f}s (execution {out['status']}; "
        "the job's status follows)"
    )
    record = cloud.job(new[0]["name"]) or {}
    return record


def run_demo(
    console: Console | None = None, data_mb: float = 4.0, workdir: Path | None = None
) -> DemoOutcome:
    """Run both sessions; print progress, the archived asset, the job record and the rejection."""
    console = console or Console()
    outcome = DemoOutcome()
    root = workdir or Path(tempfile.mkdtemp(prefix="upload-demo-"))
    console.rule("[bold]Local cloud")
    with LocalCloud() as cloud:
        inbox = _introduce(cloud, console)
        subscriber = _subscribe_events(cloud, console)
        project = _register_project(cloud, console)
        console.rule("[bold]Session 1: a valid behavior + ecephys session")
        _valid_session(cloud, console, root / "good", data_mb, project, outcome)
        _show_registration(cloud, console, subscriber, outcome)
        console.rule("[bold]Session 2: acquisitions that disagree on subject_id")
        _invalid_session(cloud, console, root / "bad", inbox, outcome)
        _show_rejection_event(cloud, console, subscriber, outcome)
    console.rule("[bold]Outcome")
    if outcome.ok:
        console.print("[green]OK[/green]: one archived asset, one rejection with its reasons")
    for problem in outcome.problems:
        console.print(f"[red]PROBLEM[/red]: {problem}")
    return outcome


def _introduce(cloud: LocalCloud, console: Console) -> str:
    """Say where the buckets are; subscribe the scientist's inbox (filtered to their email)."""
    console.print("  template.yaml deployed on moto:")
    console.print(f"    staging s3://{cloud.staging_bucket}", soft_wrap=True)
    console.print(f"    archive s3://{cloud.archive_bucket}", soft_wrap=True)
    return cloud.subscribe_queue("demo-scientist-inbox", {"user_email": ["scientist@example.org"]})


def _subscribe_events(cloud: LocalCloud, console: Console) -> str:
    """A downstream subscriber: an EventBridge rule with the stack's event pattern, SQS target."""
    from upload_processor.adapters.events import pattern

    queue = cloud.event_queue("demo-subscriber", pattern("upload-processor"))
    console.print("  a subscriber's EventBridge rule (default bus) sends the stack's events to SQS")
    return queue


def _show_registration(
    cloud: LocalCloud, console: Console, subscriber: str, outcome: DemoOutcome
) -> None:
    """The sealed asset's catalog record and the event its subscriber received."""
    from upload_processor.adapters.catalog import CatalogStore
    from upload_processor_tools.commands.assets import render_record

    console.rule("[bold]After the archive: catalog and announcement")
    record = next((cloud.job(e["name"]) for e in cloud.executions()), None) or {}
    asset = record.get("asset_name", "")
    entry = CatalogStore(cloud.client("dynamodb"), cloud.assets_table).get(asset)
    console.print("[bold]Catalog record[/bold] (upload-processor assets show NAME)")
    if entry is None:
        outcome.problems.append(f"no catalog record for {asset}")
    else:
        render_record(console, entry.model_dump(mode="json"))
    received = cloud.events_received(subscriber)
    outcome.events += received
    archived = [e for e in received if e["detail-type"] == "Upload Asset Archived"]
    if len(archived) != 1:
        outcome.problems.append(f"expected one Upload Asset Archived event, got {len(archived)}")
    for event in archived:
        console.print(f"[bold]The subscriber's queue received[/bold] {event['detail-type']!r}")
        console.print_json(json.dumps(event["detail"], default=str))


def _show_rejection_event(
    cloud: LocalCloud, console: Console, subscriber: str, outcome: DemoOutcome
) -> None:
    """The rejection's event, as the subscriber received it."""
    received = cloud.events_received(subscriber)
    outcome.events += received
    types = [e["detail-type"] for e in received]
    if types != ["Upload Job Rejected"]:
        outcome.problems.append(f"expected one Upload Job Rejected event, got {types}")
        return
    detail = received[0]["detail"]
    console.print(
        f"[bold]The subscriber's queue received[/bold] 'Upload Job Rejected' "
        f"({detail['errors']} error(s), report {detail['report_uri']})",
        soft_wrap=True,
    )


def _register_project(cloud: LocalCloud, console: Console) -> dict[str, Any]:
    """The project's funding and investigators, registered as a lab registers them once."""
    project = project_record()
    cloud.registry.put("project", project)
    console.print(
        f"  registered project {project['project_name']!r} (funding, investigators)\n"
        f"    in the registry table {cloud.registry.table_name}"
    )
    return project


def _valid_session(
    cloud: LocalCloud,
    console: Console,
    folder: Path,
    data_mb: float,
    project: dict[str, Any],
    outcome: DemoOutcome,
) -> None:
    """Session 1: archived COMPLETE, with its manifest, metadata and a data_description built
    from the registered project."""
    good = build_session(
        folder, acq_datetime=ACQ, data_mb_per_modality=data_mb, data_description=False
    )
    record = _run_session(cloud, console, good, "rig-7/750101_2025-06-12_15-03-00")
    asset = record.get("asset_name", "")
    outcome.asset_keys = _print_archive(cloud, console, record, asset)
    console.print("[bold]Job record[/bold]")
    console.print_json(json.dumps(record, default=str))
    if record.get("status") != "COMPLETE":
        outcome.problems.append(f"session 1 ended {record.get('status')}, expected COMPLETE")
    if (
        f"{asset}/manifest.json" not in outcome.asset_keys
        or f"{asset}/metadata.nd.json" not in outcome.asset_keys
    ):
        outcome.problems.append("session 1's asset lacks manifest.json or metadata.nd.json")
    elif record.get("status") == "COMPLETE":
        _check_data_description(cloud, console, asset, project, outcome)


def _print_archive(
    cloud: LocalCloud, console: Console, record: dict[str, Any], asset: str
) -> list[str]:
    """The job's status and the asset's objects as a table; returns their keys."""
    listing = (
        cloud.client("s3")
        .list_objects_v2(Bucket=cloud.archive_bucket, Prefix=f"{asset}/")
        .get("Contents", [])
    )
    console.print(f"  job status: [bold]{record.get('status')}[/bold]; archived in")
    console.print(f"    s3://{cloud.archive_bucket}/{asset}/", soft_wrap=True)
    table = Table()
    table.add_column("key")
    table.add_column("bytes", justify="right")
    for obj in listing:
        table.add_row(obj["Key"][len(asset) + 1 :], f"{obj['Size']:,}")
    console.print(table)
    return [o["Key"] for o in listing]


def _check_data_description(
    cloud: LocalCloud,
    console: Console,
    asset: str,
    project: dict[str, Any],
    outcome: DemoOutcome,
) -> None:
    """The archived data_description carries the registered funding and investigators."""
    described = json.loads(
        cloud.client("s3")
        .get_object(Bucket=cloud.archive_bucket, Key=f"{asset}/data_description.json")["Body"]
        .read()
    )
    console.print(
        f"  data_description: funding {[f['funder']['name'] for f in described['funding_source']]}, "
        f"investigators {[p['name'] for p in described['investigators']]} (from the registry)"
    )
    if (
        described.get("funding_source") != project["funding_source"]
        or described.get("investigators") != project["investigators"]
    ):
        outcome.problems.append(
            "session 1's data_description lacks the registered funding and investigators"
        )


def _invalid_session(
    cloud: LocalCloud, console: Console, folder: Path, inbox: str, outcome: DemoOutcome
) -> None:
    """Session 2: REJECTED, nothing archived, and the scientist told why (SNS)."""
    bad = build_session(
        folder,
        subject_id="750102",
        acq_datetime=ACQ + timedelta(days=1),
        data_mb_per_modality=0.5,
        conflicting_subject_id="750999",
    )
    record = _run_session(cloud, console, bad, "rig-7/750102_2025-06-13_15-03-00")
    console.print(
        f"  job status: [bold]{record.get('status')}[/bold] (checks found errors; nothing archived)"
    )
    messages = [
        m
        for m in cloud.messages(inbox)
        if m.get("MessageAttributes", {}).get("event", {}).get("Value") == "rejected"
    ]
    if record.get("status") != "REJECTED":
        outcome.problems.append(f"session 2 ended {record.get('status')}, expected REJECTED")
    if not messages:
        outcome.problems.append("no rejection message reached the scientist's subscription")
    else:
        _print_rejection(console, messages[-1])
        outcome.rejection = messages[-1]
    archived = (
        cloud.client("s3")
        .list_objects_v2(Bucket=cloud.archive_bucket, Prefix="750102")
        .get("KeyCount", 0)
    )
    if archived:
        outcome.problems.append("the rejected session put objects in the archive")


def _print_rejection(console: Console, message: dict[str, Any]) -> None:
    """The alert as the scientist reads it: subject and text (its JSON details left out)."""
    console.print("[bold]The scientist receives (SNS, filtered to their email):[/bold]")
    console.print(f"  Subject: {message['Subject']}")
    body = message["Message"].split("\n--- details (JSON) ---", 1)[0]
    console.print("  " + body.replace("\n", "\n  "), markup=False, highlight=False)
