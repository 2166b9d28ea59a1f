"""Where a key's statements sit in a TOML text (tomlkit), and where a new top-level one goes."""

from __future__ import annotations

import tomllib

import pytest

from deck_tray.core import toml_places as tp

CONFIG = '''# Codex settings
model = "gpt-5"
  notify = [
    "a",  # first
    "b",
  ]   # mine
instructions = """
[not.a.table]
notify = ["x"]
"""
tui.notify = ["dotted: not a statement of a table"]
inline = { notify = ["inline"] }

# about providers
[model_providers."my host"]
notify = 1

[[profiles]]
name = "a"
[[profiles]]
"notify" = ["quoted key"]
[profiles.sub]
notify = true
'''


def test_statements_are_found_where_they_are_with_their_lines_and_tables() -> None:
    layout = tp.find(CONFIG, "notify")
    got = [(s.header, s.value, s.line) for s in layout.statements]
    assert got == [("", ["a", "b"], 3), ('[model_providers."my host"]', 1, 16),
                   ("[[profiles]]", ["quoted key"], 21), ("[profiles.sub]", True, 23)]
    top = layout.statements[0]
    assert CONFIG[top.start:top.end] == '  notify = [\n    "a",  # first\n    "b",\n  ]   # mine\n'
    assert (top.indent, top.tail) == ("  ", "   # mine\n")
    for s in layout.statements:  # each span is whole lines holding just that statement
        assert s.start == 0 or CONFIG[s.start - 1] == "\n"
        assert CONFIG[s.end - 1] == "\n"
        assert tomllib.loads(CONFIG[s.start:s.end])["notify"] == s.value


def test_a_new_top_level_statement_goes_before_the_comments_of_the_first_table() -> None:
    layout = tp.find(CONFIG, "notify")
    assert CONFIG[:layout.insert_at].endswith('inline = { notify = ["inline"] }\n')
    assert CONFIG[layout.insert_at:].startswith("\n# about providers\n")
    assert not layout.insert_gap


@pytest.mark.parametrize(("text", "before", "gap"), [
    ("", "", False),
    ('a = 1', 'a = 1', False),
    ('a = 1\n\n\n', 'a = 1\n', False),
    ("[t]\nx = 1\n", "", True),
    ("# about t\n# more\n[t]\n", "", True),
    ("# mine\n\n# about t\n[t]\n", "# mine\n", False),
    ("a = 1\n\n\t[t]\n", "a = 1\n", False),
    ("a = 1\n[x.y]\nz = 1\n", "a = 1\n", True),
    ("a = 1\n[[x]]\n", "a = 1\n", True),
    ("a.b = 1\n# c\n[a.c]\n", "a.b = 1\n", True),
])
def test_insert_places(text: str, before: str, gap: bool) -> None:
    layout = tp.find(text, "notify")
    assert (text[:layout.insert_at], layout.insert_gap) == (before, gap)


def test_text_that_is_not_toml_is_refused_with_the_line() -> None:
    with pytest.raises(tp.LayoutError) as err:
        tp.find('a = 1\nb = "x\n', "notify")
    assert err.value.line == 2 and "tomlkit cannot read it" in str(err.value)

