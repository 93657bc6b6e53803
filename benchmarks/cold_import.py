"""`cold_import`: the ingest handler's cold start, and whether it loads aind-data-schema.

Ingest runs for every upload_job.json and only parses a small job file: pulling in
aind-data-schema (hundreds of pydantic models) would make every cold start pay for what
only GatherMetadata needs. Each sample is a fresh interpreter that imports
``functions/ingest/app.py`` by file path (``functions/ingest`` on sys.path, as in the
Lambda), with tracing off and fake credentials; the baseline is a fresh interpreter that
imports ``aind_data_schema.core.metadata``: what a handler built on the library, the obvious
alternative, pays before its first line runs. The import is timed inside each child, the
whole process around it; each figure is the median (min-max) of N interleaved runs. Goal:
the handler's import <= 250 ms (an absolute budget: what every upload's first Lambda pays).

One more child imports the handler with an import hook that records, at the first
``aind_data_schema`` import, the chain of modules being executed at that moment, so that
a regression names its culprit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks import ROOT, Row
from benchmarks.timing import fmt, spread

HANDLER = ROOT / "functions" / "ingest" / "app.py"
FORBIDDEN = "aind_data_schema"
GOAL_MS = 250.0  # the handler's import
BASELINE = "import aind_data_schema.core.metadata"
# Not forbidden, but worth knowing: the schema's small enum/registry package.
WATCHED = (FORBIDDEN, "aind_data_schema_models")

_HANDLER_CHILD = """
import importlib.util, json, sys, time
handler_dir, handler_path, trace = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
watched = sys.argv[4].split(",")
chains = {}
if trace:
    class _Tracer:
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in watched and top not in chains:
                chain, frame = [], sys._getframe(1)
                while frame is not None:
                    module = frame.f_globals.get("__name__", "?")
                    if frame.f_code.co_name == "<module>" and module != "__main__":
                        chain.append(f"{module}:{frame.f_lineno}")
                    frame = frame.f_back
                chains[top] = [*reversed(chain), name]
            return None
    sys.meta_path.insert(0, _Tracer())
sys.path.insert(0, handler_dir)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", handler_path)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
assert callable(module.lambda_handler)
print(json.dumps({
    "import_s": elapsed,
    "n_modules": len(sys.modules),
    "watched": {
        top: {
            "loaded": top in sys.modules,
            "modules": sorted(m for m in sys.modules if m.split(".")[0] == top),
            "chain": chains.get(top, []),
        }
        for top in watched
    },
}))
"""

_BASELINE_CHILD = """
import json, sys, time
start = time.perf_counter()
import aind_data_schema.core.metadata
elapsed = time.perf_counter() - start
print(json.dumps({"import_s": elapsed, "n_modules": len(sys.modules)}))
"""


def _env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "PYTHONPROFILEIMPORTTIME")
    }
    env.update(
        {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "UploadProcessorBench",
            "POWERTOOLS_SERVICE_NAME": "ingest",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }
    )
    return env


def _child(code: str, *args: str, python_options: tuple[str, ...] = ()) -> dict[str, Any]:
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *python_options, "-c", code, *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(
            f"import child failed ({completed.returncode}): {completed.stderr[-2000:]}"
        )
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    data["process_s"] = wall
    data["stderr"] = completed.stderr
    return data


def _handler(trace: bool = False, python_options: tuple[str, ...] = ()) -> dict[str, Any]:
    return _child(
        _HANDLER_CHILD,
        str(HANDLER.parent),
        str(HANDLER),
        "1" if trace else "0",
        ",".join(WATCHED),
        python_options=python_options,
    )


def heaviest_packages(importtime: str, top: int = 6) -> list[tuple[str, float]]:
    """Self import time summed per top-level package, from ``-X importtime`` output, in ms."""
    totals: dict[str, float] = {}
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        try:
            self_us, _cumulative, name = (part.strip() for part in line[12:].split("|"))
            package = name.split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(self_us) / 1000
        except ValueError:
            continue
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)[:top]


def _baseline() -> dict[str, Any]:
    return _child(_BASELINE_CHILD)


def run(*, repeat: int) -> dict[str, Any]:
    # Warm-up: write .pyc files, fill the OS page cache; a Lambda image ships both.
    _handler()
    _baseline()
    handler_runs, baseline_runs = [], []
    for _ in range(repeat):
        baseline_runs.append(_baseline())
        handler_runs.append(_handler())
    traced = _handler(trace=True)
    profiled = _handler(python_options=("-X", "importtime"))

    def summary(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
        return spread([run[key] for run in runs])

    handler_import = summary(handler_runs, "import_s")
    baseline_import = summary(baseline_runs, "import_s")
    handler_process = summary(handler_runs, "process_s")
    baseline_process = summary(baseline_runs, "process_s")
    return {
        "handler": str(HANDLER.relative_to(ROOT)),
        "repeat": repeat,
        "aind_data_schema_loaded": traced["watched"][FORBIDDEN]["loaded"],
        "aind_data_schema_modules": traced["watched"][FORBIDDEN]["modules"],
        "import_chain": traced["watched"][FORBIDDEN]["chain"],
        "watched": traced["watched"],
        "handler_import_s": handler_import,
        "baseline_import_s": baseline_import,
        "import_ratio": handler_import["median"] / baseline_import["median"],
        "goal_ms": GOAL_MS,
        "within_goal": handler_import["median"] * 1000 <= GOAL_MS,
        "handler_process_s": handler_process,
        "baseline_process_s": baseline_process,
        "process_ratio": handler_process["median"] / baseline_process["median"],
        "handler_modules": traced["n_modules"],
        "baseline_modules": baseline_runs[-1]["n_modules"],
        "baseline": BASELINE,
        "heaviest_packages_ms": dict(heaviest_packages(profiled["stderr"])),
    }


def rows(result: dict[str, Any]) -> list[Row]:
    loaded = result["aind_data_schema_loaded"]
    return [
        Row(
            f"ingest cold import vs `{BASELINE}`",
            fmt(result["baseline_import_s"], "ms", 1000),
            fmt(result["handler_import_s"], "ms", 1000),
            f"{result['import_ratio']:.2f}",
            f"<= {GOAL_MS:g} ms",
            result["within_goal"],
        ),
        Row(
            "  the whole process (interpreter start + import)",
            fmt(result["baseline_process_s"], "ms", 1000),
            fmt(result["handler_process_s"], "ms", 1000),
            f"{result['process_ratio']:.2f}",
            "",
            None,
        ),
        Row(
            "  ingest loads aind_data_schema?",
            "yes",
            "yes" if loaded else "no",
            "",
            "no",
            not loaded,
        ),
    ]


def notes(result: dict[str, Any]) -> list[str]:
    heaviest = ", ".join(f"{n} {ms:.0f} ms" for n, ms in result["heaviest_packages_ms"].items())
    lines = []
    if result["aind_data_schema_loaded"]:
        lines.append(
            "cold_import: aind_data_schema is imported through "
            + " -> ".join(result["import_chain"])
        )
    for top, seen in result["watched"].items():
        if top != FORBIDDEN and seen["loaded"]:
            lines.append(
                f"cold_import: {top} ({len(seen['modules'])} modules) is imported through "
                + " -> ".join(seen["chain"])
            )
    lines.append(
        f"cold_import: {result['handler_modules']} modules loaded by the handler, "
        f"{result['baseline_modules']} by the baseline; heaviest packages (self import "
        f"time): {heaviest}."
    )
    return lines
