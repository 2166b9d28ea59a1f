"""The tray icon: state icon with a waiting count, a menu of sessions, notifications."""

from __future__ import annotations

import datetime as _dt
import logging
import time

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from deck_tray.core.model import Session, SessionStatus
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
        # The menu's actions are made once and updated in place (a session change costs a few
        # text changes, not a new menu): up to MENU_MAX session entries, then the window actions.
        self._none = QAction("No running sessions", self.menu)
        self._none.setEnabled(False)
        self._slots: list[QAction] = []
        self._shown: list[tuple[str, SessionStatus, str]] = []
        for _ in range(MENU_MAX):
            act = QAction(self.menu)
            act.triggered.connect(lambda _=False, a=act: self.open_requested.emit(str(a.data())))
            self._slots.append(act)
        self._resume = QAction(self.menu)
        self._resume.triggered.connect(lambda: self.pause_requested.emit(0.0))
        self._sep = self.menu.addSeparator()
        self.menu.addAction("Open window", self.show_window_requested.emit)
        self.menu.addAction(self.pin_action)
        self._pause_sep = self.menu.addSeparator()
        self.menu.addAction("New session…", self.new_session_requested.emit)
        self.menu.addAction("Search history…", self.search_requested.emit)
        self.menu.addAction("Settings…", self.settings_requested.emit)
        self.menu.addAction("Quit deck-tray", self.quit_requested.emit)
        self.paused_until: float | None = None
        registry.session_added.connect(self.refresh)
        registry.session_changed.connect(self.refresh)
        registry.session_removed.connect(self.refresh)
        # The panel's light or dark look, as the desktop tells Qt (the portal's
        # org.freedesktop.appearance color-scheme on GNOME and KDE): the idle icon follows it.
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.refresh)
        self.refresh()

    @staticmethod
    def available() -> bool:
        """True when the desktop has a tray (StatusNotifierWatcher or XEmbed host)."""
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        """Show the icon."""
        self.icon.show()

    def refresh(self, *_args: object) -> None:
        """Update the icon, tooltip and menu from the registry (its counts and first sessions:
        the cost does not grow with the number of sessions)."""
        reg = self.registry
        head = reg.head(MENU_MAX)
        n_waiting = reg.count(SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION)
        self.icon.setIcon(tray_icon(n_waiting, reg.count(SessionStatus.BUSY) > 0))
        if n_waiting:
            waiting = [s for s in head if s.status.is_waiting]
            tip = f"deck-tray — {n_waiting} waiting: " + ", ".join(s.display_title for s in waiting[:3])
        else:
            live = reg.count() - reg.count(SessionStatus.ENDED)
            tip = f"deck-tray — {live} session(s), none waiting" if live else "deck-tray — no sessions"
        self.icon.setToolTip(tip)
        self.rebuild_menu(head)

    def rebuild_menu(self, listed: list[Session] | None = None) -> None:
        """Bring the menu up to date: waiting sessions first, then the others (at most
        :data:`MENU_MAX`), then the window actions (with "Resume notifications" while paused).

        Args:
            listed: ``registry.head(MENU_MAX)`` when the caller has it already (else asked for).
        """
        sessions = [s for s in (self.registry.head(MENU_MAX) if listed is None else listed)
                    if s.status is not SessionStatus.ENDED][:MENU_MAX]
        menu = self.menu
        present = set(menu.actions())
        if sessions:
            if self._none in present:
                menu.removeAction(self._none)
        elif self._none not in present:
            menu.insertAction(self._sep, self._none)
        shown: list[tuple[str, SessionStatus, str]] = []
        for i, act in enumerate(self._slots):
            if i >= len(sessions):
                if act in present:
                    menu.removeAction(act)
                continue
            s = sessions[i]
            key = (s.id, s.status, s.display_title)
            shown.append(key)
            if i >= len(self._shown) or self._shown[i] != key:
                prefix = "⚠ " if s.status.is_waiting else ""
                act.setText(f"{prefix}{s.display_title[:40]} — {s.status.label}")
                act.setIcon(status_icon(s.status))
                act.setData(s.id)
            if act not in present:
                menu.insertAction(self._sep, act)
        self._shown = shown
        pause = self.pause_menu.menuAction()
        if self.paused_until is not None and self.paused_until > time.time():
            until = ("you resume" if self.paused_until == float("inf")
                     else time.strftime("%H:%M", time.localtime(self.paused_until)))
            self._resume.setText(f"Resume notifications (paused until {until})")
            if pause in present:
                menu.removeAction(pause)
            if self._resume not in present:
                menu.insertAction(self._pause_sep, self._resume)
        else:
            if self._resume in present:
                menu.removeAction(self._resume)
            if pause not in present:
                menu.insertAction(self._pause_sep, pause)

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
