"""Code Ocean, through its official SDK (`codeocean`): the data asset over an archived asset,
and the runs of capsules and pipelines with it mounted.

`CodeOceanClient` takes the SDK's client (`CodeOcean(domain=..., token=...)`, built by
`connect`), so tests point the real SDK at a local fake server. Its errors become ours, by
the one definition of transient (`errors.is_transient`): a 429 or 5xx is a TransientError
(the state's Retry runs the step again, which looks the asset up before creating one), any
other refusal (401, 403, 400, ...) a CodeOceanError naming the call, the status and Code
Ocean's message.

The SDK retries only a 429 itself (urllib3's Retry, honouring Retry-After): a throttled
request was not processed, so repeating it cannot create a second asset; a 5xx on a create
might have been, so it is left to the state's Retry, which searches first.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from codeocean import CodeOcean
from codeocean.computation import (
    Computation,
    DataAssetsRunParam,
    NamedRunParam,
    PipelineProcessParams,
    RunParams,
)
from codeocean.data_asset import (
    AWSS3Source,
    DataAsset,
    DataAssetParams,
    DataAssetSearchParams,
    DataAssetState,
    Source,
)
from codeocean.error import Error as SdkError
from urllib3.util import Retry

from upload_processor.domain.codeocean import TAG, AssetDescription, RunParamsSettings
from upload_processor.errors import (
    CodeOceanError,
    ConfigurationError,
    TransientError,
    error_code,
    is_transient,
)

SECRET_MAX_AGE = 300  # seconds a warm function keeps the token before reading it again


class CodeOceanTimeoutError(CodeOceanError):
    """The data asset did not become ready within the deployment's wait."""


def connect(domain: str, token: str, *, backoff: float = 1.0) -> CodeOcean:
    """The SDK's client for `domain`, retrying a 429 three times (Retry-After honoured)."""
    retry = Retry(
        total=3,
        status_forcelist=[429],
        allowed_methods=None,  # every method: a 429 was not processed
        backoff_factor=backoff,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 429 reaches the SDK, which raises its Error
    )
    return CodeOcean(domain=domain.rstrip("/"), token=token, retries=retry)


def read_token(secret_id: str, *, secrets: Any = None, max_age: int = SECRET_MAX_AGE) -> str:
    """The Code Ocean API token in Secrets Manager (`secret_id`: name or ARN), through
    Powertools' parameters utility, cached `max_age` seconds across warm invocations.

    The secret holds the token itself, or JSON with a `token` field. A secret that is missing,
    unreadable or empty is a ConfigurationError naming it (permanent); throttling a
    TransientError.
    """
    from aws_lambda_powertools.utilities import parameters

    try:
        if secrets is None:  # Powertools' default provider: cached across warm invocations
            raw = parameters.get_secret(secret_id, max_age=max_age)
        else:
            provider = parameters.SecretsProvider(boto3_client=secrets)
            raw = provider.get(secret_id, max_age=max_age)
    except parameters.exceptions.GetParameterError as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        if is_transient(cause):
            raise TransientError(f"reading secret {secret_id}: {cause}") from exc
        code = error_code(cause) or type(cause).__name__
        raise ConfigurationError(
            f"cannot read the Code Ocean token secret {secret_id} ({code}): create it, or set "
            "the stack parameter CodeOceanTokenSecret to a secret this function may read"
        ) from exc
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    token = text.strip()
    if token.startswith("{"):
        with contextlib.suppress(ValueError):
            token = str(json.loads(token).get("token") or "").strip()
    if not token:
        raise ConfigurationError(
            f"the Code Ocean token secret {secret_id} is empty: put the API token in it "
            '(the token itself, or {"token": "..."})'
        )
    return token


@contextlib.contextmanager
def _calling(doing: str) -> Iterator[None]:
    """Run one SDK call; its faults as ours (TransientError or CodeOceanError)."""
    try:
        yield
    except SdkError as exc:
        response = exc.http_err.response
        text = f"{exc.status_code} {response.reason or ''}".strip()
        detail = exc.message if exc.data is not None else (response.text or "")[:200]
        message = f"{text} while {doing}" + (f": {detail}" if detail else "")
        if is_transient(exc):
            raise TransientError(f"Code Ocean {message}") from exc
        raise CodeOceanError(message, status=exc.status_code) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientError(f"Code Ocean unreachable while {doing}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:  # an answer the SDK's types refuse
        raise CodeOceanError(f"unusable answer while {doing}: {exc!r}") from exc


class CodeOceanClient:
    """The calls the registration steps make, over the SDK's client."""

    def __init__(
        self,
        sdk: CodeOcean,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sdk = sdk
        self._sleep = sleep
        self._clock = clock

    @property
    def domain(self) -> str:
        """The Code Ocean deployment's address (for links)."""
        return str(self._sdk.domain)

    def find_asset(self, name: str) -> DataAsset | None:
        """The data asset this deployment registered for the archive asset `name`, if any.

        Searched by exact name (`name:"..."`) and our tag, then matched exactly (Code Ocean's
        search is by words), so a re-run finds the asset it made instead of making another.
        The newest wins if a person made more than one; a failed one is not reused.
        """
        query = f'name:"{name}" tag:{TAG}'
        found: list[DataAsset] = []
        with _calling(f"searching data assets for {name}"):
            for asset in self._sdk.data_assets.search_data_assets_iterator(
                DataAssetSearchParams(query=query, limit=100)
            ):
                if asset.name == name and TAG in (asset.tags or []):
                    found.append(asset)
        usable = [a for a in found if a.state != DataAssetState.Failed]
        return max(usable, key=lambda a: a.created) if usable else None

    def create_asset(self, description: AssetDescription, bucket: str, prefix: str) -> DataAsset:
        """A data asset over s3://bucket/prefix, kept on our storage (nothing is copied)."""
        params = DataAssetParams(
            name=description.name,
            tags=description.tags(),
            mount=description.name,
            description=description.description or None,
            source=Source(
                aws=AWSS3Source(bucket=bucket, prefix=prefix, keep_on_external_storage=True)
            ),
            custom_metadata=description.custom_metadata() or None,
        )
        with _calling(f"creating data asset {description.name}"):
            return self._sdk.data_assets.create_data_asset(params)

    def get_asset(self, asset_id: str) -> DataAsset:
        """The data asset as Code Ocean has it now."""
        with _calling(f"reading data asset {asset_id}"):
            return self._sdk.data_assets.get_data_asset(asset_id)

    def wait_ready(self, asset: DataAsset, *, timeout: float, poll: float) -> DataAsset:
        """The asset once Code Ocean has made it ready; a CodeOceanError if it failed, a
        CodeOceanTimeoutError if it is still a draft after `timeout` seconds.

        Our own loop rather than the SDK's `wait_until_ready`, which polls no faster than
        every 5 s: a small asset is ready in about a second, and the wait is billed.
        """
        deadline = self._clock() + timeout
        while True:
            if asset.state == DataAssetState.Ready:
                return asset
            if asset.state == DataAssetState.Failed:
                raise CodeOceanError(
                    f"data asset {asset.id} failed in Code Ocean: "
                    f"{asset.failure_reason or 'no reason given'}"
                )
            left = deadline - self._clock()
            if left <= 0:
                raise CodeOceanTimeoutError(f"timeout: asset not ready after {timeout:g} s")
            asset = self.get_asset(asset.id)
            if asset.state == DataAssetState.Draft:
                self._sleep(min(poll, max(left, 0)))

    def run(self, run: RunParamsSettings, asset_id: str, mount: str) -> Computation:
        """Start the capsule or pipeline with the data asset mounted at `mount` (and the
        settings' other data assets); the computation as Code Ocean reports it."""
        extra = [DataAssetsRunParam(id=a.id, mount=a.mount) for a in run.data_assets or []]
        params = RunParams(
            capsule_id=run.capsule_id,
            pipeline_id=run.pipeline_id,
            version=run.version,
            resume_run_id=run.resume_run_id,
            nextflow_profile=run.nextflow_profile,
            data_assets=[DataAssetsRunParam(id=asset_id, mount=mount), *extra],
            parameters=run.parameters,
            named_parameters=[
                NamedRunParam(param_name=p.param_name, value=p.value) for p in run.named_parameters
            ]
            if run.named_parameters
            else None,
            processes=[
                PipelineProcessParams(
                    name=p.name,
                    parameters=p.parameters,
                    named_parameters=[
                        NamedRunParam(param_name=n.param_name, value=n.value)
                        for n in p.named_parameters
                    ]
                    if p.named_parameters
                    else None,
                )
                for p in run.processes
            ]
            if run.processes
            else None,
        )
        with _calling(f"starting {run.target}"):
            return self._sdk.computations.run_capsule(params)

    def get_computation(self, computation_id: str) -> Computation:
        """A computation as Code Ocean reports it."""
        with _calling(f"reading computation {computation_id}"):
            return self._sdk.computations.get_computation(computation_id)
