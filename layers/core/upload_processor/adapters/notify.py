"""SNS notifications: one topic, message attributes for filter policies, SNS limits respected.

Every message carries `event` and `job_type` (and `user_email`, `asset_name` when known), so a
subscription's filter policy delivers each user only their own alerts. The body is plain text a
person reads, followed by the same facts as JSON for programs.

`audience` (a String.Array attribute) says who a message is for: `user` when the job's
`email_notification_types` ask for the event (`rejected` always), `operator` for every `fail`
and for every message of a job without a usable `user_email`. A user subscribes with
`{"user_email": [their address], "audience": ["user"]}`, an operator with
`{"audience": ["operator"]}` (`upload-processor notifications subscribe` writes these). A message
with no audience is not published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from upload_processor.domain.report import Report

Event = Literal["begin", "end", "fail", "retry", "rejected"]

MAX_SUBJECT = 99
MAX_MESSAGE_BYTES = 256 * 1024 - 2048  # leave room for the attributes


@dataclass
class Notification:
    """A message ready to publish."""

    event: Event
    subject: str
    body: str
    attributes: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)


def wants(job: dict[str, Any], event: Event) -> bool:
    """Whether the job's email_notification_types ask for this event (rejected: always)."""
    if event == "rejected":
        return True
    requested = set(job.get("email_notification_types") or ["fail"])
    return "all" in requested or event in requested


def _subject(text: str) -> str:
    # SNS: no line breaks or control characters (an S3 key may hold them), under 100 chars
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1] + "…"


def usable_email(value: Any) -> str | None:
    """The address, when it can receive mail (one @, a dotted domain, no spaces)."""
    if not isinstance(value, str) or value.count("@") != 1 or any(c.isspace() for c in value):
        return None
    local, domain = value.split("@")
    return value if local and "." in domain.strip(".") else None


def audience(job: dict[str, Any], event: Event) -> list[str]:
    """Who a message is for: the user (if they asked for it), operators (fail; no usable email)."""
    out = []
    has_user = usable_email(job.get("user_email")) is not None
    if has_user and wants(job, event):
        out.append("user")
    if event == "fail" or (not has_user and wants(job, event)):
        out.append("operator")
    return out


def _attributes(event: Event, job: dict[str, Any], asset_name: str | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "event": event,
        "job_type": str(job.get("job_type") or "unknown"),
        "user_email": usable_email(job.get("user_email")) or "",
        "asset_name": str(asset_name or ""),
        "audience": audience(job, event),
    }
    return {k: v for k, v in attrs.items() if v}  # SNS refuses empty attribute values


def rejection(
    *,
    job: dict[str, Any],
    report: Report,
    staging_uri: str,
    report_uri: str | None,
) -> Notification:
    """What a scientist receives when the session is rejected: each problem and what to do."""
    name = report.asset_name or staging_uri
    count = len(report.errors)
    subject = _subject(f"Upload rejected: {name} — {count} problem{'s' if count != 1 else ''}")
    lines = [
        f"Your upload {name} was rejected before anything was archived.",
        "",
        "Problems to fix:",
    ]
    for issue in report.errors:
        where = issue.file or "-"
        if issue.field:
            where += f", field {issue.field}"
        lines.append(f"  * {where}: {issue.message}")
    if report.warnings:
        lines += ["", "Warnings (not blocking):"]
        lines += [f"  * {w.file or '-'}: {w.message}" for w in report.warnings[:20]]
    lines += [
        "",
        f"Your staged data is untouched at {staging_uri}.",
    ]
    if report_uri:
        lines.append(f"The full report is at {report_uri}.")
    lines += [
        "",
        "What to do next: fix the files named above in the staging folder, then upload "
        "upload_job.json again; that starts a new job.",
    ]
    details = {
        "event": "rejected",
        "staging": staging_uri,
        "report_uri": report_uri,
        "report": report.model_dump(mode="json"),
    }
    return Notification(
        "rejected",
        subject,
        "\n".join(lines),
        _attributes("rejected", job, report.asset_name),
        details,
    )


RETRY_ADVICE = {
    "AssetExistsError": "not until the conflict is resolved: the archive already holds this asset",
    "FilesMissingError": "yes, once the missing files are uploaded: upload upload_job.json again",
    "ConfigurationError": "not until an operator fixes the deployment's configuration",
    # the staged data changed, so the generic "staged data was not changed" would be wrong
    "SourceChangedError": "yes, once the upload of the changed file is complete: nothing of "
    "it was archived, and a retry archives its new version (upload-processor retry JOB_ID)",
}


def failure(
    *,
    job: dict[str, Any],
    job_id: str,
    asset_name: str | None,
    staging_uri: str,
    error: dict[str, Any],
    step: str | None = None,
) -> Notification:
    """What an operator (and the user, if asked) receives when a job fails: the failed step,
    the error, and whether a retry is safe."""
    err_name = str(error.get("Error") or error.get("error") or "Error")
    cause = cause_text(error.get("Cause") or error.get("cause") or "")
    transient = err_name in ("TransientError", "MetadataServiceError") or err_name.startswith(
        ("Lambda.", "States.Timeout")
    )
    if err_name in RETRY_ADVICE:
        advice = RETRY_ADVICE[err_name].replace("JOB_ID", job_id)
    elif transient:
        advice = f"yes: the fault looks transient; run `upload-processor retry {job_id}`"
    else:
        advice = (
            "yes, once the cause above is fixed: staged data was not changed and the archive "
            f"keeps no partial object; run `upload-processor retry {job_id}`"
        )
    subject = _subject(f"Upload failed: {asset_name or job_id} — {err_name}")
    lines = [
        f"Upload job {job_id} failed" + (f" in step {step}." if step else "."),
        "",
        f"Error: {err_name}",
        f"Cause: {cause}",
        "",
        f"Staged data is untouched at {staging_uri}; no asset from this job was sealed in the archive "
        "(an asset is complete only with its manifest.json).",
        f"Is a retry safe? {advice}.",
    ]
    details = {
        "event": "fail",
        "job_id": job_id,
        "step": step,
        "error": err_name,
        "cause": cause,
        "retry": advice,
        "staging": staging_uri,
    }
    return Notification(
        "fail", subject, "\n".join(lines), _attributes("fail", job, asset_name), details
    )


def beginning(
    *, job: dict[str, Any], job_id: str, asset_name: str, staging_uri: str
) -> Notification:
    """The job has started processing."""
    subject = _subject(f"Upload started: {asset_name}")
    body = (
        f"Your upload {asset_name} (job {job_id}) passed its metadata checks and is being archived "
        f"from {staging_uri}.\nFollow it with: upload-processor status {job_id}"
    )
    details = {"event": "begin", "job_id": job_id, "asset_name": asset_name, "staging": staging_uri}
    return Notification("begin", subject, body, _attributes("begin", job, asset_name), details)


def retrying(
    *, job: dict[str, Any], job_id: str, asset_name: str, previous_job_id: str, staging_uri: str
) -> Notification:
    """A new job for an asset whose previous job failed."""
    subject = _subject(f"Upload retried: {asset_name}")
    body = (
        f"A new job {job_id} started for {asset_name}, whose previous job {previous_job_id} "
        f"failed. Staged data: {staging_uri}.\nFollow it with: upload-processor status {job_id}"
    )
    details = {
        "event": "retry",
        "job_id": job_id,
        "previous_job_id": previous_job_id,
        "asset_name": asset_name,
        "staging": staging_uri,
    }
    return Notification("retry", subject, body, _attributes("retry", job, asset_name), details)


def completion(
    *,
    job: dict[str, Any],
    asset_name: str,
    archive_uri: str,
    counts: dict[str, int],
    registration: str | None = None,
    steps: dict[str, str] | None = None,
) -> Notification:
    """The end-of-job message: where the asset is, what it holds and, once the registration
    steps ran, their outcome (`registration`: the summary line, `steps`: one line per step)."""
    subject = _subject(f"Upload complete: {asset_name}")
    lines = [
        f"Your upload {asset_name} is archived and verified at {archive_uri}.",
        f"Files: {counts.get('files', 0)}, bytes in: {counts.get('bytes_in', 0)}, "
        f"bytes out: {counts.get('bytes_out', 0)}.",
    ]
    details: dict[str, Any] = {"event": "end", "archive": archive_uri, "counts": counts}
    if registration is not None:
        lines.append(f"Registration: {registration}")
        lines += [f"  {name}: {line}" for name, line in (steps or {}).items()]
        if registration.startswith("FAILED"):
            lines.append(
                "The asset is archived and intact; only the registration steps above failed "
                "(`upload-processor status JOB` shows them)."
            )
        details["registration"] = registration
        details["registration_steps"] = steps or {}
    return Notification(
        "end", subject, "\n".join(lines), _attributes("end", job, asset_name), details
    )


def cause_text(cause: str) -> str:
    """A Lambda error's Cause is a JSON object: keep its message, not its stack trace."""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause)[:2000]
    if isinstance(parsed, dict):
        if parsed.get("errorMessage"):
            return str(parsed["errorMessage"])[:2000]
        # no message (a bare `raise KeyError`, say): name the error, never its stack trace
        rest = {k: v for k, v in parsed.items() if k not in ("stackTrace", "trace")}
        return str(rest.get("errorType") or rest)[:2000]
    return str(parsed)[:2000]


def render(notification: Notification) -> str:
    """The message body: the text, then the JSON rendering, within SNS's size limit."""
    payload = json.dumps(notification.details, indent=2, default=str)
    message = f"{notification.body}\n\n--- details (JSON) ---\n{payload}\n"
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        message = notification.body.encode()[: MAX_MESSAGE_BYTES - 200].decode(errors="ignore")
        message += "\n\n(details truncated: see the full report linked above)\n"
    return message


def publish(sns: Any, topic_arn: str, notification: Notification) -> str | None:
    """Publish to the topic; returns the SNS message id (None: nobody is to receive it)."""
    if not notification.attributes.get("audience"):
        return None
    attributes = {}
    for key, value in notification.attributes.items():
        if isinstance(value, list):
            attributes[key] = {"DataType": "String.Array", "StringValue": json.dumps(value)}
        else:
            attributes[key] = {"DataType": "String", "StringValue": value}
    out = sns.publish(
        TopicArn=topic_arn,
        Subject=notification.subject,
        Message=render(notification),
        MessageAttributes=attributes,
    )
    return out["MessageId"]


ALWAYS_SENT = ("fail", "rejected")  # what a subscription receives whatever events it names


def subscription_filter(email: str | None, events: list[str] | None = None) -> dict[str, Any]:
    """The filter policy of a user's subscription (or, with no email, an operator's).

    A filter on events always keeps `fail` and `rejected`: they are the alerts that ask the
    user to act, so no choice of events may silence them.
    """
    policy: dict[str, Any] = {"audience": ["user"]} if email else {"audience": ["operator"]}
    if email:
        policy["user_email"] = [email]
    if events:
        policy["event"] = sorted(set(events) | set(ALWAYS_SENT))
    return policy
