"""The settings applied to the running services, at start and whenever one changes.

The settings themselves (keys, defaults, types) are :mod:`deck_tray.core.settings`; the store
that reads and writes them and says which one changed is
:class:`~deck_tray.services.settings_store.SettingsStore`. This module decides what a change
means for each running service; the window's own settings (pinned, close to tray) are applied by
the window's wiring in :mod:`deck_tray.app` (services never import the ui).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from deck_tray.core import claude, codex
from deck_tray.core import settings as cfg
from deck_tray.core.model import SessionStatus
from deck_tray.core.subagent_panes import Layout
from deck_tray.services.decisions import DecisionBroker
from deck_tray.services.global_shortcut import GlobalShortcut
from deck_tray.services.history_indexer import HistoryIndexer
from deck_tray.services.monitor import Monitor
from deck_tray.services.notifier import Notifier
from deck_tray.services.opencode_source import OpencodeSource
from deck_tray.services.opencode_warm import WarmServers
from deck_tray.services.remote import HostConfig, Remotes
from deck_tray.services.settings_store import SettingsStore
from deck_tray.services.subagent_panes import SubagentPanes


def agent_dirs(store: SettingsStore) -> tuple[Path, Path]:
    """(Claude Code's config folder, Codex's home) as Paths: the settings' folders when set, else
    the agents' own defaults (``$CLAUDE_CONFIG_DIR`` or ``~/.claude``; ``$CODEX_HOME`` or ``~/.codex``)."""
    return (cfg.agent_dir(store.get(cfg.CLAUDE_DIR), claude.config_dir()),
            cfg.agent_dir(store.get(cfg.CODEX_DIR), codex.codex_home()))


def subagent_layout(store: SettingsStore) -> Layout:
    """The sub-agent panes' size limits (``opencode/main_pane_min_cols``, ``opencode/agent_pane_min_cols``)."""
    return Layout(store.get(cfg.MAIN_PANE_MIN_COLS), store.get(cfg.AGENT_PANE_MIN_COLS))


class LiveSettings:
    """Applies :mod:`~deck_tray.core.settings` to the running services.

    Args:
        store: the settings.
        notifier, opencode, subagents, decisions, monitor, history, shortcut, warm, remotes: the
            services.
        spawn: runs a coroutine in the background (the global shortcut is bound asynchronously).
        cli_urls: opencode servers given on the command line (kept when the setting changes).
        discover_allowed: False when the command line turned discovery of opencode servers off.
    """

    def __init__(self, store: SettingsStore, *, notifier: Notifier, opencode: OpencodeSource,
                 subagents: SubagentPanes, decisions: DecisionBroker, monitor: Monitor, history: HistoryIndexer,
                 shortcut: GlobalShortcut, remotes: Remotes,
                 warm: WarmServers, spawn: Callable[[Coroutine[Any, Any, Any]], object],
                 cli_urls: Sequence[str] = (), discover_allowed: bool = True) -> None:
        self.store = store
        self.notifier, self.opencode, self.subagents = notifier, opencode, subagents
        self.decisions, self.monitor, self.shortcut, self.warm = decisions, monitor, shortcut, warm
        self.history = history
        self.remotes = remotes
        self.spawn = spawn
        self.cli_urls = list(cli_urls)
        self.discover_allowed = discover_allowed
        notifier.quiet = self.quiet_now
        self.apply_notifications()
        self.apply_handoff()

    def quiet_now(self) -> bool:
        """True during the quiet hours of the settings (local time)."""
        s = self.store
        return s.get(cfg.QUIET_ENABLED) and cfg.in_quiet_hours(
            _dt.datetime.now().time(), s.get(cfg.QUIET_START), s.get(cfg.QUIET_END))

    def apply_notifications(self) -> None:
        """Which statuses are announced, the grace before a notification, the reminder interval."""
        s, n = self.store, self.notifier
        wanted = {SessionStatus.WAITING_PERMISSION: s.get(cfg.NOTIFY_PERMISSION),
                  SessionStatus.WAITING_QUESTION: s.get(cfg.NOTIFY_QUESTION),
                  SessionStatus.IDLE: s.get(cfg.NOTIFY_TURN_FINISHED)}
        n.announce = frozenset(k for k, on in wanted.items() if on and s.get(cfg.NOTIFY_ENABLED))
        n.grace = s.get(cfg.GRACE_MS) / 1000.0
        minutes = s.get(cfg.RENOTIFY_MINUTES)
        n.renotify_after = minutes * 60.0 if minutes else None

    def apply_handoff(self) -> None:
        """The automatic opencode hand-off threshold (None: off)."""
        s = self.store
        self.opencode.auto_handoff_percent = (
            float(s.get(cfg.AUTO_HANDOFF_PERCENT)) if s.get(cfg.AUTO_HANDOFF) else None)

    def changed(self, key: str, value: object) -> None:
        """Apply the setting ``key`` (its new ``value``) to the service it concerns (the store's
        ``changed`` signal); keys of no service here are ignored."""
        s = self.store
        if key.startswith("notifications/"):
            self.apply_notifications()
            if key in (cfg.QUIET_ENABLED.key, cfg.QUIET_START.key, cfg.QUIET_END.key):
                self.notifier.release_held()
        elif key == cfg.OPENCODE_URLS.key:
            self.opencode.set_urls([*s.get(cfg.OPENCODE_URLS), *self.cli_urls, *self.warm.started_urls()])
        elif key == cfg.SUBAGENT_PANES.key:
            self.subagents.enabled = bool(value)
        elif key == cfg.SUBAGENT_CLOSE_GRACE_S.key:
            self.subagents.close_grace_s = float(s.get(cfg.SUBAGENT_CLOSE_GRACE_S))
        elif key in (cfg.MAIN_PANE_MIN_COLS.key, cfg.AGENT_PANE_MIN_COLS.key):
            self.subagents.layout = subagent_layout(s)
        elif key == cfg.OPENCODE_DISCOVER.key:
            self.opencode.set_discover(self.discover_allowed and bool(value))
        elif key in (cfg.AUTO_HANDOFF.key, cfg.AUTO_HANDOFF_PERCENT.key):
            self.apply_handoff()
        elif key == cfg.GLOBAL_SHORTCUT.key:
            self.spawn(self.shortcut.apply(str(value)))
        elif key == cfg.REMOTE_HOSTS.key:
            self.remotes.set_hosts([HostConfig(name, dest) for name, dest in s.get(cfg.REMOTE_HOSTS)])
        elif key == cfg.CODEX_HOLD_S.key:
            self.decisions.codex_hold_s = float(s.get(cfg.CODEX_HOLD_S))
        elif key == cfg.HOOK_WAIT_S.key:
            self.decisions.short_wait_s = float(s.get(cfg.HOOK_WAIT_S))
        elif key in (cfg.CLAUDE_DIR.key, cfg.CODEX_DIR.key, cfg.HISTORY_HOURS.key):
            scanner = self.monitor.scanner
            scanner.claude_dir, scanner.codex_dir = agent_dirs(s)
            scanner.history_s = s.get(cfg.HISTORY_HOURS) * 3600.0
            self.monitor.roots_changed()
            self.history.rescan()
