"""A retry re-runs the failed execution's input; one from before the registration states is
refused with what to do instead (never a crash, never an execution that cannot finish)."""

from __future__ import annotations

import json

import pytest

from upload_processor.errors import OperationRefusedError
from upload_processor.operations.control import _original_input

BASE = {"job_id": "j", "job": {}, "bucket": "staging", "prefix": "lab/s"}
FUNCTIONS = {"gather": "g", "transfer": "t", "finalize": "f"}


def test_an_input_with_every_function_is_rerun() -> None:
    raw = json.dumps({**BASE, "functions": {**FUNCTIONS, "registration": "r"}})
    assert _original_input(raw, "j").functions.registration == "r"


def test_an_input_from_before_the_registration_states_is_refused() -> None:
    raw = json.dumps({**BASE, "functions": FUNCTIONS})
    with pytest.raises(OperationRefusedError, match=r"Upload its upload_job\.json again"):
        _original_input(raw, "j")
