"""`upload-processor versions` against a local cloud over HTTP: it finds local mode's functions
from the endpoint alone and lists what the local deployment published."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer
from typer.testing import CliRunner

from upload_processor import __version__
from upload_processor_tools.commands.versions import versions
from upload_processor_tools.local.server import LocalServer

ROOT = Path(__file__).resolve().parents[2]


def test_versions_lists_what_the_local_deployment_published() -> None:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    app = typer.Typer()
    app.command()(versions)
    with LocalServer(0, root=ROOT) as server:
        result = CliRunner().invoke(app, ["--json", "--endpoint-url", server.endpoint_url])
        assert result.exit_code == 0, result.output
        functions = json.loads(result.stdout)["functions"]
        assert [f["name"] for f in functions] == [
            server.deployment.functions[logical].name
            for logical in (
                "GatherMetadataFunction",
                "TransferFunction",
                "FinalizeFunction",
                "RegisterFunction",
            )
        ]
        for fn in functions:
            assert fn["alias"] == {"name": "live", "version": "1"}
            assert [(v["version"], v["code_version"]) for v in fn["versions"]] == [
                ("1", __version__)
            ]
