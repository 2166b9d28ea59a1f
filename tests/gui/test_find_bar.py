"""Ctrl+F in a session tab: n of m, next/previous wrap, Esc, no matches, a conversation
still loading or longer than what is rendered, and revealing a search hit."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from deck_tray.core.model import AgentKind, Message, MessageRole, Session, SessionStatus
from deck_tray.ui.find_bar import find_spans, utf16_positions
from deck_tray.ui.session_tab import MAX_RENDERED, SessionTab

pytestmark = pytest.mark.gui


def conversation(n: int, long_answers: bool = False) -> Session:
    msgs = []
    for i in range(n):
        if i % 2 == 0:
            msgs.append(Message(MessageRole.USER, f"prompt {i}: please fix the Parser", 1_800_000_000 + i))
        else:
            extra = "\n\n" + "filler words here " * 200 if long_answers else ""
            msgs.append(Message(MessageRole.ASSISTANT, f"Answer {i}: the parser is fixed.{extra}",
                                1_800_000_000 + i))
    return Session(id="find-me", agent=AgentKind.CLAUDE_CODE, cwd="/w", title="find", status=SessionStatus.IDLE,
                   updated_at=time.time(), messages=tuple(msgs))


def shown_tab(qtbot, session: Session) -> SessionTab:
    tab = SessionTab(session)
    qtbot.addWidget(tab)
    tab.resize(800, 600)
    tab.show()
    qtbot.waitUntil(lambda: not tab._older, timeout=5000)
    return tab


def test_find_spans_are_case_insensitive_and_literal() -> None:
    assert find_spans("a.b A.B axb", "a.b") == [(0, 3), (4, 7)]
    assert find_spans("x", "") == []
    text = "😀 parser"
    assert utf16_positions(text)(2) == 3, "a character outside the BMP takes two positions in Qt"


def test_ctrl_f_counts_goes_round_and_esc_closes(qtbot) -> None:
    tab = shown_tab(qtbot, conversation(6))
    assert tab.find_bar.isHidden()
    tab.view.setFocus()
    # Through the window, as the platform delivers keys (shortcuts are resolved there).
    QTest.keyClick(tab.windowHandle(), Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert tab.find_bar.isVisible() and tab.find_bar.edit.hasFocus()
    qtbot.keyClicks(tab.find_bar.edit, "parser")
    qtbot.waitUntil(lambda: tab.find_bar.matches == 6, timeout=2000)
    # A new search starts at the newest match in view (the bottom).
    assert tab.find_bar.count.text() == "6 of 6"
    assert tab.view.textCursor().selectedText().lower() == "parser"
    assert len(tab.view.extraSelections()) == 6
    qtbot.keyClick(tab.find_bar.edit, Qt.Key.Key_Return)
    assert tab.find_bar.count.text() == "1 of 6", "next wraps to the first"
    qtbot.keyClick(tab.find_bar.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert tab.find_bar.count.text() == "6 of 6", "previous wraps to the last"
    tab.find_bar.previous()
    assert tab.find_bar.count.text() == "5 of 6"
    qtbot.keyClick(tab.find_bar.edit, Qt.Key.Key_Escape)
    assert tab.find_bar.isHidden()
    assert tab.view.extraSelections() == []


def test_no_matches_is_said(qtbot) -> None:
    tab = shown_tab(qtbot, conversation(4))
    tab.open_find()
    tab.find_bar.edit.setText("zebra")
    tab.find_bar.refresh()
    assert tab.find_bar.matches == 0
    assert tab.find_bar.count.text() == "No matches"
    assert not tab.find_bar.next_button.isEnabled()
    tab.find_bar.next()  # nothing to go to: no error
    assert tab.find_bar.current == -1


def test_a_conversation_still_loading_is_said_and_counted_when_loaded(qtbot) -> None:
    s = conversation(120, long_answers=True)
    tab = SessionTab(s)
    qtbot.addWidget(tab)
    tab.resize(800, 600)
    tab.show()
    tab.open_find()
    tab.find_bar.edit.setText("parser")
    tab.find_bar.refresh()
    assert tab._older, "the conversation is still being built"
    assert "still loading" in tab.find_bar.note.text()
    first = tab.find_bar.matches
    assert 0 < first < 120
    qtbot.waitUntil(lambda: not tab._older and tab.find_bar.matches == 120, timeout=10_000)
    assert tab.find_bar.note.text() == ""
    assert tab.find_bar.count.text().endswith("of 120")


def test_messages_beyond_the_rendered_ones_are_offered(qtbot) -> None:
    s = conversation(MAX_RENDERED + 40)
    tab = shown_tab(qtbot, s)
    tab.open_find()
    tab.find_bar.edit.setText("prompt 10:")
    tab.find_bar.refresh()
    assert tab.find_bar.matches == 0
    assert "40 older messages not searched" in tab.find_bar.note.text()
    tab.find_bar.load_all_requested.emit()  # the "show them" link
    qtbot.waitUntil(lambda: not tab._older and tab.find_bar.matches == 1, timeout=10_000)
    assert tab.find_bar.note.text() == ""


def test_reveal_selects_the_hit_in_its_message_and_scrolls_to_it(qtbot) -> None:
    s = conversation(MAX_RENDERED + 40, long_answers=True)
    tab = shown_tab(qtbot, s)
    with qtbot.waitSignal(tab.revealed, timeout=15_000) as sig:
        tab.reveal("parser", "prompt 12: please fix the Parser")
    assert sig.args == [True]
    cur = tab.view.textCursor()
    assert cur.selectedText() == "Parser"
    block = cur.block().text()
    assert "prompt 12:" in block, block
    rect = tab.view.cursorRect(cur)
    assert tab.view.viewport().rect().contains(rect.center()), "the hit is in view"
    assert tab.find_bar.isVisible() and tab.find_bar.count.text().startswith(f"{13} of ")


def test_reveal_of_a_hit_the_tab_does_not_hold_says_so(qtbot) -> None:
    tab = shown_tab(qtbot, conversation(6))
    with qtbot.waitSignal(tab.revealed, timeout=5000) as sig:
        tab.reveal("parser", "a message that is not here about the parser")
    assert sig.args == [False]
    assert "not in the messages this tab holds" in tab.find_bar.note.text()
    assert tab.find_bar.matches == 6, "the term is still found where it is"
    tab.find_bar.edit.setText("answer")
    tab.find_bar.refresh()
    assert tab.find_bar.note.text() == "", "a new search forgets the remark"
