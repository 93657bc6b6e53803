"""The ingest handler's cold import does not load aind-data-schema (issue 3): every upload
pays for ingest's cold starts, while only GatherMetadata needs the library's models.
The benchmark (`make bench`, cold_import) measures the time; this holds the rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.paths import ROOT

PROBE = """
import importlib.util, json, sys
sys.path[:0] = [{layer!r}]
spec = importlib.util.spec_from_file_location("app", {app!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == {top!r})))
"""


def _loaded(function: str, top: str = "aind_data_schema", **env_vars: str) -> list[str]:
    """The `top` modules a fresh interpreter holds after importing the handler."""
    code = PROBE.format(
        layer=str(ROOT / "layers" / "core"),
        app=str(ROOT / "functions" / function / "app.py"),
        top=top,
    )
    env = {
        **os.environ,
        "POWERTOOLS_SERVICE_NAME": "probe",
        "POWERTOOLS_TRACE_DISABLED": "1",
        **env_vars,
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("function", ["ingest", "transfer", "status"])
def test_handler_import_does_not_load_aind_data_schema(function: str) -> None:
    assert _loaded(function) == []


def test_the_probe_sees_the_library_where_it_is_loaded() -> None:
    """The same probe on GatherMetadata, which validates with the library, does see it."""
    assert "aind_data_schema" in _loaded("gather_metadata")


@pytest.mark.parametrize("function", ["ingest", "transfer", "finalize"])
def test_handler_import_with_tracing_off_does_not_load_the_xray_sdk(function: str) -> None:
    """Powertools' Tracer imports aws_xray_sdk (~100 ms) even when disabled: a handler gets
    it only when tracing is on (issue 17)."""
    assert _loaded(function, "aws_xray_sdk", LAMBDA_TASK_ROOT="/var/task") == []


def test_handler_import_with_tracing_on_loads_the_xray_sdk() -> None:
    """In Lambda with tracing on, the handler does trace (the probe can see the SDK)."""
    env = {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}
    assert "aws_xray_sdk" in _loaded("ingest", "aws_xray_sdk", **env)


CODEC_PROBE = """
import importlib.util, json, sys
sys.path[:0] = [{layer!r}]
spec = importlib.util.spec_from_file_location("app", {app!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import upload_processor.pipeline.ecephys_plan, upload_processor.pipeline.ecephys_seal
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & {{"numpy", "numcodecs", "zarr", "flac_numcodecs"}})))
"""


@pytest.mark.parametrize("function", ["gather_metadata", "finalize", "transfer"])
def test_the_core_functions_never_load_the_ecephys_codec(function: str) -> None:
    """numpy, numcodecs and the codec ship in the ecephys layer only (EcephysTransferFunction):
    GatherMetadata and Finalize plan and seal the ecephys streams without them."""
    code = CODEC_PROBE.format(
        layer=str(ROOT / "layers" / "core"), app=str(ROOT / "functions" / function / "app.py")
    )
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "probe", "POWERTOOLS_TRACE_DISABLED": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
