"""Monitor: keeps the registry current from file events and a slow liveness tick.

watchdog threads only hand each path over to the GUI thread's asyncio loop
(:class:`~deck_tray.services.handover.Handover`: no Qt call on their thread); bursts are
coalesced on the GUI thread with a single-shot timer, then one refresh
(:meth:`deck_tray.services.collect.Collector.refresh`) runs — never two at once; a refresh asked
for while one runs is run once afterwards.

A file event costs the same however many sessions exist: only the sessions its files belong
to are read, decided and handed to the registry (:meth:`SessionRegistry.apply` with
``complete=False``). The tick re-checks every process and reads the screens of sessions that may
be asking something, and a session whose evidence went stale is decided again at the next tick
or event; every :data:`FULL_EVERY_TICKS` ticks (and on :meth:`Monitor.refresh_now` with
``force``) every session is; a hook (:meth:`Monitor.hook_arrived`) decides its own session again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from deck_tray.core import agents
from deck_tray.core.hooks import HookEvent, HookStore
from deck_tray.core.model import Session, SessionStatus
from deck_tray.core.scan import Scanner
from deck_tray.services.collect import Collector, PaneCache
from deck_tray.services.handover import Handover
from deck_tray.services.panes import Multiplexer
from deck_tray.services.registry import SessionRegistry

log = logging.getLogger(__name__)

#: Coalescing delay after the first event naming a session file (ms): 0, the next turn of the
#: loop, which takes every event handed over by then (watchdog already delivers what inotify
#: reports within 1 ms of a read together); events arriving while a refresh runs make one more.
COALESCE_MS = 0
#: Liveness / pane / screen tick (ms) while some session may be asked something.
FAST_TICK_MS = 1000
#: Tick otherwise (ms).
SLOW_TICK_MS = 5000
#: Every this many ticks the folders and the process table are rescanned in full.
FULL_EVERY_TICKS = 12
#: Pane-title tick (ms) while an agent whose pane title tells its state (Gemini CLI, Qwen
#: Code) works or waits: one ``list-panes`` per tmux server, screens read only for titles
#: that changed to waiting (issue #19: detection ≤ 500 ms without hooks).
TITLE_TICK_MS = 250


class _Handler(FileSystemEventHandler):
    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        # Runs on the watchdog thread: only hand over, never call into Qt here (issue #20).
        # Atomic writes (write a temp file, rename over the target) arrive as moves: the
        # target counts.
        dest = getattr(event, "dest_path", "")
        self._monitor.handover.call(self._monitor._on_files_changed, str(dest or event.src_path))


class Monitor(QObject):
    """Drives scans and feeds :class:`SessionRegistry`.

    Args:
        scanner: the file scanner.
        mux: the multiplexer(s) panes are listed and read through.
        registry: where results go.
        hooks: hook events to combine with the files as evidence (the app's socket feeds
            them; see :meth:`poke`); None without hooks.

    Signals:
        files_changed(str): a watched file changed (on the GUI thread; the watchdog thread
            only hands the path over).
        refreshed(float): a refresh finished; the value is its duration in seconds.
    """

    files_changed = Signal(str)
    refreshed = Signal(float)

    def __init__(self, scanner: Scanner, mux: Multiplexer, registry: SessionRegistry,
                 parent: QObject | None = None, *, hooks: HookStore | None = None) -> None:
        super().__init__(parent)
        self.scanner = scanner
        self.mux = mux
        self.registry = registry
        self.hooks = hooks
        self._forced = False
        self._observer: Any = None
        self._watched: set[str] = set()
        self._roots: list[Path] = []
        self._unwatched: list[Path] = []  # of _roots, those not watched (recursively) yet
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._changed: set[str] = set()
        self._full = True
        self._ticks = 0
        self._needs_screens = False
        #: Sessions that may be asking something and have a pane (their screens are read every tick).
        self._screen_ids: set[str] = set()
        #: Of those, the sessions whose pane title tells their state (read every TITLE_TICK_MS).
        self._title_ids: set[str] = set()
        #: Sessions a hook named since the last refresh (decided again even without a file change).
        self._poked: set[str] = set()
        self._stopped = True
        self.pane_cache = PaneCache()
        self._collector: Collector | None = None
        #: Carries watchdog events to the GUI thread; closed first thing in :meth:`stop`.
        self.handover = Handover()
        self._coalesce = QTimer(self)
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(COALESCE_MS)
        self._coalesce.timeout.connect(self.refresh)
        self._tick = QTimer(self)
        self._tick.setInterval(SLOW_TICK_MS)
        self._tick.timeout.connect(self._on_tick)
        self._title_tick = QTimer(self)
        self._title_tick.setInterval(TITLE_TICK_MS)
        self._title_tick.timeout.connect(self._on_title_tick)
        self._title_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start watching and run the first refresh (on the thread of the asyncio loop)."""
        self._stopped = False
        if not self.handover.open():
            self.handover.open(asyncio.get_event_loop())
        self._observer = Observer()
        self._observer.daemon = True
        self._arm_watches()
        self._observer.start()
        self._tick.start()
        self.refresh(incremental=False)

    async def stop(self) -> None:
        """Stop timers, the watcher thread and any refresh in flight.

        Events are dropped from the first line on (even those already queued), so nothing
        reaches the registry or ``files_changed``'s receivers while they are torn down.
        """
        self.stop_watching()
        if self._observer is not None:
            observer, self._observer = self._observer, None
            await asyncio.get_running_loop().run_in_executor(None, observer.join, 2.0)
            if observer.is_alive():
                log.warning("the file watcher thread did not end within 2 s; leaving it (it delivers nothing)")
        title_task, self._title_task = self._title_task, None
        if title_task is not None and not title_task.done():
            title_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await title_task
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def stop_watching(self) -> None:
        """Stop delivering file events and ticks at once, without waiting (any thread state).

        Synchronous, for the last moments of the process (the display connection broke):
        the watcher thread is told to stop but not joined.
        """
        self._stopped = True
        self.handover.close()
        self._tick.stop()
        self._title_tick.stop()
        self._coalesce.stop()
        if self._observer is not None:
            self._observer.stop()

    def roots_changed(self) -> None:
        """The scanner's folders or history window changed (settings): watch the folders it
        names now and rescan in full. Watches of folders no longer used stay (their events
        match no session file and cost one cheap refresh)."""
        self._arm_watches()
        self.refresh(incremental=False)

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
        self._roots = []  # what _watch_target_appeared looks for is found again

    def _on_files_changed(self, path: str) -> None:
        if self._stopped:
            return
        self.files_changed.emit(path)
        if path.endswith((".json", ".jsonl")):
            self._changed.add(path)
        elif self._watch_target_appeared():
            # A folder we wait for (sessions/, projects/) was created: watch it now.
            self._arm_watches()
            self._full = True
        else:
            # Not a session file: an agent's temporary file (status files are written to a
            # temporary file, then renamed), or a folder's own change. Nothing to read.
            return
        if not self._coalesce.isActive():
            self._coalesce.start()

    def _watch_target_appeared(self) -> bool:
        roots = self.scanner.watch_roots()
        if roots != self._roots:
            self._roots = roots
            self._unwatched = [root for root in roots if f"{root}|True" not in self._watched]
        return any(root.is_dir() for root in self._unwatched)

    def _on_tick(self) -> None:
        self._ticks += 1
        if self._collector is not None and not self._title_tick.isActive() and self._collector.reads_titles():
            # An idle agent that tells its state in its title: a cheap look at the titles
            # (one list-panes per server) catches the user starting it from the terminal.
            self._on_title_tick()
        if self._ticks % FULL_EVERY_TICKS == 0:
            self._arm_watches()
            self._full = True
        self.refresh(incremental=True)

    def _on_title_tick(self) -> None:
        if self._stopped or (self._task is not None and not self._task.done()) or \
                (self._title_task is not None and not self._title_task.done()):
            return
        self._title_task = asyncio.ensure_future(self._refresh_titles())

    async def _refresh_titles(self) -> None:
        collector = self._collector_now()
        try:
            delta = await collector.refresh_titles(self.hooks)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading the pane titles failed")
            return
        if delta.changed and not self._stopped:
            self.registry.apply(delta.changed, complete=False)
            self._after(delta.changed)

    def _after(self, changed: list[Session]) -> None:
        """Tick rates after sessions changed: screens every tick while one may ask, titles every
        :data:`TITLE_TICK_MS` while an agent that tells its state in its title works or waits."""
        for s in changed:
            if _may_ask(s):
                self._screen_ids.add(s.id)
            else:
                self._screen_ids.discard(s.id)
            adapter = agents.adapter_for(s.agent)
            if _may_ask(s) and adapter is not None and adapter.title_rules:
                self._title_ids.add(s.id)
            else:
                self._title_ids.discard(s.id)
        self._needs_screens = bool(self._screen_ids)
        self._tick.setInterval(FAST_TICK_MS if self._needs_screens else SLOW_TICK_MS)
        if self._title_ids and not self._stopped:
            if not self._title_tick.isActive():
                self._title_tick.start()
        else:
            self._title_tick.stop()

    def refresh(self, incremental: bool = True) -> None:
        """Ask for a refresh; coalesces with one already running.

        Args:
            incremental: only re-read files reported changed (plus liveness); False
                rescans every folder and the process table.
        """
        if self._stopped:
            return
        if not incremental:
            self._full = True
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._refresh())

    def poke(self, paths: Iterable[str] = (), sessions: Iterable[str] = ()) -> None:
        """Evidence arrived from outside the watched files (a hook): refresh now, even when
        no file changed, re-read ``paths`` too (the transcript the hook named) and decide
        ``sessions`` again (without any: every session)."""
        if self._stopped:
            return
        self._changed.update(paths)
        ids = set(sessions)
        if ids:
            self._poked |= ids
        else:
            self._forced = True
        self.refresh()

    def hook_arrived(self, event: HookEvent) -> None:
        """A hook event arrived (the app's socket): store its claim and decide its session
        again at once, reading the transcript it names (a hook event costs one session's
        decision, not all of them)."""
        if self.hooks is None:
            return
        sid = self.hooks.add(event)
        if sid is not None:
            transcript = self.hooks.transcript(sid)
            self.poke([transcript] if transcript else [], [sid])

    async def fresh(self, session_id: str) -> Session | None:
        """The session as a refresh right now sees it (the dispatcher's probe after an answer)."""
        await self.refresh_now()
        return self.registry.get(session_id)

    def pane_focused(self, session: Session) -> bool:
        """True when ``session``'s pane is the active pane of an attached tmux/zellij client
        (the user is looking at it, so a notification would only interrupt)."""
        if session.pane is None:
            return False
        return any(p.focused and p.ref() == session.pane for p in self.pane_cache.panes)

    async def refresh_now(self, incremental: bool = True, *, force: bool = False) -> None:
        """Refresh and wait until the registry holds the result.

        Args:
            incremental: as for :meth:`refresh`.
            force: decide every session again even when nothing changed (current reasons).
        """
        if force and not self._stopped:
            self._forced = True
        self.refresh(incremental)
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    def _collector_now(self) -> Collector:
        c = self._collector
        if c is None or c.scanner is not self.scanner or c.mux is not self.mux:
            c = self._collector = Collector(self.scanner, self.mux, cache=self.pane_cache)
        return c

    async def _refresh(self) -> None:
        while True:
            self._again = False
            forced, self._forced = self._forced, False
            poked, self._poked = self._poked, set()
            changed: set[str] | None = None
            if not self._full:
                changed, self._changed = self._changed, set()
            self._full = False
            t0 = time.perf_counter()
            collector = self._collector_now()
            if changed is not None and not changed and not self._needs_screens and not forced and not poked \
                    and not collector.due(self.scanner.clock()):
                # A quiet tick: only look for agents that started or exited.
                loop = asyncio.get_running_loop()
                if not await loop.run_in_executor(None, self.scanner.liveness_changed):
                    if not self._again:
                        return
                    continue
            try:
                delta = await collector.refresh(changed, force=forced, hooks=self.hooks, sessions=poked)
            except asyncio.CancelledError:
                collector.invalidate()
                raise
            except Exception:
                log.exception("refresh failed")
                collector.invalidate()
                delta = None
            if delta is not None:
                if delta.complete:
                    self.registry.apply(delta.changed)
                    self._screen_ids, self._title_ids = set(), set()
                else:
                    if delta.changed:
                        self.registry.apply(delta.changed, complete=False)
                    if delta.removed:
                        self.registry.remove(delta.removed)
                    self._screen_ids.difference_update(delta.removed)
                    self._title_ids.difference_update(delta.removed)
                # Screens are re-read only while some agent may be asking something.
                self._after(delta.changed)
            self.refreshed.emit(time.perf_counter() - t0)
            if not self._again:
                return


def _may_ask(s: Session) -> bool:
    """A session whose screen is worth reading on every tick: it has a pane and waits or works."""
    return bool((s.status.is_waiting or s.status is SessionStatus.BUSY) and s.pane)
