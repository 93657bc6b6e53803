"""Strict JSON (metadata.parse): what json.loads accepts but a metadata file must not hold."""

from __future__ import annotations

import json

import pytest

from upload_processor.errors import DuplicateKeyError, NonFiniteNumberError, UploadProcessorError
from upload_processor.metadata import loads_strict
from upload_processor.metadata.parse import parse_file


def test_loads_strict_reads_plain_json() -> None:
    assert loads_strict('{"a": [1, 2.5, null], "b": {"c": "d"}}') == {
        "a": [1, 2.5, None],
        "b": {"c": "d"},
    }


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"x": {"a": 1, "a": 1}}'])
def test_loads_strict_refuses_a_repeated_key(text: str) -> None:
    with pytest.raises(DuplicateKeyError) as caught:
        loads_strict(text)
    assert caught.value.key == "a"
    assert isinstance(caught.value, UploadProcessorError)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_loads_strict_refuses_non_finite_numbers(constant: str) -> None:
    with pytest.raises(NonFiniteNumberError) as caught:
        loads_strict(f'{{"a": {constant}}}')
    assert caught.value.constant == constant


def test_loads_strict_leaves_syntax_errors_to_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_strict('{"a": }')


def test_parse_file_turns_each_refusal_into_one_issue() -> None:
    issues: list = []
    assert parse_file("subject.json", b'{"a": 1, "a": 2}', issues) is None
    assert parse_file("procedures.json", b'{"a": NaN}', issues) is None
    assert parse_file("instrument.json", b"[1]", issues) is None
    assert [(i.file, i.rule) for i in issues] == [
        ("subject.json", "json.duplicate_key"),
        ("procedures.json", "json.malformed"),
        ("instrument.json", "json.not_object"),
    ]
    assert "repeats the key 'a'" in issues[0].message
    assert "contains NaN" in issues[1].message
