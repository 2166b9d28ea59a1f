"""Composition root: builds the services and the UI, connects them, starts and stops them.

The process around it (single instance, the qasync loop, signals, the bounded exit) is
:mod:`deck_tray.commands.run`; what a user does to a session is :mod:`deck_tray.services.session_actions`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from deck_tray.core import settings as cfg
from deck_tray.core.agents import default_homes
from deck_tray.core.decisions import answer_via
from deck_tray.core.display import WindowPlatform
from deck_tray.core.hooks import HookStore
from deck_tray.core.scan import Scanner
from deck_tray.services import ipc, lifecycle
from deck_tray.services.decisions import DecisionBroker
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.global_shortcut import GlobalShortcut
from deck_tray.services.history_indexer import HistoryIndexer
from deck_tray.services.history_store import HistoryIndex
from deck_tray.services.launcher import NewSession
from deck_tray.services.live_settings import LiveSettings, agent_dirs, subagent_layout
from deck_tray.services.monitor import Monitor
from deck_tray.services.notifier import Notifier
from deck_tray.services.notify_dbus import DBusNotifications, NotificationBackend
from deck_tray.services.opencode_source import OpencodeSource
from deck_tray.services.opencode_warm import LIVE_STATES, WarmServers, WarmStatus
from deck_tray.services.panes import Multiplexer, MuxSet, Tmux
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.remote import RemoteHistory, Remotes, control_dir, host_json, load_hosts, ssh_command
from deck_tray.services.secrets import Credentials
from deck_tray.services.session_actions import Notice, SessionActions
from deck_tray.services.settings_store import SettingsStore, open_settings
from deck_tray.services.subagent_panes import SubagentPanes
from deck_tray.services.terminal_actions import tmux_of
from deck_tray.services.terminals import terminal_adapters
from deck_tray.services.zellij import Zellij
from deck_tray.ui.activation import activate
from deck_tray.ui.new_session_dialog import NewSessionDialog
from deck_tray.ui.search_window import SearchWindow, link
from deck_tray.ui.settings_dialog import SettingsDialog
from deck_tray.ui.tray import Tray
from deck_tray.ui.window import MainWindow

log = logging.getLogger("deck_tray")

#: Seconds each step of :meth:`DeckTrayApp.stop` may take.
STOP_STEP_S = 1.5


class DeckTrayApp:
    """Everything the running app consists of, wired together.

    Args:
        scanner: file scanner (default: the agents' folders from the settings, else their own defaults).
        mux: the multiplexers (default: tmux and zellij).
        settings: QSettings to use (default: under platformdirs' config dir).
        notification_backends: desktop notification backends (default: freedesktop D-Bus).
        opencode_urls: opencode servers to follow besides those in the settings (``opencode/urls``).
        discover_opencode: also follow opencode servers found running on this machine (when
            the ``opencode/discover`` setting is on, too).
        credentials: opencode password lookup (default: environment, then keyring).
        ipc_path: serve the socket here (hooks, single instance, the CLI); None: no socket.
        platform: where the window runs (``core.display.choose`` before the QApplication was
            made); None: judged from Qt's platform alone.

    The settings (:mod:`deck_tray.core.settings`) are read from :attr:`store` and applied
    live when they change (:meth:`_setting_changed`).
    """

    def __init__(self, scanner: Scanner | None = None, mux: Multiplexer | None = None,
                 settings: QSettings | None = None,
                 notification_backends: list[NotificationBackend] | None = None,
                 opencode_urls: Sequence[str] = (), discover_opencode: bool = True,
                 credentials: Credentials | None = None, ipc_path: Path | None = None,
                 platform: WindowPlatform | None = None) -> None:
        self.settings = settings if settings is not None else open_settings()
        self.store = SettingsStore(self.settings)
        self.scanner = scanner or Scanner(*agent_dirs(self.store),
                                          history_s=self.store.get(cfg.HISTORY_HOURS) * 3600.0,
                                          adapter_homes=default_homes())
        self.mux = mux or MuxSet([Tmux(), Zellij(), *terminal_adapters()])
        self.registry = SessionRegistry()
        self.hooks = HookStore()
        self.monitor = Monitor(self.scanner, self.mux, self.registry, hooks=self.hooks)
        self.opencode = OpencodeSource(self.registry, credentials or Credentials(),
                                       urls=[*self.store.get(cfg.OPENCODE_URLS), *opencode_urls],
                                       discover=discover_opencode and self.store.get(cfg.OPENCODE_DISCOVER))
        # Permissions go through the agent's waiting PermissionRequest hook when one is held.
        self.decisions = DecisionBroker(self.registry, hooks=self.hooks)
        self.decisions.codex_hold_s = float(self.store.get(cfg.CODEX_HOLD_S))
        self.decisions.short_wait_s = float(self.store.get(cfg.HOOK_WAIT_S))
        # Agents on other machines (#18): one ssh per configured host, answered through it.
        ssh, why = ssh_command(self.settings)
        if why:
            log.warning("%s", why)
        self.remotes = Remotes(self.registry, load_hosts(self.settings), ssh=ssh, control=control_dir())
        self.dispatcher = Dispatcher(self.mux, self.monitor.fresh, api=self.opencode, hooks=self.decisions,
                                     remote=self.remotes)
        # A pane beside an attached opencode session for each of its sub-agents (#15).
        self.subagents = SubagentPanes(
            self.opencode, tmux_of(self.mux) or Tmux(),
            layout=subagent_layout(self.store),
            close_grace_s=float(self.store.get(cfg.SUBAGENT_CLOSE_GRACE_S)),
            enabled=self.store.get(cfg.SUBAGENT_PANES))
        # opencode servers deck-tray starts for new sessions (#15): followed like any other server.
        self.warm = WarmServers(self.opencode.credentials)
        self.warm.listeners.append(self._warm_changed)
        self.actions = SessionActions(self.registry, self.mux, self.monitor, self.opencode,
                                      dispatcher=self.dispatcher, warm=self.warm, settings=self.settings,
                                      worktree_root=lambda: self.store.get(cfg.WORKTREE_ROOT))
        # The searchable history (#7): filled by a low-priority worker thread, never the GUI thread.
        self.history = HistoryIndexer(
            # It shares the scanner's log of skipped files (a named pipe is reported once, not twice).
            HistoryIndex(skipped=self.scanner.skipped), lambda: (self.scanner.claude_dir, self.scanner.codex_dir),
            servers=lambda: [st.url for st in self.opencode.servers() if st.phase.value == "connected"],
            credentials=self.opencode.credentials, adapter_homes=default_homes)
        self.monitor.files_changed.connect(self.history.file_changed)
        self.window = MainWindow(self.registry, self.settings, platform=platform)
        self.decisions.changed.connect(
            lambda sid: self.window.set_hook_held(sid, self.decisions.held(sid) is not None))
        self.decisions.changed.connect(lambda sid: self.monitor.poke((), [sid]))
        self.tray = Tray(self.registry)
        self.tray.pin_action.setChecked(self.window.is_pinned())
        self.tray.open_requested.connect(self.window.open_session)
        self.tray.show_window_requested.connect(self._show_window)
        self.tray.pin_toggled.connect(self.window.pin_action.setChecked)
        self.window.pin_action.toggled.connect(self.tray.pin_action.setChecked)
        self.actions.past_session = self.window.session_of_tab
        self.window.reply_requested.connect(self.actions.send_reply)
        self.window.action_requested.connect(self.actions.request)
        self.window.password_entered.connect(self.actions.store_password)
        self.actions.delivered.connect(self.window.show_delivery)
        self.actions.acted.connect(self.window.show_action)
        self.actions.open_requested.connect(self.window.open_session)
        self.actions.notice.connect(self._notice)
        self.opencode.servers_changed.connect(
            lambda states: self.window.show_servers(states, self.warm.started_urls()))
        self.opencode.password_needed.connect(self.window.ask_password)
        self.opencode.handed_off.connect(self.actions.source_handed_off)
        self.quit_event = asyncio.Event()
        self.tray.quit_requested.connect(self.quit_event.set)
        self.notifier = Notifier(
            self.registry,
            [DBusNotifications()] if notification_backends is None else notification_backends,
            fallback=self.tray.show_message,
            is_focused=self.monitor.pane_focused,
        )
        self.notifier.action_invoked.connect(lambda sid, action, _token: self.actions.notification_action(sid, action))
        self.notifier.action_invoked.connect(lambda sid, _action, token: self.window.open_session(sid, token=token))
        self.tray.pause_requested.connect(self._pause)
        self.notifier.paused_changed.connect(self._paused_changed)
        self.ipc = ipc.IpcServer(ipc_path, sessions=self._ipc_sessions, reply=self.actions.send,
                                 hold=self.decisions.hold) if ipc_path else None
        if self.ipc is not None:
            self.ipc.hold_abandoned = self.decisions.went_away
            self.ipc.hold_limit = self.decisions.hold_limit
            self.ipc.hook_received.connect(self.monitor.hook_arrived)
            self.ipc.hook_received.connect(self.decisions.hook_arrived)
            self.ipc.show_requested.connect(self._show_window)
            self.ipc.toggle_requested.connect(self.window.toggle)
            self.ipc.remotes_changed.connect(self._remotes_changed)
            self.ipc.new_session = lambda msg: self.actions.new_from_message(msg, self.store.get(cfg.WORKTREE_ROOT))
            self.ipc.window_state = lambda: {**self.window.state(), "shortcut": self.shortcut.status,
                                             "shortcut_way": self.shortcut.way}
        self.settings_dialog: SettingsDialog | None = None
        self.window.close_to_tray = self.store.get(cfg.CLOSE_TO_TRAY)
        self.window.quit_requested.connect(self.quit_event.set)
        self.window.restart_requested.connect(self._restart)
        self.window.pin_action.toggled.connect(lambda _on: self.store.refresh(cfg.PINNED))  # it stores it
        self.window.settings_requested.connect(self.open_settings)
        self.tray.settings_requested.connect(self.open_settings)
        self.store.changed.connect(self._window_setting_changed)
        self.search_window: SearchWindow | None = None
        self.window.search_requested.connect(self.open_search)
        # The global shortcut (#14): shows the window at the oldest waiting request, or hides it.
        self.shortcut: GlobalShortcut = GlobalShortcut()  # annotated: read by a lambda above
        self.shortcut.activated.connect(self.window.toggle)
        self.shortcut.changed.connect(self._shortcut_changed)
        self.live = LiveSettings(self.store, notifier=self.notifier, opencode=self.opencode, subagents=self.subagents,
                                 decisions=self.decisions, monitor=self.monitor, history=self.history,
                                 shortcut=self.shortcut, remotes=self.remotes, warm=self.warm,
                                 spawn=self.actions.spawn,
                                 cli_urls=opencode_urls, discover_allowed=discover_opencode)
        self.store.changed.connect(self.live.changed)
        self.remotes.status_changed.connect(self._remote_status)
        self.remotes.hosts_changed.connect(self._remote_status)
        self._remote_status()
        self.tray.search_requested.connect(self.open_search)
        self.new_session_dialog: NewSessionDialog | None = None
        self._recent_folders: list[str] = []
        self.window.new_session_requested.connect(self.open_new_session)
        self.tray.new_session_requested.connect(self.open_new_session)

    # -- settings ------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        """Show the settings dialog (one, non-modal; raised when already open)."""
        if self.settings_dialog is None:
            self.settings_dialog = SettingsDialog(self.store, self.window)
            self.settings_dialog.set_shortcut_status(self.shortcut.status)
            self._remote_status()
        self.settings_dialog.present()
        return self.settings_dialog

    def open_search(self) -> SearchWindow:
        """Show the history search window (one, non-modal; raised when already open)."""
        if self.search_window is None:
            # Remote hosts' history too when the setting is on (read at every search: live).
            remote = RemoteHistory(self.remotes, lambda: bool(self.store.get(cfg.REMOTE_SEARCH_HISTORY)))
            self.search_window = SearchWindow(self.history.index, remote=remote)
            link(self.search_window, self.window)
            self.history.progress.connect(self.search_window.set_progress)
            self.history.updated.connect(self.search_window.index_updated)
            if self.history.last_progress:  # a scan running before the window opened
                self.search_window.set_progress(*self.history.last_progress)
        self.search_window.present()
        return self.search_window

    def open_new_session(self) -> NewSessionDialog:
        """Show the "New session" dialog (one, non-modal; raised when already open)."""
        if self.new_session_dialog is None:
            self.new_session_dialog = NewSessionDialog(lambda: list(self._recent_folders),
                                                       lambda: self.store.get(cfg.WORKTREE_ROOT), self.window)
            self.new_session_dialog.start_requested.connect(
                lambda req: self.actions.start_requested(NewSession(req.agent, req.folder, req.prompt, trust=req.trust),
                                                         req.worktree))
            self.actions.start_result.connect(self.new_session_dialog.show_result)
        self.new_session_dialog.present()
        self.actions.spawn(self._refresh_recent_folders())
        return self.new_session_dialog

    async def _refresh_recent_folders(self) -> None:
        self._recent_folders = await self.history.recent_folders()
        if self.new_session_dialog is not None:
            self.new_session_dialog.set_folders(self._recent_folders)

    def _warm_changed(self, status: WarmStatus) -> None:
        """Follow a server deck-tray started (and drop it when it stopped for good)."""
        if status.state in LIVE_STATES:
            self.opencode.add_url(status.url)

    def quiet_now(self) -> bool:
        """True during the quiet hours of the settings (local time)."""
        return self.live.quiet_now()

    def _window_setting_changed(self, key: str, value: object) -> None:
        if key == cfg.PINNED.key:
            self.window.pin_action.setChecked(bool(value))
        elif key == cfg.CLOSE_TO_TRAY.key:
            self.window.close_to_tray = bool(value)

    def _notice(self, notice: Notice) -> None:
        if notice.raise_window:
            self._show_window()
        self.window.show_notice(notice.text, (notice.button, notice.on_click) if notice.on_click else None)

    def _pause(self, seconds: object) -> None:
        if isinstance(seconds, (int, float)) and seconds > 0:
            self.notifier.pause(float(seconds))
        else:
            self.notifier.resume()

    def _paused_changed(self, _paused: bool) -> None:
        self.tray.paused_until = self.notifier.paused_until
        self.tray.rebuild_menu()

    def _restart(self) -> None:
        """Start a deck-tray that replaces this one (it ends this process in the orderly way)."""
        self.window.save_state()
        try:
            lifecycle.spawn_restart()
        except OSError as exc:
            self.window.show_notice(f"deck-tray could not start again ({exc}). Quit it and start it yourself.")

    def _remotes_changed(self) -> None:
        self.settings.sync()  # written by the deck-tray remote command, another process
        self.store.refresh(cfg.REMOTE_HOSTS)  # LiveSettings follows it; an open dialog shows it

    def _remote_status(self, _status: object = None) -> None:
        rows = [host_json(st) for st in self.remotes.statuses()]
        self.window.show_remotes(rows)
        if self.settings_dialog is not None:
            self.settings_dialog.set_remote_statuses(rows)

    def _show_window(self, token: str = "") -> None:
        activate(self.window, token)

    async def _ipc_sessions(self) -> dict[str, Any]:
        """The socket's ``sessions`` answer: the registry right after a refresh (current reasons)."""
        await self.monitor.refresh_now(force=True)
        sessions = self.registry.sessions()
        via = {s.id: answer_via(s, self.decisions.held(s.id) is not None) for s in sessions}
        return ipc.sessions_answer(sessions, claude_dir=str(self.scanner.claude_dir),
                                   codex_dir=str(self.scanner.codex_dir), servers=self.opencode.servers(),
                                   answer_via=via, remotes=[host_json(st) for st in self.remotes.statuses()])

    def start(self) -> None:
        """Show the tray (or the window when the desktop has no tray) and start watching.

        Raises:
            ipc.AlreadyRunning: another deck-tray serves the socket (nothing was started).
        """
        if self.ipc is not None:
            try:
                self.ipc.start()
            except ipc.AlreadyRunning:
                raise
            except ipc.IpcError as exc:
                log.warning("no socket, so no hooks and no single instance: %s", exc)
        if Tray.available():
            self.tray.show()
            if not self.store.get(cfg.START_HIDDEN):
                self._show_window()
        else:
            log.warning("no system tray on this desktop (no StatusNotifierWatcher or XEmbed host); "
                        "showing the window instead. On GNOME, install the AppIndicator extension.")
            self.window.set_no_tray(tell=not self.settings.value("window/told_no_tray", False, type=bool))
            self.settings.setValue("window/told_no_tray", True)
            self._show_window()
        self.monitor.start()
        self.opencode.start()
        self.remotes.start()
        self.subagents.start()
        if self.store.get(cfg.HISTORY_INDEX):
            self.history.start()

    async def start_notifications(self) -> None:
        """Connect to the desktop's notification service (falls back to tray messages), and bind
        the global shortcut."""
        await self.notifier.start()
        if self.store.get(cfg.GLOBAL_SHORTCUT):  # a portal may take seconds to start: not waited for
            self.actions.spawn(self.shortcut.apply(self.store.get(cfg.GLOBAL_SHORTCUT)))

    def _shortcut_changed(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.set_shortcut_status(self.shortcut.status)

    async def stop(self) -> None:
        """Save what the user typed, then stop the services, each given at most
        :data:`STOP_STEP_S` seconds (a step that hangs — a D-Bus call to a daemon that went
        away — is logged and left behind; the process's hard exit bounds the rest).

        Threads that deliver into Qt objects (the file watcher, the history indexer) are
        stopped first, so nothing reaches an object being torn down (issue #20).
        """
        self.window.save_state()
        self.decisions.release_all()  # held hooks return at once: the agents' own dialogs decide
        if self.search_window is not None:
            self.search_window.shutdown()
        steps: list[tuple[str, Any]] = [("file watcher", self.monitor.stop()), ("history index", self.history.stop())]
        if self.ipc is not None:
            steps.append(("socket", self.ipc.stop()))
        steps += [("sub-agent panes", self.subagents.stop()),
                  ("notifications", self.notifier.stop()), ("opencode", self.opencode.stop()),
                  ("remote hosts", self.remotes.stop()),
                  ("global shortcut", self.shortcut.stop())]
        if self.warm.started_urls() and not self.store.get(cfg.KEEP_STARTED_SERVERS):
            steps.append(("opencode servers deck-tray started", self.warm.stop_all()))
        for name, step in steps:
            try:
                await asyncio.wait_for(step, STOP_STEP_S)
            except TimeoutError:
                log.warning("stopping the %s took over %g s; going on without it", name, STOP_STEP_S)
            except Exception:
                log.exception("stopping the %s failed", name)
        await self.actions.stop(STOP_STEP_S)

    def stop_now(self) -> None:
        """The last moments of the process, synchronously (the display connection broke and Qt
        is ending the process): no more deliveries from threads, drafts and window state
        saved, the socket file removed so the next start is not refused."""
        self.monitor.stop_watching()
        self.history.stop_soon()
        self.window.save_state()
        if self.ipc is not None:
            self.ipc.remove_socket_file()
