"""Editing a JSON text to hold a new value while the user's bytes stay where nothing changed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deck_tray.core import json_splice as js


@pytest.mark.parametrize(("text", "indent"), [
    ('{\n    "a": 1\n}', 4), ('{\n\t"a": 1\n}', "\t"), ('{\n "a": 1\n}', 1), ('{"a": 1}', 2), (None, 2),
])
def test_detect_indent(text: str | None, indent: int | str) -> None:
    assert js.detect_indent(text) == indent


def test_only_the_changed_member_is_written_anew() -> None:
    text = ('{\n    "model": "opus",   "ünï": [1,2,  3],\n    "env": {"A": "1"},\n'
            '    "list": [\n        {"x": 1}\n    ]\n}\n')
    old = json.loads(text)
    new = json.loads(text)
    new["list"].append({"y": 2})
    new["added"] = True
    out = js.edit_json(text, old, new)
    assert json.loads(out) == new
    assert out.startswith('{\n    "model": "opus",   "ünï": [1,2,  3],\n    "env": {"A": "1"},\n')
    assert '        {"x": 1},\n        {\n            "y": 2\n        }\n    ],\n    "added": true\n}\n' in out
    assert js.edit_json(out, new, old) == text


def test_duplicate_keys_and_blank_files_are_written_whole() -> None:
    assert js.edit_json('{"a": 1, "a": 2}', {"a": 2}, {"a": 3}) == '{\n  "a": 3\n}'
    assert js.edit_json(None, {}, {"a": [1]}) == '{\n  "a": [\n    1\n  ]\n}\n'
    assert js.edit_json("  \n", {}, {}) == "{}\n"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(old=st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=4),
       new=st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=4),
       indent=st.sampled_from([None, 1, 2, 4, "\t"]))
def test_edit_json_always_gives_the_new_value(old: dict[str, Any], new: dict[str, Any],
                                              indent: int | str | None) -> None:
    text = json.dumps(old, indent=indent, ensure_ascii=False)
    out = js.edit_json(text, old, new)
    assert json.loads(out) == new
    if old == new:
        assert out == text
