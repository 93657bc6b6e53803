"""The job types a deployment defines: the shipped presets, overridden and extended by one
JSON document per job type in SSM Parameter Store under the deployment's prefix.

Read with Powertools' parameters utility, cached across warm invocations, so ingest pays for
SSM once every few minutes rather than once per upload.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from aws_lambda_powertools.utilities import parameters

from upload_processor.domain.job_types import DEFAULT_JOB_TYPES, validate_preset
from upload_processor.errors import ConfigurationError


def load_job_types(
    prefix: str | None, *, ssm: Any = None, max_age: int = 300, force_fetch: bool = False
) -> dict[str, dict[str, Any]]:
    """The shipped presets, overridden and extended by the deployment's SSM documents.

    One JSON document per job type under `prefix` (`<prefix>/<job_type>`), read with
    Powertools' parameters utility (cached for `max_age` seconds; `force_fetch` reads past the
    cache). A document that is not a valid preset raises ConfigurationError naming it.
    """
    presets = copy.deepcopy(DEFAULT_JOB_TYPES)
    if not prefix:
        return presets
    path = "/" + prefix.strip("/")
    if ssm is None:  # Powertools' default provider: cached across warm invocations
        values = parameters.get_parameters(
            path, max_age=max_age, recursive=True, force_fetch=force_fetch
        )
    else:
        provider = parameters.SSMProvider(boto3_client=ssm)
        values = provider.get_multiple(
            path, max_age=max_age, recursive=True, force_fetch=force_fetch
        )
    for name, raw in values.items():
        job_type = name.strip("/").split("/")[-1]
        try:
            document = json.loads(raw)
            validate_preset(document)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"SSM parameter {path}/{name.strip('/')} is not a job type preset: {exc}"
            ) from exc
        presets[job_type] = document
    return presets
