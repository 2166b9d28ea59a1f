"""The decision a PermissionRequest hook prints (deck_tray.core.decisions; issue #13)."""

from __future__ import annotations

import pytest

from deck_tray.core import decisions
from deck_tray.core.model import AgentKind
from deck_tray.core.reply import Reply, ReplyKind

CC, CX = AgentKind.CLAUDE_CODE, AgentKind.CODEX
SUGGESTIONS = [{"type": "addDirectories", "directories": ["/home/dev/work/proj"], "destination": "session"}]
PAYLOAD = {"hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": {"command": "rm -f x"},
           "permission_suggestions": SUGGESTIONS}


# The PermissionRequest payload of Claude Code 2.1.197 for AskUserQuestion (captured in a pty, issue #13).
QUESTION = {"hook_event_name": "PermissionRequest", "tool_name": "AskUserQuestion", "permission_mode": "default",
            "tool_input": {"questions": [{"question": "Which colour should the fake widget be?", "header": "Colour",
                                          "options": [{"label": "Red", "description": "A red widget"},
                                                      {"label": "Blue", "description": "A blue widget"}],
                                          "multiSelect": False}]}}


def decision(agent: AgentKind, reply: Reply, payload: dict = PAYLOAD) -> dict:
    out = decisions.decision_output(agent, reply, payload)
    assert out["hookSpecificOutput"]["hookEventName"] == "PermissionRequest"
    return out["hookSpecificOutput"]["decision"]


def test_allow_deny_and_always() -> None:
    assert decision(CC, Reply(ReplyKind.ALLOW)) == {"behavior": "allow"}
    assert decision(CC, Reply(ReplyKind.DENY, "not now")) == {"behavior": "deny", "message": "not now"}
    assert decision(CC, Reply(ReplyKind.DENY)) == {"behavior": "deny", "message": decisions.DEFAULT_DENY}
    assert decision(CC, Reply(ReplyKind.ALLOW_ALWAYS)) == {"behavior": "allow", "updatedPermissions": SUGGESTIONS}
    assert decisions.always_note(CC, Reply(ReplyKind.ALLOW_ALWAYS), PAYLOAD) == ""


def test_always_without_a_rule_to_keep_allows_once_and_says_so() -> None:
    bare = {k: v for k, v in PAYLOAD.items() if k != "permission_suggestions"}
    assert decision(CC, Reply(ReplyKind.ALLOW_ALWAYS), bare) == {"behavior": "allow"}
    assert "allowed it once" in decisions.always_note(CC, Reply(ReplyKind.ALLOW_ALWAYS), bare)
    assert decision(CX, Reply(ReplyKind.ALLOW_ALWAYS)) == {"behavior": "allow"}
    assert "Codex takes no rule" in decisions.always_note(CX, Reply(ReplyKind.ALLOW_ALWAYS), PAYLOAD)


def test_what_is_held() -> None:
    assert decisions.holds(CC, PAYLOAD)
    assert not decisions.holds(CX, PAYLOAD), "Codex 0.169 shows its approval only after the hook returns"
    assert decisions.holds(CX, PAYLOAD, codex_hold=True), "unless the user lets Codex wait for deck-tray"
    assert decisions.holds(CC, QUESTION)
    assert not decisions.holds(CX, {**QUESTION, "hook_event_name": "PermissionRequest"}, codex_hold=True)
    two = {**QUESTION, "tool_input": {"questions": [QUESTION["tool_input"]["questions"][0]] * 2}}
    assert not decisions.holds(CC, two), "two questions at once: the window answers one, so the pane does"
    assert not decisions.holds(CC, {**QUESTION, "tool_input": {}})
    assert not decisions.holds(CC, {**PAYLOAD, "hook_event_name": "PreToolUse"})
    assert not decisions.holds(AgentKind.OPENCODE, PAYLOAD)
    with pytest.raises(ValueError):
        decisions.decision_output(CC, Reply(ReplyKind.PROMPT, "hi"), PAYLOAD)


def test_a_question_is_answered_with_its_answers_filled_in() -> None:
    """Claude 2.1.197 and 2.1.332 took ``updatedInput.answers`` {question: label or text} and
    showed "User answered Claude's questions: · Which colour …? → Blue"."""
    q = "Which colour should the fake widget be?"
    got = decision(CC, Reply(ReplyKind.OPTION, "blue"), QUESTION)
    assert got == {"behavior": "allow", "updatedInput": {**QUESTION["tool_input"], "answers": {q: "Blue"}}}
    got = decision(CC, Reply(ReplyKind.PROMPT, "  teal, please \n"), QUESTION)
    assert got["updatedInput"]["answers"] == {q: "teal, please"}
    assert got["updatedInput"]["questions"] == QUESTION["tool_input"]["questions"]
    assert decision(CC, Reply(ReplyKind.DENY), QUESTION) == {"behavior": "deny", "message": decisions.DEFAULT_DECLINE}


def test_a_question_refuses_what_does_not_answer_it() -> None:
    with pytest.raises(ValueError, match="no option 'Green'.*Red, Blue"):
        decisions.decision_output(CC, Reply(ReplyKind.OPTION, "Green"), QUESTION)
    with pytest.raises(ValueError, match="empty"):
        decisions.decision_output(CC, Reply(ReplyKind.PROMPT, "  "), QUESTION)
    with pytest.raises(ValueError, match="question cannot take a allow"):
        decisions.decision_output(CC, Reply(ReplyKind.ALLOW), QUESTION)
    assert decisions.decidable(QUESTION) == decisions.QUESTION_DECIDABLE
    assert decisions.decidable(PAYLOAD) == decisions.DECIDABLE
