"""Session actions with typed results (deck_tray.services.session_actions; #17 item 3, #13 Show terminal)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from deck_tray.core.model import AgentKind, DeliveryState, Session, SessionStatus
from deck_tray.services.opencode_client import OpencodeError
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.session_actions import SessionActions
from deck_tray.services.window_raise import RaiseResult


def session(pid: int | None = 4242, server: str = "") -> Session:
    return Session(id="ses_1", agent=AgentKind.OPENCODE if server else AgentKind.CLAUDE_CODE, cwd="/p", title="t",
                   pid=pid, pane=None, status=SessionStatus.WAITING_PERMISSION, reason="r", updated_at=time.time(),
                   server=server)


class FakeOpencode:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.asked: list[tuple[str, str]] = []

    async def handoff(self, s: Session, goal: str) -> str:
        self.asked.append((s.id, goal))
        if self.fail:
            raise OpencodeError("the server answered 500")
        return "ses_2"


def actions(opencode: Any = None, raised: list[int] | None = None) -> SessionActions:
    async def fake_raise(pid: int) -> RaiseResult:
        if raised is not None:
            raised.append(pid)
        return RaiseResult(False, "Wayland does not let an app raise another app's window.")

    return SessionActions(SessionRegistry(), None, None, opencode or FakeOpencode(), raise_window=fake_raise)  # type: ignore[arg-type]


def test_show_terminal_reports_what_the_window_service_said(qloop: asyncio.AbstractEventLoop) -> None:
    raised: list[int] = []
    a = actions(raised=raised)
    got = qloop.run_until_complete(a.run(session(), "show_terminal"))
    assert got.report.state is DeliveryState.REFUSED and got.report.detail.startswith("Wayland")
    assert raised == [4242] and not got.as_delivery and not got.new_session
    got = qloop.run_until_complete(a.run(session(pid=None), "show_terminal"))
    assert got.report.state is DeliveryState.REFUSED and "no process" in got.report.detail and raised == [4242]


def test_handoff_names_the_new_session_or_says_why_not(qloop: asyncio.AbstractEventLoop) -> None:
    oc = FakeOpencode()
    got = qloop.run_until_complete(actions(oc).run(session(server="http://127.0.0.1:4096"), "handoff", "ship it"))
    assert oc.asked == [("ses_1", "ship it")]
    assert got.new_session == "ses_2" and got.as_delivery and got.report.state is DeliveryState.ACCEPTED
    assert "handed off to a new session (ses_2)" in got.report.detail
    got = qloop.run_until_complete(actions(FakeOpencode(fail=True)).run(session(server="http://x"), "handoff", "g"))
    assert got.report.state is DeliveryState.REFUSED and "500" in got.report.detail and got.report.text == "g"
    assert not got.new_session


def test_an_unknown_action_is_refused(qloop: asyncio.AbstractEventLoop) -> None:
    got = qloop.run_until_complete(actions().run(session(), "fly"))
    assert got.report.state is DeliveryState.REFUSED and "fly" in got.report.detail
