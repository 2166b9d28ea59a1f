"""The tray icon: state icon with a waiting count, a menu of sessions, notifications."""

from __future__ import annotations

import datetime as _dt
import logging
import time

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from deck_tray.core.model import SessionStatus
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.icons import status_icon, tray_icon

log = logging.getLogger(__name__)
MENU_MAX = 12


def seconds_until_morning(now: float | None = None, hour: int = 8) -> float:
    """Seconds from ``now`` until ``hour`` o'clock tomorrow (local time)."""
    t = _dt.datetime.fromtimestamp(time.time() if now is None else now)
    target = (t + _dt.timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (target - t).total_seconds()


class Tray(QObject):
    """Tray icon and menu, rebuilt from the registry.

    Args:
        registry: the sessions.

    Signals:
        open_requested(str): the user picked a session (menu or notification click).
        show_window_requested(): "Open window".
        pin_toggled(bool): "Pin window" was toggled.
        pause_requested(object): pause notifications for this many seconds (float), or
            ``0.0`` to resume.
        settings_requested(): "Settings…".
        search_requested(): "Search history…".
        new_session_requested(): "New session…".
        quit_requested(): "Quit".
    """

    open_requested = Signal(str)
    show_window_requested = Signal()
    pin_toggled = Signal(bool)
    pause_requested = Signal(object)
    settings_requested = Signal()
    search_requested = Signal()
    new_session_requested = Signal()
    quit_requested = Signal()

    def __init__(self, registry: SessionRegistry, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.icon = QSystemTrayIcon(self)
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.icon.messageClicked.connect(self._message_clicked)
        self._last_notified: str | None = None
        self.pin_action = QAction("Pin window on top")
        self.pin_action.setCheckable(True)
        self.pin_action.toggled.connect(self.pin_toggled)
        # Built once: QMenu.clear() deletes the menu's actions but not a submenu made by
        # addMenu(title), so one made per rebuild stayed alive (the soak's RSS grew ~0.2 MB per
        # session change, issue #20).
        self.pause_menu = QMenu("Pause notifications", self.menu)
        self.pause_menu.addAction("For 30 minutes", lambda: self.pause_requested.emit(30 * 60.0))
        self.pause_menu.addAction("For 1 hour", lambda: self.pause_requested.emit(3600.0))
        self.pause_menu.addAction("Until tomorrow morning", lambda: self.pause_requested.emit(seconds_until_morning()))
        registry.session_added.connect(self.refresh)
        registry.session_changed.connect(self.refresh)
        registry.session_removed.connect(self.refresh)
        # The panel's light or dark look, as the desktop tells Qt (the portal's
        # org.freedesktop.appearance color-scheme on GNOME and KDE): the idle icon follows it.
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.refresh)
        self.paused_until: float | None = None
        self.refresh()

    @staticmethod
    def available() -> bool:
        """True when the desktop has a tray (StatusNotifierWatcher or XEmbed host)."""
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        """Show the icon."""
        self.icon.show()

    def refresh(self, *_args: object) -> None:
        """Update the icon, tooltip and menu from the registry."""
        sessions = self.registry.sessions()
        waiting = [s for s in sessions if s.status.is_waiting]
        busy = any(s.status is SessionStatus.BUSY for s in sessions)
        self.icon.setIcon(tray_icon(len(waiting), busy))
        if waiting:
            tip = f"deck-tray — {len(waiting)} waiting: " + ", ".join(s.display_title for s in waiting[:3])
        else:
            live = [s for s in sessions if s.status is not SessionStatus.ENDED]
            tip = f"deck-tray — {len(live)} session(s), none waiting" if live else "deck-tray — no sessions"
        self.icon.setToolTip(tip)
        self.rebuild_menu()

    def rebuild_menu(self) -> None:
        """Waiting sessions first, then the others, then the window actions."""
        self.menu.clear()
        sessions = [s for s in self.registry.sessions() if s.status is not SessionStatus.ENDED]
        if not sessions:
            none = self.menu.addAction("No running sessions")
            none.setEnabled(False)
        for s in sessions[:MENU_MAX]:
            prefix = "⚠ " if s.status.is_waiting else ""
            act = self.menu.addAction(status_icon(s.status), f"{prefix}{s.display_title[:40]} — {s.status.label}")
            act.triggered.connect(lambda _=False, sid=s.id: self.open_requested.emit(sid))
        self.menu.addSeparator()
        self.menu.addAction("Open window", self.show_window_requested.emit)
        self.menu.addAction(self.pin_action)
        if self.paused_until is not None and self.paused_until > time.time():
            until = ("you resume" if self.paused_until == float("inf")
                     else time.strftime("%H:%M", time.localtime(self.paused_until)))
            self.menu.addAction(f"Resume notifications (paused until {until})", lambda: self.pause_requested.emit(0.0))
        else:
            self.menu.addMenu(self.pause_menu)
        self.menu.addSeparator()
        self.menu.addAction("New session…", self.new_session_requested.emit)
        self.menu.addAction("Search history…", self.search_requested.emit)
        self.menu.addAction("Settings…", self.settings_requested.emit)
        self.menu.addAction("Quit deck-tray", self.quit_requested.emit)

    def show_message(self, title: str, body: str, session_id: str) -> None:
        """A tray balloon; clicking it opens ``session_id`` where the desktop reports clicks."""
        self._last_notified = session_id
        log.info("tray message for %s", session_id[:8])
        if self.icon.isVisible() or QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, body, QSystemTrayIcon.MessageIcon.Information, 15000)

    def _message_clicked(self) -> None:
        if self._last_notified:
            self.open_requested.emit(self._last_notified)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            waiting = self.registry.waiting()
            if waiting:
                self.open_requested.emit(waiting[0].id)
            else:
                self.show_window_requested.emit()
