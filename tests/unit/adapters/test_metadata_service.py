"""The metadata service clients: retries, timeouts, 404s, SigV4, the AIND service's quirks,
against a real HTTP server on 127.0.0.1; the registry-table backend on moto; the spec forms."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials

from upload_processor.adapters.metadata_service import (
    AindMetadataService,
    RegistryHttpService,
    RegistryTableService,
    service_from_spec,
)
from upload_processor.domain.metadata_source import MetadataService
from upload_processor.errors import ConfigurationError, MetadataRequestError, MetadataServiceError
from upload_processor.settings import Settings

FAST = {"timeout": 2.0, "retries": 3, "backoff": 0.01}
SUBJECT = {"object_type": "Subject", "subject_id": "750101", "notes": None}


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeService:
    """A scripted HTTP server: per path, a list of replies served in order (the last repeats)."""

    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.requests: list[Seen] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                service.requests.append(Seen(self.command, self.path, dict(self.headers), body))
                replies = service.script.get(self.path) or [Reply(404, {"message": "Not found"})]
                seen = sum(1 for r in service.requests if r.path == self.path)
                reply = replies[min(seen, len(replies)) - 1]
                if reply.delay:
                    time.sleep(reply.delay)
                payload = (
                    reply.body.encode()
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def on(self, path: str, *replies: Reply) -> None:
        self.script[path] = list(replies)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService()
    service.thread.start()
    try:
        yield service
    finally:
        service.server.shutdown()
        service.server.server_close()


def registry(fake: FakeService, **options: Any) -> RegistryHttpService:
    return RegistryHttpService(fake.url, **{**FAST, "sign": False, **options})


# --------------------------------------------------------------------------- retries
def test_retries_on_500_and_503_then_succeeds(fake: FakeService) -> None:
    path = "/subjects/750101"
    fake.on(
        path, Reply(500, {"message": "boom"}), Reply(503, {"message": "busy"}), Reply(200, SUBJECT)
    )
    assert registry(fake).get_subject("750101") == SUBJECT
    assert fake.count(path) == 3


def test_gives_up_after_the_retries_and_names_the_url(fake: FakeService) -> None:
    path = "/instruments/447-EPHYS-1"
    fake.on(path, Reply(503, {"message": "Service Unavailable"}))
    with pytest.raises(MetadataServiceError) as caught:
        registry(fake, retries=2).get_instrument("447-EPHYS-1")
    assert fake.count(path) == 3  # 1 + 2 retries
    assert caught.value.transient is True
    assert f"{fake.url}{path}" in str(caught.value)
    assert "503" in str(caught.value) and "3 times" in str(caught.value)
    assert caught.value.url == f"{fake.url}{path}"


def test_429_is_retried_and_retry_after_is_honoured(fake: FakeService) -> None:
    path = "/subjects/750101"
    fake.on(path, Reply(429, {"message": "slow down"}, {"Retry-After": "0"}), Reply(200, SUBJECT))
    assert registry(fake, backoff=5.0).get_subject("750101") == SUBJECT  # Retry-After: 0 wins
    assert fake.count(path) == 2


def test_a_timeout_is_retried(fake: FakeService) -> None:
    path = "/procedures/750101"
    fake.on(path, Reply(200, {"slow": True}, delay=1.5), Reply(200, {"subject_id": "750101"}))
    started = time.monotonic()
    got = registry(fake, timeout=0.3).get_procedures("750101")
    assert got == {"subject_id": "750101"}
    assert fake.count(path) == 2
    assert time.monotonic() - started < 1.5  # did not wait for the slow answer


def test_timeouts_every_time_end_in_an_error_naming_the_url(fake: FakeService) -> None:
    path = "/procedures/750101"
    fake.on(path, Reply(200, {}, delay=1.0))
    with pytest.raises(MetadataServiceError, match=r"timeout") as caught:
        registry(fake, timeout=0.2, retries=1).get_procedures("750101")
    assert f"{fake.url}{path}" in str(caught.value)
    assert fake.count(path) == 2


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    service = RegistryHttpService(
        f"http://127.0.0.1:{port}", retries=2, backoff=0.01, sign=False, sleep=sleeps.append
    )
    with pytest.raises(MetadataServiceError) as caught:
        service.get_subject("750101")
    assert f"http://127.0.0.1:{port}/subjects/750101" in str(caught.value)
    assert len(sleeps) == 2
    assert all(0.005 <= s <= 0.02 * 2 for s in sleeps)  # exponential, with jitter


def test_backoff_grows_exponentially_with_jitter() -> None:
    service = RegistryHttpService("https://example.org", backoff=1.0, sign=False)
    for attempt in range(4):
        cap = 2.0**attempt
        delays = [service._delay(attempt, None) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1


def test_404_is_none_and_not_retried(fake: FakeService) -> None:
    fake.on("/subjects/123", Reply(404, {"message": "subject '123' is not registered"}))
    assert registry(fake).get_subject("123") is None
    assert fake.count("/subjects/123") == 1


@pytest.mark.parametrize("status", [400, 401, 403, 406, 422])
def test_other_4xx_are_final_errors_not_retried(fake: FakeService, status: int) -> None:
    fake.on("/subjects/750101", Reply(status, {"message": "nope"}))
    with pytest.raises(MetadataRequestError) as caught:
        registry(fake).get_subject("750101")
    assert fake.count("/subjects/750101") == 1
    assert caught.value.transient is False and caught.value.status == status
    assert "nope" in str(caught.value) and fake.url in str(caught.value)
    if status in (401, 403):
        assert "execute-api:Invoke" in str(caught.value)


def test_a_body_that_is_not_json_is_an_error_naming_the_url(fake: FakeService) -> None:
    fake.on("/subjects/750101", Reply(200, "<html>proxy login</html>"))
    with pytest.raises(MetadataRequestError, match="not JSON") as caught:
        registry(fake).get_subject("750101")
    assert fake.url in str(caught.value)


# --------------------------------------------------------------------------- the registry API
def test_registry_paths_and_id_encoding(fake: FakeService) -> None:
    fake.on("/instruments/447-EPHYS-1", Reply(200, {"instrument_id": "447-EPHYS-1"}))
    fake.on("/subjects/750101", Reply(200, SUBJECT))
    fake.on("/procedures/750101", Reply(200, {"subject_id": "750101"}))
    fake.on("/instruments/rig%2F1%20a", Reply(200, {"instrument_id": "rig/1 a"}))
    service = registry(fake)
    assert service.get_instrument("447-EPHYS-1") == {"instrument_id": "447-EPHYS-1"}
    assert service.get_subject("750101") == SUBJECT
    assert service.get_procedures("750101") == {"subject_id": "750101"}
    assert service.get_instrument("rig/1 a") == {"instrument_id": "rig/1 a"}
    assert all(r.method == "GET" for r in fake.requests)
    assert isinstance(service, MetadataService)


def test_registry_requests_are_sigv4_signed_for_execute_api(fake: FakeService) -> None:
    fake.on("/subjects/750101", Reply(200, SUBJECT))
    credentials = Credentials("AKIDEXAMPLE", "secret", "session-token")
    service = RegistryHttpService(fake.url, credentials=credentials, region="eu-west-1", **FAST)
    assert service.get_subject("750101") == SUBJECT
    headers = {k.lower(): v for k, v in fake.requests[-1].headers.items()}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["authorization"]
    assert headers["x-amz-security-token"] == "session-token"
    assert "x-amz-date" in headers


def test_each_retry_is_signed_afresh(fake: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.on("/subjects/750101", Reply(503, {}), Reply(200, SUBJECT))
    dates = iter(["20250612T150300Z", "20250612T150305Z"])
    from botocore import auth

    real = auth.SigV4Auth.add_auth

    def add_auth(self: Any, request: Any) -> None:
        real(self, request)
        request.headers["X-Test-Signed"] = next(dates)

    monkeypatch.setattr(auth.SigV4Auth, "add_auth", add_auth)
    service = RegistryHttpService(fake.url, credentials=Credentials("AKID", "secret"), **FAST)
    assert service.get_subject("750101") == SUBJECT
    assert [r.headers.get("X-Test-Signed") for r in fake.requests] == [
        "20250612T150300Z",
        "20250612T150305Z",
    ]


def test_region_comes_from_an_execute_api_host() -> None:
    service = RegistryHttpService("https://abc123.execute-api.ap-southeast-2.amazonaws.com/v1/")
    assert service.region == "ap-southeast-2"
    assert service.url("subjects", "1") == (
        "https://abc123.execute-api.ap-southeast-2.amazonaws.com/v1/subjects/1"
    )


def test_unsigned_when_asked(fake: FakeService) -> None:
    fake.on("/subjects/750101", Reply(200, SUBJECT))
    registry(fake, sign=False).get_subject("750101")
    assert "Authorization" not in fake.requests[-1].headers


# --------------------------------------------------------------------------- AIND service
def aind(fake: FakeService, prefix: str = "") -> AindMetadataService:
    return AindMetadataService(fake.url + prefix, **FAST)


def test_aind_paths(fake: FakeService) -> None:
    fake.on("/svc/api/v2/subject/750101", Reply(200, SUBJECT))
    fake.on("/svc/api/v2/procedures/750101", Reply(200, {"subject_id": "750101"}))
    fake.on(
        "/svc/api/v2/instrument/447-EPHYS-1",
        Reply(200, [{"instrument_id": "447-EPHYS-1", "modification_date": "2025-06-09"}]),
    )
    service = aind(fake, "/svc")
    assert service.get_subject("750101") == SUBJECT
    assert service.get_procedures("750101") == {"subject_id": "750101"}
    assert service.get_instrument("447-EPHYS-1")["modification_date"] == "2025-06-09"


def test_aind_400_returns_the_invalid_record_in_the_body(fake: FakeService) -> None:
    invalid = {"object_type": "Subject", "subject_id": "750101", "sex": "Unknown?"}
    fake.on(
        "/api/v2/subject/750101",
        Reply(400, invalid, {"X-Error-Message": '[{"loc": ["sex"], "msg": "bad"}]'}),
    )
    assert aind(fake).get_subject("750101") == invalid
    assert fake.count("/api/v2/subject/750101") == 1  # a 400 is an answer, not retried


def test_aind_404_is_none(fake: FakeService) -> None:
    fake.on("/api/v2/procedures/750101", Reply(404, {"detail": "Not found"}))
    assert aind(fake).get_procedures("750101") is None
    assert fake.count("/api/v2/procedures/750101") == 1


def test_aind_406_invalid_id_is_a_clear_final_error(fake: FakeService) -> None:
    detail = "Subject ID abc is not valid. Please specify a numeric subject ID."
    fake.on("/api/v2/subject/abc", Reply(406, {"detail": detail}))
    with pytest.raises(MetadataRequestError) as caught:
        aind(fake).get_subject("abc")
    assert detail in str(caught.value)
    assert "/api/v2/subject/abc" in str(caught.value) and "406" in str(caught.value)
    assert fake.count("/api/v2/subject/abc") == 1


def test_aind_406_with_a_record_older_releases_returns_it(fake: FakeService) -> None:
    fake.on(
        "/api/v2/subject/750101",
        Reply(406, {"message": "Validation Errors: ...", "data": SUBJECT}),
    )
    assert aind(fake).get_subject("750101") == SUBJECT


def test_aind_wrapped_data_and_multiple_items(fake: FakeService) -> None:
    fake.on("/api/v2/subject/750101", Reply(200, {"message": "Valid Model.", "data": SUBJECT}))
    assert aind(fake).get_subject("750101") == SUBJECT
    fake.on(
        "/api/v2/procedures/750101",
        Reply(300, {"message": "Multiple Items Found.", "data": [SUBJECT, SUBJECT]}),
    )
    with pytest.raises(MetadataRequestError, match="several records"):
        aind(fake).get_procedures("750101")


def test_aind_instrument_picks_the_latest_exact_match(fake: FakeService) -> None:
    records = [
        {"instrument_id": "447-EPHYS-1", "modification_date": "2025-06-09", "n": 1},
        {"instrument_id": "447-EPHYS-1", "modification_date": "2025-07-01", "n": 2},
        {"instrument_id": "447-EPHYS-10", "modification_date": "2026-01-01", "n": 3},
        {"instrument_id": "447-EPHYS-1", "modification_date": "2024-12-31", "n": 4},
    ]
    fake.on(
        "/api/v2/instrument/447-EPHYS-1",
        Reply(400, records, {"X-Error-Message": "Models have not been validated."}),
    )
    assert aind(fake).get_instrument("447-EPHYS-1")["n"] == 2
    fake.on("/api/v2/instrument/OTHER", Reply(400, [records[2]]))
    assert aind(fake).get_instrument("OTHER") is None


def test_aind_retries_5xx_too(fake: FakeService) -> None:
    fake.on(
        "/api/v2/subject/750101", Reply(503, {"message": "Connection Error."}), Reply(200, SUBJECT)
    )
    assert aind(fake).get_subject("750101") == SUBJECT
    assert fake.count("/api/v2/subject/750101") == 2


# --------------------------------------------------------------------------- projects
PROJECT = "Example Foraging Project"
FUNDING = [
    {
        "object_type": "Funding",
        "funder": {"name": "National Institute of Mental Health", "abbreviation": "NIMH"},
        "grant_number": "R01MH000001",
        "fundee": [{"object_type": "Person", "name": "Jane Doe"}],
    },
    {"object_type": "Funding", "funder": {"name": "Allen Institute", "abbreviation": "AI"}},
]
PEOPLE = [
    {"object_type": "Person", "name": "Jane Doe", "registry_identifier": "0000-0002-1825-0097"},
    {"object_type": "Person", "name": "John Roe"},
]
FUNDING_PATH = "/api/v2/funding/Example%20Foraging%20Project"
PEOPLE_PATH = "/api/v2/investigators/Example%20Foraging%20Project"


def test_aind_project_reads_the_funding_and_investigators_routes(fake: FakeService) -> None:
    fake.on("/svc" + FUNDING_PATH, Reply(200, FUNDING))
    fake.on(
        "/svc" + PEOPLE_PATH, Reply(200, [*PEOPLE, {"object_type": "Person", "name": "Jane Doe"}])
    )
    project = aind(fake, "/svc").get_project(PROJECT)
    assert project == {"project_name": PROJECT, "funding_source": FUNDING, "investigators": PEOPLE}
    # the project name is one percent-encoded path segment
    assert [r.path for r in fake.requests] == ["/svc" + FUNDING_PATH, "/svc" + PEOPLE_PATH]


def test_aind_project_unknown_is_none_and_half_known_is_half_empty(fake: FakeService) -> None:
    fake.on(FUNDING_PATH, Reply(404, {"detail": "Not found"}))
    fake.on(PEOPLE_PATH, Reply(404, {"detail": "Not found"}))
    assert aind(fake).get_project(PROJECT) is None
    assert fake.count(FUNDING_PATH) == fake.count(PEOPLE_PATH) == 1  # 404s are not retried

    fake.on(PEOPLE_PATH, Reply(200, PEOPLE))
    project = aind(fake).get_project(PROJECT)
    assert project is not None
    assert project["funding_source"] == [] and project["investigators"] == PEOPLE


def test_aind_project_400_returns_the_unvalidated_lists(fake: FakeService) -> None:
    invalid = [{"object_type": "Funding", "funder": "Some Foundation"}]
    fake.on(FUNDING_PATH, Reply(400, invalid, {"X-Error-Message": '[{"loc": ["funder"]}]'}))
    fake.on(PEOPLE_PATH, Reply(200, PEOPLE))
    assert aind(fake).get_project(PROJECT)["funding_source"] == invalid
    assert fake.count(FUNDING_PATH) == 1


def test_aind_project_with_subprojects_is_a_final_error_that_says_so(fake: FakeService) -> None:
    detail = (
        "Project 'Example Foraging Project' has subprojects. Please specify a subproject in the "
        "format: 'Example Foraging Project - Subproject Name'"
    )
    fake.on(FUNDING_PATH, Reply(406, {"detail": detail}))
    with pytest.raises(MetadataRequestError) as caught:
        aind(fake).get_project(PROJECT)
    assert detail in str(caught.value) and "406" in str(caught.value)
    assert "<project> - <subproject>" in str(caught.value)
    assert "numeric subject" not in str(caught.value)
    assert fake.count(FUNDING_PATH) == 1


def test_aind_project_older_multiple_funding_rows_are_all_kept(fake: FakeService) -> None:
    fake.on(FUNDING_PATH, Reply(300, {"message": "Multiple Items Found", "data": FUNDING}))
    fake.on(PEOPLE_PATH, Reply(200, {"message": "Valid Model", "data": PEOPLE[0]}))
    project = aind(fake).get_project(PROJECT)
    assert project["funding_source"] == FUNDING and project["investigators"] == PEOPLE[:1]


def test_aind_project_answer_that_is_not_records_is_an_error(fake: FakeService) -> None:
    fake.on(FUNDING_PATH, Reply(200, ["Allen Institute"]))
    with pytest.raises(MetadataRequestError, match=FUNDING_PATH):
        aind(fake).get_project(PROJECT)


def test_registry_project_path(fake: FakeService) -> None:
    record = {"object_type": "Project", "project_name": PROJECT, "funding_source": FUNDING}
    fake.on("/projects/Example%20Foraging%20Project", Reply(200, record))
    service = registry(fake)
    assert service.get_project(PROJECT) == record
    assert service.get_project("Unknown project") is None


# --------------------------------------------------------------------------- registry table
def test_registry_table_service_reads_the_store(tmp_path: Any) -> None:
    import boto3
    from moto import mock_aws

    from upload_processor.adapters.registry import RegistryStore
    from upload_processor_tools.sample import build_session, project_record

    session = build_session(tmp_path / "s", data_mb_per_modality=0.01)
    instrument = json.loads((session / "instrument_ecephys.json").read_text())
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(  # keyed as template.yaml's RegistryTable
            TableName="reg",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "kind_id", "AttributeType": "S"},
                {"AttributeName": "version", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "kind_id", "KeyType": "HASH"},
                {"AttributeName": "version", "KeyType": "RANGE"},
            ],
        )
        store = RegistryStore(client, "reg")
        store.put("instrument", instrument)
        store.put("instrument", {**instrument, "modification_date": "2025-07-01"})
        store.put("subject", json.loads((session / "subject.json").read_text()))
        service = service_from_spec("registry-table:reg", dynamodb=client)
        assert isinstance(service, RegistryTableService)
        assert service.get_instrument("447-EPHYS-1")["modification_date"] == "2025-07-01"
        assert service.get_subject("750101")["subject_id"] == "750101"
        assert service.get_procedures("750101") is None
        assert service.get_instrument("nope") is None
        assert service.get_project("Example Foraging Project") is None
        store.put("project", project_record())
        project = service.get_project("Example Foraging Project")
        assert project["funding_source"] == project_record()["funding_source"]

        missing = service_from_spec("registry-table:no-such-table", dynamodb=client)
        with pytest.raises(MetadataRequestError, match="registry-table:no-such-table"):
            missing.get_subject("750101")  # a wrong table name is not worth retrying


# --------------------------------------------------------------------------- configuration
def test_service_from_spec_forms() -> None:
    assert service_from_spec(None) is None
    assert service_from_spec("") is None
    assert service_from_spec("none") is None
    assert isinstance(
        service_from_spec("registry-table:t", dynamodb=object()), RegistryTableService
    )
    http = service_from_spec("https://abc.execute-api.us-east-1.amazonaws.com/v1", retries=1)
    assert isinstance(http, RegistryHttpService) and http.retries == 1
    assert isinstance(service_from_spec("http://127.0.0.1:9/"), RegistryHttpService)
    assert isinstance(service_from_spec("aind:https://aind-metadata-service"), AindMetadataService)
    for bad in (
        "ftp://x",
        "registry-table:",
        "aind:",
        "metadata.example.org",
        "aind:http://aind-metadata-service",  # plain http off this machine
        "http://169.254.169.254/latest",
    ):
        with pytest.raises(ConfigurationError):
            service_from_spec(bad)


def spec_from(environ: dict[str, str]) -> str | None:
    return Settings.from_env(environ).metadata_service_spec()


def test_spec_from_environment_defaults_to_the_stacks_registry_table() -> None:
    assert spec_from({"METADATA_SERVICE": "", "REGISTRY_TABLE": "t"}) == ("registry-table:t")
    assert spec_from({"METADATA_SERVICE": "aind:http://x", "REGISTRY_TABLE": "t"}) == (
        "aind:http://x"
    )
    assert spec_from({}) is None
    assert service_from_spec(spec_from({"METADATA_SERVICE": "none", "REGISTRY_TABLE": "t"})) is None


def test_only_the_deployments_own_registry_is_signed() -> None:
    own = "https://abc.execute-api.us-east-1.amazonaws.com/v1"
    assert service_from_spec(own + "/", deployment_spec=own).sign  # type: ignore[union-attr]
    elsewhere = service_from_spec("https://metadata.example.org", deployment_spec=own)
    assert isinstance(elsewhere, RegistryHttpService) and not elsewhere.sign
    assert not service_from_spec(own).sign  # type: ignore[union-attr]  # no deployment: unsigned
    assert service_from_spec("https://metadata.example.org", sign=True).sign  # type: ignore[union-attr]
    # an AIND service is not our registry
    assert not service_from_spec(own, deployment_spec="aind:" + own).sign  # type: ignore[union-attr]


def test_a_redirect_is_answered_not_followed(fake: FakeService) -> None:
    """urllib would resend the signature to wherever a redirect points."""
    fake.script["/subjects/750101"] = [
        Reply(302, {"message": "moved"}, {"Location": f"{fake.url}/elsewhere"})
    ]
    with pytest.raises(MetadataRequestError):
        registry(fake, sign=True, credentials=Credentials("AKID", "secret")).get_subject("750101")
    assert [r.path for r in fake.requests] == ["/subjects/750101"]
