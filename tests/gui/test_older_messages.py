"""Older messages on demand (issue #16 item 7): scrolling to the top of a tab pages older
messages in — those the tab holds, then the whole transcript read on a worker thread — with
the view kept still and a line at the top saying what is above; a search hit anywhere in the
conversation is scrolled to."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.claude import ClaudeTranscript
from deck_tray.core.model import AgentKind, Message, MessageRole, Session, SessionStatus
from deck_tray.core.records import MAX_MESSAGES
from deck_tray.ui import session_tab
from deck_tray.ui.session_tab import SessionTab

pytestmark = pytest.mark.gui

T0 = 1_800_000_000


def record(i: int, sid: str = "s-older") -> dict[str, Any]:
    """Message ``i`` of a generated Claude Code transcript: prompts and answers in turn."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(T0 + i))
    base = {"sessionId": sid, "cwd": "/w", "timestamp": ts}
    if i % 2 == 0:
        return {**base, "type": "user", "uuid": f"u{i}",
                "message": {"role": "user", "content": f"prompt {i}: about the parser in module {i}"}}
    return {**base, "type": "assistant", "uuid": f"a{i}",
            "message": {"role": "assistant", "id": f"m{i}", "stop_reason": "end_turn",
                        "content": [{"type": "text", "text": f"Answer {i}: the tokenizer reads it. " * 3}]}}


def write_transcript(path: Path, n: int, start: int = 0) -> None:
    with path.open("a", encoding="utf-8") as f:
        for i in range(start, start + n):
            f.write(json.dumps(record(i)) + "\n")


def live_session(path: Path) -> Session:
    """The session as the live scan sees it: the newest MAX_MESSAGES messages of the file."""
    state = ClaudeTranscript()
    for line in path.read_text(encoding="utf-8").splitlines():
        state.feed(json.loads(line))
    return Session(id="s-older", agent=AgentKind.CLAUDE_CODE, cwd="/w", title="older", status=SessionStatus.IDLE,
                   updated_at=time.time(), transcript=str(path), messages=tuple(state.messages))


def plain_session(n: int, agent: AgentKind = AgentKind.CLAUDE_CODE) -> Session:
    msgs = tuple(Message(MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                         f"prompt {i}: about the parser" if i % 2 == 0 else f"Answer {i}: " + "words " * 40,
                         T0 + i, f"k{i}") for i in range(n))
    return Session(id="plain", agent=agent, cwd="/w", title="plain", status=SessionStatus.IDLE,
                   updated_at=time.time(), messages=msgs)


def shown(qtbot, session: Session) -> SessionTab:
    tab = SessionTab(session)
    qtbot.addWidget(tab)
    tab.resize(800, 600)
    tab.show()
    qtbot.waitUntil(lambda: not tab._building() and tab._ready, timeout=10_000)
    return tab


def note(tab: SessionTab) -> str:
    """The line at the top of the conversation."""
    return tab.view.document().begin().text()


def scroll_to_top(qtbot, tab: SessionTab) -> None:
    tab.view.verticalScrollBar().setValue(0)


def y_of(tab: SessionTab, text: str) -> int:
    """Where the block holding ``text`` is in the viewport (pixels from its top)."""
    found = tab.view.document().find(text)
    assert not found.isNull(), text
    return tab.view.cursorRect(found).top()


@pytest.fixture
def held_worker() -> Iterator[threading.Event]:
    """The tab's worker thread kept busy until the event is set (to see "Loading…")."""
    gate = threading.Event()
    session_tab._POOL.submit(gate.wait, 30)
    yield gate
    gate.set()


def test_scrolling_to_the_top_pages_older_messages_in_and_keeps_the_view_still(qtbot) -> None:
    tab = shown(qtbot, plain_session(390))
    assert note(tab) == "Scroll up for 190 earlier messages"
    assert "prompt 188:" not in tab.view.toPlainText() and "prompt 190:" in tab.view.toPlainText()
    scroll_to_top(qtbot, tab)
    qtbot.waitUntil(lambda: tab._lo == 0 and not tab._building(), timeout=10_000)
    assert "prompt 0: about the parser" in tab.view.toPlainText()
    assert note(tab) == "Start of the conversation"
    bar = tab.view.verticalScrollBar()
    assert bar.value() > 0, "the view did not jump to the new top"
    # What was in view stays put: the old top's first prompt is right under the view's top.
    y = y_of(tab, "prompt 190:")
    assert 0 < y < 80, y
    qtbot.wait(50)
    assert y_of(tab, "prompt 190:") == y


def test_the_view_keeps_still_exactly_while_a_page_is_prepended(qtbot) -> None:
    tab = shown(qtbot, plain_session(700))
    assert note(tab) == "Scroll up for 500 earlier messages"
    scroll_to_top(qtbot, tab)
    tab._at_edge()  # what the scroll bar's move asks for next
    assert tab._older
    y = y_of(tab, "prompt 500:")
    seen: list[int] = []
    while tab._older:  # piece by piece, as the event loop runs them
        tab._older_timer.stop()
        tab._prepend_older()
        seen.append(y_of(tab, "prompt 500:"))
    assert len(seen) >= 2 and set(seen) == {y}
    qtbot.waitUntil(lambda: not tab._building(), timeout=5000)
    assert tab._lo == 300 and note(tab) == "Scroll up for 300 earlier messages"


def test_the_line_at_the_top_names_each_state(qtbot, tmp_path: Path, held_worker: threading.Event) -> None:
    assert note(shown(qtbot, plain_session(5))) == "Start of the conversation"
    assert note(shown(qtbot, plain_session(300))) == "Scroll up for 100 earlier messages"
    empty = shown(qtbot, plain_session(0))
    assert note(empty) == "No conversation yet — it appears after the first prompt."
    # opencode keeps no transcript: a full window says where the rest is.
    assert note(shown(qtbot, plain_session(MAX_MESSAGES, AgentKind.OPENCODE))).startswith("Scroll up for 200")
    path = tmp_path / "t.jsonl"
    write_transcript(path, 1000)
    tab = shown(qtbot, live_session(path))
    assert note(tab) == "Scroll up for 200 earlier messages"
    scroll_to_top(qtbot, tab)
    qtbot.waitUntil(lambda: tab._lo == 0 and not tab._building(), timeout=10_000)
    assert note(tab) == "Scroll up for earlier messages (read from the transcript)"
    scroll_to_top(qtbot, tab)  # already at the top: the wheel asks again
    qtbot.waitUntil(lambda: note(tab) == "Loading earlier messages…", timeout=5000)
    held_worker.set()
    qtbot.waitUntil(lambda: tab._transcript == "loaded", timeout=10_000)
    qtbot.waitUntil(lambda: not tab._building(), timeout=10_000)
    assert note(tab) == "Scroll up for 400 earlier messages", "the first page of the transcript is in"


def test_opencode_full_window_says_where_older_messages_are(qtbot) -> None:
    tab = shown(qtbot, plain_session(MAX_MESSAGES, AgentKind.OPENCODE))
    tab.show_all_messages()
    qtbot.waitUntil(lambda: tab._lo == 0 and not tab._building(), timeout=10_000)
    assert note(tab) == "Earlier messages are not kept here — Ctrl+Shift+F searches all history"


def test_paging_reaches_the_start_of_the_transcript_while_the_tab_keeps_updating(qtbot, tmp_path: Path,
                                                                                held_worker: threading.Event) -> None:
    path = tmp_path / "t.jsonl"
    write_transcript(path, 1200)
    tab = shown(qtbot, live_session(path))
    held_worker.set()
    appended = False
    deadline = time.monotonic() + 60
    while note(tab) != "Start of the conversation":
        assert time.monotonic() < deadline, note(tab)
        if not tab._building():
            scroll_to_top(qtbot, tab)
            tab._page_up()
        if tab._transcript == "loading" and not appended:
            # New messages while the transcript is read: they appear at the bottom.
            write_transcript(path, 2, start=1200)
            tab.update_session(live_session(path))
            appended = True
        qtbot.wait(5)
    assert appended
    text = tab.view.toPlainText()
    assert "prompt 0: about the parser" in text and "prompt 1200: about the parser" in text
    assert "Answer 1201" in text.splitlines()[-1], "the newest message is at the bottom"
    assert len(tab._held) == 1202
    assert [m.key for m in tab._held] == [f"u{i}" if i % 2 == 0 else f"m{i}" for i in range(1202)]


def test_a_hit_in_message_3_of_a_5000_message_transcript_is_revealed(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_transcript(path, 5000)
    tab = shown(qtbot, live_session(path))
    assert "prompt 2:" not in tab.view.toPlainText()
    with qtbot.waitSignal(tab.revealed, timeout=30_000) as sig:
        tab.reveal("parser", "prompt 2: about the parser in module 2")
    assert sig.args == [True]
    cur = tab.view.textCursor()
    assert cur.selectedText() == "parser"
    assert cur.block().text() == "prompt 2: about the parser in module 2"
    assert tab.view.viewport().rect().contains(tab.view.cursorRect(cur).center()), "the hit is in view"
    assert tab.find_bar.remark == ""
    # The view holds a window around the hit: the newest messages are a click away, and a new
    # message is counted there while the hit stays where it is.
    assert tab.newer_button.isVisible()
    y = tab.view.cursorRect(cur).top()
    tab.update_session(replace(tab.session, messages=(*tab.session.messages,
                                                      Message(MessageRole.USER, "one more", T0 + 9000, "x"))))
    assert tab.newer_button.text() == f"{5001 - tab._hi} newer messages ↓"
    assert tab.view.textCursor().selectedText() == "parser" and tab.view.cursorRect(cur).top() == y
    tab.newer_button.click()
    qtbot.waitUntil(lambda: not tab._building() and tab._ready, timeout=10_000)
    assert tab.view.toPlainText().splitlines()[-1] == "one more"


def test_a_view_paged_far_up_drops_its_newest_pieces_and_offers_them_back(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(session_tab, "WINDOW_CHARS", 40_000)
    tab = shown(qtbot, plain_session(390))
    scroll_to_top(qtbot, tab)
    qtbot.waitUntil(lambda: tab._lo == 0 and not tab._building(), timeout=10_000)
    assert tab._hi < 390 and "prompt 388:" not in tab.view.toPlainText()
    assert tab.newer_button.isVisible() and tab.newer_button.text() == f"{390 - tab._hi} newer messages ↓"
    assert 0 < y_of(tab, "prompt 190:") < 80, "what was in view (the old top) still is"
    # A new message counts there; the view stays.
    top = tab.view.verticalScrollBar().value()
    tab.update_session(replace(tab.session, messages=(*tab.session.messages,
                                                      Message(MessageRole.USER, "one more", T0 + 9000, "x"))))
    assert tab.newer_button.text() == f"{391 - tab._hi} newer messages ↓"
    assert tab.view.verticalScrollBar().value() == top
    # Scrolling down brings newer pages back, dropping the oldest ones.
    bar = tab.view.verticalScrollBar()
    deadline = time.monotonic() + 30
    while tab._hi < 391:
        assert time.monotonic() < deadline
        bar.setValue(bar.maximum())
        qtbot.wait(5)
    qtbot.waitUntil(lambda: not tab._newer and not tab.newer_button.isVisible(), timeout=10_000)
    # The oldest pieces are dropped once the newer ones are in (a step of its own: wait for it on
    # a loaded machine).
    qtbot.waitUntil(lambda: tab._lo > 0 and not tab._building(), timeout=10_000)
    assert note(tab) == f"Scroll up for {tab._lo} earlier messages"
    assert tab.view.toPlainText().splitlines()[-1] == "one more"
    # The button goes straight to the newest messages.
    scroll_to_top(qtbot, tab)
    qtbot.waitUntil(lambda: tab.newer_button.isVisible(), timeout=10_000)
    tab.newer_button.click()
    qtbot.waitUntil(lambda: not tab._building() and tab._ready, timeout=10_000)
    assert tab.view.toPlainText().splitlines()[-1] == "one more"
    assert bar.value() == bar.maximum() and not tab.newer_button.isVisible()


def test_a_hit_nowhere_in_the_transcript_is_said_to_be_missing(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_transcript(path, 900)
    tab = shown(qtbot, live_session(path))
    with qtbot.waitSignal(tab.revealed, timeout=30_000) as sig:
        tab.reveal("lexer", "the lexer was never mentioned here")
    assert sig.args == [False]
    assert tab.find_bar.remark == "the hit is not in the messages this tab holds"
    assert tab._transcript == "loaded"


def test_a_vanished_transcript_gives_the_error_line_and_keeps_what_is_shown(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_transcript(path, 1000)
    tab = shown(qtbot, live_session(path))
    tab.show_all_messages()
    qtbot.waitUntil(lambda: tab._lo == 0 and not tab._building() and tab._ready, timeout=10_000)
    path.unlink()
    before = tab.view.toPlainText().split("\n", 1)[1]
    scroll_to_top(qtbot, tab)
    tab._page_up()
    qtbot.waitUntil(lambda: tab._transcript == "error", timeout=10_000)
    assert note(tab) == (f"Earlier messages cannot be shown: the transcript {path} cannot be read: "
                         "No such file or directory.")
    assert tab.view.toPlainText().split("\n", 1)[1] == before, "what was shown is still shown"
    # A search hit older than what the tab holds says why it is not shown.
    with qtbot.waitSignal(tab.revealed, timeout=10_000) as sig:
        tab.reveal("parser", "prompt 2: about the parser in module 2")
    assert sig.args == [False]
    assert "cannot be read" in tab.find_bar.note.text()
