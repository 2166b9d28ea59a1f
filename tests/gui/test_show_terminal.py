"""Issue #13: a session deck-tray cannot type into (a plain terminal window) offers "Show terminal";
clicking it asks the window service to raise the agent's terminal and the tab says how it went.
A session in a pane has no such button; a waiting Codex session without a pane says how it can be
answered. The raising itself runs for real in tests/services/test_window_raise.py (Xvfb + evilwm)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from deck_tray.core.model import AgentKind, PaneRef, PendingRequest, RequestKind, Session, SessionStatus
from deck_tray.core.scan import Scanner
from deck_tray.services.panes import Tmux
from deck_tray.services.window_raise import RaiseResult

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qt_slate")]

SID = "3f0e9a52-7d1b-4c55-9a0e-1b2c3d4e5f60"


def session(agent: AgentKind = AgentKind.CLAUDE_CODE, pane: PaneRef | None = None,
            status: SessionStatus = SessionStatus.WAITING_PERMISSION) -> Session:
    return Session(id=SID, agent=agent, cwd="/home/dev/proj", title="fix the parser", pid=os.getpid(), pane=pane,
                   status=status, reason="permission prompt — hook", updated_at=time.time(),
                   pending=PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf build", ("Yes", "No")))


def make_app(tmp_path: Path, qtbot: Any) -> Any:
    from deck_tray.app import DeckTrayApp

    app = DeckTrayApp(scanner=Scanner(tmp_path / "claude", tmp_path / "codex", process_lister=lambda: []),
                      mux=Tmux(), settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                      notification_backends=[], discover_opencode=False, ipc_path=None)
    qtbot.addWidget(app.window)
    return app


def test_show_terminal_raises_the_agents_window_and_says_how_it_went(tmp_path: Path, qtbot: Any,
                                                                     qloop: asyncio.AbstractEventLoop) -> None:
    app = make_app(tmp_path, qtbot)
    asked: list[int] = []
    answers = [RaiseResult(True, "Raised kitty's window “agent 1”."),
               RaiseResult(False, "Wayland does not let an app raise another app's window; switch to the "
                                  "terminal yourself.")]

    async def fake_raise(pid: int) -> RaiseResult:
        asked.append(pid)
        return answers[len(asked) - 1]

    app.actions._raise = fake_raise
    app.registry.apply([session()])
    tab = app.window.open_session(SID)
    assert tab is not None
    assert tab.show_terminal_button.isVisibleTo(tab) and tab.show_terminal_button.isEnabled()
    assert "not in a terminal deck-tray can type into" in tab.where.text()

    async def clicks() -> None:
        tab.show_terminal_button.click()
        deadline = time.monotonic() + 10
        while "Raised kitty's window" not in tab.delivery.text():
            assert time.monotonic() < deadline, tab.delivery.text()
            await asyncio.sleep(0.02)
        tab.show_terminal_button.click()
        while "Wayland does not let" not in tab.delivery.text():
            assert time.monotonic() < deadline, tab.delivery.text()
            await asyncio.sleep(0.02)

    qloop.run_until_complete(clicks())
    assert asked == [os.getpid(), os.getpid()]
    assert tab.delivery.text().startswith("Could not do it: Wayland")


def test_no_show_terminal_where_deck_tray_can_type(tmp_path: Path, qtbot: Any) -> None:
    app = make_app(tmp_path, qtbot)
    app.registry.apply([session(pane=PaneRef("tmux", "%3", "/tmp/tmux-0/default", "work:1.0"))])
    tab = app.window.open_session(SID)
    assert tab is not None
    assert not tab.show_terminal_button.isVisibleTo(tab)
    app.registry.apply([session(status=SessionStatus.ENDED)])
    assert not tab.show_terminal_button.isVisibleTo(tab), "an ended agent has no terminal to show"


def test_a_waiting_codex_session_without_a_pane_says_how_it_can_be_answered(tmp_path: Path, qtbot: Any) -> None:
    app = make_app(tmp_path, qtbot)
    app.registry.apply([session(agent=AgentKind.CODEX)])
    tab = app.window.open_session(SID)
    assert tab is not None
    assert "turn on “Let Codex wait for deck-tray” in Settings" in tab.request_text.text()
    assert "not in a terminal deck-tray can type into" in tab.where.text()
    allow = [b for b in tab.findChildren(type(tab.send_button)) if b.text() == "Allow"]
    assert len(allow) == 1 and not allow[0].isEnabled(), "no hook held, no pane: Allow cannot be delivered"
