"""Session actions with typed results (deck_tray.services.session_actions; #17 item 3, #13 Show terminal)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from deck_tray.core.model import ActionReport, AgentKind, DeliveryReport, DeliveryState, Session, SessionStatus
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
    assert isinstance(got.report, ActionReport) and not got.report.ok and got.report.detail.startswith("Wayland")
    assert raised == [4242] and not got.new_session
    got = qloop.run_until_complete(a.run(session(pid=None), "show_terminal"))
    assert not got.report.ok and "no process" in got.report.detail and raised == [4242]


def test_handoff_names_the_new_session_or_says_why_not(qloop: asyncio.AbstractEventLoop) -> None:
    oc = FakeOpencode()
    got = qloop.run_until_complete(actions(oc).run(session(server="http://127.0.0.1:4096"), "handoff", "ship it"))
    assert oc.asked == [("ses_1", "ship it")]
    assert got.new_session == "ses_2" and isinstance(got.report, DeliveryReport)
    assert got.report.state is DeliveryState.ACCEPTED
    assert "handed off to a new session (ses_2)" in got.report.detail
    got = qloop.run_until_complete(actions(FakeOpencode(fail=True)).run(session(server="http://x"), "handoff", "g"))
    assert got.report.state is DeliveryState.REFUSED and "500" in got.report.detail and got.report.text == "g"
    assert not got.new_session


def test_an_unknown_action_is_refused(qloop: asyncio.AbstractEventLoop) -> None:
    got = qloop.run_until_complete(actions().run(session(), "fly"))
    assert isinstance(got.report, ActionReport) and not got.report.ok and "fly" in got.report.detail


class Collected:
    """What a SessionActions said by signal."""

    def __init__(self, a: SessionActions) -> None:
        self.delivered: list[tuple[str, Any]] = []
        self.acted: list[tuple[str, Any]] = []
        self.opened: list[str] = []
        self.notices: list[Any] = []
        a.delivered.connect(lambda sid, r: self.delivered.append((sid, r)))
        a.acted.connect(lambda sid, r: self.acted.append((sid, r)))
        a.open_requested.connect(self.opened.append)
        a.notice.connect(self.notices.append)


def drain(loop: asyncio.AbstractEventLoop, a: SessionActions) -> None:
    """Run the loop until everything the actions started has finished (deadline 10 s)."""
    async def wait() -> None:
        deadline = loop.time() + 10
        while a.busy() and loop.time() < deadline:
            await asyncio.sleep(0.01)
    loop.run_until_complete(wait())
    assert not a.busy()


def test_a_request_reports_by_signal_and_a_handoff_opens_the_new_session(qloop: asyncio.AbstractEventLoop) -> None:
    oc = FakeOpencode()
    a = actions(oc)
    got = Collected(a)
    s = session(server="http://127.0.0.1:4096")
    a.registry.apply([s])
    a.request(s.id, "show_terminal")
    drain(qloop, a)
    assert got.acted and got.acted[0][0] == "ses_1" and not got.acted[0][1].ok
    a.request(s.id, "handoff", "ship it")
    qloop.call_later(0.3, lambda: a.registry.apply([s, dataclasses.replace(s, id="ses_2")]))
    drain(qloop, a)
    assert got.delivered[-1][0] == "ses_1" and got.delivered[-1][1].state is DeliveryState.ACCEPTED
    assert got.opened == ["ses_2"], "the new session opens once the registry lists it"


def test_a_request_for_an_unknown_session_is_refused_and_a_past_one_is_found(qloop: asyncio.AbstractEventLoop) -> None:
    a = actions()
    got = Collected(a)
    a.request("nope", "rename", "x")
    assert got.acted == [("nope", ActionReport(False, "the session is gone"))]
    a.past_session = lambda sid: session(pid=None) if sid == "ses_1" else None
    a.request("ses_1", "show_terminal")
    drain(qloop, a)
    assert got.acted[-1][0] == "ses_1" and "no process" in got.acted[-1][1].detail


def test_an_answer_to_a_session_no_longer_listed_keeps_the_text(qloop: asyncio.AbstractEventLoop) -> None:
    from deck_tray.core.reply import Reply, ReplyKind

    class NoMonitor:
        def refresh(self) -> None:
            pass

    a = SessionActions(SessionRegistry(), None, NoMonitor(), FakeOpencode())  # type: ignore[arg-type]
    got = Collected(a)
    report = qloop.run_until_complete(a.send_reply("gone", Reply(ReplyKind.PROMPT, "my long text")))
    assert report.state is DeliveryState.REFUSED and report.text == "my long text"
    assert got.delivered == [("gone", report)]


def test_a_notification_s_allow_or_deny_answers_the_session_and_open_answers_nothing(
        qloop: asyncio.AbstractEventLoop) -> None:
    a = actions()
    got = Collected(a)
    a.notification_action("ses_gone", "open")
    drain(qloop, a)
    assert got.delivered == [], "opening a tab answers nothing"
    a.notification_action("ses_gone", "deny")
    drain(qloop, a)
    assert [sid for sid, _ in got.delivered] == ["ses_gone"], "Deny went out as an answer"
    assert got.delivered[0][1].state is DeliveryState.REFUSED and "no longer known" in got.delivered[0][1].detail
