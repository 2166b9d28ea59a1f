"""Monitor: keeps the registry current from file events and a slow liveness tick.

watchdog threads only emit a queued Qt signal; bursts are coalesced on the GUI thread
with a single-shot timer, then one refresh (:func:`deck_tray.services.collect.collect`)
runs — never two at once; a refresh asked for while one runs is run once afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from deck_tray.core.scan import Scanner
from deck_tray.services.collect import collect
from deck_tray.services.panes import Tmux
from deck_tray.services.registry import SessionRegistry

log = logging.getLogger(__name__)

#: Coalescing delay after a file event (ms).
COALESCE_MS = 25
#: Liveness / pane / screen tick (ms) while some session may be asked something.
FAST_TICK_MS = 1000
#: Tick otherwise (ms).
SLOW_TICK_MS = 3000


class _Handler(FileSystemEventHandler):
    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        # Runs on the watchdog thread: only hand over (queued signal).
        self._monitor.files_changed.emit(str(event.src_path))


class Monitor(QObject):
    """Drives scans and feeds :class:`SessionRegistry`.

    Args:
        scanner: the file scanner.
        tmux: the tmux client.
        registry: where results go.

    Signals:
        files_changed(str): a watched file changed (emitted from the watchdog thread).
        refreshed(float): a refresh finished; the value is its duration in seconds.
    """

    files_changed = Signal(str)
    refreshed = Signal(float)

    def __init__(self, scanner: Scanner, tmux: Tmux, registry: SessionRegistry,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scanner = scanner
        self.tmux = tmux
        self.registry = registry
        self._observer: Any = None
        self._watched: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._coalesce = QTimer(self)
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(COALESCE_MS)
        self._coalesce.timeout.connect(self.refresh)
        self._tick = QTimer(self)
        self._tick.setInterval(SLOW_TICK_MS)
        self._tick.timeout.connect(self._on_tick)
        self.files_changed.connect(self._on_files_changed)

    def start(self) -> None:
        """Start watching and run the first refresh."""
        self._observer = Observer()
        self._observer.daemon = True
        self._arm_watches()
        self._observer.start()
        self._tick.start()
        self.refresh()

    async def stop(self) -> None:
        """Stop timers, the watcher thread and any refresh in flight."""
        self._tick.stop()
        self._coalesce.stop()
        if self._observer is not None:
            self._observer.stop()
            await asyncio.get_running_loop().run_in_executor(None, self._observer.join, 2.0)
            self._observer = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def _arm_watches(self) -> None:
        if self._observer is None:
            return
        for root in self.scanner.watch_roots():
            target: Path = root
            recursive = True
            if not root.is_dir():
                target, recursive = root.parent, False
                if not target.is_dir():
                    continue
            key = f"{target}|{recursive}"
            if key in self._watched:
                continue
            try:
                self._observer.schedule(_Handler(self), str(target), recursive=recursive)
                self._watched.add(key)
            except OSError as exc:
                log.warning("cannot watch %s: %s", target, exc)

    def _on_files_changed(self, _path: str) -> None:
        if not self._coalesce.isActive():
            self._coalesce.start()

    def _on_tick(self) -> None:
        self._arm_watches()
        self.refresh()

    def refresh(self) -> None:
        """Ask for a refresh; coalesces with one already running."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._refresh())

    async def refresh_now(self) -> None:
        """Refresh and wait until the registry holds the result."""
        self.refresh()
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def _refresh(self) -> None:
        while True:
            self._again = False
            t0 = time.perf_counter()
            try:
                sessions = await collect(self.scanner, self.tmux)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("refresh failed")
                sessions = None
            if sessions is not None:
                self.registry.apply(sessions)
                maybe_asked = any(s.status.is_waiting or s.pending for s in sessions if s.pid)
                self._tick.setInterval(FAST_TICK_MS if maybe_asked or self._has_busy(sessions) else SLOW_TICK_MS)
            self.refreshed.emit(time.perf_counter() - t0)
            if not self._again:
                return

    @staticmethod
    def _has_busy(sessions: list[Any]) -> bool:
        return any(s.status.value == "busy" for s in sessions)
