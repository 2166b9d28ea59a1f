"""The remote protocol's shapes (deck_tray.core.wire, issue #18): what crosses the SSH channel
comes back as the same session, reply and report; anything malformed is a WireError."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deck_tray.core import wire
from deck_tray.core.model import (
    AgentKind,
    DeliveryReport,
    DeliveryState,
    Message,
    MessageRole,
    PaneRef,
    PendingRequest,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.core.reply import Reply, ReplyKind


def waiting(**kw: object) -> Session:
    base = dict(id="6c891d37-aaaa-bbbb", agent=AgentKind.CLAUDE_CODE, cwd="/home/dev/proj", title="Fix the build",
                pid=4242, pane=PaneRef("tmux", "%3", "/tmp/tmux-1000/default", "work:1.0"),
                status=SessionStatus.WAITING_PERMISSION, reason="permission prompt — live status file, 1 s ago",
                pending=PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf build", ("Yes", "No"), "toolu_1",
                                       "", ""),
                updated_at=1796000000.25,
                messages=(Message(MessageRole.USER, "fix it ✓\nplease", 1796000000.0, "u1"),
                          Message(MessageRole.TOOL, "Bash(rm -rf build)", 1796000000.2, "toolu_1", "pending")))
    base.update(kw)
    return Session(**base)  # type: ignore[arg-type]


def through(s: Session, host: str = "lab") -> Session:
    """As the local side gets it: to JSON bytes and back."""
    return wire.session_from_wire(orjson.loads(orjson.dumps(wire.session_to_wire(s))), host)


def test_a_waiting_session_crosses_whole_and_gets_the_hosts_name() -> None:
    s = waiting()
    got = through(s)
    assert got.id == "lab:6c891d37-aaaa-bbbb" and got.host == "lab" and got.local_id == s.id
    assert got.pending == s.pending and got.pane == s.pane and got.status is s.status
    assert got.messages == s.messages and got.updated_at == s.updated_at
    assert got.display_title == "Fix the build"
    assert got.to_json()["host"] == "lab" and s.to_json()["host"] is None


def test_only_the_newest_messages_cross_and_long_ones_are_cut() -> None:
    many = tuple(Message(MessageRole.ASSISTANT, f"m{i}") for i in range(wire.MAX_MESSAGES + 40))
    got = through(waiting(messages=many + (Message(MessageRole.ASSISTANT, "x" * (wire.MAX_MESSAGE_CHARS + 5)),)))
    assert len(got.messages) == wire.MAX_MESSAGES
    assert got.messages[-1].text.endswith("…") and len(got.messages[-1].text) == wire.MAX_MESSAGE_CHARS
    assert got.messages[0].text == f"m{40 + 1}"


@pytest.mark.parametrize("bad", [
    {}, {"id": "x"}, {"id": "x", "agent": "nope", "status": "idle"}, {"id": 3, "agent": "codex", "status": "idle"},
    {"id": "", "agent": "codex", "status": "idle"}, {"id": "x", "agent": "codex", "status": "idle", "pane": "tmux"},
    {"id": "x", "agent": "codex", "status": "idle", "messages": [["user"]]},
    {"id": "x", "agent": "codex", "status": "idle", "pending": {"kind": "maybe"}},
])
def test_a_malformed_session_is_a_wire_error(bad: dict[str, object]) -> None:
    with pytest.raises(wire.WireError):
        wire.session_from_wire(bad, "lab")


@given(st.sampled_from(list(ReplyKind)), st.text())
def test_replies_cross_byte_exact(kind: ReplyKind, text: str) -> None:
    r = Reply(kind, text)
    assert wire.reply_from_wire(orjson.loads(orjson.dumps(wire.reply_to_wire(r)))) == r


def test_reports_cross_and_bad_ones_are_errors() -> None:
    r = DeliveryReport(DeliveryState.ACCEPTED, "the agent took it", "two\nlines")
    assert wire.report_from_wire(orjson.loads(orjson.dumps(wire.report_to_wire(r)))) == r
    for bad in (None, [], {"state": "teleported"}):
        with pytest.raises(wire.WireError):
            wire.report_from_wire(bad)
    for bad in (None, {"kind": "sing", "text": ""}, {"kind": "prompt", "text": 5}):
        with pytest.raises(wire.WireError):
            wire.reply_from_wire(bad)


@pytest.mark.parametrize(("name", "ok"), [("lab", True), ("gpu-box.2", True), ("a_b", True), ("", False),
                                          ("-x", False), ("a:b", False), ("a b", False), ("é", False),
                                          ("x" * 41, False)])
def test_host_names(name: str, ok: bool) -> None:
    assert wire.valid_host_name(name) is ok


def test_a_session_without_an_update_time_keeps_zero() -> None:
    got = through(waiting(updated_at=0.0, pending=None, pane=None, messages=(), pid=None,
                          status=SessionStatus.IDLE))
    assert got.updated_at == 0.0 and got.pane is None and got.pid is None and time.time() > 0
