"""The pinned window: a session list beside one tab per opened session."""

from __future__ import annotations

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QWidget,
)

from deck_tray.core.model import DeliveryReport, Session, SessionStatus
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.icons import app_icon, status_icon
from deck_tray.ui.session_tab import SessionTab

_EMPTY_TEXT = (
    "<h3>No session open</h3>"
    "<p>Sessions of Claude Code and Codex running on this machine are listed on the left.<br>"
    "Click one to open it here. When an agent waits for you, deck-tray tells you in the tray.</p>"
)
_NO_SESSIONS_TEXT = "No agent sessions yet.\nStart Claude Code or Codex in a tmux pane."


class MainWindow(QMainWindow):
    """Session list + tabs.

    Args:
        registry: the source of sessions.
        settings: where the pin and geometry are remembered.

    Signals:
        reply_requested(str, Reply): forwarded from a tab.
    """

    reply_requested = Signal(str, object)

    def __init__(self, registry: SessionRegistry, settings: QSettings) -> None:
        super().__init__()
        self.registry = registry
        self.settings = settings
        self.setWindowTitle("deck-tray")
        self.setWindowIcon(app_icon())
        self.tabs_by_id: dict[str, SessionTab] = {}

        self.session_list = QListWidget()
        self.session_list.setMinimumWidth(220)
        self.session_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.session_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.session_list.setSpacing(3)
        self.session_list.setIconSize(QSize(22, 22))
        self.session_list.itemActivated.connect(self._open_item)
        self.session_list.itemClicked.connect(self._open_item)
        self.list_stack = QStackedWidget()
        empty_list = QLabel(_NO_SESSIONS_TEXT)
        empty_list.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty_list.setWordWrap(True)
        empty_list.setStyleSheet("color: palette(mid); padding: 12px;")
        self.list_stack.addWidget(empty_list)
        self.list_stack.addWidget(self.session_list)

        self.tabs = QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.empty = QLabel(_EMPTY_TEXT)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.right = QStackedWidget()
        self.right.addWidget(self.empty)
        self.right.addWidget(self.tabs)

        split = QSplitter()
        split.addWidget(self.list_stack)
        split.addWidget(self.right)
        split.setStretchFactor(1, 1)
        split.setSizes([260, 640])
        self.setCentralWidget(split)

        bar = QToolBar("Window")
        bar.setMovable(False)
        self.pin_action = QAction("Pin on top", self)
        self.pin_action.setCheckable(True)
        self.pin_action.setToolTip("Keep this window above other windows")
        self.pin_action.toggled.connect(self.set_pinned)
        bar.addAction(self.pin_action)
        self.addToolBar(bar)

        registry.session_added.connect(self._on_session)
        registry.session_changed.connect(self._on_session)
        registry.session_removed.connect(self._on_removed)
        self.resize(980, 640)
        geo = settings.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        self.pin_action.setChecked(bool(settings.value("window/pinned", False, type=bool)))
        self._rebuild_list()

    # -- pinning -------------------------------------------------------------------
    def set_pinned(self, pinned: bool) -> None:
        """Keep the window on top (remembered across restarts)."""
        self.settings.setValue("window/pinned", pinned)
        visible = self.isVisible()
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, pinned)
        if visible:
            self.show()

    def is_pinned(self) -> bool:
        """Whether the window stays on top."""
        return bool(self.windowFlags() & Qt.WindowType.WindowStaysOnTopHint)

    # -- list ----------------------------------------------------------------------
    def _rebuild_list(self) -> None:
        current = self.session_list.currentItem()
        current_id = current.data(Qt.ItemDataRole.UserRole) if current else None
        self.session_list.clear()
        sessions = self.registry.sessions()
        for s in sessions:
            item = QListWidgetItem(status_icon(s.status, 22), f"{s.display_title}\n{s.agent.label} · {s.status.label}")
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            item.setToolTip(f"{s.cwd}\n{s.reason}")
            if s.status is SessionStatus.ENDED:
                item.setForeground(self.palette().placeholderText())
            if s.status.is_waiting:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.session_list.addItem(item)
            if s.id == current_id:
                self.session_list.setCurrentItem(item)
        self.list_stack.setCurrentIndex(1 if sessions else 0)

    def _open_item(self, item: QListWidgetItem) -> None:
        self.open_session(str(item.data(Qt.ItemDataRole.UserRole)))

    def _on_session(self, s: Session) -> None:
        tab = self.tabs_by_id.get(s.id)
        if tab is not None:
            tab.update_session(s)
            idx = self.tabs.indexOf(tab)
            self.tabs.setTabIcon(idx, status_icon(s.status))
            self.tabs.setTabText(idx, _tab_title(s))
        self._rebuild_list()

    def _on_removed(self, sid: str) -> None:
        self._rebuild_list()

    # -- tabs ----------------------------------------------------------------------
    def open_session(self, session_id: str) -> SessionTab | None:
        """Open (or focus) the tab of a session, and show and raise the window."""
        s = self.registry.get(session_id)
        tab = self.tabs_by_id.get(session_id)
        if tab is None:
            if s is None:
                return None
            tab = SessionTab(s)
            tab.reply_requested.connect(self.reply_requested)
            self.tabs_by_id[session_id] = tab
            idx = self.tabs.addTab(tab, status_icon(s.status), _tab_title(s))
            self.tabs.setTabToolTip(idx, f"{s.display_title}\n{s.cwd}")
        self.right.setCurrentWidget(self.tabs)
        self.tabs.setCurrentWidget(tab)
        self.show()
        self.raise_()
        self.activateWindow()
        tab.answer.setFocus()
        return tab

    def close_tab(self, index: int) -> None:
        """Close the tab at ``index`` (the session keeps running)."""
        w = self.tabs.widget(index)
        self.tabs.removeTab(index)
        for sid, tab in list(self.tabs_by_id.items()):
            if tab is w:
                del self.tabs_by_id[sid]
        if w is not None:
            w.deleteLater()
        if self.tabs.count() == 0:
            self.right.setCurrentWidget(self.empty)

    def current_tab(self) -> SessionTab | None:
        """The visible session tab, if any."""
        w: QWidget | None = self.tabs.currentWidget()
        return w if isinstance(w, SessionTab) else None

    def show_delivery(self, session_id: str, report: DeliveryReport) -> None:
        """Route a delivery report to its tab."""
        tab = self.tabs_by_id.get(session_id)
        if tab is not None:
            tab.show_delivery(report)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing hides the window; the app keeps running in the tray."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        super().closeEvent(event)


def _tab_title(s: Session) -> str:
    t = s.display_title
    return t if len(t) <= 28 else t[:27] + "…"
