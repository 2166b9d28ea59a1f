"""``attention_needed`` carries the request when it becomes known shortly after the wait.

Claude Code 2.1.332 writes ``status: "waiting"`` to its status file ~64 ms before the tool call
reaches the transcript on a session's first turn (fixture
``claude-code-2.1.332-sessions-pid-json-changes.jsonl``): the registry first sees a waiting
session with no request, then the request.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from deck_tray.core.model import AgentKind, PendingRequest, RequestKind, Session, SessionStatus
from deck_tray.services.registry import SessionRegistry

pytestmark = pytest.mark.usefixtures("qt_slate")

REQUEST = PendingRequest(RequestKind.PERMISSION, "Bash", "touch x", ("Yes", "No"), "toolu_1")


def session(status: SessionStatus, pending: PendingRequest | None = None) -> Session:
    return Session(id="aaaa1111", agent=AgentKind.CLAUDE_CODE, status=status, pending=pending,
                   reason="permission prompt — live status file, just now", updated_at=time.time())


def test_a_request_known_at_once_is_announced_at_once(qtbot) -> None:  # type: ignore[no-untyped-def]
    reg = SessionRegistry()
    seen: list[Session] = []
    reg.attention_needed.connect(seen.append)
    reg.apply([session(SessionStatus.WAITING_PERMISSION, REQUEST)])
    assert [s.pending for s in seen] == [REQUEST]


def test_the_announcement_waits_for_a_request_that_follows(qtbot) -> None:  # type: ignore[no-untyped-def]
    reg = SessionRegistry()
    seen: list[Session] = []
    reg.attention_needed.connect(seen.append)
    reg.apply([session(SessionStatus.BUSY)])
    reg.apply([session(SessionStatus.WAITING_PERMISSION)])  # the status file, first
    assert seen == []
    reg.apply([session(SessionStatus.WAITING_PERMISSION, REQUEST)])  # the transcript's tool call
    assert [s.pending for s in seen] == [REQUEST]
    qtbot.wait(int(reg.announce_hold * 1000) + 200)
    assert len(seen) == 1, "one announcement per request"


def test_without_a_request_it_is_announced_after_the_bound(qtbot) -> None:  # type: ignore[no-untyped-def]
    reg = SessionRegistry(announce_hold=0.3)
    seen: list[tuple[float, Session]] = []
    reg.attention_needed.connect(lambda s: seen.append((time.monotonic(), s)))
    t0 = time.monotonic()
    reg.apply([session(SessionStatus.WAITING_PERMISSION)])
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    assert seen[0][0] - t0 >= 0.25 and seen[0][1].pending is None
    qtbot.wait(500)
    assert len(seen) == 1


def test_a_wait_that_ends_before_its_request_is_not_announced(qtbot) -> None:  # type: ignore[no-untyped-def]
    reg = SessionRegistry(announce_hold=0.3)
    seen: list[Session] = []
    reg.attention_needed.connect(seen.append)
    waiting = session(SessionStatus.WAITING_PERMISSION)
    reg.apply([waiting])
    reg.apply([replace(waiting, status=SessionStatus.BUSY)])
    qtbot.wait(600)
    assert seen == []
