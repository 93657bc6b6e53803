"""Settings read from the environment, which template.yaml fills (and local mode mirrors).

The one place the runtime reads its configuration: handlers build one `Settings.from_env()` and
hand it (or what it names) to the pipeline; nothing else in the layer reads `os.environ`
(AWS_* and POWERTOOLS_* are read by boto3 and Powertools themselves).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from upload_processor.domain.units import MiB
from upload_processor.errors import ConfigurationError

# Each setting's environment variable (template.yaml's `Environment.Variables`).
ENV_VARS = {
    "jobs_table": "JOBS_TABLE",
    "topic_arn": "NOTIFICATION_TOPIC_ARN",
    "archive_bucket": "ARCHIVE_BUCKET",
    "open_archive_bucket": "OPEN_ARCHIVE_BUCKET",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "default_time_zone": "DEFAULT_TIME_ZONE",
    "files_wait_seconds": "FILES_WAIT_SECONDS",
    "chunk_threshold": "CHUNK_THRESHOLD_MIB",
    "range_size": "RANGE_SIZE_MIB",
    "ecephys_range_size": "ECEPHYS_RANGE_MIB",
    "copy_threshold": "COPY_THRESHOLD_MIB",
    "job_types_prefix": "JOB_TYPES_PREFIX",
    "registry_table": "REGISTRY_TABLE",
    "metadata_service": "METADATA_SERVICE",
    "assets_table": "ASSETS_TABLE",
    "event_source": "EVENT_SOURCE",
    "catalog_backend": "CATALOG_BACKEND",
    "codeocean_domain": "CODEOCEAN_DOMAIN",
    "codeocean_token_secret": "CODEOCEAN_TOKEN_SECRET",
    "codeocean_ready_timeout": "CODEOCEAN_READY_TIMEOUT_SECONDS",
    "codeocean_poll_seconds": "CODEOCEAN_POLL_SECONDS",
}
# The pipeline functions IngestFunction resolves versions of: role -> environment variable.
FUNCTION_ENV = {
    "gather": "GATHER_METADATA_FUNCTION",
    "transfer": "TRANSFER_FUNCTION",
    "finalize": "FINALIZE_FUNCTION",
    "ecephys": "ECEPHYS_TRANSFER_FUNCTION",
    "registration": "REGISTER_FUNCTION",
}


def mib(value: str | None) -> int | None:
    """A size setting in MiB (0 or empty: let the code choose from the compression level)."""
    return int(float(value) * MiB) if value and float(value) > 0 else None


@dataclass(frozen=True)
class Settings:
    """What a handler needs to know about its deployment."""

    jobs_table: str
    topic_arn: str
    archive_bucket: str
    state_machine_arn: str
    default_time_zone: str | None
    open_archive_bucket: str = ""
    files_wait_seconds: float = 240.0
    chunk_threshold: int | None = None
    range_size: int | None = None
    ecephys_range_size: int | None = None  # source bytes per ecephys Map iteration (whole chunks)
    copy_threshold: int | None = None  # objects above it: UploadPartCopy (default S3's 5 GiB)
    job_types_prefix: str | None = None
    registry_table: str = ""
    metadata_service: str = ""  # a service spec; empty: the stack's own registry table
    assets_table: str = ""  # the catalog of archived assets (adapters.catalog)
    event_source: str = "upload-processor"  # the `source` of the stack's EventBridge events
    catalog_backend: str = ""  # "" the assets table; "docdb:https://..." also AIND's DocDB
    function_names: Mapping[str, str] = field(default_factory=dict)
    codeocean_domain: str = ""  # https://codeocean.example.org; empty: no Code Ocean
    codeocean_token_secret: str = ""  # Secrets Manager name or ARN of the API token
    codeocean_ready_timeout: float = 600.0  # seconds a new data asset may take to be ready
    codeocean_poll_seconds: float = 5.0  # between two looks at a data asset being made

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings (default: os.environ); a missing one is reported when it is used,
        not at import."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return (env.get(ENV_VARS[name]) or "").strip()

        return cls(
            jobs_table=get("jobs_table"),
            topic_arn=get("topic_arn"),
            archive_bucket=get("archive_bucket"),
            state_machine_arn=get("state_machine_arn"),
            default_time_zone=get("default_time_zone") or None,
            open_archive_bucket=get("open_archive_bucket"),
            files_wait_seconds=float(get("files_wait_seconds") or 240),
            chunk_threshold=mib(get("chunk_threshold")),
            range_size=mib(get("range_size")),
            ecephys_range_size=mib(get("ecephys_range_size")),
            copy_threshold=mib(get("copy_threshold")),
            job_types_prefix=get("job_types_prefix") or None,
            registry_table=get("registry_table"),
            metadata_service=get("metadata_service"),
            assets_table=get("assets_table"),
            event_source=get("event_source") or "upload-processor",
            catalog_backend=get("catalog_backend"),
            codeocean_domain=get("codeocean_domain"),
            codeocean_token_secret=get("codeocean_token_secret"),
            codeocean_ready_timeout=float(get("codeocean_ready_timeout") or 600),
            codeocean_poll_seconds=float(get("codeocean_poll_seconds") or 5),
            function_names={role: env[var] for role, var in FUNCTION_ENV.items() if env.get(var)},
        )

    def archive_for(self, s3_bucket: str) -> str:
        """The archive bucket a job's `s3_bucket` (private, open, default) selects."""
        if s3_bucket == "open":
            return self.require("open_archive_bucket")
        return self.require("archive_bucket")

    def require(self, name: str) -> str:
        """The named setting, or a ConfigurationError that names the variable to set."""
        value = getattr(self, name)
        if not value:
            env = ENV_VARS.get(name, name.upper())
            raise ConfigurationError(f"environment variable {env} is not set")
        return value

    def metadata_service_spec(self) -> str | None:
        """The deployment's metadata service: METADATA_SERVICE when set (template parameter
        `MetadataService`), else the stack's own registry table; None when neither is set."""
        if self.metadata_service:
            return self.metadata_service
        return f"registry-table:{self.registry_table}" if self.registry_table else None

    def pipeline_functions(self) -> dict[str, str]:
        """{"gather", "transfer", "finalize", "ecephys", "registration": function name}, from the
        environment."""
        missing = [var for role, var in FUNCTION_ENV.items() if not self.function_names.get(role)]
        if missing:
            raise ConfigurationError(f"environment variable(s) {', '.join(missing)} not set")
        return dict(self.function_names)


# What Powertools counts as true (its strtobool); this room may not import Powertools itself.
TRUTHY = frozenset({"1", "y", "yes", "t", "true", "on"})


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether handlers trace with X-Ray: Powertools' own rule (off when
    POWERTOOLS_TRACE_DISABLED is truthy, outside Lambda (no LAMBDA_TASK_ROOT) and under
    `sam local`). Read here so that the X-Ray SDK (~100 ms of import) loads only when it is on."""
    env = os.environ if environ is None else environ
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in TRUTHY:
        return False
    return bool(env.get("LAMBDA_TASK_ROOT")) and not env.get("AWS_SAM_LOCAL")


def function_memory_mib(environ: Mapping[str, str] | None = None) -> int | None:
    """The running Lambda function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, MiB), or None
    outside Lambda: what sizes the buffers a function may hold in memory."""
    env = os.environ if environ is None else environ
    configured = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "").strip()
    return int(configured) if configured.isdigit() else None
