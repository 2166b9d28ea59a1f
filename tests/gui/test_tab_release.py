"""Tabs nobody looks at give their content back (the conversation view and its widgets), and
come back as the user left them: their draft, their conversation, their request buttons, the
page and scroll position they were on."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QPushButton

from deck_tray.core.model import (
    AgentKind,
    Message,
    MessageRole,
    PaneRef,
    PendingRequest,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.session_tab import KEEP_BUILT, SessionTab
from deck_tray.ui.window import MainWindow

pytestmark = pytest.mark.gui
PANE = PaneRef("tmux", "%7", "/tmp/tmux-0/default", "work:1.0")


def conversation(n: int, prefix: str = "message") -> tuple[Message, ...]:
    return tuple(Message(MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                         f"{prefix} {i}: " + "some words to wrap over a line or two " * 4, time.time() - 600 + i)
                 for i in range(n))


def waiting(messages: tuple[Message, ...]) -> Session:
    return Session(
        id="aaaa0001-wait", agent=AgentKind.CLAUDE_CODE, cwd="/home/dev/shop", title="Clean the build", pid=4242,
        pane=PANE, status=SessionStatus.WAITING_PERMISSION,
        reason="permission prompt for Bash `rm -rf build` — live status file, 2 s ago",
        pending=PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf build",
                               ("Yes", "Yes, and don't ask again for rm", "No"), "toolu_1"),
        updated_at=time.time(), messages=messages)


def busy(n: int) -> Session:
    return Session(id=f"bbbb{n:04d}-busy", agent=AgentKind.CODEX, cwd=f"/home/dev/p{n}", title=f"Other task {n}",
                   pid=5000 + n, pane=PANE, status=SessionStatus.BUSY, reason="working — transcript, just now",
                   updated_at=time.time() - n, messages=conversation(5, f"other {n}"))


@pytest.fixture
def window(tmp_path: Path, qtbot) -> tuple[MainWindow, SessionRegistry]:
    reg = SessionRegistry()
    win = MainWindow(reg, QSettings(str(tmp_path / "deck-tray.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    return win, reg


def request_buttons(tab: SessionTab) -> list[str]:
    return [b.text() for b in tab.request_box.findChildren(QPushButton) if b.isVisibleTo(tab)]


def look_elsewhere(win: MainWindow, qtbot, tab: SessionTab) -> None:
    """Show enough other tabs that ``tab`` is not among those kept built."""
    for n in range(KEEP_BUILT):
        win.open_session(busy(n).id)
    qtbot.waitUntil(lambda: not tab.built, timeout=10_000)


def test_a_released_tab_shown_again_has_its_draft_conversation_and_request_buttons(window, qtbot) -> None:
    win, reg = window
    s = waiting(conversation(40))
    reg.apply([s, *(busy(n) for n in range(KEEP_BUILT))])
    tab = win.open_session(s.id)
    assert tab is not None
    qtbot.waitUntil(lambda: "message 39" in tab.view.toPlainText() and "message 0:" in tab.view.toPlainText(),
                    timeout=10_000)
    assert request_buttons(tab) == ["Allow", "Always allow", "Deny"]
    tab.answer.setPlainText("only the build folder, not the cache")
    bar = tab.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 200, timeout=10_000)
    bar.setValue(bar.maximum() // 2)  # the user scrolled up to read
    where = bar.value()

    look_elsewhere(win, qtbot, tab)
    assert win.tabs.indexOf(tab) >= 0 and win.tabs.tabText(win.tabs.indexOf(tab)).endswith("Clean the build")
    # The session goes on meanwhile: the released tab only takes note.
    s2 = replace(s, messages=(*s.messages, Message(MessageRole.ASSISTANT, "message 40: a new answer")),
                 updated_at=time.time())
    reg.apply([s2, *(busy(n) for n in range(KEEP_BUILT))])
    assert not tab.built, "a change of its session does not build a tab nobody looks at"

    win.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.built and "message 40: a new answer" in tab.view.toPlainText()
                    and "message 0:" in tab.view.toPlainText(), timeout=10_000)
    assert tab.answer.toPlainText() == "only the build folder, not the cache"
    assert request_buttons(tab) == ["Allow", "Always allow", "Deny"]
    bar = tab.view.verticalScrollBar()
    # Back where the user had scrolled to (once its older pieces are in), not at the bottom.
    qtbot.waitUntil(lambda: not tab._building() and abs(bar.value() - where) < 80, timeout=10_000)

    # The buttons work: Deny sends the draft as the reason.
    sent: list[tuple[str, Reply]] = []
    win.reply_requested.connect(lambda sid, reply: sent.append((sid, reply)))
    deny = next(b for b in tab.request_box.findChildren(QPushButton) if b.text() == "Deny")
    deny.click()
    assert sent == [(s.id, Reply(ReplyKind.DENY, "only the build folder, not the cache"))]


def test_only_the_tabs_shown_last_keep_their_content(window, qtbot) -> None:
    win, reg = window
    sessions = [busy(n) for n in range(KEEP_BUILT + 3)]
    reg.apply(sessions)
    tabs = [win.open_session(s.id) for s in sessions]
    assert all(t is not None for t in tabs)
    qtbot.waitUntil(lambda: [t.built for t in tabs if t is not None] ==
                    [False] * 3 + [True] * KEEP_BUILT, timeout=10_000)
    # Going back to the first builds it again, and the oldest of the kept ones goes.
    first = tabs[0]
    assert first is not None
    win.tabs.setCurrentWidget(first)
    qtbot.waitUntil(lambda: first.built and "other 0 4:" in first.view.toPlainText(), timeout=10_000)
    assert sum(t.built for t in tabs if t is not None) == KEEP_BUILT


def test_a_delivery_report_for_a_released_tab_is_shown_when_it_is_back(window, qtbot) -> None:
    from deck_tray.core.model import DeliveryReport, DeliveryState

    win, reg = window
    s = waiting(conversation(4))
    reg.apply([s, *(busy(n) for n in range(KEEP_BUILT))])
    tab = win.open_session(s.id)
    assert tab is not None
    tab.answer.setPlainText("go ahead")
    tab.send_button.click()
    look_elsewhere(win, qtbot, tab)
    win.show_delivery(s.id, DeliveryReport(DeliveryState.ACCEPTED, "", "go ahead"))
    assert not tab.built
    win.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.built, timeout=10_000)
    assert tab.delivery.text() == "Delivered — the agent took it"
    assert tab.answer.toPlainText() == "", "a delivered answer leaves the box"


def test_a_past_session_tab_stays_read_only_when_built_again(qtbot) -> None:
    from PySide6.QtWidgets import QTabWidget

    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    past = replace(busy(7), status=SessionStatus.ENDED, pid=None, pane=None)
    tab = SessionTab(past)
    tab.set_past(True)
    other = SessionTab(busy(8))
    tabs.addTab(tab, "past")
    tabs.addTab(other, "other")
    tabs.show()
    tabs.setCurrentWidget(other)
    assert tab.release() and not tab.built
    tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.built and "other 7 4:" in tab.view.toPlainText(), timeout=10_000)
    assert tab.past_note.isVisibleTo(tab) and not tab.answer_row.isVisibleTo(tab)
    assert tab.resume_button.isVisibleTo(tab)
    assert not tab.release(), "the tab in view keeps its content"
