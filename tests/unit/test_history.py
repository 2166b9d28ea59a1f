"""History extraction and the search contract (core/history.py): captured samples, both
Codex record shapes, opencode messages, query quoting, filter strings and snippets."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.history import (
    MARK_CLOSE,
    MARK_OPEN,
    TOOL_TEXT_CHARS,
    ClaudeExtractor,
    CodexExtractor,
    ExtractState,
    HistoryEntry,
    HistoryRole,
    QueryError,
    fts_match,
    marked_segments,
    opencode_entries,
    parse_query,
    snippet,
)
from deck_tray.core.jsonl import read_complete_lines
from deck_tray.core.model import AgentKind

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def extract(ex: ClaudeExtractor | CodexExtractor, path: Path) -> list[HistoryEntry]:
    got = read_complete_lines(str(path), 0)
    assert got is not None
    out: list[HistoryEntry] = []
    for off, rec in got.records:
        out += ex.feed(rec, off)
    return out


def test_claude_interactive_sample() -> None:
    ex = ClaudeExtractor()
    path = FIXTURES / "claude-code-2.1.197-interactive.jsonl"
    entries = extract(ex, path)
    assert ex.state.session_id == "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"
    assert ex.state.cwd == "/home/dev/work/proj"
    assert ex.state.title == "Fake session"  # ai-title beats the first prompt
    assert [e.ordinal for e in entries] == list(range(len(entries)))
    prompts = [e.text for e in entries if e.role is HistoryRole.USER]
    assert prompts[:3] == ["please FAKE_BASH now", "second: FAKE_BASH please", "third: FAKE_ASK"]
    assert not any(p.startswith(("[Request interrupted", "<command-name>", "<local-command")) for p in prompts)
    assert "I will run a shell command." in [e.text for e in entries if e.role is HistoryRole.ASSISTANT]
    assert "Bash(echo hello-from-fake-bash)" in [e.text for e in entries if e.role is HistoryRole.TOOL]
    raw = path.read_bytes()
    for e in entries:  # the offset is the start of the record's line
        assert e.offset == 0 or raw[e.offset - 1:e.offset] == b"\n"
        assert json.loads(raw[e.offset:raw.index(b"\n", e.offset)])
    assert all(e.ts > 1.7e9 for e in entries)


@pytest.mark.parametrize("name,title,first", [
    ("codex-0.169.0-tui-daemon.jsonl", "please FAKE_SHELL now", "please FAKE_SHELL now"),
    ("codex-0.169.0-exec.jsonl", "hello", "hello"),
])
def test_codex_samples(name: str, title: str, first: str) -> None:
    ex = CodexExtractor()
    entries = extract(ex, FIXTURES / name)
    assert ex.state.cwd == "/home/dev/work/proj"
    assert ex.state.title == title
    users = [e.text for e in entries if e.role is HistoryRole.USER]
    assert users[0] == first
    assert not any(u.startswith("<environment_context>") for u in users), "harness context is not a prompt"
    assert len(users) == len(set(users)), "item_completed/UserMessage does not duplicate prompts"


def test_codex_older_shapes() -> None:
    """event_msg user_message (no response_item user message) and the oldest bare items."""
    old = [
        {"timestamp": "2025-03-01T10:00:00Z", "type": "session_meta", "payload": {"id": "t1", "cwd": "/w"}},
        {"timestamp": "2025-03-01T10:00:01Z", "type": "event_msg",
         "payload": {"type": "user_message", "message": "fix the token refresh"}},
        {"timestamp": "2025-03-01T10:00:02Z", "type": "response_item",
         "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]}},
    ]
    ex = CodexExtractor()
    entries = [e for i, r in enumerate(old) for e in ex.feed(r, i * 100)]
    assert [(e.role, e.text) for e in entries] == [(HistoryRole.USER, "fix the token refresh"),
                                                    (HistoryRole.ASSISTANT, "Done.")]
    assert ex.state.session_id == "t1" and ex.state.title == "fix the token refresh"
    bare = [
        {"id": "t2", "timestamp": "2025-01-01T00:00:00Z", "instructions": ""},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "old prompt"}]},
        {"type": "function_call", "name": "shell", "arguments": "{\"command\": [\"ls\", \"-la\"]}", "call_id": "c"},
        {"type": "function_call_output", "call_id": "c", "output": {"content": "a.txt"}},
    ]
    ex = CodexExtractor()
    entries = [e for i, r in enumerate(bare) for e in ex.feed(r, i)]
    assert [e.text for e in entries] == ["old prompt", "shell(ls -la)", "a.txt"]
    assert ex.state.session_id == "t2"


def test_tool_output_is_capped_and_state_round_trips() -> None:
    ex = ClaudeExtractor()
    rec = {"type": "user", "timestamp": "2026-01-01T00:00:00Z",
           "message": {"content": [{"type": "tool_result", "content": "x" * 50_000}]}}
    (e,) = ex.feed(rec, 0)
    assert e.role is HistoryRole.TOOL and len(e.text) <= TOOL_TEXT_CHARS + 1
    st = ExtractState(flags={"saw_response_user": True}, title_rank=2)
    back = ExtractState()
    back.load_json(st.to_json())
    assert back.flags == {"saw_response_user": True} and back.title_rank == 2
    back.load_json("{not json")  # ignored


def test_opencode_messages() -> None:
    rest = json.loads((FIXTURES / "opencode" / "rest-1.18.33.json").read_text())
    entries = opencode_entries(rest["messages"])
    assert [(e.role, e.text) for e in entries] == [(HistoryRole.USER, "Say hello"),
                                                    (HistoryRole.ASSISTANT, "Hello from the fake LLM.")]
    assert all(e.offset == -1 for e in entries)
    tool = {"info": {"id": "m2", "role": "assistant", "time": {"created": 1795310999000}},
            "parts": [{"id": "p1", "type": "tool", "tool": "bash",
                       "state": {"status": "completed", "input": {"command": "make test"}, "output": "3 passed"}},
                      {"id": "p2", "type": "text", "text": "hidden", "synthetic": True}]}
    entries = opencode_entries([*rest["messages"], tool, "junk"])  # type: ignore[list-item]
    assert entries[-1].text == "bash(make test)\n3 passed" and entries[-1].role is HistoryRole.TOOL


@pytest.mark.parametrize("typed", [
    'token refresh', '"token refresh"', 'foo-bar', 'C++', 'a AND b', 'NEAR(x y)', 'col:value', 'unbalanced "quote',
    'tok*', '"a ""b"" c"', 'x OR y', 'OR x OR', '^start', '-not', 'ünïcödé', "it's", '(paren)', '{x} [y]',
])
def test_fts_match_is_always_valid(typed: str) -> None:
    expr = fts_match(typed)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize='unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO t VALUES ('the token refresh of foo-bar in C++ with unicode')")
    conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()  # no syntax error


def test_fts_match_meaning() -> None:
    assert fts_match("token refresh") == '"token" "refresh"'
    assert fts_match('"token refresh" now') == '"token refresh" "now"'
    assert fts_match("tok*") == '"tok"*'
    assert fts_match("a OR b") == '"a" OR "b"'
    for nothing in ("", "   ", "++ --", "OR"):
        with pytest.raises(QueryError):
            fts_match(nothing)


def test_parse_query() -> None:
    q = parse_query('agent:codex agent:claude project:deck since:2026-11-01 until:2026-11-02 role:prompts '
                    '"token refresh" foo')
    assert q.agents == frozenset({AgentKind.CODEX, AgentKind.CLAUDE_CODE})
    assert q.project == "deck" and q.roles == frozenset({HistoryRole.USER})
    assert q.since is not None and q.until is not None and q.until - q.since == pytest.approx(2 * 86400, abs=3700)
    assert q.text == '"token refresh" foo'
    with pytest.raises(QueryError):
        parse_query("agent:vim x")
    with pytest.raises(QueryError):
        parse_query("since:yesterday x")


def test_snippet_marks_words_phrases_and_prefixes() -> None:
    text = "We fixed the Token  refresh bug. " + "filler " * 60 + "token again, tokens too."
    segs = snippet(text, '"token refresh"')
    assert ("Token  refresh", True) in segs
    segs = snippet(text, "tok*")
    assert [s for s, m in segs if m][:1] == ["Token"]
    segs = snippet("a" * 500, "zzz")
    assert segs[0][1] is False and segs[0][0].endswith("…")
    assert marked_segments(f"a{MARK_OPEN}b{MARK_CLOSE}c") == (("a", False), ("b", True), ("c", False))


def test_malformed_records_give_no_entries() -> None:
    junk: list[Any] = [{}, {"type": "user"}, {"type": "user", "message": {"content": 3}},
                       {"type": "assistant", "message": {"content": [1, None, {"type": "text"}]}},
                       {"type": "response_item", "payload": {"type": "message", "role": "user", "content": None}},
                       {"type": "response_item", "payload": "x"}]
    for ex in (ClaudeExtractor(), CodexExtractor()):
        assert [e for r in junk for e in ex.feed(r, 0)] == []
