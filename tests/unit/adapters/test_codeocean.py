"""The Code Ocean adapter: the real SDK against the fake Code Ocean server (tests/fake_codeocean),
which checks every request body against the SDK's own request types."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.fake_codeocean import BadRequest, FakeCodeOcean, check_body
from upload_processor.adapters.codeocean import (
    CodeOceanClient,
    CodeOceanTimeoutError,
    connect,
    read_token,
)
from upload_processor.domain.codeocean import TAG, RunParamsSettings, describe_asset
from upload_processor.errors import CodeOceanError, ConfigurationError, TransientError

NAME = "ecephys_750101_2025-06-12_15-03-00"
DESCRIPTION = {
    "subject_id": "750101",
    "modalities": [{"name": "Extracellular electrophysiology", "abbreviation": "ecephys"}],
    "project_name": "Example Foraging Project",
    "data_level": "raw",
}


@pytest.fixture
def co() -> Iterator[FakeCodeOcean]:
    with FakeCodeOcean() as fake:
        yield fake


def _client(co: FakeCodeOcean, token: str | None = None) -> CodeOceanClient:
    return CodeOceanClient(connect(co.url, token or co.token, backoff=0), sleep=lambda s: None)


def test_creates_an_external_asset_over_the_archive_prefix_with_the_descriptions_tags(
    co: FakeCodeOcean,
) -> None:
    client = _client(co)
    description = describe_asset(NAME, DESCRIPTION, {"platform": {"abbreviation": "ecephys"}})
    asset = client.create_asset(description, "archive-bucket", NAME)

    (body,) = co.calls("POST", "data_assets")
    assert body["source"]["aws"] == {
        "bucket": "archive-bucket",
        "prefix": NAME,
        "keep_on_external_storage": True,
        "endpoint_name": None,
        "public": None,
        "use_input_bucket": None,
    }
    assert body["name"] == body["mount"] == NAME
    assert body["tags"] == ["raw", "750101", "ecephys", TAG]
    assert body["custom_metadata"] == {
        "data level": "raw",
        "subject id": "750101",
        "modality": "ecephys",
        "experiment type": "ecephys",
        "project name": "Example Foraging Project",
    }
    assert client.wait_ready(asset, timeout=5, poll=0).state == "ready"
    assert client.find_asset(NAME).id == asset.id  # type: ignore[union-attr]


def test_find_matches_the_exact_name_and_our_tag_only(co: FakeCodeOcean) -> None:
    client = _client(co)
    other = describe_asset(NAME + "_sorted", DESCRIPTION, {})
    client.create_asset(other, "b", other.name)  # a longer name the word search also finds
    assert client.find_asset(NAME) is None


def test_an_asset_that_never_becomes_ready_times_out_with_the_wait_in_the_message(
    co: FakeCodeOcean,
) -> None:
    co.ready_after = None
    clock = iter(range(100))
    client = CodeOceanClient(
        connect(co.url, co.token), sleep=lambda s: None, clock=lambda: float(next(clock))
    )
    asset = client.create_asset(describe_asset(NAME, DESCRIPTION, {}), "b", NAME)
    with pytest.raises(CodeOceanTimeoutError, match=r"^timeout: asset not ready after 5 s$"):
        client.wait_ready(asset, timeout=5, poll=1)


def test_a_failed_asset_is_a_permanent_error_with_code_oceans_reason(co: FakeCodeOcean) -> None:
    co.fail_assets = True
    client = _client(co)
    asset = client.create_asset(describe_asset(NAME, DESCRIPTION, {}), "b", NAME)
    with pytest.raises(CodeOceanError, match="failed in Code Ocean: bucket not readable"):
        client.wait_ready(asset, timeout=5, poll=0)


def test_401_is_permanent_and_names_the_call(co: FakeCodeOcean) -> None:
    with pytest.raises(CodeOceanError) as caught:
        _client(co, token="wrong").find_asset(NAME)
    assert not isinstance(caught.value, TransientError)
    assert (
        str(caught.value)
        == f"401 Unauthorized while searching data assets for {NAME}: Unauthorized"
    )


def test_a_429_is_retried_by_the_sdk_and_then_succeeds(co: FakeCodeOcean) -> None:
    co.fail(429, times=2, retry_after="0")
    assert _client(co).find_asset(NAME) is None
    assert len(co.calls("POST", "data_assets/search")) == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_past_the_sdks_retries_and_5xx_are_transient(
    co: FakeCodeOcean, status: int
) -> None:
    co.fail(status, times=10, retry_after="0")
    with pytest.raises(TransientError, match=f"Code Ocean {status}"):
        _client(co).find_asset(NAME)


def test_a_5xx_on_create_is_not_repeated_by_the_sdk(co: FakeCodeOcean) -> None:
    co.fail(502, method="POST", path="data_assets")
    with pytest.raises(TransientError):
        _client(co).create_asset(describe_asset(NAME, DESCRIPTION, {}), "b", NAME)
    assert len(co.calls("POST", "data_assets")) == 1  # our retry searches first


def test_unreachable_code_ocean_is_transient() -> None:
    client = CodeOceanClient(connect("http://127.0.0.1:9", "t", backoff=0))
    with pytest.raises(TransientError, match="unreachable"):
        client.get_asset("x")


def test_run_mounts_the_asset_and_passes_the_run_params(co: FakeCodeOcean) -> None:
    client = _client(co)
    asset = client.create_asset(describe_asset(NAME, DESCRIPTION, {}), "b", NAME)
    run = RunParamsSettings.model_validate(
        {
            "pipeline_id": "pipe-1",
            "version": 3,
            "data_assets": [{"id": asset.id, "mount": "extra"}],
            "processes": [
                {"name": "sort", "named_parameters": [{"param_name": "a", "value": "1"}]}
            ],
        }
    )
    computation = client.run(run, asset.id, mount=NAME)
    (body,) = co.calls("POST", "computations")
    assert body["pipeline_id"] == "pipe-1" and body["version"] == 3
    assert [(d["id"], d["mount"]) for d in body["data_assets"]] == [
        (asset.id, NAME),
        (asset.id, "extra"),
    ]
    assert body["processes"][0]["named_parameters"] == [{"param_name": "a", "value": "1"}]
    assert client.get_computation(computation.id).state == "initializing"


def test_the_fake_refuses_bodies_the_sdk_types_do_not_accept() -> None:
    from codeocean.data_asset import DataAssetParams

    with pytest.raises(BadRequest, match="unknown field"):
        check_body(DataAssetParams, {"name": "a", "tags": [], "mount": "a", "colour": "red"})
    with pytest.raises(BadRequest, match="mount is required"):
        check_body(DataAssetParams, {"name": "a", "tags": []})
    with pytest.raises(BadRequest, match=r"source\.aws\.bucket is required"):
        check_body(DataAssetParams, {"name": "a", "tags": [], "mount": "a", "source": {"aws": {}}})


def test_the_token_comes_from_secrets_manager_plain_or_json() -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="plain", SecretString=" tok-1 \n")
        secrets.create_secret(Name="json", SecretString='{"token": "tok-2"}')
        secrets.create_secret(Name="empty", SecretString="{}")
        assert read_token("plain", secrets=secrets) == "tok-1"
        assert read_token("json", secrets=secrets) == "tok-2"
        with pytest.raises(ConfigurationError, match="secret empty is empty"):
            read_token("empty", secrets=secrets)
        with pytest.raises(ConfigurationError, match=r"missing .*ResourceNotFoundException"):
            read_token("missing", secrets=secrets)
