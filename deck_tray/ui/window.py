"""The window: sessions grouped by what they need, beside one tab per opened session.

* The list groups sessions as **Needs you**, **Working**, **Ready**, **Ended**, shows the
  agent and the project, and filters as you type. A session that became ready or started
  waiting stays bold with a dot until its tab has been seen.
* Tabs close with their button, a middle click or Ctrl+W, can be reordered, and the last
  :data:`~deck_tray.ui.persist.CLOSED_MAX` closed ones can be reopened (Ctrl+Shift+T, the
  toolbar button that shows only when there is something to reopen, or its menu) with
  their draft; the stack survives a restart.
* Pinned mode keeps a compact window above the others; the choice and the geometry of
  each mode are remembered.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPoint, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QFont, QGuiApplication, QKeySequence, QMouseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from deck_tray.core import past
from deck_tray.core.display import WindowPlatform, pinning_works
from deck_tray.core.history import SearchHit
from deck_tray.core.model import ActionReport, DeliveryReport, Session, SessionStatus, Transition
from deck_tray.core.opencode import ServerPhase, ServerState
from deck_tray.core.status import age_text
from deck_tray.core.worktree import LinkedWorktree, linked_worktree
from deck_tray.services.lifecycle import return_freed_memory
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.activation import activate
from deck_tray.ui.icons import app_icon, status_icon
from deck_tray.ui.persist import ClosedTab, WindowMemory
from deck_tray.ui.session_tab import KEEP_BUILT, SessionTab

#: Milliseconds after the last released tab content before freed memory is returned.
TRIM_AFTER_MS = 300

_EMPTY_TEXT = (
    "<h3>No session open</h3>"
    "<p>Sessions of Claude Code, Codex and opencode on this machine are listed on the left.<br>"
    "Click one to open it here. When an agent waits for you, deck-tray tells you.</p>"
)
_NO_SESSIONS_TEXT = ("No agent sessions yet.\n\nStart Claude Code, Codex or opencode in any terminal; "
                     "it shows up here. Answers go through the agents' hooks (deck-tray hooks install) "
                     "or are typed into tmux, zellij, GNU screen, kitty, WezTerm or Konsole.")
_GROUPS = (
    ("waiting", "Needs you"),
    ("busy", "Working"),
    ("idle", "Ready"),
    ("unreachable", "Host unreachable"),
    ("ended", "Ended"),
)
COMPACT_SIZE = QSize(560, 620)


def unreachable(s: Session) -> bool:
    """A remote session whose host cannot be reached now (its last state is kept, greyed, with
    why in its reason: :mod:`deck_tray.services.remote`)."""
    return bool(s.host) and s.status is SessionStatus.UNKNOWN and s.reason.startswith(f"{s.host} unreachable")


def group_of(s: Session) -> str:
    """Which list group a session belongs to."""
    if s.status.is_waiting:
        return "waiting"
    if s.status is SessionStatus.BUSY:
        return "busy"
    if s.status is SessionStatus.ENDED:
        return "ended"
    if unreachable(s):
        return "unreachable"
    return "idle"


def _project(s: Session) -> str:
    return s.cwd.rstrip("/").rsplit("/", 1)[-1] if s.cwd else ""


def _children(item: QTreeWidgetItem) -> Iterator[QTreeWidgetItem]:
    """The child items of ``item`` in order (``child(i)`` is None only out of range)."""
    for i in range(item.childCount()):
        child = item.child(i)
        if child is not None:
            yield child


class MainWindow(QMainWindow):
    """Session list + tabs.

    Args:
        registry: the source of sessions.
        settings: where pin, geometry, drafts and the closed-tab stack are remembered.

    Signals:
        reply_requested(str, Reply): forwarded from a tab.
        action_requested(str, str, str): forwarded from a tab (session id, action, argument).
        password_entered(str, str): the user typed the password of an opencode server (url, password).
        settings_requested(): the toolbar's "Settings…".
        search_requested(): "Search history…" (toolbar, Ctrl+Shift+F).
        new_session_requested(): "New session…" (toolbar, Ctrl+N).
        quit_requested(): the window was closed while :attr:`close_to_tray` is off.

    Attributes:
        close_to_tray: True (default): closing hides the window and deck-tray keeps running.
    """

    reply_requested = Signal(str, object)
    action_requested = Signal(str, str, str)
    password_entered = Signal(str, str)
    settings_requested = Signal()
    search_requested = Signal()
    new_session_requested = Signal()
    quit_requested = Signal()
    restart_requested = Signal()

    def __init__(self, registry: SessionRegistry, settings: QSettings,
                 platform: WindowPlatform | None = None) -> None:
        super().__init__()
        self.registry = registry
        self.settings = settings
        #: Where the window runs (core.display.choose at start-up); None: judged from Qt's platform.
        self.platform = platform
        self._told_pinning = False
        self.memory = WindowMemory(settings)
        self.setWindowTitle("deck-tray")
        self.setWindowIcon(app_icon())
        self.tabs_by_id: dict[str, SessionTab] = {}
        self._hook_held: dict[str, bool] = {}
        self.unread: set[str] = set()
        self.close_to_tray = True
        # Registry signals come in bursts (one per changed session of a snapshot): the list is
        # rebuilt once per burst, after it, and the signal's other receivers are not held up.
        self._list_timer = QTimer(self)
        self._list_timer.setSingleShot(True)
        self._list_timer.setInterval(0)
        self._list_timer.timeout.connect(self._rebuild_list)

        # -- left: filter + grouped list --------------------------------------------
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter sessions…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._rebuild_list)
        self.session_list = QTreeWidget()
        self.session_list.setHeaderHidden(True)
        self.session_list.setRootIsDecorated(False)
        self.session_list.setIndentation(8)
        self.session_list.setIconSize(QSize(22, 22))
        self.session_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.session_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.session_list.itemActivated.connect(self._open_item)
        self.session_list.itemClicked.connect(self._open_item)
        self.session_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.session_list.customContextMenuRequested.connect(self._list_menu)
        self.empty_list = QLabel(_NO_SESSIONS_TEXT)
        self.empty_list.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_list.setWordWrap(True)
        self.empty_list.setStyleSheet("color: palette(mid); padding: 12px;")
        self.list_stack = QStackedWidget()
        self.list_stack.addWidget(self.empty_list)
        self.list_stack.addWidget(self.session_list)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(4, 4, 0, 4)
        lv.addWidget(self.filter)
        lv.addWidget(self.list_stack, 1)

        # -- right: tabs ---------------------------------------------------------------
        self.tabs = QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.setElideMode(Qt.TextElideMode.ElideRight)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(self._tab_seen)
        self.tabs.currentChanged.connect(self._keep_recent)
        #: Tabs by when they were last shown, the current one first: the first KEEP_BUILT keep
        #: their content, the others are released (SessionTab.release).
        self._shown: list[SessionTab] = []
        #: Returns released tabs' memory to the system a moment after the last release.
        self._trim_timer = QTimer(self)
        self._trim_timer.setSingleShot(True)
        self._trim_timer.setInterval(TRIM_AFTER_MS)
        self._trim_timer.timeout.connect(self._trim_memory)
        self.tabs.tabBar().installEventFilter(self)
        self.empty = QLabel(_EMPTY_TEXT)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.right = QStackedWidget()
        self.right.addWidget(self.empty)
        self.right.addWidget(self.tabs)

        self.split = QSplitter()
        self.split.addWidget(left)
        self.split.addWidget(self.right)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([260, 700])
        self.no_tray = False
        self.notice_bar = QWidget()
        self.notice_bar.setObjectName("notice")
        self.notice_bar.setStyleSheet(
            "#notice { background: rgba(45,108,223,0.12); border-bottom: 1px solid #6b9bef; }"
        )
        nb = QHBoxLayout(self.notice_bar)
        nb.setContentsMargins(10, 6, 6, 6)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        nb.addWidget(self.notice, 1)
        self.notice_button = QPushButton()
        self.notice_button.hide()
        self.notice_button.clicked.connect(self._notice_clicked)
        # Notices wait their turn: "Got it" shows the next one.
        self._notices: list[tuple[str, tuple[str, Callable[[], object]] | None]] = []
        nb.addWidget(self.notice_button, 0, Qt.AlignmentFlag.AlignTop)
        dismiss = QPushButton("Got it")
        dismiss.clicked.connect(self._notice_done)
        nb.addWidget(dismiss, 0, Qt.AlignmentFlag.AlignTop)
        self.notice_bar.hide()
        central = QWidget()
        cv = QVBoxLayout(central)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.setSpacing(0)
        cv.addWidget(self.notice_bar)
        cv.addWidget(self.split, 1)
        self.setCentralWidget(central)

        # -- status bar: opencode servers ------------------------------------------------
        self.servers_label = QLabel()
        self.servers_label.setTextFormat(Qt.TextFormat.PlainText)
        self.password_button = QPushButton("Enter password…")
        self.password_button.hide()
        self.password_button.clicked.connect(self._password_clicked)
        self.statusBar().addWidget(self.servers_label, 1)
        # Remote hosts (#18): hidden while none is configured.
        self.remotes_label = QLabel()
        self.remotes_label.setTextFormat(Qt.TextFormat.PlainText)
        self.remotes_label.hide()
        self.statusBar().addWidget(self.remotes_label)
        self.statusBar().addPermanentWidget(self.password_button)
        self._servers: list[ServerState] = []
        self._password_dialogs: dict[str, QInputDialog] = {}

        # -- toolbar -------------------------------------------------------------------
        bar = QToolBar("Window")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.new_action = QAction("New session…", self)
        self.new_action.setShortcut(QKeySequence("Ctrl+N"))
        self.new_action.setToolTip("Start Claude Code or Codex in a folder or a new git worktree (Ctrl+N)")
        self.new_action.triggered.connect(self.new_session_requested)
        self.addAction(self.new_action)
        bar.addAction(self.new_action)
        self.pin_action = QAction("Pin on top", self)
        self.pin_action.setCheckable(True)
        self.pin_action.setToolTip("Keep a compact window above other windows")
        self.pin_action.toggled.connect(self.set_pinned)
        bar.addAction(self.pin_action)
        self.reopen_menu = QMenu(self)
        self.reopen_action = QAction("Reopen closed tab", self)
        self.reopen_action.setShortcut(QKeySequence("Ctrl+Shift+T"))
        self.reopen_action.setToolTip("Reopen the last closed tab (Ctrl+Shift+T)")
        self.reopen_action.triggered.connect(lambda: self.reopen_closed())
        self.reopen_action.setMenu(self.reopen_menu)
        self.addAction(self.reopen_action)
        bar.addAction(self.reopen_action)
        self.reopen_button = bar.widgetForAction(self.reopen_action)
        if isinstance(self.reopen_button, QToolButton):
            self.reopen_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.settings_action = QAction("Settings…", self)
        self.settings_action.setToolTip("Notifications, quiet hours, opencode servers, window, folders")
        self.settings_action.triggered.connect(self.settings_requested)
        bar.addAction(self.settings_action)
        self.search_action = QAction("Search history…", self)
        self.search_action.setShortcut(QKeySequence("Ctrl+Shift+F"))
        self.search_action.setToolTip("Search every conversation of every agent (Ctrl+Shift+F)")
        self.search_action.triggered.connect(self.search_requested)
        self.addAction(self.search_action)
        bar.addAction(self.search_action)
        close_tab = QAction("Close tab", self)
        close_tab.setShortcut(QKeySequence("Ctrl+W"))
        close_tab.triggered.connect(lambda: self.close_tab(self.tabs.currentIndex()))
        self.addAction(close_tab)
        self.addToolBar(bar)

        self._worktrees: dict[str, LinkedWorktree | None] = {}
        registry.session_added.connect(self._on_session)
        registry.session_changed.connect(self._on_session)
        registry.session_removed.connect(self._on_removed)
        registry.transition.connect(self._on_transition)
        self._restore_geometry(pinned=bool(settings.value("window/pinned", False, type=bool)))
        self.pin_action.setChecked(bool(settings.value("window/pinned", False, type=bool)))
        self._update_reopen()
        self._rebuild_list()

    # -- pinning and geometry ------------------------------------------------------------
    def _geometry_key(self, pinned: bool) -> str:
        return "window/geometry_pinned" if pinned else "window/geometry"

    def _restore_geometry(self, pinned: bool) -> None:
        geo = self.settings.value(self._geometry_key(pinned))
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(COMPACT_SIZE if pinned else QSize(1040, 680))

    def set_pinned(self, pinned: bool) -> None:
        """Pinned: compact and always on top. Normal: a regular window. Both remembered."""
        was = self.is_pinned()
        if was != pinned:
            self.settings.setValue(self._geometry_key(was), self.saveGeometry())
        self.settings.setValue("window/pinned", pinned)
        visible = self.isVisible()
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, pinned)
        if was != pinned:
            self._restore_geometry(pinned)
        if pinned:
            self.split.setSizes([200, max(300, self.width() - 200)])
        if visible:
            self.show()
        if pinned:
            self._tell_pinning()

    def is_pinned(self) -> bool:
        """Whether the window is pinned (compact, and kept on top where the platform can)."""
        return bool(self.windowFlags() & Qt.WindowType.WindowStaysOnTopHint)

    def pinning_works(self) -> bool:
        """Whether "pinned" keeps this window above others on the platform it runs on (not on
        native Wayland, which has no way to ask for it; see core.display)."""
        return pinning_works(QGuiApplication.platformName())

    def _tell_pinning(self) -> None:
        """Pinned on a platform that cannot keep the window on top: say so, once per run (and,
        when no restart would help, once ever)."""
        if self.pinning_works() or self._told_pinning:
            return
        self._told_pinning = True
        if self.platform is not None and self.platform.pinning_after_restart:
            self.show_notice("On Wayland a window can stay on top of others only through XWayland. deck-tray "
                             "started unpinned, so it runs natively now: restart it to run the pinned window "
                             "through XWayland.", action=("Restart deck-tray", self.restart_requested.emit))
            return
        if self.settings.value("window/told_no_pinning", False, type=bool):
            return
        self.settings.setValue("window/told_no_pinning", True)
        self.show_notice("This Wayland session has no XWayland (DISPLAY is not set), and Wayland itself cannot "
                         "keep a window above others: the pinned window stays compact but not on top. Enable "
                         "XWayland in your desktop to have it stay on top.")

    # -- list ------------------------------------------------------------------------------
    def _rebuild_list_soon(self) -> None:
        if not self._list_timer.isActive():
            self._list_timer.start()

    def _rebuild_list(self) -> None:
        self._list_timer.stop()
        current = self.session_list.currentItem()
        current_id = current.data(0, Qt.ItemDataRole.UserRole) if current else None
        needle = self.filter.text().strip().casefold()
        self.session_list.clear()
        sessions = self.registry.sessions()
        now = time.time()
        groups: dict[str, list[Session]] = {key: [] for key, _ in _GROUPS}
        for s in sessions:
            hay = f"{s.display_title} {s.cwd} {s.agent.label} {s.status.label} {s.host}".casefold()
            if needle and needle not in hay:
                continue
            groups[group_of(s)].append(s)
        bold = QFont(self.font())
        bold.setBold(True)
        for key, label in _GROUPS:
            members = groups[key]
            if not members:
                continue
            head = QTreeWidgetItem([f"{label}  ({len(members)})"])
            head.setFlags(Qt.ItemFlag.ItemIsEnabled)
            head.setFont(0, bold)
            head.setForeground(0, self.palette().placeholderText())
            self.session_list.addTopLevelItem(head)
            repos = self._repositories(members)
            repo_items: dict[str, QTreeWidgetItem] = {}
            for s in members:
                wt = self._worktree(s.cwd)
                repo = repos.get(s.id, "")
                dot = "● " if s.id in self.unread else ""
                where = f"{os.path.basename(wt.repo_root)} ⎇ {wt.name}" if wt else _project(s)
                if s.host:
                    where = f"{s.host}: {where}"
                line2 = " · ".join(x for x in (s.agent.label, where, age_text(now - s.updated_at)) if x)
                item = QTreeWidgetItem([f"{dot}{s.display_title}\n{line2}"])
                item.setIcon(0, status_icon(s.status, 22))
                item.setData(0, Qt.ItemDataRole.UserRole, s.id)
                on = f" on {s.host}" if s.host else ""
                item.setToolTip(0, f"{s.display_title}\n{s.cwd}{on}\n{s.status.label}: {s.reason}")
                if s.status is SessionStatus.ENDED or unreachable(s):
                    item.setForeground(0, self.palette().placeholderText())
                if s.id in self.unread:
                    item.setFont(0, bold)
                if repo:
                    parent = repo_items.get(repo)
                    if parent is None:
                        parent = repo_items[repo] = QTreeWidgetItem([f"⎇ {os.path.basename(repo)}"])
                        parent.setFlags(Qt.ItemFlag.ItemIsEnabled)
                        parent.setToolTip(0, f"{repo} and its git worktrees")
                        parent.setForeground(0, self.palette().placeholderText())
                        head.addChild(parent)
                        parent.setExpanded(True)
                    parent.addChild(item)
                else:
                    head.addChild(item)
                if s.id == current_id:
                    self.session_list.setCurrentItem(item)
            head.setExpanded(True)
            for parent in repo_items.values():
                parent.setExpanded(True)
        self.list_stack.setCurrentIndex(1 if sessions else 0)

    def _worktree(self, cwd: str) -> LinkedWorktree | None:
        if cwd not in self._worktrees:
            self._worktrees[cwd] = linked_worktree(cwd) if cwd else None
        return self._worktrees[cwd]

    def _repositories(self, members: list[Session]) -> dict[str, str]:
        """Session id → repository folder, for the sessions to group under their repository:
        those in a linked worktree, and those in the repository's own folder when a worktree
        session of it is listed beside them."""
        out: dict[str, str] = {}
        for s in members:
            wt = self._worktree(s.cwd)
            if wt is not None:
                out[s.id] = wt.repo_root
        roots = set(out.values())
        for s in members:
            if s.id not in out and s.cwd.rstrip("/") in roots:
                out[s.id] = s.cwd.rstrip("/")
        return out

    def listed(self) -> dict[str, list[str]]:
        """Session ids shown in the list, by group label (for tests and accessibility)."""
        if self._list_timer.isActive():
            self._rebuild_list()
        out: dict[str, list[str]] = {}
        for head in _children(self.session_list.invisibleRootItem()):
            label = head.text(0).split("  (", 1)[0]
            ids: list[str] = []
            for child in _children(head):
                sid = child.data(0, Qt.ItemDataRole.UserRole)
                if sid:
                    ids.append(str(sid))
                else:  # a repository with its worktree sessions
                    ids += [str(c.data(0, Qt.ItemDataRole.UserRole)) for c in _children(child)]
            out[label] = ids
        return out

    def session_menu(self, session_id: str) -> QMenu | None:
        """The list's context menu for one session: Open, Rename…, End session… (running ones),
        Remove from list (ended ones); None when the session is gone."""
        s = self.registry.get(session_id)
        if s is None:
            return None
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_session(session_id))
        menu.addAction("Rename…", lambda: self.ask_rename(session_id))
        if s.status is SessionStatus.ENDED:
            menu.addAction("Remove from list", lambda: self.action_requested.emit(session_id, "dismiss", ""))
        else:
            end = menu.addAction("Stop turn" if s.agent.value == "opencode" else "End session…",
                                 lambda: self.ask_end(session_id))
            end.setEnabled(s.agent.value == "opencode" or s.pane is not None)
            if s.pane is None and s.agent.value != "opencode":
                end.setToolTip("deck-tray cannot type into this agent's terminal")
        return menu

    def _list_menu(self, pos: QPoint) -> None:
        item = self.session_list.itemAt(pos)
        sid = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        menu = self.session_menu(str(sid)) if sid else None
        if menu is not None:
            menu.popup(self.session_list.viewport().mapToGlobal(pos))

    def ask_rename(self, session_id: str) -> QInputDialog:
        """Ask for the session's name in deck-tray (non-modal); an empty name restores the agent's."""
        s = self.registry.get(session_id)
        dlg = QInputDialog(self)
        dlg.setWindowTitle("Rename session")
        dlg.setLabelText("Name shown in deck-tray (empty: the agent's own title):")
        dlg.setTextValue(s.display_title if s is not None else "")
        dlg.setOkButtonText("Rename")
        dlg.textValueSelected.connect(lambda name: self.action_requested.emit(session_id, "rename", name))
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.open()
        return dlg

    def ask_end(self, session_id: str) -> QMessageBox | None:
        """Confirm ending a session (non-modal): what will happen, and that a running turn is
        interrupted. opencode's running turn is stopped without asking (the session stays)."""
        s = self.registry.get(session_id)
        if s is None:
            return None
        if s.agent.value == "opencode":
            self.action_requested.emit(session_id, "end", "")
            return None
        command = "/exit" if s.agent.value == "claude-code" else "/quit"
        busy = "" if s.status is SessionStatus.IDLE else (
            " It is not at its prompt now: deck-tray presses Esc first, which interrupts what it is doing.")
        box = QMessageBox(QMessageBox.Icon.Question, "End session",
                          f"End “{s.display_title}”? {s.agent.label} exits with {command} in "
                          f"{s.pane.location if s.pane else 'its terminal'}.{busy} The conversation stays in its "
                          "transcript and can be resumed.", QMessageBox.StandardButton.Cancel, self)
        end = box.addButton("End session", QMessageBox.ButtonRole.DestructiveRole)
        box.buttonClicked.connect(lambda b: self.action_requested.emit(session_id, "end", "") if b is end else None)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def _open_item(self, item: QTreeWidgetItem) -> None:
        sid = item.data(0, Qt.ItemDataRole.UserRole)
        if sid:
            self.open_session(str(sid))

    def _on_session(self, s: Session) -> None:
        tab = self.tabs_by_id.get(s.id)
        if tab is not None:
            if tab.past:
                tab.set_past(False)  # resumed: the tab follows the live session
            tab.update_session(s)
            self._label_tab(tab, s)
        self._rebuild_list_soon()

    def _on_transition(self, t: Transition) -> None:
        """Unread: the session *became* ready or started waiting (found waiting counts too)."""
        became = t.new.is_waiting or (t.new is SessionStatus.IDLE and t.old is not None)
        if became and not self._is_seen(t.session.id):
            self.unread.add(t.session.id)
            tab = self.tabs_by_id.get(t.session.id)
            if tab is not None:
                self._label_tab(tab, t.session)
            self._rebuild_list_soon()

    def _on_removed(self, sid: str) -> None:
        self.unread.discard(sid)
        self._rebuild_list_soon()

    # -- unread ----------------------------------------------------------------------------
    def _is_seen(self, sid: str) -> bool:
        tab = self.tabs_by_id.get(sid)
        return tab is not None and self.isActiveWindow() and self.tabs.currentWidget() is tab and self.isVisible()

    def _tab_seen(self, _index: int = -1) -> None:
        tab = self.current_tab()
        if tab is not None and self.isVisible() and tab.session.id in self.unread:
            self.unread.discard(tab.session.id)
            self._label_tab(tab, tab.session)
            self._rebuild_list()

    def _keep_recent(self, _index: int = -1) -> None:
        """The current tab moves to the front; the content of tabs not among the
        :data:`KEEP_BUILT` shown last is released (built again when shown)."""
        tab = self.current_tab()
        if tab is None:
            return
        self._shown = [tab, *(t for t in self._shown if t is not tab)]
        released = False
        for t in self._shown[KEEP_BUILT:]:
            if t.built and t.release():
                released = True
        if released:
            self._trim_timer.start()

    def _trim_memory(self) -> None:
        """Give the memory of released tab contents back to the system, off the GUI thread."""
        threading.Thread(target=return_freed_memory, name="deck-tray-trim", daemon=True).start()

    def changeEvent(self, event: QEvent) -> None:
        """Looking at the window marks the current tab as seen."""
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self._tab_seen()
        super().changeEvent(event)

    def _label_tab(self, tab: SessionTab, s: Session) -> None:
        idx = self.tabs.indexOf(tab)
        if idx < 0:
            return
        title = s.display_title if len(s.display_title) <= 28 else s.display_title[:27] + "…"
        host = f"{s.host}: " if s.host else ""
        self.tabs.setTabText(idx, ("● " if s.id in self.unread else "") + host + title)
        self.tabs.setTabIcon(idx, status_icon(s.status))
        on = f" on {s.host}" if s.host else ""
        self.tabs.setTabToolTip(idx, f"{s.display_title}\n{s.cwd}{on}\n{s.status.label}"
                                + (f"\n{s.reason}" if unreachable(s) else ""))

    # -- tabs ------------------------------------------------------------------------------
    def open_session(self, session_id: str, token: str = "") -> SessionTab | None:
        """Open (or focus) the tab of a session, and show, raise and focus the window (with the
        xdg-activation ``token`` the request came with, see ui.activation)."""
        s = self.registry.get(session_id)
        tab = self.tabs_by_id.get(session_id)
        if tab is None:
            if s is None:
                return None
            tab = SessionTab(s, self.memory)
            tab.reply_requested.connect(self.reply_requested)
            tab.action_requested.connect(self.action_requested)
            tab.set_hook_held(self._hook_held.get(session_id, False))
            self.tabs_by_id[session_id] = tab
            self.tabs.addTab(tab, "")
            self._label_tab(tab, s)
            self.memory.forget_closed(session_id)
            self._update_reopen()
        self.right.setCurrentWidget(self.tabs)
        self.tabs.setCurrentWidget(tab)
        activate(self, token)
        self.unread.discard(session_id)
        self._label_tab(tab, tab.session)
        self._rebuild_list_soon()  # after the tab's first paint
        tab.answer.setFocus()
        return tab

    def toggle(self, token: str = "") -> None:
        """The global shortcut: hide the window when it is the active one; otherwise show it at
        the oldest waiting request's tab (or as it was, when nothing waits), raised and focused
        (with the xdg-activation ``token`` the shortcut came with). Without a tray the window is
        minimized instead of hidden (there would be no way back)."""
        if self.isVisible() and not self.isMinimized() and self.isActiveWindow():
            self.save_state()
            if self.no_tray:
                self.showMinimized()
            else:
                self.hide()
            return
        waiting = self.registry.waiting()
        if waiting and self.open_session(waiting[0].id, token=token) is not None:
            return
        if self.isMinimized():
            self.showNormal()
        activate(self, token)

    def state(self) -> dict[str, object]:
        """What the window shows, for ``ping`` (tests and ``doctor``): ``platform`` (Qt's),
        ``shown``, ``active`` (has focus), ``pinned``, ``pinning_works``, ``tab`` (the current
        tab's session id or None) and ``notice`` (the notice bar's text, ``""`` when hidden)."""
        tab = self.current_tab()
        return {"platform": QGuiApplication.platformName(), "shown": self.isVisible() and not self.isMinimized(),
                "active": self.isActiveWindow(), "pinned": self.is_pinned(), "pinning_works": self.pinning_works(),
                "tab": tab.session.id if tab is not None and self.right.currentWidget() is self.tabs else None,
                "notice": " | ".join(self.notices())}

    def show_hit(self, hit: SearchHit, past_session: Session | None = None, term: str = "") -> SessionTab | None:
        """Open the tab of a search hit's session scrolled to the hit (selected in the tab's
        find bar, which holds ``term``, default: the hit's first matched word). A session
        the registry does not list opens as a read-only past-session tab built from
        ``past_session``; without it, nothing opens (None)."""
        tab = self.tabs_by_id.get(hit.session_id)
        if tab is None and self.registry.get(hit.session_id) is None:
            if past_session is None:
                return None
            tab = SessionTab(past_session, self.memory)
            tab.set_past(True)
            tab.reply_requested.connect(self.reply_requested)
            tab.action_requested.connect(self.action_requested)
            self.tabs_by_id[hit.session_id] = tab
            self.tabs.addTab(tab, "")
            self._label_tab(tab, past_session)
        tab = self.open_session(hit.session_id)
        if tab is not None:
            tab.reveal(term or past.hit_term(hit), past.hit_context(hit))
            if tab.past:
                tab.view.setFocus()
        return tab

    def set_hook_held(self, session_id: str, held: bool) -> None:
        """Whether the session's permission hook waits for an answer from deck-tray (its tab then
        offers Allow / Always allow / Deny without a pane)."""
        self._hook_held[session_id] = held
        if not held:
            self._hook_held.pop(session_id, None)
        tab = self.tabs_by_id.get(session_id)
        if tab is not None:
            tab.set_hook_held(held)

    def session_of_tab(self, session_id: str) -> Session | None:
        """The session an open tab shows (past sessions too), else None."""
        tab = self.tabs_by_id.get(session_id)
        return tab.session if tab is not None else None

    def close_tab(self, index: int) -> None:
        """Close the tab at ``index`` (the session keeps running); it can be reopened."""
        w = self.tabs.widget(index)
        if not isinstance(w, SessionTab):
            return
        w.save_draft()
        self.memory.push_closed(ClosedTab(w.session.id, w.session.display_title, w.session.agent.label))
        self.tabs.removeTab(index)
        self.tabs_by_id.pop(w.session.id, None)
        self._shown = [t for t in self._shown if t is not w]
        w.deleteLater()
        if self.tabs.count() == 0:
            self.right.setCurrentWidget(self.empty)
        self._update_reopen()

    def reopen_closed(self, session_id: str | None = None) -> SessionTab | None:
        """Reopen the newest closed tab (or that of ``session_id``), with its draft."""
        while True:
            closed = self.memory.pop_closed(session_id)
            if closed is None:
                self._update_reopen()
                return None
            if self.registry.get(closed.session_id) is not None or session_id is not None:
                break
            # Its session is gone (transcript aged out): skip it, try the next one.
        tab = self.open_session(closed.session_id)
        self._update_reopen()
        return tab

    def _update_reopen(self) -> None:
        closed = self.memory.closed_tabs()
        self.reopen_action.setVisible(bool(closed))
        self.reopen_action.setEnabled(bool(closed))
        self.reopen_menu.clear()
        for t in closed:
            act = self.reopen_menu.addAction(f"{t.title}  —  {t.agent}" if t.agent else t.title)
            act.triggered.connect(lambda _=False, sid=t.session_id: self.reopen_closed(sid))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Middle click on a tab closes it."""
        if obj is self.tabs.tabBar() and event.type() == QEvent.Type.MouseButtonRelease \
                and isinstance(event, QMouseEvent) and event.button() == Qt.MouseButton.MiddleButton:
            idx = self.tabs.tabBar().tabAt(event.position().toPoint())
            if idx >= 0:
                self.close_tab(idx)
                return True
        return super().eventFilter(obj, event)

    def current_tab(self) -> SessionTab | None:
        """The visible session tab, if any."""
        w: QWidget | None = self.tabs.currentWidget()
        return w if isinstance(w, SessionTab) else None

    def show_delivery(self, session_id: str, report: DeliveryReport) -> None:
        """Route a delivery report to its tab."""
        tab = self.tabs_by_id.get(session_id)
        if tab is not None:
            tab.show_delivery(report)

    def show_action(self, session_id: str, report: ActionReport) -> None:
        """Route the outcome of a tab's action (Resume in terminal) to its tab."""
        tab = self.tabs_by_id.get(session_id)
        if tab is not None:
            tab.show_action(report)

    # -- opencode servers ------------------------------------------------------------------
    def show_servers(self, states: list[ServerState], started: Iterable[str] = ()) -> None:
        """Show the opencode servers' connection states in the status bar; ``started``: the URLs
        of servers deck-tray itself started (named so in the tooltip and counted in the text)."""
        self._servers = list(states)
        mine = set(started)
        if not states:
            self.servers_label.setText("No opencode server found (they are looked for every few seconds)")
            self.servers_label.setToolTip("")
            self.password_button.hide()
            return
        ok = [s for s in states if s.phase is ServerPhase.CONNECTED]
        bad = [s for s in states if s.phase is not ServerPhase.CONNECTED]
        text = f"opencode: {len(ok)} of {len(states)} server{'s' if len(states) != 1 else ''} connected"
        ours = sum(1 for s in states if s.url in mine)
        if ours:
            text += f" ({ours} started by deck-tray)"
        if bad:
            text += " — " + "; ".join(f"{s.url} {s.phase.value}" for s in bad[:2])
        self.servers_label.setText(text)
        self.servers_label.setToolTip("\n".join(
            f"{s.url}{' (started by deck-tray)' if s.url in mine else ''}: {s.phase.value} — {s.detail}"
            for s in states))
        self.password_button.setVisible(any(s.phase is ServerPhase.AUTH_REQUIRED for s in states))

    def show_remotes(self, statuses: Sequence[Mapping[str, Any]]) -> None:
        """Show the remote hosts' connections in the status bar (hidden when none is configured).

        Args:
            statuses: ``{"name", "dest", "state", "detail", "since", "version", "sessions"}`` per
                host, as :func:`deck_tray.services.remote.host_json` gives them.
        """
        if not statuses:
            self.remotes_label.hide()
            return
        up = [st for st in statuses if st.get("state") == "connected"]
        down = [st for st in statuses if st.get("state") != "connected"]
        text = f"remote: {len(up)} of {len(statuses)} host{'s' if len(statuses) != 1 else ''} connected"
        if down:
            text += " — " + "; ".join(f"{st.get('name')} {st.get('state')}" for st in down[:2])
        self.remotes_label.setText(text)
        self.remotes_label.setToolTip("\n".join(
            f"{st.get('name')} ({st.get('dest')}): {st.get('state')} — {st.get('detail')}" for st in statuses))
        self.remotes_label.show()

    def _password_clicked(self) -> None:
        for s in self._servers:
            if s.phase is ServerPhase.AUTH_REQUIRED:
                self.ask_password(s.url)

    def ask_password(self, url: str) -> None:
        """Ask (without blocking) for the password of the opencode server at ``url``."""
        if url in self._password_dialogs:
            self._password_dialogs[url].raise_()
            return
        dlg = QInputDialog(self)
        dlg.setWindowTitle("opencode password")
        dlg.setLabelText(f"The opencode server at {url} needs a password\n"
                         "(its OPENCODE_SERVER_PASSWORD). deck-tray keeps it in your keyring.")
        dlg.setTextEchoMode(QLineEdit.EchoMode.Password)
        dlg.setOkButtonText("Connect")

        def done(password: str) -> None:
            if password:
                self.password_entered.emit(url, password)

        dlg.textValueSelected.connect(done)
        dlg.finished.connect(lambda _r: self._password_dialogs.pop(url, None))
        self._password_dialogs[url] = dlg
        dlg.open()

    def show_notice(self, text: str, action: tuple[str, Callable[[], object]] | None = None) -> None:
        """Show a dismissible message above the session list and tabs, with an optional button
        ``action`` = (label, what it does; the message goes when clicked). A message arriving
        while another shows waits until that one is dismissed; the same text is not queued twice."""
        if any(t == text for t, _a in self._notices):
            return
        self._notices.append((text, action))
        if len(self._notices) == 1:
            self._show_first_notice()

    def notices(self) -> list[str]:
        """The messages shown and waiting, the shown one first."""
        return [t for t, _a in self._notices]

    def _show_first_notice(self) -> None:
        if not self._notices:
            self.notice_bar.hide()
            return
        text, action = self._notices[0]
        self.notice.setText(text)
        self.notice_button.setText(action[0] if action else "")
        self.notice_button.setVisible(action is not None)
        self.notice_bar.show()

    def _notice_done(self) -> None:
        if self._notices:
            self._notices.pop(0)
        self._show_first_notice()

    def _notice_clicked(self) -> None:
        action = self._notices[0][1] if self._notices else None
        self._notice_done()
        if action is not None:
            action[1]()

    def set_no_tray(self, tell: bool) -> None:
        """The desktop has no tray: closing minimizes instead of hiding (there would be no way
        back), and, the first time, a bar says how to get a tray."""
        self.no_tray = True
        if tell:
            self.show_notice(
                "Your desktop shows no tray icons, so deck-tray keeps this window available instead "
                "(closing it minimizes it). On GNOME, install the “AppIndicator and KStatusNotifierItem "
                "Support” extension to get the tray icon."
            )

    def save_state(self) -> None:
        """Write the geometry and every tab's draft to the settings now and sync them to disk
        (the closed-tab stack is synced whenever it changes)."""
        self.settings.setValue(self._geometry_key(self.is_pinned()), self.saveGeometry())
        for tab in self.tabs_by_id.values():
            tab.save_draft()
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing hides the window; the app keeps running in the tray. Drafts are kept."""
        self.save_state()
        if not self.close_to_tray:
            super().closeEvent(event)
            self.quit_requested.emit()
            return
        if self.no_tray:
            event.ignore()
            self.showMinimized()
            return
        super().closeEvent(event)
