"""A stopped execution stays ABORTED in local mode, as in AWS.

In AWS, `StopExecution` ends the execution ABORTED at once; a Lambda already running finishes
its invocation and whatever it returns or raises is discarded. moto's interpreter instead keeps
the execution RUNNING until the running task returns, and if that task then *fails* (our
GatherMetadata ends its wait for files with JobCancelledError once the job is cancelled), its
`Environment.set_error` replaces the stopped state: the execution would end FAILED, and
`cancel` would report a failure it caused itself.

`keep_stopped_executions_aborted` wraps that one method so an error arriving after a stop leaves
the stop in place (set_ended and set_timed_out already do nothing once a program has stopped
or ended). moto is pinned; tests/integration/test_moto_seam.py fails loudly if the method or
the state class it checks moves.
"""

from __future__ import annotations

from typing import Any

from upload_processor.errors import LocalModeError


def keep_stopped_executions_aborted() -> None:
    """Install the wrapper once (idempotent)."""
    from moto.stepfunctions.parser.asl.eval import environment

    original = getattr(environment.Environment, "set_error", None)
    stopped = getattr(environment, "ProgramStopped", None)
    if original is None or stopped is None:
        raise LocalModeError(
            "moto's Step Functions Environment.set_error or ProgramStopped moved: pin moto to "
            "the version in pyproject.toml"
        )
    if getattr(original, "_upload_processor_seam", False):
        return

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self.program_state(), stopped):
            return  # stopped first: the execution is ABORTED, the late failure is discarded
        original(self, error)

    set_error._upload_processor_seam = True  # type: ignore[attr-defined]
    environment.Environment.set_error = set_error  # type: ignore[method-assign]
