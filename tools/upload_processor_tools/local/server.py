"""`upload-processor local serve`: the local cloud on a moto server, for tools in other processes.

The same deployment as `LocalCloud` (template.yaml through the SAM translator, handlers
in-process through moto's `_invoke_lambda` seam), but served over HTTP by moto's
`ThreadedMotoServer` on 127.0.0.1, so that `submit`, `status`, the AWS CLI
(`--endpoint-url`) and boto3 (`AWS_ENDPOINT_URL`) in other processes can talk to it.

How the pieces meet:
- the server runs in this process (a thread), so the seam still runs our handlers here;
- moto server mode takes its configuration through `POST /moto-api/config`:
  `{"stepfunctions": {"execute_state_machine": true}}` makes it really execute the ASL;
- the ASL interpreter's `aws-sdk:*` and `lambda:invoke` calls go over HTTP to
  `localhost:$MOTO_PORT` (moto.stepfunctions.parser.asl.utils.boto_client), so MOTO_PORT
  is set to the server's port while it runs;
- every function's environment gets `AWS_ENDPOINT_URL=http://127.0.0.1:<port>`: the handlers'
  boto3 clients talk to the server, as a deployed function talks to AWS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from upload_processor.errors import LocalModeError
from upload_processor_tools.local.cloud import (
    SFN_CONFIG,
    DeployedResources,
    Deployer,
    Deployment,
    project_root,
)
from upload_processor_tools.local.seam import REGION, RUNNER, fake_credentials, install_seam

DEFAULT_PORT = 5050
# The addresses --host accepts: the state machine reaches the server on localhost, so it must
# listen there (0.0.0.0 listens there too, and on every other interface).
BINDABLE_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0")  # noqa: S104 - a choice the user makes
# Of those, the ones no other machine can reach (the server has no authentication).
LOCAL_ONLY_HOSTS = ("127.0.0.1", "localhost")


def exposure_warning(host: str) -> str | None:
    """What to tell the user when `host` makes the unauthenticated local cloud reachable from
    other machines (anyone who can connect may read and change every bucket, table and
    queue in it); None for a loopback address."""
    if host in LOCAL_ONLY_HOSTS:
        return None
    return (
        f"WARNING: --host {host} exposes the local cloud on every network interface with NO "
        "authentication: anyone who can reach this machine can read, change and delete "
        "everything in it. Use it only on a trusted network (e.g. for a sam local invoke "
        "container) and prefer --host 127.0.0.1."
    )


_QUIET_LOGGERS = {"werkzeug": logging.WARNING, "moto.stepfunctions.parser": logging.CRITICAL}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _moto_server_class() -> type:
    """moto's ThreadedMotoServer, made to report a failed bind instead of waiting forever."""
    from moto.server import ThreadedMotoServer

    class _Server(ThreadedMotoServer):  # type: ignore[misc, valid-type]
        error: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as exc:  # the bind failed: wake start() up with the error
                self.error = exc
                self._server_ready_event.set()

    return _Server


class _EndpointSession:
    """A boto3 session whose clients all talk to the local server (what Deployer needs)."""

    def __init__(self, endpoint_url: str) -> None:
        import boto3

        self.endpoint_url = endpoint_url
        self._session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
            aws_session_token="testing",  # noqa: S106
            region_name=REGION,
        )

    def client(self, service: str, **kwargs: Any) -> Any:
        kwargs.setdefault("region_name", REGION)
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        return self._session.client(service, **kwargs)


class LocalServer(DeployedResources):
    """The local cloud served over HTTP: `with LocalServer(port) as server: ...`.

    `port=0` picks a free port. Only one runs per process (moto's state and MOTO_PORT are
    process-wide); do not run it while a `LocalCloud` (mock_aws) is active in the same process.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        *,
        root: Path | None = None,
        log_level: str | None = "WARNING",
        parameter_overrides: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        if host not in BINDABLE_HOSTS:
            raise LocalModeError(
                f"--host {host!r}: the state machine reaches the server on localhost, so bind "
                f"it to one of {', '.join(BINDABLE_HOSTS)}"
            )
        self.host = host
        self.port = port
        self.root = root or project_root()
        self.log_level = log_level
        self.parameter_overrides = parameter_overrides
        self.verbose = verbose
        self.deployment: Deployment | None = None
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_sfn_config: dict[str, Any] | None = None
        self._saved_levels: dict[str, int] = {}

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        """Where clients reach it (always the loopback address)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        """Start the moto server, configure it, deploy template.yaml into it."""
        if self._server is not None:
            raise LocalModeError("the local server is already running")
        from moto.core.config import default_user_config

        fake_credentials()
        install_seam()
        server = _moto_server_class()(ip_address=self.host, port=self.port, verbose=False)
        server.start()  # port 0: the system picks a free one
        if server.error is not None:
            raise LocalModeError(
                f"cannot listen on {self.host}:{self.port}: {server.error}; choose another --port"
            ) from server.error
        self._server = server
        self.port = int(server.get_host_and_port()[1])
        if not self.verbose:
            # one line per request, and every failed execution's ASL state dumped: the job
            # records, `status` and the notifications say what happened
            for name, level in _QUIET_LOGGERS.items():
                logger = logging.getLogger(name)
                self._saved_levels[name] = logger.level
                logger.setLevel(level)
        try:
            self._saved_env = {k: os.environ.get(k) for k in ("MOTO_PORT",)}
            os.environ["MOTO_PORT"] = str(self.port)
            self._saved_sfn_config = dict(default_user_config.get("stepfunctions", {}))
            self._post("/moto-api/config", SFN_CONFIG)
            RUNNER.env_overrides = {"LOG_LEVEL": self.log_level} if self.log_level else {}
            deployer = Deployer(
                _EndpointSession(self.endpoint_url),
                self.root,
                function_environment={"AWS_ENDPOINT_URL": self.endpoint_url},
            )
            self.deployment = deployer.deploy(self.parameter_overrides)
        except BaseException:
            self.stop(grace=0)
            raise
        return self

    def stop(self, grace: float = 30) -> None:
        """Let running executions finish (up to `grace` seconds), then shut the server down.

        moto's state lives in memory: it is reset, so a later start begins empty.
        """
        if self._server is None:
            return
        from moto.core.config import default_user_config

        with contextlib.suppress(Exception):
            if grace > 0 and self.deployment is not None:
                self.wait_idle(timeout=grace)
        with contextlib.suppress(Exception):
            self._post("/moto-api/reset", None)
        self._server.stop()
        self._server = None
        for fn in self.deployment.functions.values() if self.deployment else []:
            RUNNER.functions.pop(fn.name, None)
        if self._saved_sfn_config is not None:
            default_user_config["stepfunctions"] = self._saved_sfn_config  # type: ignore[typeddict-item]
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, level in self._saved_levels.items():
            logging.getLogger(name).setLevel(level)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _post(self, path: str, body: Any) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            self.endpoint_url + path,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()

    # -- what was deployed ------------------------------------------------------------------
    def _d(self) -> Deployment:
        if self.deployment is None:
            raise LocalModeError("the local server is not running")
        return self.deployment

    def client(self, service: str) -> Any:
        """A boto3 client on the server."""
        return _EndpointSession(self.endpoint_url).client(service)

    def running_executions(self) -> list[str]:
        """ARNs of executions still running."""
        sfn = self.client("stepfunctions")
        out = sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")
        return [e["executionArn"] for e in out["executions"]]

    def wait_idle(self, timeout: float = 30) -> bool:
        """Block until no execution runs (True) or timeout seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while self.running_executions():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True


def banner(server: LocalServer) -> list[str]:
    """What `local serve` prints once it is ready: the endpoint, names, and how to use them."""
    names = server.resources()
    url = server.endpoint_url
    lines = [
        f"endpoint            {url}   (region {REGION}, any credentials)",
        f"staging bucket      {names['staging_bucket']}",
        f"archive bucket      {names['archive_bucket']}",
        f"open archive bucket {names['open_archive_bucket']}",
        f"ingest queue        {names['ingest_queue_url']}",
        f"dead-letter queue   {names['ingest_dead_letter_queue_url']}",
        f"notification topic  {names['notification_topic_arn']}",
        f"jobs table          {names['jobs_table']}",
        f"registry table      {names['registry_table']}",
        f"registry            registry-table:{names['registry_table']}   (--registry SPEC)",
        f"state machine       {names['state_machine_arn']}",
        "",
        "point tools at it (this shell's AWS CLI too):",
        f'  eval "$(upload-processor local env --port {server.port})"',
        f"  (that is: export AWS_ENDPOINT_URL={url} AWS_DEFAULT_REGION={REGION} and fake keys)",
        f"  upload-processor submit SESSION_DIR --staging s3://{names['staging_bucket']}/rig-1/SESSION",
        "  upload-processor status",
        f"  aws --endpoint-url {url} s3 ls s3://{names['staging_bucket']}/   (or after the eval: aws s3 ls)",
        "  upload-processor registry put subject subject.json   (the registry table above)",
        "alerts: every notification published is shown below as it is sent (--no-alerts: not)",
        "a `sam local invoke` container: serve with --host 0.0.0.0 and give the function "
        f"AWS_ENDPOINT_URL=http://host.docker.internal:{server.port} (--env-vars)",
    ]
    return lines
