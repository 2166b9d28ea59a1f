"""Parsers never crash on records of the right shape with the wrong contents."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deck_tray.core.claude import ClaudeTranscript, parse_live_status
from deck_tray.core.codex import CodexRollout

KEYS = ["type", "subtype", "message", "content", "role", "id", "name", "input", "text", "tool_use_id",
        "is_error", "stop_reason", "timestamp", "sessionId", "cwd", "isMeta", "aiTitle", "payload",
        "call_id", "arguments", "output", "questions", "options", "label", "pid", "status"]
TYPES = ["user", "assistant", "system", "ai-title", "custom-title", "summary", "tool_use", "tool_result",
         "text", "turn_duration", "session_meta", "event_msg", "response_item", "turn_context", "message",
         "function_call", "function_call_output", "task_started", "task_complete", "turn_aborted",
         "user_message", "request_user_input", "AskUserQuestion", "2026-11-22T01:00:00Z", "not-a-date"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                    st.sampled_from(TYPES), st.text(max_size=20))
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(KEYS), children, max_size=6)),
    max_leaves=12,
)
records = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=12))
def test_claude_transcript_survives_anything(recs: list[dict[str, Any]]) -> None:
    t = ClaudeTranscript()
    for r in recs:
        t.feed(r)
        t.evidence()
        t.pending_request()
    assert isinstance(t.display_title, str)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=12))
def test_codex_rollout_survives_anything(recs: list[dict[str, Any]]) -> None:
    r = CodexRollout()
    for rec in recs:
        r.feed(rec)
        r.evidence()
        r.pending_request()


@settings(max_examples=80, deadline=None)
@given(values)
def test_status_file_parser_returns_none_or_a_status(obj: Any) -> None:
    ls = parse_live_status(obj)
    assert ls is None or isinstance(ls.pid, int)
