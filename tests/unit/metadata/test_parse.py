"""metadata.parse: a metadata file's bytes to one JSON object, or one issue saying what is wrong.

The strict loader itself (duplicate keys, NaN/Infinity) is tested in test_strict_json.py.
"""

from __future__ import annotations

from upload_processor.metadata.parse import parse_file


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


def test_a_nested_duplicate_names_where_it_is() -> None:
    issues: list = []
    assert parse_file("subject.json", b'{"x": {"k": 1, "k": 2}}', issues) is None
    assert issues[0].rule == "json.duplicate_key"
    assert "repeats the key 'k' inside one object (at x.k)" in issues[0].message
