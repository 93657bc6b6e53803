"""The validation report: what GatherMetadata found, in the shape docs/architecture.md ("The user-facing contracts") fixes.

The report is the product's answer to a scientist: every entry names the file, the field, a
stable rule id and a message that says how to fix it. Warnings alone leave a session valid.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning"]

REPORT_FILENAME = "upload_report.json"


class Issue(BaseModel):
    """One problem found in a session."""

    severity: Severity
    file: str | None = Field(description="Path relative to the session root, or null")
    field: str | None = Field(default=None, description="Dotted field path, or null")
    rule: str = Field(description="Stable identifier of the rule that failed")
    message: str = Field(description="What is wrong and how to fix it")


def sorted_issues(issues: list[Issue]) -> list[Issue]:
    """Errors first, then warnings; within each, session-wide issues, then by file name.

    What rejects the session comes first (the summary of a rejection may be cut short), and
    one file's problems sit together, so a scientist fixes a file in one go. The sort is
    stable: within one file the rules keep the order they ran in.
    """
    return sorted(issues, key=lambda i: (i.severity != "error", i.file is not None, i.file or ""))


class MergedFrom(BaseModel):
    """Which staged files went into each merged core file."""

    instrument: list[str] = Field(default_factory=list)
    acquisition: list[str] = Field(default_factory=list)


class Report(BaseModel):
    """The whole validation report, saved as upload_report.json beside the staged data."""

    status: Literal["valid", "invalid"]
    asset_name: str | None
    merged_from: MergedFrom = Field(default_factory=MergedFrom)
    issues: list[Issue] = Field(default_factory=list)

    @classmethod
    def from_issues(
        cls, issues: list[Issue], *, asset_name: str | None, merged_from: MergedFrom | None = None
    ) -> Report:
        """Build a report whose status follows from its issues (any error makes it invalid).

        The issues are put in reading order (``sorted_issues``): every view of the report (its
        JSON, ``validate``'s table, the SNS rejection's summary) lists them the same way.
        """
        status = "invalid" if any(i.severity == "error" for i in issues) else "valid"
        return cls(
            status=status,
            asset_name=asset_name,
            merged_from=merged_from or MergedFrom(),
            issues=sorted_issues(issues),
        )

    @property
    def errors(self) -> list[Issue]:
        """The issues that make the session invalid."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """The issues that are reported but do not reject the session."""
        return [i for i in self.issues if i.severity == "warning"]

    def summary(self, limit: int = 20) -> str:
        """A few plain-text lines a person reads: the verdict, then each problem."""
        head = (
            f"{self.asset_name or 'session'}: {self.status} "
            f"({len(self.errors)} error(s), {len(self.warnings)} warning(s))"
        )
        lines = [head]
        for issue in self.issues[:limit]:
            where = issue.file or "-"
            if issue.field:
                where += f" [{issue.field}]"
            lines.append(f"- {issue.severity.upper()} {where}: {issue.message} ({issue.rule})")
        if len(self.issues) > limit:
            lines.append(f"- ... and {len(self.issues) - limit} more in the full report")
        return "\n".join(lines)
