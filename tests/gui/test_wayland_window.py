"""The window on a Wayland desktop (issue #14): what it says when pinning cannot keep it on top,
the notices queue, and the global shortcut's toggle. Qt runs offscreen here; the platform the
window would run on is given (core.display) and Qt's platform check is replaced."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from deck_tray.core.display import choose
from deck_tray.core.model import AgentKind, PaneRef, Session, SessionStatus
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui import window as window_module
from deck_tray.ui.window import MainWindow

pytestmark = pytest.mark.gui
GNOME = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "GNOME"}


@pytest.fixture
def native_wayland(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if Qt ran its Wayland platform: pinning cannot keep the window on top."""
    monkeypatch.setattr(window_module, "pinning_works", lambda name: False)


def make(tmp_path: Path, qtbot, env: dict[str, str], pinned: bool,
         reg: SessionRegistry | None = None) -> MainWindow:
    settings = QSettings(str(tmp_path / "deck-tray.ini"), QSettings.Format.IniFormat)
    settings.setValue("window/pinned", pinned)
    win = MainWindow(reg or SessionRegistry(), settings, platform=choose(env, pinned=pinned))
    qtbot.addWidget(win)
    return win


def test_pinning_on_native_wayland_offers_a_restart(tmp_path: Path, qtbot, native_wayland: None) -> None:
    win = make(tmp_path, qtbot, dict(GNOME, DISPLAY=":0"), pinned=False)
    assert win.notices() == []
    restarts: list[bool] = []
    win.restart_requested.connect(lambda: restarts.append(True))
    win.pin_action.trigger()  # the user pins it
    assert win.is_pinned()
    assert win.notice_bar.isVisibleTo(win) and "restart it" in win.notice.text()
    assert win.notice_button.isVisibleTo(win) and win.notice_button.text() == "Restart deck-tray"
    win.notice_button.click()
    assert restarts == [True] and not win.notice_bar.isVisibleTo(win)


def test_no_xwayland_is_said_once_ever(tmp_path: Path, qtbot, native_wayland: None) -> None:
    first = make(tmp_path, qtbot, GNOME, pinned=True)
    assert "has no XWayland" in first.notice.text() and first.notice_bar.isVisibleTo(first)
    assert not first.notice_button.isVisibleTo(first)  # nothing to restart for
    first.settings.sync()
    second = make(tmp_path, qtbot, GNOME, pinned=True)
    assert second.notices() == []


def test_notices_wait_their_turn(tmp_path: Path, qtbot, native_wayland: None) -> None:
    win = make(tmp_path, qtbot, GNOME, pinned=True)
    win.set_no_tray(tell=True)
    win.show_notice(win.notices()[0])  # the same text is not queued twice
    assert len(win.notices()) == 2 and "has no XWayland" in win.notice.text()
    dismiss = next(b for b in win.notice_bar.findChildren(window_module.QPushButton) if b.text() == "Got it")
    dismiss.click()
    assert "AppIndicator" in win.notice.text() and win.notice_bar.isVisibleTo(win)
    dismiss.click()
    assert win.notices() == [] and not win.notice_bar.isVisibleTo(win)


def test_toggle_jumps_to_the_oldest_waiting_request_and_hides(tmp_path: Path, qtbot, monkeypatch) -> None:
    reg = SessionRegistry()
    pane = PaneRef("tmux", "%1", "/tmp/tmux-0/default", "w:1.0")

    def sess(sid: str, status: SessionStatus, age: float) -> Session:
        return Session(id=sid, agent=AgentKind.CLAUDE_CODE, cwd="/home/dev/p", title=sid, pid=1, pane=pane,
                       status=status, reason="r", updated_at=time.time() - age)

    reg.apply([sess("busy", SessionStatus.BUSY, 1), sess("newer", SessionStatus.WAITING_PERMISSION, 5),
               sess("older", SessionStatus.WAITING_QUESTION, 50)])
    win = make(tmp_path, qtbot, {"DISPLAY": ":0"}, pinned=False, reg=reg)
    win.toggle()
    assert win.isVisible() and win.current_tab() is not None and win.current_tab().session.id == "older"
    # Focused (offscreen Qt cannot give focus: as if the desktop had), the shortcut hides it.
    monkeypatch.setattr(win, "isActiveWindow", lambda: True)
    win.toggle()
    assert not win.isVisible()
    state = win.state()
    assert state["shown"] is False and state["tab"] == "older"
