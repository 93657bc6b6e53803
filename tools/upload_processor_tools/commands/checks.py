"""The validation `validate` and `submit` share: the pipeline's checks, with the deployment's
metadata service and job types (upload_processor_tools.deployment), and one way to fail.

Exit 2 for usage (a bad folder, options or setting), 3 when the metadata service or AWS cannot
answer or something internal breaks: an internal error is never disguised as "invalid".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from upload_processor.domain.report import Report
from upload_processor_tools.commands.common import EXIT_UNAVAILABLE, EXIT_USAGE, fail

_err = Console(stderr=True, soft_wrap=True, highlight=False)


def validate_with_deployment(
    directory: Path,
    where: Any,
    *,
    job: Path | None,
    registry: str | None,
    offline: bool,
    default_tz: str | None,
    skip_hint: str = "use --offline",
) -> Report:
    """The report the pipeline would write for this folder; says on stderr what it checked with."""
    from upload_processor.errors import ConfigurationError, MetadataServiceError, UsageError
    from upload_processor_tools.deployment import pipeline_checks
    from upload_processor_tools.validate import validate_directory

    try:
        checks = pipeline_checks(where, registry=registry, offline=offline)
        _err.print(f"checked {checks.where}")
        return validate_directory(
            directory,
            job_path=job,
            service=checks.service,
            default_tz=default_tz or checks.default_tz,
            job_types=checks.job_types,
        )
    except (UsageError, ConfigurationError) as exc:
        fail(str(exc), EXIT_USAGE)
    except MetadataServiceError as exc:
        fail(f"the metadata service could not answer: {exc}; try again, or {skip_hint}", 3)
    except Exception as exc:
        fail(f"internal error while validating: {type(exc).__name__}: {exc}", EXIT_UNAVAILABLE)
