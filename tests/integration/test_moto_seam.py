"""The one private moto seam local mode relies on: fail loudly if it moves."""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any

import moto
from moto.awslambda.models import LambdaFunction

from upload_processor_tools.local.seam import RUNNER, install_seam

PINNED_MOTO = "5.2.5"


def test_moto_is_the_pinned_version() -> None:
    assert version("moto") == PINNED_MOTO, (
        f"moto {version('moto')} installed, local mode was verified against {PINNED_MOTO}: "
        "check LambdaFunction._invoke_lambda, then update the pin and this test"
    )
    assert moto.__version__ == PINNED_MOTO


def test_invoke_lambda_seam_exists_with_the_expected_signature() -> None:
    seam = LambdaFunction.__dict__.get("_invoke_lambda")
    assert seam is not None, "moto.awslambda.models.LambdaFunction._invoke_lambda moved"
    params = list(inspect.signature(seam).parameters)
    assert params[:2] == ["self", "event"], params
    # invoke() must still route through the seam and unpack its (payload, errored, logs) result
    source = inspect.getsource(LambdaFunction.invoke)
    assert "self._invoke_lambda(event=body)" in source
    assert "res, errored, logs" in source


def test_install_seam_replaces_it_once() -> None:
    install_seam()
    patched = LambdaFunction._invoke_lambda
    assert getattr(patched, "_upload_processor_seam", False)
    install_seam()
    assert LambdaFunction._invoke_lambda is patched
    assert RUNNER.lock is not None


def test_a_failure_after_a_stop_leaves_the_execution_aborted() -> None:
    """moto's Environment.set_error would replace a stop (AWS discards a task's late failure);
    local/aborts.py keeps ProgramStopped, and still records errors of running programs."""
    from moto.stepfunctions.parser.asl.eval import environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped

    install_seam()
    assert getattr(environment.Environment.set_error, "_upload_processor_seam", False)

    class Env:
        program_state_event = environment.threading.Event()

        def __init__(self, state: Any) -> None:
            self._program_state, self._frames = state, []
            self._state_mutex = environment.threading.RLock()

        def program_state(self) -> Any:
            return self._program_state

    stopped = Env(ProgramStopped(stop_date=None, cause="cancelled", error="Cancelled"))
    environment.Environment.set_error(stopped, {"error": "JobCancelledError", "cause": "late"})
    assert isinstance(stopped.program_state(), ProgramStopped)

    running = Env(environment.ProgramRunning())
    environment.Environment.set_error(running, {"error": "X", "cause": "y"})
    assert isinstance(running.program_state(), ProgramError)
