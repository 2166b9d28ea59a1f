"""Window behaviour a user relies on: reopen closed tabs, drafts that survive a crash,
unread marks, grouping and filtering, answer recall, middle-click close."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence

from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, PaneRef, Session, SessionStatus
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.persist import CLOSED_MAX
from deck_tray.ui.window import MainWindow

pytestmark = pytest.mark.gui
PANE = PaneRef("tmux", "%1", "/tmp/tmux-0/default", "w:1.0")


def sess(n: int, status: SessionStatus = SessionStatus.BUSY, title: str = "", cwd: str = "") -> Session:
    return Session(id=f"{n:08d}-session", agent=AgentKind.CLAUDE_CODE if n % 2 else AgentKind.CODEX,
                   cwd=cwd or f"/home/dev/project-{n}", title=title or f"Task number {n}", pid=1000 + n,
                   pane=PANE, status=status, reason="working — transcript, just now", updated_at=time.time() - n)


def make(tmp_path: Path, qtbot, reg: SessionRegistry | None = None) -> tuple[MainWindow, SessionRegistry, Path]:
    ini = tmp_path / "deck-tray.ini"
    reg = reg or SessionRegistry()
    win = MainWindow(reg, QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    return win, reg, ini


def test_closed_tabs_reopen_newest_first_with_their_draft_and_survive_a_restart(tmp_path: Path, qtbot) -> None:
    win, reg, ini = make(tmp_path, qtbot)
    reg.apply([sess(n) for n in range(1, 14)])
    assert not win.reopen_action.isVisible(), "nothing to reopen yet: no button"
    for n in range(1, 14):
        tab = win.open_session(f"{n:08d}-session")
        assert tab is not None
        tab.answer.setPlainText(f"draft for {n}")
    for _ in range(13):
        win.close_tab(0)
    assert win.tabs.count() == 0
    assert win.reopen_action.isVisible()
    assert len(win.reopen_menu.actions()) == CLOSED_MAX
    # A restart: a new window on the same settings file.
    win2, _reg, _ = make(tmp_path, qtbot, reg)
    assert [a.text().split("  —")[0] for a in win2.reopen_menu.actions()][:2] == ["Task number 13", "Task number 12"]
    tab = win2.reopen_closed()
    assert tab is not None and tab.session.id == "00000013-session"
    assert tab.answer.toPlainText() == "draft for 13"
    win2.reopen_menu.actions()[2].trigger()  # "Task number 10" from the menu
    assert win2.current_tab() is not None and win2.current_tab().session.id == "00000010-session"
    remaining = [a.text().split("  —")[0] for a in win2.reopen_menu.actions()]
    assert remaining == [f"Task number {n}" for n in (12, 11, 9, 8, 7, 6, 5, 4)]
    assert ini.exists()


def test_ctrl_shift_t_reopens(tmp_path: Path, qtbot) -> None:
    win, reg, _ = make(tmp_path, qtbot)
    reg.apply([sess(1), sess(2)])
    win.open_session("00000001-session")
    win.close_tab(0)
    assert win.reopen_action.shortcut() == QKeySequence("Ctrl+Shift+T")
    win.reopen_action.trigger()
    assert win.tabs.count() == 1 and not win.reopen_action.isVisible()


def test_draft_survives_a_crash(tmp_path: Path, qtbot) -> None:
    win, reg, ini = make(tmp_path, qtbot)
    reg.apply([sess(1)])
    tab = win.open_session("00000001-session")
    assert tab is not None
    tab.answer.setPlainText("a long answer I am still writing")
    qtbot.waitUntil(lambda: "still writing" in ini.read_text(errors="replace") if ini.exists() else False,
                    timeout=3000)
    # No close event, no explicit save: the process "crashes" here. A new window reads the file.
    win2, _r, _ = make(tmp_path, qtbot, reg)
    tab2 = win2.open_session("00000001-session")
    assert tab2 is not None and tab2.answer.toPlainText() == "a long answer I am still writing"


def test_sessions_are_grouped_and_filtered(tmp_path: Path, qtbot) -> None:
    win, reg, _ = make(tmp_path, qtbot)
    reg.apply([
        sess(1, SessionStatus.WAITING_PERMISSION, "Fix login"),
        sess(2, SessionStatus.BUSY, "Refactor api", cwd="/srv/api"),
        sess(3, SessionStatus.IDLE, "Write changelog"),
        sess(4, SessionStatus.ENDED, "Old investigation"),
    ])
    assert list(win.listed()) == ["Needs you", "Working", "Ready", "Ended"]
    win.filter.setText("api")
    assert win.listed() == {"Working": ["00000002-session"]}
    win.filter.setText("nothing matches this")
    assert win.listed() == {}
    win.filter.clear()
    assert sum(len(v) for v in win.listed().values()) == 4


def test_unread_until_the_tab_is_seen(tmp_path: Path, qtbot) -> None:
    win, reg, _ = make(tmp_path, qtbot)
    reg.apply([sess(1, SessionStatus.BUSY), sess(2, SessionStatus.BUSY)])
    win.open_session("00000001-session")
    win.open_session("00000002-session")  # the current tab: session 1 is not being looked at
    reg.apply([sess(1, SessionStatus.IDLE), sess(2, SessionStatus.BUSY)])
    assert "00000001-session" in win.unread
    idx = win.tabs.indexOf(win.tabs_by_id["00000001-session"])
    assert win.tabs.tabText(idx).startswith("● ")
    win.tabs.setCurrentIndex(idx)
    assert "00000001-session" not in win.unread
    assert not win.tabs.tabText(idx).startswith("● ")


def test_up_recalls_earlier_answers(tmp_path: Path, qtbot) -> None:
    win, reg, _ = make(tmp_path, qtbot)
    reg.apply([sess(1, SessionStatus.IDLE)])
    tab = win.open_session("00000001-session")
    assert tab is not None
    for text in ("first answer", "second answer"):
        tab.answer.setPlainText(text)
        tab.show_delivery(DeliveryReport(DeliveryState.ACCEPTED, "", text))
    assert tab.answer.toPlainText() == ""
    tab.answer.setFocus()
    qtbot.keyClick(tab.answer, Qt.Key.Key_Up)
    assert tab.answer.toPlainText() == "second answer"
    qtbot.keyClick(tab.answer, Qt.Key.Key_Up)
    assert tab.answer.toPlainText() == "first answer"
    qtbot.keyClick(tab.answer, Qt.Key.Key_Down)
    assert tab.answer.toPlainText() == "second answer"


def test_middle_click_closes_a_tab(tmp_path: Path, qtbot) -> None:
    win, reg, _ = make(tmp_path, qtbot)
    reg.apply([sess(1), sess(2)])
    win.open_session("00000001-session")
    win.open_session("00000002-session")
    win.show()
    bar = win.tabs.tabBar()
    qtbot.waitUntil(lambda: bar.tabRect(0).width() > 0, timeout=2000)
    qtbot.mouseClick(bar, Qt.MouseButton.MiddleButton, pos=bar.tabRect(0).center())
    assert win.tabs.count() == 1


def test_pinned_mode_is_compact_and_remembered(tmp_path: Path, qtbot) -> None:
    win, reg, _ = make(tmp_path, qtbot)
    win.show()
    normal = win.size()
    win.pin_action.setChecked(True)
    assert win.is_pinned()
    assert win.width() < normal.width()
    win.pin_action.setChecked(False)
    assert not win.is_pinned()
    win2, _r, _ = make(tmp_path, qtbot, reg)
    assert not win2.is_pinned()


def test_conversation_renders_markdown(tmp_path: Path, qtbot) -> None:
    from deck_tray.core.model import Message, MessageRole

    win, reg, _ = make(tmp_path, qtbot)
    s = replace(sess(1, SessionStatus.IDLE), messages=(
        Message(MessageRole.USER, "please **fix** it"),
        Message(MessageRole.ASSISTANT, "Done:\n\n- item one\n- item `two`"),
        Message(MessageRole.TOOL, "Bash(rm -f x)", state="done"),
    ))
    reg.apply([s])
    tab = win.open_session(s.id)
    assert tab is not None
    plain = tab.view.toPlainText()
    assert "item one" in plain and "- item" not in plain, "markdown lists are rendered, not shown raw"
    assert "✓ Bash(rm -f x)" in plain
    assert "**fix**" not in plain


def test_no_tray_keeps_the_window_and_says_so_once(tmp_path: Path, qtbot) -> None:
    from deck_tray.app import DeckTrayApp
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)

    def start() -> DeckTrayApp:
        app = DeckTrayApp(scanner=Scanner(tmp_path / "c", tmp_path / "x"), mux=Tmux(), settings=settings)
        qtbot.addWidget(app.window)
        app.monitor.start = lambda: None  # type: ignore[method-assign]  # no scanning needed here
        app.opencode.start = lambda: None  # type: ignore[method-assign]  # nor opencode servers
        app.subagents.start = lambda: None  # type: ignore[method-assign]  # nor sub-agent panes
        app.start()  # offscreen: Qt reports no system tray
        return app

    first = start()
    assert first.window.isVisible()
    assert first.window.notice_bar.isVisibleTo(first.window)
    assert "AppIndicator" in first.window.notice.text()
    first.window.close()
    assert first.window.isVisible(), "without a tray, closing must not make the app unreachable"
    second = start()
    assert not second.window.notice_bar.isVisibleTo(second.window), "told once"


def test_errors_show_once_with_copy_details(qtbot) -> None:
    import sys
    import threading

    from PySide6.QtWidgets import QApplication, QMessageBox

    from deck_tray.ui.errors import ErrorReporter

    reporter = ErrorReporter()

    def boom() -> None:
        try:
            raise RuntimeError("the pane vanished mid-read")
        except RuntimeError:
            reporter.report(*sys.exc_info())  # type: ignore[arg-type]

    t = threading.Thread(target=boom)
    t.start()
    t.join()
    qtbot.waitUntil(lambda: reporter.box is not None and reporter.box.isVisible(), timeout=3000)
    box = reporter.box
    assert box is not None and "the pane vanished mid-read" in box.text()
    copy = next(b for b in box.buttons() if b.text() == "Copy details")
    copy.click()
    assert "RuntimeError" in QApplication.clipboard().text()
    assert box.isVisible(), "copying keeps the message open"
    boom()
    qtbot.waitUntil(lambda: reporter.count == 2, timeout=3000)
    assert len([w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]) == 1
    box.close()


def test_notification_open_action_opens_the_exact_tab(tmp_path: Path, qtbot) -> None:
    from deck_tray.app import DeckTrayApp
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux

    app = DeckTrayApp(scanner=Scanner(tmp_path / "c", tmp_path / "x"), mux=Tmux(),
                      settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                      notification_backends=[])
    qtbot.addWidget(app.window)
    app.registry.apply([sess(1, SessionStatus.WAITING_PERMISSION), sess(2, SessionStatus.WAITING_QUESTION)])
    app.notifier.action_invoked.emit("00000002-session", "open", "")
    tab = app.window.current_tab()
    assert tab is not None and tab.session.id == "00000002-session"
    assert app.window.isVisible()


def test_pause_from_the_tray_reaches_the_notifier(tmp_path: Path, qtbot) -> None:
    from deck_tray.app import DeckTrayApp
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux

    app = DeckTrayApp(scanner=Scanner(tmp_path / "c", tmp_path / "x"), mux=Tmux(),
                      settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                      notification_backends=[])
    qtbot.addWidget(app.window)
    app.tray.pause_requested.emit(1800.0)
    assert app.notifier.paused_until is not None and app.notifier.paused_until > time.time() + 1700
    app.tray.rebuild_menu()
    assert any(a.text().startswith("Resume notifications") for a in app.tray.menu.actions())
    app.tray.pause_requested.emit(0.0)
    assert app.notifier.paused_until is None
