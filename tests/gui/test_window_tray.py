"""Registry → tray and window wiring, as a user sees it (offscreen)."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QPushButton

from deck_tray.core.model import (
    AgentKind,
    DeliveryReport,
    DeliveryState,
    Session,
    SessionStatus,
)
from deck_tray.core.reply import ReplyKind
from deck_tray.services.notifier import notification_text
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.tray import Tray
from deck_tray.ui.window import MainWindow
from tests.helpers import busy_session, waiting_session

pytestmark = pytest.mark.gui


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)


def test_attention_is_announced_once_per_request(qtbot) -> None:
    reg = SessionRegistry()
    seen: list[Session] = []
    reg.attention_needed.connect(seen.append)
    reg.apply([waiting_session(), busy_session()])
    reg.apply([waiting_session(), busy_session()])
    assert [s.id for s in seen] == ["aaaa1111"]
    reg.apply([waiting_session(request="toolu_2"), busy_session()])  # a new request in the same session
    assert len(seen) == 2
    changed: list[Session] = []
    reg.session_changed.connect(changed.append)
    reg.apply([busy_session()])
    assert reg.get("aaaa1111") is None


def test_tray_menu_lists_waiting_first_and_counts(qtbot) -> None:
    reg = SessionRegistry()
    tray = Tray(reg)
    reg.apply([busy_session(), waiting_session()])
    texts = [a.text() for a in tray.menu.actions() if a.text()]
    assert texts[0].startswith("⚠ Fix the login bug")
    assert any(t.startswith("Add pagination") for t in texts)
    assert "Quit deck-tray" in texts
    assert "1 waiting" in tray.icon.toolTip()
    title, body = notification_text(waiting_session())
    assert "Claude Code" in title and "Fix the login bug" in title
    assert "Bash" in body and "rm -f x" in body


def test_window_tab_shows_request_and_sends_allow(qtbot, settings) -> None:
    reg = SessionRegistry()
    win = MainWindow(reg, settings)
    qtbot.addWidget(win)
    reg.apply([waiting_session(), busy_session()])
    assert win.listed() == {"Needs you": ["aaaa1111"], "Working": ["bbbb2222"]}
    tab = win.open_session("aaaa1111")
    assert tab is not None and win.tabs.count() == 1
    assert tab.request_box.isVisibleTo(win)
    buttons = {b.text(): b for b in tab.request_box.findChildren(QPushButton)}
    assert {"Allow", "Always allow", "Deny"} <= set(buttons)
    with qtbot.waitSignal(win.reply_requested, timeout=2000) as blocker:
        buttons["Allow"].click()
    sid, reply = blocker.args
    assert sid == "aaaa1111" and reply.kind is ReplyKind.ALLOW
    assert "Needs permission" in tab.banner.text()
    assert "please clean up" in tab.view.toPlainText()


def test_refused_answer_keeps_the_text(qtbot, settings) -> None:
    reg = SessionRegistry()
    win = MainWindow(reg, settings)
    qtbot.addWidget(win)
    reg.apply([busy_session()])
    tab = win.open_session("bbbb2222")
    assert tab is not None
    tab.answer.setPlainText("run the tests\nand fix them")
    with qtbot.waitSignal(win.reply_requested, timeout=2000) as blocker:
        tab.send_button.click()
    assert blocker.args[1].text == "run the tests\nand fix them"
    win.show_delivery("bbbb2222", DeliveryReport(DeliveryState.REFUSED, "pane %3 no longer exists",
                                                  "run the tests\nand fix them"))
    assert tab.answer.toPlainText() == "run the tests\nand fix them"
    assert "pane %3 no longer exists" in tab.delivery.text()
    assert tab.send_button.isEnabled()
    win.show_delivery("bbbb2222", DeliveryReport(DeliveryState.ACCEPTED, "", "run the tests\nand fix them"))
    assert tab.answer.toPlainText() == ""
    assert "Delivered" in tab.delivery.text()


def test_pin_is_remembered(qtbot, settings) -> None:
    reg = SessionRegistry()
    win = MainWindow(reg, settings)
    qtbot.addWidget(win)
    win.pin_action.setChecked(True)
    assert win.is_pinned()
    win2 = MainWindow(reg, settings)
    qtbot.addWidget(win2)
    assert win2.is_pinned()


def test_ended_session_cannot_be_typed_into(qtbot, settings) -> None:
    reg = SessionRegistry()
    win = MainWindow(reg, settings)
    qtbot.addWidget(win)
    ended = Session(id="cccc3333", agent=AgentKind.CLAUDE_CODE, title="old", status=SessionStatus.ENDED,
                    reason="Claude Code is no longer running — process table, 3 min ago")
    reg.apply([ended])
    tab = win.open_session("cccc3333")
    assert tab is not None
    assert not tab.send_button.isEnabled()
    assert not tab.request_box.isVisibleTo(win)


def test_tray_pause_menu_and_resume(qtbot) -> None:
    import time as _time

    reg = SessionRegistry()
    tray = Tray(reg)
    tray.rebuild_menu()
    pause = next(a for a in tray.menu.actions() if a.text() == "Pause notifications")
    labels = [a.text() for a in pause.menu().actions()]
    assert labels == ["For 30 minutes", "For 1 hour", "Until tomorrow morning"]
    with qtbot.waitSignal(tray.pause_requested, timeout=1000) as blocker:
        pause.menu().actions()[1].trigger()
    assert blocker.args == [3600.0]
    tray.paused_until = _time.time() + 3600
    tray.rebuild_menu()
    resume = next(a for a in tray.menu.actions() if a.text().startswith("Resume notifications"))
    with qtbot.waitSignal(tray.pause_requested, timeout=1000) as blocker:
        resume.trigger()
    assert blocker.args == [0.0]


def test_tray_icon_states_differ(qtbot) -> None:
    from deck_tray.ui.icons import tray_icon

    def image(icon):  # type: ignore[no-untyped-def]
        return icon.pixmap(32, 32).toImage()

    idle, busy_, waiting1, waiting3 = (tray_icon(0, False, False), tray_icon(0, True, False),
                                       tray_icon(1, False, False), tray_icon(3, False, False))
    assert len({image(i).cacheKey() for i in (idle, busy_, waiting1, waiting3)}) == 4
    assert image(idle) != image(busy_) and image(waiting1) != image(waiting3)
    assert image(tray_icon(0, False, True)) != image(idle), "a light variant for dark panels"


def test_idle_tray_icon_follows_the_desktops_colour_scheme(qtbot) -> None:
    # The desktop tells Qt its light or dark look (the portal's color-scheme on GNOME and KDE, or a
    # palette change); the icon changes with it at once, not at the next session change. Qt's
    # offscreen platform keeps no colour scheme, so the change comes as a dark palette and the signal.
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QGuiApplication, QPalette

    from deck_tray.ui.icons import tray_icon

    app = QGuiApplication.instance()
    before = QGuiApplication.palette()
    tray = Tray(SessionRegistry())

    def key() -> int:
        return tray.icon.icon().pixmap(32, 32).toImage().pixel(8, 16)

    try:
        light = key()
        assert light == tray_icon(0, False, False).pixmap(32, 32).toImage().pixel(8, 16)
        dark_palette = QPalette(before)
        dark_palette.setColor(QPalette.ColorRole.Window, QColor("#202124"))
        app.setPalette(dark_palette)
        QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert key() == tray_icon(0, False, True).pixmap(32, 32).toImage().pixel(8, 16) != light
    finally:
        app.setPalette(before)


def test_tray_menu_rebuilds_leave_no_menus_behind(qtbot) -> None:
    """A rebuild per session change must not leave a menu object behind each time (the soak's
    RSS grew by the 'Pause notifications' submenus QMenu.clear() does not free, issue #20)."""
    from PySide6.QtWidgets import QMenu

    reg = SessionRegistry()
    tray = Tray(reg)
    for i in range(200):
        reg.apply([Session(id=f"{i % 5:08d}-s", agent=AgentKind.CLAUDE_CODE, cwd="/p", title=f"t{i}", pid=1,
                           pane=None, status=SessionStatus.BUSY if i % 2 else SessionStatus.IDLE, reason="r",
                           updated_at=time.time())])
    assert len(tray.menu.findChildren(QMenu)) == 1
    pause = next(a for a in tray.menu.actions() if a.text() == "Pause notifications")
    assert [a.text() for a in pause.menu().actions()] == ["For 30 minutes", "For 1 hour", "Until tomorrow morning"]
