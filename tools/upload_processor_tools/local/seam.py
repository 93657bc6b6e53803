"""The in-process Lambda seam: moto invokes our handlers here instead of in Docker.

moto runs Lambda code only through Docker. Its one seam for running a handler in-process is
`moto.awslambda.models.LambdaFunction._invoke_lambda` (private: moto is pinned, and
tests/integration/test_moto_seam.py fails loudly if it moves). Every path that invokes a
function (direct invoke, Step Functions, S3/SQS event sources) goes through it. Invocations
are serialised: handlers share process-global state (environment, module caches).

moto hands the seam the version it resolved (a copy of the function under the same name, its
ARN qualified): every version runs the project's current code in-process, and the runner
records which qualified ARN each invocation was for (`RUNNER.calls`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from upload_processor.errors import LocalModeError

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

# Settings every in-process handler gets on top of its template environment: no X-Ray daemon
# here, and fake credentials so nothing can reach a real account.
LOCAL_FUNCTION_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def fake_credentials() -> None:
    """Make sure no code path can pick up a real account (tests and demo never need one)."""
    for key, value in LOCAL_FUNCTION_ENV.items():
        if key.startswith("AWS_"):
            os.environ[key] = value


@dataclass
class LocalFunction:
    """A function of the template, as the in-process runner needs it."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int
    module: ModuleType | None = None


@dataclass(frozen=True)
class Invocation:
    """One in-process invocation: which function, which published version, how it ended."""

    logical_id: str
    arn: str  # the ARN moto resolved: qualified with the version for a published version
    version: str  # "$LATEST", or the published version number
    errored: bool


class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    def __init__(self, fn: LocalFunction, arn: str | None = None, version: str = "$LATEST") -> None:
        self.function_name = fn.name
        self.function_version = version
        self.invoked_function_arn = arn or fn.arn
        self.memory_limit_in_mb = fn.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + fn.timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InProcessRunner:
    """Runs template functions in this process; installed into moto's seam."""

    def __init__(self) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.lock = threading.RLock()
        self.invocations: list[tuple[str, bool]] = []
        self.calls: list[Invocation] = []
        self.env_overrides: dict[str, str] = {}

    def register(self, fn: LocalFunction) -> None:
        """Make a function invocable by name."""
        self.functions[fn.name] = fn

    def _load(self, fn: LocalFunction) -> Any:
        module_name, _, attr = fn.handler.rpartition(".")
        if fn.module is None:
            path = fn.code_dir / f"{module_name.replace('.', '/')}.py"
            spec = importlib.util.spec_from_file_location(f"_local_lambda_{fn.logical_id}", path)
            if spec is None or spec.loader is None:
                raise LocalModeError(f"cannot load handler {fn.handler} from {path}")
            module = importlib.util.module_from_spec(spec)
            with self._environment(fn):
                spec.loader.exec_module(module)
            fn.module = module
        return getattr(fn.module, attr)

    @contextlib.contextmanager
    def _environment(self, fn: LocalFunction, version: str = "$LATEST") -> Iterator[None]:
        values = {
            **fn.environment,
            **LOCAL_FUNCTION_ENV,
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            **self.env_overrides,
        }
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            shared = self._shared_keys()
            for key, old in saved.items():
                if old is not None:
                    os.environ[key] = old
                elif key not in shared:
                    os.environ.pop(key, None)

    def _shared_keys(self) -> set[str]:
        """Keys every function sets (the template's Globals, the local settings): they stay
        set between invocations. Other threads of the local cloud (moto's state machine
        threads, botocore) copy os.environ key by key, and a key removed in between fails
        that copy with a KeyError; a key every invocation sets again is never removed."""
        common = set(LOCAL_FUNCTION_ENV) | {
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_VERSION",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        }
        environments = [set(fn.environment) for fn in self.functions.values()]
        return common | (set.intersection(*environments) if environments else set())

    def invoke(
        self, name: str, event: Any, *, arn: str | None = None, version: str | None = None
    ) -> tuple[str, bool, str]:
        """Run one invocation; the result has moto's shape: (payload, errored, logs).

        `name` is the function's name (a published version keeps it); `arn` and `version` say
        which version moto resolved (a qualified ARN and its number, or $LATEST).
        """
        fn = self.functions.get(name)
        if fn is None:
            raise LocalModeError(f"function {name} is not part of the local deployment")
        version = version or "$LATEST"
        arn = arn or fn.arn
        with self.lock:
            try:
                handler = self._load(fn)
                with self._environment(fn, version):
                    result = handler(
                        event if event is not None else {}, LambdaContext(fn, arn, version)
                    )
                self.invocations.append((fn.logical_id, False))
                self.calls.append(Invocation(fn.logical_id, arn, version, False))
                return json.dumps(result, default=str), False, ""
            except Exception as exc:  # the Lambda runtime's own contract: report, don't raise
                self.invocations.append((fn.logical_id, True))
                self.calls.append(Invocation(fn.logical_id, arn, version, True))
                payload = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
                return json.dumps(payload), True, "".join(traceback.format_exception(exc))


RUNNER = InProcessRunner()


def install_seam() -> None:
    """Route moto's Lambda invocations to the in-process runner (and keep a stopped execution
    ABORTED when the task running under it fails afterwards: local/aborts.py)."""
    from moto.awslambda import models

    from upload_processor_tools.local.aborts import keep_stopped_executions_aborted

    keep_stopped_executions_aborted()

    original = getattr(models.LambdaFunction, "_invoke_lambda", None)
    if original is None:
        raise LocalModeError(
            "moto.awslambda.models.LambdaFunction._invoke_lambda is gone: the in-process Lambda "
            "seam moved; pin moto to the version in pyproject.toml"
        )
    if getattr(original, "_upload_processor_seam", False):
        return

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        # a published version (or an alias, which moto resolves to its version) is a copy of
        # the function under the same function_name, with its own ARN and version number
        return RUNNER.invoke(
            self.function_name,
            event,
            arn=getattr(self, "function_arn", None),
            version=str(getattr(self, "version", "$LATEST")),
        )

    _invoke_lambda._upload_processor_seam = True  # type: ignore[attr-defined]
    models.LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
