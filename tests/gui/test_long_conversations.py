"""Long conversations open without holding the GUI: the newest piece at once, older pieces
prepended one per event-loop turn, the same document in the end; list rebuilds coalesce."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QTextDocument

from deck_tray.core.model import AgentKind, Message, MessageRole, Session, SessionStatus
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui import session_tab
from deck_tray.ui.session_tab import SessionTab, conversation_chunks, render_conversation
from deck_tray.ui.window import MainWindow

pytestmark = pytest.mark.gui


def long_session(n: int = 300) -> Session:
    msgs = []
    for i in range(n):
        role = (MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL)[i % 3]
        text = {
            MessageRole.USER: f"prompt {i}: please look at the parser",
            MessageRole.ASSISTANT: f"Answer {i}:\n\n- item one\n- item `two`\n\n```python\nx = {i}\n```\n\n"
                                   + "words " * 150,
            MessageRole.TOOL: f"Bash(pytest -q tests/t{i})",
        }[role]
        msgs.append(Message(role, text, 1_800_000_000 + i, f"k{i}", "done" if role is MessageRole.TOOL else ""))
    return Session(id="long-session", agent=AgentKind.CLAUDE_CODE, cwd="/w", title="long", status=SessionStatus.IDLE,
                   updated_at=time.time(), messages=tuple(msgs))


def test_chunks_are_the_conversation_cut_between_messages() -> None:
    s = long_session()
    chunks = conversation_chunks(s.messages)
    assert len(chunks) > 3
    assert "\n\n".join(reversed(chunks)) == render_conversation(s.messages)
    assert len(chunks[0]) <= session_tab.FIRST_CHUNK_CHARS + 8200, "the first piece is small"
    assert "Scroll up for 100 earlier messages" in chunks[-1]
    assert conversation_chunks(s.messages[:2]) == [render_conversation(s.messages[:2])]


def test_a_long_conversation_shows_the_newest_first_and_ends_as_one_render(qtbot) -> None:
    s = long_session()
    tab = SessionTab(s)
    qtbot.addWidget(tab)
    tab.resize(800, 600)
    tab.show()
    first = tab.view.toPlainText()
    assert "Answer 298" in first and "prompt 102" not in first, "only the newest piece at first"
    qtbot.waitUntil(lambda: not tab._older, timeout=5000)
    qtbot.wait(20)
    ref = QTextDocument()
    ref.setMarkdown(render_conversation(s.messages))
    assert tab.view.toPlainText() == ref.toPlainText()
    bar = tab.view.verticalScrollBar()
    assert bar.value() == bar.maximum(), "still scrolled to the newest message"
    # A newer snapshot starts over from the newest piece.
    more = replace(s, messages=(*s.messages, Message(MessageRole.USER, "one more", 1_900_000_000)))
    tab.update_session(more)
    assert "one more" in tab.view.toPlainText()
    qtbot.waitUntil(lambda: not tab._older, timeout=5000)
    ref.setMarkdown(render_conversation(more.messages))
    assert tab.view.toPlainText() == ref.toPlainText()


def test_a_burst_of_registry_signals_rebuilds_the_list_once(tmp_path: Path, qtbot, monkeypatch) -> None:
    calls: list[int] = []
    real = MainWindow._rebuild_list
    monkeypatch.setattr(MainWindow, "_rebuild_list", lambda self: (calls.append(1), real(self)))
    reg = SessionRegistry()
    win = MainWindow(reg, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    calls.clear()
    reg.apply([replace(long_session(1), id=f"s{i}", title=f"t{i}") for i in range(40)])
    qtbot.waitUntil(lambda: len(calls) >= 1, timeout=2000)
    qtbot.wait(20)
    assert len(calls) == 1
    assert sum(len(v) for v in win.listed().values()) == 40


def test_only_the_visible_tab_builds_and_hidden_tabs_cost_no_layout(tmp_path: Path, qtbot) -> None:
    reg = SessionRegistry()
    win = MainWindow(reg, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    a, b = long_session(), replace(long_session(), id="other", title="other")
    reg.apply([a, b])
    ta = win.open_session(a.id)
    tb = win.open_session(b.id)
    assert ta is not None and tb is not None
    qtbot.waitUntil(lambda: not tb._older, timeout=5000)
    assert ta._older, "a hidden tab waits with the rest of its conversation"
    assert ta.heightForWidth(500) == -1 and tb.heightForWidth(500) > 0
    win.tabs.setCurrentWidget(ta)
    qtbot.waitUntil(lambda: not ta._older, timeout=5000)
    ref = QTextDocument()
    ref.setMarkdown(render_conversation(a.messages))
    assert ta.view.toPlainText() == ref.toPlainText()
