"""The state machine and the stage contracts agree: every JSON path the ASL reads exists in the
model of the stage that writes that part of the state, and every error it names is ours or AWS's.

The paths are found by walking statemachine/upload.asl.json (Parameters, ItemSelector,
ItemReader, ResultSelector, Choice Variables, also inside the Map's ItemProcessor); the state's
shape is built from the models in upload_processor.domain.contracts and from what the ASL itself
adds (each ResultPath: a task's selected result, a Catch's error, a Pass state's Result).
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from tests.paths import ROOT
from upload_processor import errors
from upload_processor.domain.contracts import (
    CompleteInput,
    ExecutionInput,
    FailedInput,
    GatherResult,
    RejectedInput,
    StateError,
    TransferBatchInput,
    TransferBatchResult,
)

ASL: dict[str, Any] = json.loads(
    (ROOT / "statemachine/upload.asl.json").read_text().replace("${MapMaxConcurrency}", "20")
)
# What each function returns, by the role `$.functions.<role>` names (finalize: a free-form
# summary, not read by the ASL beyond storing it).
OUTPUTS: dict[str, Any] = {
    "gather": GatherResult,
    "transfer": TransferBatchResult,
    "finalize": dict,
    "ecephys": TransferBatchResult,
    "registration": dict,
}
FINALIZE_INPUTS = {
    typing.get_args(model.model_fields["outcome"].annotation)[0]: model
    for model in (CompleteInput, RejectedInput, FailedInput)
}


def _path_values(node: Any) -> Iterator[str]:
    """Every `"<key>.$": "$..."` value under node (not `$$.` context paths, not intrinsics)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if (key.endswith(".$") and isinstance(value, str) and value.startswith("$.")) or (
                key.endswith(".$") and value == "$"
            ):
                yield value
            else:
                yield from _path_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _path_values(value)


def _choice_variables(rules: list[dict[str, Any]]) -> Iterator[str]:
    for rule in rules:
        if "Variable" in rule:
            yield rule["Variable"]
        for nested in ("And", "Or"):
            yield from _choice_variables(rule.get(nested, []))
        if "Not" in rule:
            yield from _choice_variables([rule["Not"]])


def _role(state: dict[str, Any]) -> str | None:
    """Which pipeline function a Task invokes (`$.functions.<role>` or the Map item's `$.function`)."""
    name = (state.get("Parameters") or {}).get("FunctionName.$", "")
    if name.startswith("$.functions."):
        return name.rsplit(".", 1)[1]
    if name == "$.ecephys_function":
        return "ecephys"
    return "transfer" if name == "$.function" else None


def _added_by_asl(states: dict[str, Any]) -> dict[str, Any]:
    """What the states add to the state at their ResultPath (and Catch ResultPath)."""
    added: dict[str, Any] = {}
    for state in states.values():
        for catch in state.get("Catch", []):
            if catch["ResultPath"]:  # null: the Catch keeps the state as it was
                added[catch["ResultPath"].removeprefix("$.")] = StateError
        path = state.get("ResultPath")
        if not path:
            continue
        if state["Type"] == "Pass":
            added[path.removeprefix("$.")] = type(state["Result"])
        elif state["Type"] == "Task":
            response = {"Payload": OUTPUTS[_role(state) or ""]}
            selector = state.get("ResultSelector")
            added[path.removeprefix("$.")] = (
                {k.removesuffix(".$"): _resolve(response, v) for k, v in selector.items()}
                if selector
                else response
            )
    return added


def _unwrap(annotation: Any) -> Any:
    """A field's type, Optional and Literal stripped to what a path can descend into."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in inner if inspect.isclass(a) and issubclass(a, BaseModel)]
        return models[0] if models else _unwrap(inner[0])
    if origin is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return origin or annotation


def _resolve(scope: Any, path: str) -> Any:
    """The type at `path` in scope (a model, or a dict of name -> type); KeyError if absent."""
    current = scope
    for part in [p for p in path.removeprefix("$").split(".") if p]:
        if isinstance(current, dict):
            if part not in current:
                raise KeyError(f"{path}: no {part!r} in {sorted(current)}")
            current = current[part]
        elif inspect.isclass(current) and issubclass(current, BaseModel):
            fields = current.model_fields
            name, indexed, _ = part.partition("[")  # `batch[0]`: an element of a list field
            if name not in fields:
                raise KeyError(f"{path}: {current.__name__} has no field {name!r}")
            annotation = fields[name].annotation
            if indexed:
                if typing.get_origin(annotation) is not list:
                    raise KeyError(f"{path}: {name!r} is not a list")
                annotation = typing.get_args(annotation)[0]
            current = _unwrap(annotation)
        elif current in (dict, Any):
            return Any  # free-form (the resolved job, a summary): any key may be read
        else:
            raise KeyError(f"{path}: {part!r} read from a {getattr(current, '__name__', current)}")
    return current


def _reads(states: dict[str, Any], scope: Any, item_scope: Any) -> Iterator[tuple[str, str, Any]]:
    """(state, path, the scope it is read from) for every path the states read."""
    for name, state in states.items():
        for key in ("Parameters", "ItemSelector"):
            for path in _path_values(state.get(key)):
                yield name, path, scope
        for path in _path_values((state.get("ItemReader") or {}).get("Parameters")):
            yield name, path, scope
        for path in _choice_variables(state.get("Choices", [])):
            yield name, path, scope
        role = _role(state)
        for path in _path_values(state.get("ResultSelector")):
            yield name, path, {"Payload": OUTPUTS[role or ""]}
        processor = state.get("ItemProcessor")
        if processor:
            yield from _reads(processor["States"], item_scope, item_scope)


def _root_scope() -> dict[str, Any]:
    fields = {name: _unwrap(f.annotation) for name, f in ExecutionInput.model_fields.items()}
    return {**fields, **_added_by_asl(ASL["States"])}


READS = list(_reads(ASL["States"], _root_scope(), TransferBatchInput))


def test_the_walk_finds_the_paths_that_matter() -> None:
    paths = {path for _, path, _ in READS}
    assert {
        "$.gather.result.reject",
        "$.gather.result.plan_key",
        "$.functions.transfer",
        "$.job_version_id",
        "$.Payload.batch",
        "$.function",
        "$.ecephys_function",
        "$.batch[0].stream",
        "$.error",
        "$.failed_step",
    } <= paths


@pytest.mark.parametrize(("state", "path", "scope"), READS, ids=[f"{s}:{p}" for s, p, _ in READS])
def test_every_path_the_asl_reads_exists_in_its_model(state: str, path: str, scope: Any) -> None:
    _resolve(scope, path)


def test_the_map_item_is_the_transfer_input() -> None:
    selector = ASL["States"]["TransferFiles"]["ItemSelector"]
    built = {k.removesuffix(".$") for k in selector}
    assert built == set(TransferBatchInput.model_fields)


@pytest.mark.parametrize("state", ["Finalize", "Reject", "MarkFailed"])
def test_each_finalize_payload_is_its_outcomes_model(state: str) -> None:
    payload = ASL["States"][state]["Parameters"]["Payload"]
    model = FINALIZE_INPUTS[payload["outcome"]]
    given = {k.removesuffix(".$") for k in payload}
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    assert given <= set(model.model_fields), given - set(model.model_fields)
    assert required <= given, required - given


REGISTRATION_STATES = sorted(
    name
    for name, state in ASL["States"].items()
    if state.get("Parameters", {}).get("FunctionName.$") == "$.functions.registration"
)


def test_the_registration_states_run_after_finalize_and_end_well() -> None:
    """Finalize -> RegisterCodeOcean -> StartPipelines -> Catalog -> Announce -> Registered (a
    Succeed; the catalog carries what the Code Ocean steps recorded): every registration
    state's Catch goes on to the next step, never to MarkFailed or a Fail state."""
    states = ASL["States"]
    assert states["Finalize"]["Next"] == "RegisterCodeOcean"
    assert states["StartPipelines"]["Next"] == "Catalog"
    assert states["Catalog"]["Next"] == "Announce"
    assert states["Announce"]["Next"] == "Registered"
    assert states["Registered"]["Type"] == "Succeed"
    for name in REGISTRATION_STATES:
        for catch in states[name]["Catch"]:
            target = states[catch["Next"]]
            assert target["Type"] != "Fail" and catch["Next"] != "MarkFailed", name
        assert states[name]["ResultPath"] is None, name  # the state passes on unchanged


@pytest.mark.parametrize("state", REGISTRATION_STATES)
def test_each_registration_payload_is_the_registration_input(state: str) -> None:
    from upload_processor.domain.registration import STEPS, RegistrationInput

    payload = ASL["States"][state]["Parameters"]["Payload"]
    model = RegistrationInput
    given = {k.removesuffix(".$") for k in payload}
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    assert given <= set(model.model_fields), given - set(model.model_fields)
    assert required <= given, required - given
    assert payload["step"] in STEPS
    # a <State>Failed task records the failure of the step its state ran
    if state.endswith("Failed"):
        assert payload["error.$"] == "$.registration_error"
        assert (
            ASL["States"][state.removesuffix("Failed")]["Parameters"]["Payload"]["step"]
            == (payload["step"])
        )


def _error_names(node: Any, state: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for name in node.get("ErrorEquals", []):
            yield state, name
        for key, value in node.items():
            nested = key if isinstance(value, dict) and "Type" in value else state
            yield from _error_names(value, nested)
    elif isinstance(node, list):
        for value in node:
            yield from _error_names(value, state)


ERROR_NAMES = sorted(set(_error_names(ASL)))


@pytest.mark.parametrize(("state", "name"), ERROR_NAMES, ids=[f"{s}:{n}" for s, n in ERROR_NAMES])
def test_every_error_name_is_ours_or_aws(state: str, name: str) -> None:
    if name.startswith(("States.", "Lambda.")):
        return
    cls = getattr(errors, name, None)
    assert inspect.isclass(cls) and issubclass(cls, errors.UploadProcessorError), (
        f"{state} names {name!r}, which is neither a class in upload_processor.errors nor an "
        "AWS-defined States.* / Lambda.* error"
    )


def test_permanent_errors_are_never_retried() -> None:
    """Only TransientError (and the transient MetadataServiceError) of ours is retried."""
    retried = {
        (name, error)
        for name, state in _all_states()
        for retry in state.get("Retry", [])
        for error in retry["ErrorEquals"]
        if not error.startswith(("States.", "Lambda."))
    }
    permanent = {
        (name, error)
        for name, error in retried
        if error != "TransientError"
        and not getattr(getattr(errors, error, None), "transient", False)
    }
    assert not permanent


def _all_states() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in ASL["States"].items():
        yield name, state
        yield from (state.get("ItemProcessor") or {}).get("States", {}).items()
