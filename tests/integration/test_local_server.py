"""LocalServer, the Python API behind `local serve`: in this process, over HTTP."""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path

import pytest

from upload_processor.errors import LocalModeError
from upload_processor_tools.local.server import LocalServer, banner, exposure_warning, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_local_server_deploys_serves_and_stops(tmp_path: Path) -> None:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    before = os.environ.get("MOTO_PORT")
    with LocalServer(0, root=ROOT) as server:
        assert server.port > 0
        assert os.environ["MOTO_PORT"] == str(server.port)
        names = server.resources()
        s3 = server.client("s3")
        assert {b["Name"] for b in s3.list_buckets()["Buckets"]} >= {
            names["staging_bucket"],
            names["archive_bucket"],
        }
        assert names["ingest_queue_url"].startswith(server.endpoint_url)
        fn = server.deployment.functions["IngestFunction"]
        assert fn.environment["AWS_ENDPOINT_URL"] == server.endpoint_url
        assert any(server.endpoint_url in line for line in banner(server))

        # the port is taken: a second server says so instead of waiting forever
        started = time.monotonic()
        with pytest.raises(LocalModeError, match="cannot listen"):
            LocalServer(server.port, root=ROOT).start()
        assert time.monotonic() - started < 10
        port = server.port
    assert os.environ.get("MOTO_PORT") == before
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 1)


def test_local_server_binds_only_where_the_state_machine_reaches_it() -> None:
    with pytest.raises(LocalModeError, match="--host"):
        LocalServer(free_port(), "192.0.2.1", root=ROOT)


def test_binding_every_interface_warns_that_nothing_is_authenticated() -> None:
    for host in ("127.0.0.1", "localhost"):
        assert exposure_warning(host) is None
    warning = exposure_warning("0.0.0.0")
    assert warning is not None
    assert "NO authentication" in warning and "0.0.0.0" in warning
