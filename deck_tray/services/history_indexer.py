"""Keeps the history index (:mod:`deck_tray.services.history_store`) up to date from a
low-priority worker thread: transcripts on disk and the sessions of opencode servers.

The worker thread never runs an asyncio loop: it reads files and writes SQLite itself, and asks
opencode with blocking requests (:mod:`deck_tray.services.opencode_blocking`). It hands its
signals to the GUI thread through a :class:`~deck_tray.services.handover.Handover`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from deck_tray.core.model import AgentKind
from deck_tray.core.opencode import ms
from deck_tray.services.handover import Handover
from deck_tray.services.history_store import HistoryIndex, classify, discover_files
from deck_tray.services.opencode_blocking import BlockingOpencodeClient, basic_auth
from deck_tray.services.opencode_client import OpencodeError
from deck_tray.services.secrets import Credentials

log = logging.getLogger(__name__)

#: Seconds between full rescans by :class:`HistoryIndexer` (unchanged files cost a ``stat``).
RESCAN_S = 30.0
#: Delay that coalesces change notifications (ms).
CHANGE_DELAY_MS = 1500
#: opencode sessions listed per server, and messages fetched per session.
OPENCODE_SESSIONS = 5000
OPENCODE_MESSAGES = 100_000
#: Seconds each opencode request may take (connect, and each read).
OPENCODE_TIMEOUT_S = 30.0


class HistoryIndexer(QObject):
    """Keeps a :class:`HistoryIndex` up to date in a background thread at low priority.

    The worker thread (nice 19) does all file reading, parsing, opencode requests (blocking,
    :class:`~deck_tray.services.opencode_blocking.BlockingOpencodeClient`: it runs no event loop)
    and database writes; the GUI thread only queues work. It indexes every transcript under the
    Claude Code and Codex folders and every session file of the agents watched through an
    adapter (Gemini CLI, Qwen Code, …: ``adapter_homes``) — all history, not only the live
    scanner's window —, files reported changed (:meth:`file_changed`, coalesced for :data:`CHANGE_DELAY_MS`), everything
    again every ``interval_s`` (cheap: unchanged files cost one ``stat``), and the sessions of
    the opencode servers ``servers()`` names whose ``time.updated`` is newer than indexed.

    Args:
        index: the index to fill (``.index``).
        dirs: returns ``(claude_dir, codex_dir)``; asked at each scan, so a settings change applies.
        servers: returns the opencode server URLs to index (called on the GUI thread).
        credentials: password lookup for those servers (called on the worker thread).
        interval_s: seconds between rescans.
        adapter_homes: returns ``{agent: its data folder}`` of the agents watched through an
            adapter (:func:`deck_tray.core.agents.default_homes`), asked at each scan and on the
            worker thread; None indexes none of theirs.

    Signals:
        progress(int, int): files done and files to do in the running scan, on the thread of
            the asyncio loop running at :meth:`start` (the worker hands it over, see
            :class:`~deck_tray.services.handover.Handover`; without a running loop it is a
            queued signal from the worker). ``(n, n)`` when it finished.
        updated(): entries were added or removed (delivered like ``progress``).
    """

    progress = Signal(int, int)
    updated = Signal()

    def __init__(self, index: HistoryIndex, dirs: Callable[[], tuple[Path, Path]],
                 servers: Callable[[], list[str]] | None = None, credentials: Credentials | None = None, *,
                 interval_s: float = RESCAN_S, parent: QObject | None = None,
                 adapter_homes: Callable[[], Mapping[AgentKind, Path]] | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.dirs = dirs
        self.adapter_homes = adapter_homes or (lambda: {})
        self.servers = servers or (lambda: [])
        self.credentials = credentials
        self._jobs: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._changed: set[str] = set()
        self.worker_thread_id: int | None = None
        self.busy = False
        self.scans = 0
        #: The last ``progress`` values emitted (a window opened mid-scan shows them).
        self.last_progress: tuple[int, int] | None = None
        self.progress.connect(self._remember_progress)
        self._handover = Handover()
        self._timer = QTimer(self)
        self._timer.setInterval(int(interval_s * 1000))
        self._timer.timeout.connect(self.rescan)
        self._coalesce = QTimer(self)
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(CHANGE_DELAY_MS)
        self._coalesce.timeout.connect(self._flush_changes)

    def _remember_progress(self, done: int, total: int) -> None:
        self.last_progress = (done, total)

    async def recent_folders(self) -> list[str]:
        """The folders of recent sessions, most recent first (:meth:`HistoryIndex.recent_folders`),
        read in a worker thread (SQLite may wait on the indexer's writes); ``[]`` when the index
        cannot be read (logged; the "New session" dialog's folder picker works without them)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.index.recent_folders)
        except Exception:
            log.debug("recent folders unavailable", exc_info=True)
            return []

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None

    def start(self) -> None:
        """Start the worker thread and the first full scan (idempotent)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._handover.open()
        self._thread = threading.Thread(target=self._work, name="deck-tray-history", daemon=True)
        self._thread.start()
        self._timer.start()
        self.rescan()

    async def stop(self) -> None:
        """Stop the worker after the batch it is writing (what was committed stays), then close
        the index's database connections (the search window is shut down before this)."""
        self._timer.stop()
        self._coalesce.stop()
        self._handover.close()  # nothing more reaches the receivers, even if the join times out
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 10.0)
            if thread.is_alive():
                return  # still in its batch: its connection stays open (the process exit ends it)
        # close() may wait for a search still running on another thread: not on the GUI thread.
        await asyncio.get_running_loop().run_in_executor(None, self.index.close)

    def stop_soon(self) -> None:
        """Tell the worker to stop after its batch and deliver nothing more, without waiting
        (the last moments of the process; :meth:`stop` is the orderly way)."""
        self._timer.stop()
        self._coalesce.stop()
        self._handover.close()
        self._stopping.set()
        self._jobs.put(None)

    def rescan(self) -> None:
        """Queue a full scan of both folders and the opencode servers."""
        if self._thread is None:
            return
        try:
            urls = list(self.servers())
        except Exception:
            log.exception("cannot list opencode servers for the history")
            urls = []
        self._jobs.put(("scan", urls))

    def file_changed(self, path: str) -> None:
        """A file changed (the monitor's watchdog events): index it soon (coalesced)."""
        if self._thread is None or not path.endswith(".jsonl"):
            return
        self._changed.add(path)
        if not self._coalesce.isActive():
            self._coalesce.start()

    def _flush_changes(self) -> None:
        paths, self._changed = self._changed, set()
        if paths and self._thread is not None:
            self._jobs.put(("files", paths))

    @property
    def idle(self) -> bool:
        """True when no job is queued or running (polled by tests and the bench)."""
        return self._jobs.unfinished_tasks == 0

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until the queue is empty and no job runs (tests, the bench); True if it got there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle:
                return True
            time.sleep(0.01)
        return False

    # -- the worker thread ------------------------------------------------------------

    def _work(self) -> None:
        self.worker_thread_id = threading.get_ident()
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (OSError, AttributeError) as exc:
            log.debug("history indexer keeps its priority: %s", exc)
        while True:
            job = self._jobs.get()
            try:
                if job is None or self._stopping.is_set():
                    return
                scan_urls: list[str] | None = None
                files: set[str] = set()
                # Coalesce whatever else is queued: one full scan covers changed files.
                jobs = [job]
                while True:
                    try:
                        nxt = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    self._jobs.task_done()
                    if nxt is None:
                        return
                    jobs.append(nxt)
                for kind, arg in jobs:
                    if kind == "scan":
                        scan_urls = list(dict.fromkeys([*(scan_urls or []), *arg]))
                    else:
                        files |= set(arg)
                self.busy = True
                self._run(scan_urls, files)
            except Exception:
                log.exception("history indexing failed; trying again at the next scan")
            finally:
                self.busy = False
                self._jobs.task_done()

    def _run(self, scan_urls: list[str] | None, files: set[str]) -> None:
        claude_dir, codex_dir = self.dirs()
        homes = self.adapter_homes()
        changed = 0
        if scan_urls is not None:
            found = discover_files(claude_dir, codex_dir, homes)
            changed += self.index.sync_files(found, full=True, progress=self._emit_progress,
                                             cancelled=self._stopping.is_set)
            self.scans += 1
        elif files:
            work = [(a, p) for p in sorted(files) if (a := classify(p, claude_dir, codex_dir, homes)) is not None]
            changed += self.index.sync_files(work, cancelled=self._stopping.is_set)
        if scan_urls and not self._stopping.is_set():
            changed += self._opencode(scan_urls)
        if changed:
            self._emit(self.updated.emit)

    def _emit(self, emit: Callable[..., None], *args: Any) -> None:
        """On the worker thread: deliver a signal through the handover (no Qt call here)."""
        if self._handover.is_open:
            self._handover.call(emit, *args)
        elif not self._stopping.is_set():
            emit(*args)  # no asyncio loop (a plain Qt event loop): a queued signal

    def _emit_progress(self, done: int, total: int) -> None:
        self._emit(self.progress.emit, done, total)

    def _opencode(self, urls: list[str]) -> int:
        """On the worker thread: re-fetch the opencode sessions whose ``time.updated`` is newer
        than indexed, and drop the indexed ones a server no longer lists (blocking requests,
        :data:`OPENCODE_TIMEOUT_S` each). A server that cannot be reached, answers 401 or
        anything unexpected, or drops the connection is logged and skipped until the next scan;
        what was written before that stays.

        Returns:
            The number of entries written, at least 1 for each session fetched or dropped.
        """
        changed = 0
        for url in urls:
            with BlockingOpencodeClient(url, basic_auth(url, self.credentials), timeout=OPENCODE_TIMEOUT_S) as client:
                try:
                    known = self.index.opencode_updated(url)
                    infos = client.sessions(limit=OPENCODE_SESSIONS)
                    for info in infos:
                        if self._stopping.is_set():
                            break
                        sid = str(info.get("id") or "")
                        t = info.get("time") if isinstance(info.get("time"), dict) else {}
                        upd = ms(t.get("updated") if isinstance(t, dict) else None)
                        if not sid or (sid in known and known[sid] >= upd):
                            continue
                        items = client.messages(sid, limit=OPENCODE_MESSAGES)
                        changed += self.index.sync_opencode_session(url, info, items) or 1
                    if len(infos) < OPENCODE_SESSIONS:
                        listed = {str(i.get("id") or "") for i in infos}
                        for sid in set(known) - listed:
                            self.index.drop_opencode_session(url, sid)
                            changed += 1
                except OpencodeError as exc:
                    log.info("history: opencode server %s not indexed now: %s", url, exc)
        return changed
