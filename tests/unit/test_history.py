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
    gram_document,
    marked_segments,
    opencode_entries,
    parse_query,
    query_words,
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
    assert e.role is HistoryRole.TOOL_RESULT and len(e.text) <= TOOL_TEXT_CHARS + 1
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


# -- scripts written without spaces (#16 item 5) -------------------------------------------------

RUN_JA = "このプロジェクトの設定ファイルを更新しました"


def _fts(*docs: str) -> sqlite3.Connection:
    """An in-memory table shaped like the index's: text and its gram document."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, grams, tokenize='unicode61 remove_diacritics 2')")
    conn.executemany("INSERT INTO t(rowid, text, grams) VALUES (?, ?, ?)",
                     [(i, d, gram_document(d)) for i, d in enumerate(docs, 1)])
    return conn


def _found(conn: sqlite3.Connection, typed: str) -> set[int]:
    return {r[0] for r in conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (fts_match(typed),))}


@pytest.mark.parametrize("typed,doc", [
    ("設定", RUN_JA),                              # a two-character kanji word inside a run
    ("ファイル", RUN_JA),                          # a katakana word inside a run
    ("プロジェクト", RUN_JA),
    ("更新しました", RUN_JA),                      # the run's end
    ("この", RUN_JA),                              # its start
    ("設", RUN_JA),                                # one character
    ("東京", "明日は東京駅で会いましょう"),
    ("设置", "请检查项目的设置文件是否正确"),      # Chinese
    ("설정", "설정파일을 열었습니다"),            # Korean: a word inside an eojeol
    ("파일", "설정파일을 열었습니다"),
    ("กิน", "ฉันกินข้าวแล้ว"),                     # Thai: eat, inside "I ate rice already"
    ("ข้าว", "ฉันกินข้าวแล้ว"),
    ("GitHub", "GitHubのリポジトリを作成"),        # a Latin word glued to kana
    ("API設定", "このAPI設定を確認"),              # mixed Latin + CJK in one word
    ("設定API", "新しい設定APIを追加"),
    ("設定 token", "設定ファイルの token を更新"),  # two terms, one of each kind
    ('"設定 file"', "この設定 file は古い"),         # a phrase across a space
    ("の設", RUN_JA),
])
def test_spaceless_words_are_found_inside_runs(typed: str, doc: str) -> None:
    conn = _fts("the settings file was updated", doc, "まったく関係のない文章です")
    assert _found(conn, typed) == {2}, (typed, fts_match(typed), gram_document(doc))


@pytest.mark.parametrize("typed,doc", [
    ("設置", RUN_JA), ("ファイルス", RUN_JA), ("東大", "明日は東京駅で"), ("API定", "このAPI設定"),
    ("定フ", "設定。ファイル"), ("定ファ", "設定 ファイル"), ('"設定ファイル"', "設定 ファイル"), ("정파", "설정 파일"),
])
def test_spaceless_non_substrings_are_not_found(typed: str, doc: str) -> None:
    """Nothing that is not a substring of a run: bigrams do not carry over from one run into
    the next (across a space or punctuation)."""
    assert _found(_fts(doc), typed) == set(), (typed, fts_match(typed), gram_document(doc))


def test_spaceless_queries_are_always_valid_fts5() -> None:
    conn = _fts(RUN_JA)
    for typed in ("設*", '"設定', "設定 OR ファイル", "「設定」", "設定、", "ー", "々", "ั", "設_定", "a設b",
                  '"設定 ""x"""', "設定 -", "NEAR(設定)"):
        try:
            expr = fts_match(typed)
        except QueryError:
            continue
        conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()  # no syntax error


def test_gram_document_shape() -> None:
    assert gram_document("plain Latin text, café") == ""  # costs nothing outside those scripts
    assert gram_document("設定ファイル") == "設定 定フ ファ ァイ イル ル"
    assert gram_document("GitHubの設定") == "GitHub の設 設定 定"
    assert gram_document("設定 file") == "設定 定 \ue002 file"
    assert gram_document("กิน") == "กน น"  # Thai marks dropped, as the tokenizer drops them


def test_fts_match_for_spaceless_words() -> None:
    assert fts_match("設定") == '"設定"'
    assert fts_match("ファイル") == '"ファ ァイ イル"'
    assert fts_match("設") == '"設"*'
    assert fts_match("API設定 token*") == '"API 設定" "token"*'
    assert fts_match("東京 OR 大阪") == '"東京" OR "大阪"'
    # Latin-script queries are exactly what they were.
    assert fts_match('"token refresh" tok* a OR b') == '"token refresh" "tok"* "a" OR "b"'


def test_snippet_marks_the_word_inside_the_run() -> None:
    assert snippet(RUN_JA, "設定") == (("このプロジェクトの", False), ("設定", True), ("ファイルを更新しました", False))
    assert [s for s, m in snippet(RUN_JA, "設定 ファイル") if m] == ["設定ファイル"]
    assert [s for s, m in snippet(RUN_JA, "設") if m] == ["設"]
    assert [s for s, m in snippet("설정파일을 열었습니다", "파일") if m] == ["파일"]
    assert [s for s, m in snippet("ฉันกินข้าวแล้ว", "ข้าว") if m] == ["ข้าว"]
    assert [s for s, m in snippet("GitHubのAPI設定を確認", "API設定") if m] == ["API設定"]
    assert [s for s, m in snippet("GitHubのリポジトリ", "github") if m] == ["GitHub"]
    long = "前置き。" * 80 + RUN_JA + "。後書き" * 80
    segs = snippet(long, "設定")
    assert ("設定", True) in segs and segs[0][0].startswith("…") and len("".join(s for s, _m in segs)) < 250
    # Latin words keep their word boundaries.
    assert [s for s, m in snippet("tokens and a token", "token") if m] == ["token"]


def test_query_words_and_ideographic_space() -> None:
    assert query_words("設定ファイル OR token") == ["設定ファイル", "token"]
    q = parse_query("agent:codex\u3000設定\u3000ファイル")
    assert q.agents == frozenset({AgentKind.CODEX}) and q.text == "設定 ファイル"


def test_malformed_records_give_no_entries() -> None:
    junk: list[Any] = [{}, {"type": "user"}, {"type": "user", "message": {"content": 3}},
                       {"type": "assistant", "message": {"content": [1, None, {"type": "text"}]}},
                       {"type": "response_item", "payload": {"type": "message", "role": "user", "content": None}},
                       {"type": "response_item", "payload": "x"}]
    for ex in (ClaudeExtractor(), CodexExtractor()):
        assert [e for r in junk for e in ex.feed(r, 0)] == []
