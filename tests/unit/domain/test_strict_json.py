"""Strict JSON: repeated keys and NaN/Infinity are errors named by their field (issue 13)."""

from __future__ import annotations

import pytest

from upload_processor.domain.strict_json import loads_strict
from upload_processor.errors import StrictJsonError


def test_plain_json_parses_as_json_loads_does() -> None:
    assert loads_strict('{"a": [1, {"b": null}], "c": 1.5}') == {"a": [1, {"b": None}], "c": 1.5}


def test_every_problem_is_named_by_its_field_depth_first() -> None:
    with pytest.raises(StrictJsonError) as caught:
        loads_strict('{"a": 1, "t": {"x": [NaN, {"k": 1, "k": 2}]}, "a": -Infinity}')
    assert caught.value.problems == [
        ("duplicate_key", "a", "a"),
        ("not_finite", "a", "-Infinity"),  # the value kept for "a": the last one
        ("not_finite", "t.x.0", "NaN"),
        ("duplicate_key", "t.x.1.k", "k"),
    ]


def test_a_bare_constant_is_the_document_itself() -> None:
    with pytest.raises(StrictJsonError) as caught:
        loads_strict("Infinity")
    assert caught.value.problems == [("not_finite", "", "Infinity")]
