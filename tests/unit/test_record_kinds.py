"""Issue #16 items 2–4: what each record is, as a tab shows it and as search finds it.

Record shapes: Claude Code 1.0.98–2.1.152 and Codex 0.135 from the public corpus
(tests/fixtures/public/PROVENANCE.json), Claude Code 2.1.197/2.1.332 and Codex 0.169/0.171 captured
here (tests/fixtures/), and the old Codex rollout shape (before 0.47: a header line
``{"id", "timestamp", "instructions"}`` then bare items) as public viewers of those files read it.
"""

from __future__ import annotations

from typing import Any

from deck_tray.core.claude import ClaudeTranscript
from deck_tray.core.codex import CodexRollout, time_from_path
from deck_tray.core.history import ClaudeExtractor, CodexExtractor, ExtractState, HistoryRole
from deck_tray.core.model import MessageRole, SessionStatus
from deck_tray.core.record_kinds import CodexItems, Kind, claude_items

T0 = "2026-01-02T10:00:00.000Z"


def user(content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "user", "timestamp": extra.pop("timestamp", T0), "uuid": extra.pop("uuid", "u1"),
            "message": {"role": "user", "content": content}, **extra}


def assistant(*blocks: dict[str, Any], stop: str | None = None, mid: str = "m1", **extra: Any) -> dict[str, Any]:
    return {"type": "assistant", "timestamp": extra.pop("timestamp", T0), "uuid": extra.pop("uuid", "a1"),
            "message": {"id": mid, "role": "assistant", "content": list(blocks), "stop_reason": stop}, **extra}


def kinds(rec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.kind.value, i.label) for i in claude_items(rec)]


# -- classification --------------------------------------------------------------------------

def test_claude_harness_texts_are_named_not_prompts() -> None:
    assert kinds(user("<task-notification>\n<task-id>b1</task-id>\n<status>completed</status>\n"
                      "</task-notification>")) == [("harness", "task notification")]
    assert kinds(user("<bash-input>ls -la</bash-input>")) == [("harness", "shell command")]
    assert kinds(user("<bash-stdout>a\nb</bash-stdout><bash-stderr></bash-stderr>")) == [
        ("harness", "shell output"), ("harness", "shell output")]
    assert kinds(user("[Request interrupted by user for tool use]")) == [("harness", "interrupt")]
    assert kinds(user("expanded skill body", isMeta=True)) == [("harness", "expanded command")]
    # An IDE's open file in front of what the user typed: both, each as what it is.
    ide = user([{"type": "text", "text": "<ide_opened_file>The user opened src/a.py</ide_opened_file>"},
                {"type": "text", "text": "why does this fail?"}])
    assert kinds(ide) == [("harness", "IDE"), ("user", "")]
    assert claude_items(ide)[1].text == "why does this fail?"


def test_claude_command_with_arguments_keeps_them() -> None:
    rec = user("<command-message>review is running…</command-message>\n<command-name>/review</command-name>\n"
               "<command-args>src/parser.py carefully</command-args>")
    (item,) = claude_items(rec)
    assert (item.kind, item.text, item.label) == (Kind.COMMAND, "/review src/parser.py carefully", "/review")
    # 2.1.x writes some local commands as system records (spotter, 2.1.38)
    sysrec = {"type": "system", "subtype": "local_command",
              "content": "<local-command-stdout>Kept model as \x1b[1mDefault\x1b[22m</local-command-stdout>"}
    (out,) = claude_items(sysrec)
    assert (out.kind, out.text) == (Kind.HARNESS, "Kept model as Default")


def test_claude_compaction_thinking_image_and_api_error() -> None:
    comp = user("This session is being continued from a previous conversation…", isCompactSummary=True)
    assert kinds(comp) == [("compaction", "")]
    assert kinds(assistant({"type": "thinking", "thinking": "Let me look at the parser."},
                           {"type": "redacted_thinking", "data": "xx"})) == [("thinking", ""), ("thinking", "")]
    img = user([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                {"type": "text", "text": "what is in this screenshot?"}])
    assert kinds(img) == [("image", "image/png"), ("user", "")]
    err = {"type": "system", "subtype": "api_error", "level": "error", "retryAttempt": 2,
           "error": {"status": 529, "error": {"type": "error", "error": {"type": "overloaded_error",
                                                                          "message": "Overloaded"}}}}
    (e,) = claude_items(err)
    assert (e.kind, e.text) == (Kind.ERROR, "API error: 529 Overloaded (retry 2)")


def test_codex_prompt_answer_and_reasoning_written_twice_count_once_in_either_order() -> None:
    items = CodexItems()

    def ri(payload: dict[str, Any]) -> dict[str, Any]:
        return {"timestamp": T0, "type": "response_item", "payload": payload}

    def ev(payload: dict[str, Any]) -> dict[str, Any]:
        return {"timestamp": T0, "type": "event_msg", "payload": payload}

    got: list[tuple[str, str]] = []
    for rec in (
        ri({"type": "message", "role": "developer", "content": [{"type": "input_text",
                                                                 "text": "<permissions instructions>…"}]}),
        ri({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "add a test"},
                                                           {"type": "input_image", "image_url": "data:…"}]}),
        ev({"type": "user_message", "message": "add a test"}),
        ev({"type": "agent_reasoning", "text": "**Planning the test**"}),  # the event first (older order)
        ri({"type": "reasoning", "summary": [{"type": "summary_text", "text": "**Planning the test**"}]}),
        ri({"type": "reasoning", "summary": [], "encrypted_content": "gAAA"}),  # nothing readable
        ri({"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "pytest tmp"}}),
        ri({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Added."}]}),
        ev({"type": "agent_message", "message": "Added."}),
        ev({"type": "error", "message": "stream disconnected before completion"}),
    ):
        got += [(i.kind.value, i.text or i.label) for i in items.feed(rec)]
    assert got == [("harness", "<permissions instructions>…"), ("user", "add a test"), ("image", "image"),
                   ("thinking", "**Planning the test**"), ("tool", "web_search"), ("assistant", "Added."),
                   ("error", "stream disconnected before completion")]


# -- the tab -----------------------------------------------------------------------------------

def test_harness_text_never_moves_the_turn_and_shows_as_what_it_is() -> None:
    t = ClaudeTranscript("s1")
    t.feed(user("fix the bug", uuid="u1"))
    t.feed(assistant({"type": "text", "text": "Fixed."}, stop="end_turn", uuid="a1"))
    assert t.evidence() is not None and t.evidence().status is SessionStatus.IDLE  # type: ignore[union-attr]
    # Bash mode after the turn ended (Claude runs it itself, no model turn): still idle.
    t.feed(user("<bash-input>git status</bash-input>", uuid="u2", timestamp="2026-01-02T10:01:00Z"))
    t.feed(user("<bash-stdout>clean</bash-stdout><bash-stderr></bash-stderr>", uuid="u3",
                timestamp="2026-01-02T10:01:01Z"))
    assert t.evidence().status is SessionStatus.IDLE  # type: ignore[union-attr]
    roles = [(m.role, m.state) for m in t.messages]
    assert (MessageRole.HARNESS, "shell command") in roles and (MessageRole.HARNESS, "shell output") in roles
    assert [m.text for m in t.messages if m.role is MessageRole.USER] == ["fix the bug"]


def test_compaction_summary_is_a_marker_not_a_prompt_nor_a_title() -> None:
    t = ClaudeTranscript("s1")
    t.feed(user("This session is being continued from a previous conversation that ran out of context.",
                isCompactSummary=True))
    t.feed(user("now the tests"))
    assert [m.role for m in t.messages] == [MessageRole.COMPACTION, MessageRole.USER]
    assert t.display_title == "now the tests"


# -- titles ------------------------------------------------------------------------------------

def _title_both(records: list[dict[str, Any]]) -> tuple[str, str]:
    t = ClaudeTranscript()
    ex = ClaudeExtractor()
    for off, rec in enumerate(records):
        t.feed(rec)
        ex.feed(rec, off)
    return t.display_title, ex.state.title


def test_a_summary_of_another_session_is_not_the_title_and_list_and_search_agree() -> None:
    foreign = {"type": "summary", "summary": "Refactor of the billing module", "leafUuid": "not-in-this-file"}
    own = {"type": "summary", "summary": "Parser bug hunt", "leafUuid": "a1"}
    records = [foreign, user("the parser drops the last line", uuid="u1"),
               assistant({"type": "text", "text": "Found it."}, stop="end_turn", uuid="a1")]
    assert _title_both(records) == ("the parser drops the last line",) * 2
    # Claude 1.0.x writes its own summary at the top of a resumed file, before the leaf it names.
    assert _title_both([own, *records]) == ("Parser bug hunt",) * 2
    # A custom title wins over both.
    assert _title_both([*records, own, {"type": "custom-title", "customTitle": "Parser"}]) == ("Parser",) * 2


def test_a_command_with_arguments_titles_a_session_that_has_no_typed_prompt() -> None:
    rec = user("<command-name>/orchestrator</command-name>\n<command-args>create TODO app</command-args>")
    assert _title_both([rec]) == ("/orchestrator create TODO app",) * 2


def test_codex_ide_wrapper_is_not_the_title() -> None:
    text = ("# Context from my IDE setup:\n\n## Active file: src/app.ts\n\n## Open tabs:\n- app.ts\n\n"
            "## My request for Codex:\nrename the handler")
    rec = {"timestamp": T0, "type": "response_item",
           "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}
    r = CodexRollout()
    r.feed(rec)
    ex = CodexExtractor()
    ex.feed(rec, 0)
    assert r.title == ex.state.title == "rename the handler"


# -- old Codex rollouts ------------------------------------------------------------------------

OLD_PATH = "/h/.codex/sessions/2025/08/14/rollout-2025-08-14T09-30-00-5973b6c0-94b8-487b-a530-2aeb6098ae0e.jsonl"
OLD = [
    {"id": "5973b6c0-94b8-487b-a530-2aeb6098ae0e", "timestamp": "2025-08-14T07:30:00.120Z",
     "instructions": None, "git": {"commit_hash": "abc", "branch": "main"}},
    {"record_type": "state"},
    {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "<environment_context>\n  <cwd>/home/dev/shop</cwd>\n"
                                       "  <approval_policy>on-request</approval_policy>\n</environment_context>"}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "add a cart total"}]},
    {"record_type": "state"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Reading the cart code"}],
     "encrypted_content": "gAAA"},
    {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"bash\",\"-lc\",\"ls\"]}",
     "call_id": "call_1"},
    {"type": "function_call_output", "call_id": "call_1", "output": "{\"output\":\"cart.py\\n\"}"},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Added total()."}]},
]


def test_old_codex_rollout_gets_its_time_folder_and_conversation() -> None:
    r = CodexRollout(path=OLD_PATH)
    for rec in OLD:
        r.feed(rec)
    assert r.thread_id == "5973b6c0-94b8-487b-a530-2aeb6098ae0e"
    assert r.cwd == "/home/dev/shop" and r.title == "add a cart total"
    assert r.last_at >= 1755156600.0  # the header's time, 2025-08-14T07:30:00Z
    assert all(m.timestamp >= 1755156600.0 for m in r.messages)
    assert [m.role for m in r.messages] == [MessageRole.USER, MessageRole.THINKING, MessageRole.TOOL,
                                            MessageRole.ASSISTANT]
    ex = CodexExtractor(ExtractState())
    entries = [e for off, rec in enumerate(OLD) for e in ex.feed(rec, off)]
    assert ex.state.cwd == "/home/dev/shop" and ex.state.started >= 1755156600.0
    assert all(e.ts >= 1755156600.0 for e in entries)  # `--since 2025-08-14` finds them
    assert [e.role for e in entries] == [HistoryRole.HARNESS, HistoryRole.USER, HistoryRole.THINKING,
                                         HistoryRole.TOOL, HistoryRole.TOOL_RESULT, HistoryRole.ASSISTANT]


def test_old_codex_rollout_without_a_header_time_uses_its_file_name() -> None:
    r = CodexRollout(path=OLD_PATH)
    for rec in OLD[2:]:
        r.feed(rec)
    assert r.last_at == time_from_path(OLD_PATH) > 0
    assert all(m.timestamp == r.last_at for m in r.messages)


# -- turn state without end-of-turn marks (ADR 009) --------------------------------------------

def test_an_answer_without_a_stop_reason_reads_as_finished_after_a_quiet_minute() -> None:
    """Claude Code 2.1.42 (public corpus, napoli-entire 3808dbda…): every block has
    ``stop_reason: null`` and the file has no ``turn_duration``."""
    from pathlib import Path

    from deck_tray.core.jsonl import JsonlTailer
    from deck_tray.core.records import QUIET_S
    from deck_tray.core.status import decide

    path = next(Path(__file__).resolve().parent.parent.joinpath("fixtures", "public", "claude", "napoli-entire")
                .glob("projects/*/3808dbda-*.jsonl"))
    t = ClaudeTranscript()
    for rec in JsonlTailer(str(path)).read_new().records:
        t.feed(rec)
    ev = t.evidence_list()
    assert decide(ev, t.last_at + 5)[0] is SessionStatus.BUSY
    status, reason, _ = decide(ev, t.last_at + QUIET_S + 1)
    assert status is SessionStatus.IDLE and "no end-of-turn mark" in reason
    # A tool call, or a thinking block, as the last record is never taken for the end.
    t.feed(assistant({"type": "tool_use", "id": "tu9", "name": "Bash", "input": {"command": "ls"}},
                     timestamp="2030-01-01T00:00:00Z", mid="m9"))
    assert decide(t.evidence_list(), t.last_at + 3600)[0] is SessionStatus.BUSY


def test_a_codex_sub_agent_rollout_is_a_thread_of_its_parent(tmp_path: Any) -> None:
    """Codex multi-agent threads: ``session_meta.source.subagent.thread_spawn.parent_thread_id``
    (shape from the public corpus, agent-sessions-curated)."""
    import json

    from deck_tray.core.scan import Scanner

    day = tmp_path / "codex" / "sessions" / "2026" / "08" / "03"
    day.mkdir(parents=True)
    parent_id, child_id = "019fc8be-3658-7ca3-9e29-00000000000a", "019fc8be-3658-7ca3-9e29-00000000000b"

    def rollout(tid: str, source: Any, recs: list[dict[str, Any]]) -> None:
        meta = {"timestamp": T0, "type": "session_meta",
                "payload": {"id": tid, "cwd": "/w", "cli_version": "0.128.0", "source": source}}
        lines = [meta, *({"timestamp": T0, **r} for r in recs)]
        (day / f"rollout-2026-08-03T10-48-56-{tid}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

    def msg(role: str, text: str) -> dict[str, Any]:
        kind = "input_text" if role == "user" else "output_text"
        return {"type": "response_item", "payload": {"type": "message", "role": role,
                                                     "content": [{"type": kind, "text": text}]}}

    rollout(parent_id, "cli", [msg("user", "split the work"), msg("assistant", "Spawning a helper.")])
    rollout(child_id, {"subagent": {"thread_spawn": {"parent_thread_id": parent_id, "depth": 0,
                                                      "agent_nickname": "Newton", "agent_role": "explorer"}}},
            [msg("user", "find the config loader"),
             {"type": "response_item", "payload": {
                 "type": "function_call", "name": "shell", "call_id": "c1",
                 "arguments": json.dumps({"command": ["rm", "-rf", "build"],
                                          "sandbox_permissions": "require_escalated"})}}])
    obs = Scanner(tmp_path / "claude", tmp_path / "codex", history_s=1e12, process_lister=lambda: []).scan()
    assert [o.id for o in obs] == [parent_id]
    (line,) = [m for m in obs[0].messages if m.role is MessageRole.SUBAGENT]
    assert line.text.startswith("Newton · 2 messages") and line.state == "waiting"
    assert obs[0].pending_hint is not None and obs[0].pending_hint.asker == "Newton"


def test_a_prompt_that_only_exists_in_a_queue_operation_is_shown_and_searchable() -> None:
    """Claude Code 2.1.x writes a prompt typed while it works as ``queue-operation`` ``enqueue``;
    sent later, it is also a ``user`` record (public corpus: agent-history 2.1.152, spotter 2.1.38)."""
    records = [user("first task", uuid="u1"),
               {"type": "queue-operation", "operation": "enqueue", "timestamp": T0, "content": "then the docs"},
               {"type": "queue-operation", "operation": "enqueue", "timestamp": T0, "content": "and a changelog"},
               {"type": "queue-operation", "operation": "dequeue", "timestamp": T0},
               user("then the docs", uuid="u2")]
    t = ClaudeTranscript()
    ex = ClaudeExtractor()
    entries = []
    for off, rec in enumerate(records):
        t.feed(rec)
        entries += ex.feed(rec, off)
    assert [m.text for m in t.messages if m.role is MessageRole.USER] == ["first task", "then the docs",
                                                                          "and a changelog"]
    assert [e.text for e in entries if e.role is HistoryRole.USER] == ["first task", "then the docs",
                                                                      "and a changelog"]


def test_a_long_paste_shows_as_the_text_the_user_pasted() -> None:
    """Claude Code 2.1.332 wraps a paste over 800 characters in ``<pasted_content id="…">``
    (seen with a 10 KB prompt pasted through tmux); the tab and the index show the text."""
    text = "line one\n" + "x" * 900
    rec = user(f'\n\n<pasted_content id="3c66">\n{text}\n</pasted_content id="3c66">\n')
    (item,) = claude_items(rec)
    assert item.kind is Kind.USER and item.text.strip() == text.strip()
