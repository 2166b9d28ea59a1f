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


def test_only_permissions_are_held() -> None:
    assert decisions.holds(CC, PAYLOAD)
    assert not decisions.holds(CX, PAYLOAD), "Codex 0.169 shows its approval only after the hook returns"
    assert not decisions.holds(CC, {**PAYLOAD, "tool_name": "AskUserQuestion"})  # a question: the pane answers
    assert not decisions.holds(CC, {**PAYLOAD, "hook_event_name": "PreToolUse"})
    assert not decisions.holds(AgentKind.OPENCODE, PAYLOAD)
    with pytest.raises(ValueError):
        decisions.decision_output(CC, Reply(ReplyKind.PROMPT, "hi"), PAYLOAD)
