"""A tmux pane for each opencode sub-agent, beside the pane that shows its parent.

When an opencode session the user has open in a tmux pane (``opencode attach URL --session
ID``, or deck-tray's ``opencode-attach`` helper) starts a sub-agent — a child session, seen
as ``session.created`` with ``info.parentID`` and then ``session.status`` busy on the
server's event stream — :class:`SubagentPanes` opens a pane next to the parent's pane that
runs ``deck-tray opencode-attach URL CHILD`` (:func:`~deck_tray.services.terminal_actions.attach_argv`:
the helper reads the server password itself, it is never in an argv), and closes it a grace
period after the child goes idle (``session.idle`` / ``session.status`` idle) or is deleted
(``session.deleted``). Built to the numbers of the seed's tmux session manager
(``reference/seeds.md`` §1).

How it works (state-first, DESIGN.md §7):

* It follows each :class:`~deck_tray.services.opencode_source.ServerWatcher` of the
  :class:`~deck_tray.services.opencode_source.OpencodeSource` (``sessions_updated`` /
  ``sessions_removed``) and reads the watcher's
  :class:`~deck_tray.core.opencode.OpencodeState`: ``infos`` (``parentID``) and ``status``
  (busy children). A child is wanted while it is busy (waiting on a permission keeps it
  busy); one that was busy and is no longer (idle, deleted, parent stopped) is closed after
  the grace period unless it turns busy again meanwhile.
* Before attaching it waits until the server lists the child in ``GET /session/status``
  (polled every :data:`STATUS_POLL_S`, at most ``status_wait_s``; after that it attaches
  anyway and logs it). That wait runs beside the queue, not in it.
* Every tmux change goes through **one serialised asyncio queue**; a failed task is logged
  and the next one runs. Each spawn: *query* every tmux server (one ``list-panes -a`` per
  server: geometry, ``pane_pid``, the ``@deck-tray`` tag) and the command lines of each
  pane's process tree (psutil, in an executor) → *decide* with the pure
  :func:`deck_tray.core.subagent_panes.decide` → *execute* one ``split-window -d`` (the
  user's focus stays where it is) and tag the pane ``@deck-tray subagent:<child>`` at once →
  *verify* it stays up (:func:`~deck_tray.services.terminal.verify_started`; a pane that
  died is killed) → only then *update the cache* (child → pane). The cache is never trusted
  over tmux: panes are re-listed by their tag before every action.
* No room (the main pane would drop below ``main_min_cols``, the column is full, the window
  is zoomed): the child goes to a :class:`~deck_tray.core.subagent_panes.DeferredQueue`
  (20 entries, 5 minutes each) retried every ``retry_every_s`` seconds; after 3 consecutive
  failures to read tmux the retry loop stops until new work arrives.
* :meth:`start` first runs :meth:`adopt_or_clean`: panes tagged ``subagent:<id>`` left by an
  app that was killed are adopted when the child is still busy, else closed. :meth:`stop`
  closes every pane it opened or adopted (tmux failures are logged and skipped).

Limits: only panes that *attach* to a session are recognised as its parent (a plain
``opencode`` TUI picks its session interactively and serves from its own in-process server,
so its command line does not name the session); a child whose parent is in no pane gets
none; sub-agents of one main pane share one column (grandchildren too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psutil
from PySide6.QtCore import QMetaObject, QObject, QTimer, Signal

from deck_tray.core.launch import PANE_TAG, launch_argv
from deck_tray.core.model import AgentKind, PaneRef, Session
from deck_tray.core.opencode import OpencodeState, ServerPhase
from deck_tray.core.placement import command_line, exec_argv
from deck_tray.core.subagent_panes import (
    AttachTarget,
    DeferredQueue,
    Layout,
    PaneBox,
    PaneProcs,
    Split,
    Verb,
    WindowFacts,
    anchor_session,
    attach_target,
    attached_panes,
    decide,
    tag_value,
    tagged_session,
)
from deck_tray.services.launcher import env_file_dir, wait_env_file_read, write_env_file
from deck_tray.services.opencode_client import OpencodeError
from deck_tray.services.opencode_source import OpencodeSource, ServerWatcher, normalize_url
from deck_tray.services.panes import MuxError, Tmux, server_sockets
from deck_tray.services.terminal import verify_started
from deck_tray.services.terminal_actions import attach_argv, self_argv

log = logging.getLogger(__name__)

#: Seconds between ``GET /session/status`` polls while waiting for the server to list a child.
STATUS_POLL_S = 0.2
#: Seconds :meth:`SubagentPanes.adopt_or_clean` waits for a tagged pane's server to connect.
ADOPT_WAIT_S = 15.0

_SEP = "\x1f"
_FIELDS = (
    "pane_id", "pane_pid", "pane_dead", "pane_active", "window_id", "window_width", "window_height",
    "window_zoomed_flag", "pane_width", "pane_height", "pane_top", "pane_left", "session_name",
    "window_index", "pane_index", PANE_TAG,
)
_FORMAT = _SEP.join("#{" + f + "}" for f in _FIELDS)

Key = tuple[str, str]
"""``(server url, child session id)``."""


@dataclass(frozen=True)
class _Row:
    """One pane of one tmux server (``list-panes -a`` with :data:`_FORMAT`)."""

    server: str
    pane_id: str
    pane_pid: int
    dead: bool
    active: bool
    window_id: str
    window_width: int
    window_height: int
    zoomed: bool
    width: int
    height: int
    top: int
    left: int
    label: str
    tag: str

    def box(self, session_id: str = "") -> PaneBox:
        return PaneBox(self.pane_id, self.width, self.height, self.top, self.left, session_id)

    def ref(self) -> PaneRef:
        return PaneRef("tmux", self.pane_id, self.server, self.label)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _parse_rows(server: str, out: str) -> list[_Row]:
    rows: list[_Row] = []
    for line in out.splitlines():
        p = line.split(_SEP, len(_FIELDS) - 1)
        if len(p) != len(_FIELDS):
            continue
        rows.append(_Row(
            server=server, pane_id=p[0], pane_pid=_int(p[1]), dead=p[2] == "1", active=p[3] == "1",
            window_id=p[4], window_width=_int(p[5]), window_height=_int(p[6]), zoomed=p[7] == "1",
            width=_int(p[8]), height=_int(p[9]), top=_int(p[10]), left=_int(p[11]),
            label=f"{p[12]}:{p[13]}.{p[14]}", tag=p[15],
        ))
    return rows


def process_cmdlines(pids: Iterable[int]) -> dict[int, tuple[tuple[str, ...], ...]]:
    """Command lines of each process in ``pids`` and of all its descendants (psutil, one pass
    over the process table). Blocking: run it in an executor.

    Returns:
        ``{pid: (argv of pid, argv of each descendant, …)}``; a pid that is gone maps to ``()``.
    """
    kids: dict[int, list[int]] = {}
    argv: dict[int, tuple[str, ...]] = {}
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        info = proc.info
        pid = int(info.get("pid") or 0)
        kids.setdefault(int(info.get("ppid") or 0), []).append(pid)
        argv[pid] = tuple(info.get("cmdline") or ())
    out: dict[int, tuple[tuple[str, ...], ...]] = {}
    for root in pids:
        if root not in argv:
            out[root] = ()
            continue
        seen = {root}
        order = [root]
        i = 0
        while i < len(order):
            for c in kids.get(order[i], []):
                if c not in seen:
                    seen.add(c)
                    order.append(c)
            i += 1
        out[root] = tuple(argv[p] for p in order if argv.get(p))
    return out


class SubagentPanes(QObject):
    """Opens and closes tmux panes for opencode sub-agents (see the module docstring).

    Args:
        source: the opencode source whose servers are followed (its watchers' states are read).
        tmux: the tmux adapter (its ``env`` decides where tmux servers are looked for).
        layout: capacity limits (settings ``opencode/main_pane_min_cols``, ``opencode/agent_pane_min_cols``).
        close_grace_s: seconds a finished or deleted child's pane stays open
            (setting ``opencode/subagent_close_grace_s``).
        enabled: setting ``opencode/subagent_panes``.
        opencode_bin: the opencode executable the helper runs when the source does not know the
            server's own binary (``""``: ``opencode`` on the pane's ``PATH``).
        status_wait_s: how long to wait for the server to list a child in ``GET /session/status``.
        retry_every_s: seconds between retries of deferred spawns.
        clock: monotonic seconds (the deferred queue's limits).

    Attributes:
        layout, close_grace_s, opencode_bin: may be changed at any time (used from the next action).

    Signals:
        pane_opened(str, PaneRef): a child session id and the pane now attached to it (also adopted ones).
        pane_closed(str): a child session id whose pane was closed.
        spawn_deferred(str, str): a child session id and why it has no pane yet (no room, zoomed …).
    """

    pane_opened = Signal(str, object)
    pane_closed = Signal(str)
    spawn_deferred = Signal(str, str)

    def __init__(self, source: OpencodeSource, tmux: Tmux, *, layout: Layout | None = None,
                 close_grace_s: float = 10.0, enabled: bool = True, opencode_bin: str = "",
                 status_wait_s: float = 10.0, retry_every_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.tmux = tmux
        self.layout = layout or Layout()
        self.close_grace_s = close_grace_s
        self.opencode_bin = opencode_bin
        self.status_wait_s = status_wait_s
        self._enabled = enabled
        self._deferred: DeferredQueue[Key] = DeferredQueue(clock)
        self._cache: dict[Key, tuple[str, str]] = {}  # key → (tmux socket, pane id)
        self._busy: set[Key] = set()  # children seen busy and not yet settled
        self._pending: set[Key] = set()  # a spawn is being prepared or queued
        self._no_parent: set[Key] = set()  # the parent was in no pane when it was tried
        self._dismissed: set[Key] = set()  # the user closed its pane while it was busy: not reopened
        self._closing: dict[Key, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._jobs: asyncio.Queue[Callable[[], Awaitable[None]] | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._retry_queued = False
        self._watched: dict[str, tuple[ServerWatcher, list[QMetaObject.Connection]]] = {}
        self._source_conn: QMetaObject.Connection | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(int(retry_every_s * 1000))
        self._timer.timeout.connect(self._retry_tick)
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the source's servers; first adopt or close panes a previous run left (idempotent)."""
        if self._started:
            return
        self._started = True
        self._jobs = asyncio.Queue()
        self._worker = asyncio.ensure_future(self._work())
        self._enqueue(self.adopt_or_clean)
        self._source_conn = self.source.servers_changed.connect(self._servers_changed)
        self._servers_changed()

    async def stop(self) -> None:
        """Stop following, cancel waits and timers, and close every pane this service opened
        or adopted (failures are logged and skipped)."""
        if not self._started:
            return
        self._started = False
        self._timer.stop()
        if self._source_conn is not None:
            QObject.disconnect(self._source_conn)
            self._source_conn = None
        for _w, conns in self._watched.values():
            for c in conns:
                QObject.disconnect(c)
        self._watched.clear()
        for h in self._closing.values():
            h.cancel()
        self._closing.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._worker is not None:
            # A spawn cut short here has tagged its pane already (the tag is set right after
            # the split), so the close below finds it by its tag.
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None
        self._jobs = None
        self._deferred.clear()
        await self._close_all(also={k[1] for k in self._pending | self._busy})
        self._pending.clear()

    @property
    def enabled(self) -> bool:
        """Whether sub-agent panes are opened. Turning it off closes every pane it opened."""
        return self._enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        if on == self._enabled:
            return
        self._enabled = on
        if not self._started:
            return
        if on:
            self._no_parent.clear()
            for url in list(self._watched):
                self._scan(url)
            return
        self._timer.stop()
        self._deferred.clear()
        for h in self._closing.values():
            h.cancel()
        self._closing.clear()
        for t in list(self._tasks):
            t.cancel()
        self._pending.clear()
        self._enqueue(lambda: self._close_all(also={k[1] for k in self._busy}))

    def panes(self) -> dict[str, PaneRef]:
        """``{child session id: pane}`` as last verified (a copy)."""
        return {k[1]: PaneRef("tmux", pane, server) for k, (server, pane) in self._cache.items()}

    def deferred(self) -> list[str]:
        """Child session ids waiting for room, oldest first."""
        return [k[1] for k in self._deferred.keys()]

    @property
    def retrying(self) -> bool:
        """True while the deferred retry timer runs."""
        return self._timer.isActive()

    # -- following the source --------------------------------------------------------------------

    def _servers_changed(self, *_args: object) -> None:
        if not self._started:
            return
        for url, w in list(self.source.watchers.items()):
            known = self._watched.get(url)
            if known is not None and known[0] is w:
                continue
            if known is not None:
                for c in known[1]:
                    QObject.disconnect(c)
            conns = [w.sessions_updated.connect(lambda _s, u=url: self._scan(u)),
                     w.sessions_removed.connect(lambda _s, u=url: self._scan(u))]
            self._watched[url] = (w, conns)
            self._scan(url)
        for url in [u for u in self._watched if u not in self.source.watchers]:
            _w, conns = self._watched.pop(url)
            for c in conns:
                QObject.disconnect(c)
            self._scan_gone(url)

    def _state(self, url: str) -> OpencodeState | None:
        w = self.source.watchers.get(url)
        return w.state if w is not None else None

    def _scan(self, url: str) -> None:
        """Compare the server's children with what is open (called on every snapshot flush)."""
        try:
            self._scan_inner(url)
        except Exception:
            log.exception("sub-agent panes: looking at %s failed", url)

    def _scan_inner(self, url: str) -> None:
        st = self._state(url)
        if st is None or st.offline or not self._started or not self._enabled:
            return
        present: set[Key] = set()
        for sid, info in list(st.infos.items()):
            parent = info.get("parentID")
            if not isinstance(parent, str) or not parent:
                continue
            key = (url, sid)
            present.add(key)
            if sid in st.status:
                if key not in self._busy:
                    self._busy.add(key)
                    self._no_parent.discard(key)
                    log.info("sub-agent %s of %s started on %s", sid, parent, url)
                handle = self._closing.pop(key, None)
                if handle is not None:
                    handle.cancel()
                if key not in self._cache and key not in self._pending and key not in self._no_parent \
                        and key not in self._dismissed:
                    self._prepare(key)
            elif key in self._busy:
                self._busy.discard(key)
                self._settled(key, "is idle")
        for key in [k for k in self._busy | set(self._cache) if k[0] == url and k not in present]:
            self._busy.discard(key)
            self._settled(key, "was deleted")

    def _scan_gone(self, url: str) -> None:
        for key in [k for k in self._busy | set(self._cache) if k[0] == url]:
            self._busy.discard(key)
            self._settled(key, "is no longer followed (its server went away)")

    def _settled(self, key: Key, why: str) -> None:
        self._dismissed.discard(key)
        self._no_parent.discard(key)
        if self._deferred.remove(key):
            log.info("sub-agent %s %s; no longer waiting for room", key[1], why)
        self._pending.discard(key)
        if key not in self._cache or key in self._closing:
            return
        log.info("sub-agent %s %s; closing its pane in %.0f s", key[1], why, self.close_grace_s)
        loop = asyncio.get_running_loop()
        self._closing[key] = loop.call_later(self.close_grace_s, self._close_due, key)

    def _close_due(self, key: Key) -> None:
        self._closing.pop(key, None)
        if key in self._busy:
            return
        self._enqueue(lambda: self._close(key))

    # -- the queue -------------------------------------------------------------------------------

    def _enqueue(self, job: Callable[[], Awaitable[None]]) -> None:
        if self._jobs is not None:
            self._jobs.put_nowait(job)

    async def _work(self) -> None:
        assert self._jobs is not None
        jobs = self._jobs
        while True:
            job = await jobs.get()
            if job is None:
                return
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sub-agent pane task failed; going on with the next one")

    def _spawn_task(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- spawning --------------------------------------------------------------------------------

    def _prepare(self, key: Key) -> None:
        self._pending.add(key)
        self._spawn_task(self._wait_listed_then_queue(key))

    async def _wait_listed_then_queue(self, key: Key) -> None:
        try:
            await self._wait_listed(key)
        except Exception:
            log.exception("waiting for the server to list sub-agent %s failed", key[1])
        if key in self._pending and key in self._busy:
            self._enqueue(lambda: self._spawn_job(key))
        else:
            self._pending.discard(key)

    async def _wait_listed(self, key: Key) -> None:
        """Poll ``GET /session/status`` until it lists the child (at most ``status_wait_s``)."""
        url, sid = key
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.status_wait_s
        while True:
            w = self.source.watchers.get(url)
            client = w.client if w is not None else None
            if w is None or client is None:
                log.info("no connection to %s to check sub-agent %s; attaching anyway", url, sid)
                return
            try:
                if sid in await client.statuses(w.state.directory_of(sid)):
                    return
            except OpencodeError as exc:
                log.debug("GET /session/status on %s: %s", url, exc)
            if key not in self._busy:
                return  # it finished meanwhile; the caller drops it
            if loop.time() >= deadline:
                log.info("the server %s did not list sub-agent %s in /session/status within %.0f s; "
                         "attaching anyway", url, sid, self.status_wait_s)
                return
            await asyncio.sleep(STATUS_POLL_S)

    async def _spawn_job(self, key: Key) -> None:
        try:
            await self._attempt(key, retry=False)
        finally:
            self._pending.discard(key)

    async def _rows(self) -> list[_Row]:
        """Every pane of every tmux server. Raises MuxError when no server answers."""
        sockets = server_sockets(self.tmux.env)
        if not sockets:
            raise MuxError("no tmux server is running")
        results = await asyncio.gather(*(self.tmux.run(s, "list-panes", "-a", "-F", _FORMAT) for s in sockets),
                                       return_exceptions=True)
        rows: list[_Row] = []
        answered = False
        for sock, res in zip(sockets, results, strict=True):
            if isinstance(res, BaseException):
                log.debug("tmux server %s did not answer: %s", sock, res)
                continue
            answered = True
            rows += _parse_rows(sock, res)
        if not answered:
            raise MuxError("no tmux server answered")
        return rows

    async def _procs(self, rows: list[_Row]) -> list[PaneProcs]:
        loop = asyncio.get_running_loop()
        cmds = await loop.run_in_executor(None, process_cmdlines, [r.pane_pid for r in rows if not r.dead])
        return [PaneProcs(r.server, r.pane_id, r.tag, cmds.get(r.pane_pid, ()), r.active) for r in rows if not r.dead]

    def _reconcile(self, rows: list[_Row]) -> None:
        """Trust tmux: cached panes that are gone (or no longer carry the child's tag) are dropped."""
        live = {(r.server, r.pane_id): r for r in rows}
        for key, (server, pane) in list(self._cache.items()):
            r = live.get((server, pane))
            if r is None or tagged_session(r.tag) != key[1]:
                log.info("the pane %s of sub-agent %s is gone (closed by hand?); not reopened", pane, key[1])
                del self._cache[key]
                if key in self._busy:
                    self._dismissed.add(key)
                self.pane_closed.emit(key[1])

    async def _attempt(self, key: Key, *, retry: bool) -> None:
        """Query → decide → execute → verify → update the cache, for one child.

        Raises:
            MuxError: tmux could not be read (the retry loop counts these).
        """
        url, sid = key
        if not self._enabled or key not in self._busy:
            self._deferred.remove(key)
            return
        st = self._state(url)
        if st is None:
            self._deferred.remove(key)
            return
        rows = await self._rows()
        self._reconcile(rows)
        procs = await self._procs(rows)
        by_target = attached_panes(procs)
        user = {t.session_id: lst[0] for t, lst in by_target.items()
                if t.url == url and tagged_session(lst[0].tag) is None}
        parents = {s: str(i.get("parentID")) for s, i in st.infos.items() if i.get("parentID")}
        anchor_sid = anchor_session(sid, parents, user)
        if anchor_sid is None:
            self._deferred.remove(key)
            self._no_parent.add(key)
            log.info("sub-agent %s: its parent is not open in a tmux pane; no pane for it", sid)
            return
        anchor = user[anchor_sid]
        main = next(r for r in rows if r.server == anchor.server and r.pane_id == anchor.pane_id)
        agents = []
        for r in rows:
            child = tagged_session(r.tag)
            if child is None or r.dead or r.server != main.server or r.window_id != main.window_id:
                continue
            if child not in parents or anchor_session(child, parents, user) == anchor_sid:
                agents.append(r.box(child))
        window = WindowFacts(main.window_id, main.window_width, main.window_height, main.box(),
                             tuple(agents), main.zoomed)
        cache = {k[1]: p for k, (_s, p) in self._cache.items() if k[0] == url}
        d = decide(window, self.layout, cache, spawn=[sid])[0]
        if d.verb is Verb.NONE:
            self._deferred.remove(key)
            if d.target and key not in self._cache:
                ref = next(r for r in rows if r.server == main.server and r.pane_id == d.target).ref()
                self._cache[key] = (main.server, d.target)
                log.info("sub-agent %s already has pane %s; adopted", sid, d.target)
                self.pane_opened.emit(sid, ref)
            return
        if d.verb is Verb.DEFER:
            fresh = key not in self._deferred
            for gone in self._deferred.add(key, d.reason):
                log.info("deferred sub-agent %s dropped: more than %d waiting", gone[1], self._deferred.max_entries)
            if fresh:
                log.info("sub-agent %s deferred: %s", sid, d.reason)
                self.spawn_deferred.emit(sid, d.reason)
            if not retry:
                self._deferred.resume()
            if not self._timer.isActive() and not self._deferred.stopped:
                self._timer.start()
            return
        self._deferred.remove(key)
        await self._execute(key, main, d.target, d.split, d.size, st)

    async def _execute(self, key: Key, main: _Row, target: str, split: Split | None, size: int,
                       st: OpencodeState) -> None:
        url, sid = key
        cwd = st.directory_of(sid) or st.directory_of(str(st.infos.get(sid, {}).get("parentID") or ""))
        title = str(st.infos.get(sid, {}).get("title") or sid)
        session = Session(id=sid, agent=AgentKind.OPENCODE, cwd=cwd, title=title, server=url)
        argv = attach_argv(session, self.source.binary_for(url) or self.opencode_bin)
        # The server's password reaches the pane through a private file (``deck-tray launch``), so
        # a password kept only in this run's memory (no keyring) works too; never in an argv.
        env_file = ""
        password = await asyncio.get_running_loop().run_in_executor(None, self.source.credentials.lookup, url)
        if password:
            env = dict(os.environ, OPENCODE_SERVER_PASSWORD=password,
                       OPENCODE_SERVER_USERNAME=self.source.credentials.username())
            env_file = write_env_file(env, env_file_dir(env))
            argv = launch_argv(self_argv(), env_file, cwd if cwd and os.path.isdir(cwd) else os.path.expanduser("~"),
                               argv)
        opened = False
        try:
            opened = await self._split(key, main, target, split, size, cwd, title, argv)
        finally:
            if env_file and opened:
                await wait_env_file_read(env_file)  # the pane's deck-tray launch reads it, then deletes it
            elif env_file and os.path.exists(env_file):
                os.unlink(env_file)

    async def _split(self, key: Key, main: _Row, target: str, split: Split | None, size: int, cwd: str,
                     title: str, argv: list[str]) -> bool:
        """Open the child's pane, tag and verify it; True when it runs (else it was closed)."""
        url, sid = key
        args = ["split-window", (split or Split.BELOW_AGENT).value, "-d", "-t", target]
        if split is Split.BESIDE_MAIN:
            args += ["-l", str(size)]
        args += ["-P", "-F", "#{pane_id}"]
        if cwd and os.path.isdir(cwd):
            args += ["-c", cwd.replace("#", "##")]
        args += ["--", *exec_argv(argv)]
        server = main.server
        out = await self.tmux.run(server, *args)
        pane_id = out.strip()
        if not pane_id.startswith("%"):
            log.warning("tmux did not say which pane it opened for sub-agent %s (%r)", sid, out.strip())
            return False
        try:
            await self.tmux.run(server, "set-option", "-p", "-t", pane_id, PANE_TAG, tag_value(sid))
        except MuxError as exc:
            log.warning("could not tag pane %s of sub-agent %s (%s); closing it", pane_id, sid, exc)
            await self._kill(server, pane_id)
            return False
        with contextlib.suppress(MuxError):
            await self.tmux.run(server, "select-pane", "-t", pane_id, "-T", f"sub-agent: {title}".replace("#", "##"))
        where = (f"beside {main.label}" if split is Split.BESIDE_MAIN else f"below sub-agent pane {target}")
        report = await verify_started(self.tmux, server, pane_id, argv, where, command_line(argv, cwd),
                                      title=f"sub-agent {title}")
        if not report.ok:
            log.warning("sub-agent %s: %s", sid, report.detail)
            await self._kill(server, pane_id)
            return False
        assert report.pane is not None
        self._cache[key] = (server, pane_id)
        log.info("sub-agent %s attached in %s %s", sid, report.pane.label, where)
        self.pane_opened.emit(sid, report.pane)
        if key not in self._busy and key not in self._closing:
            self._settled(key, "finished while its pane opened")
        return True

    # -- deferred retries ------------------------------------------------------------------------

    def _retry_tick(self) -> None:
        if not self._started or not self._enabled or not len(self._deferred) or self._deferred.stopped:
            self._timer.stop()
            return
        if not self._retry_queued:
            self._retry_queued = True
            self._enqueue(self._retry_job)

    async def _retry_job(self) -> None:
        self._retry_queued = False
        for gone in self._deferred.expire():
            log.info("sub-agent %s waited %.0f s for room; giving up", gone[1], self._deferred.ttl_s)
        for entry in self._deferred.due():
            try:
                await self._attempt(entry.key, retry=True)
            except MuxError as exc:
                if self._deferred.read_failed():
                    log.warning("could not read tmux %d times in a row (%s); deferred sub-agent panes "
                                "are retried again when new work arrives", self._deferred.failures, exc)
                    self._timer.stop()
                return
            self._deferred.read_ok()
        if not len(self._deferred):
            self._timer.stop()

    # -- closing ---------------------------------------------------------------------------------

    async def _kill(self, server: str, pane_id: str) -> bool:
        try:
            await self.tmux.run(server, "kill-pane", "-t", pane_id)
        except MuxError as exc:
            log.info("could not close pane %s: %s", pane_id, exc)
            return False
        return True

    async def _close(self, key: Key) -> None:
        """Close the child's pane: re-list by tag first, kill, verify it is gone, then forget it."""
        url, sid = key
        if key in self._busy:
            return
        try:
            rows = await self._rows()
        except MuxError as exc:
            log.info("closing the pane of sub-agent %s: %s", sid, exc)
            self._cache.pop(key, None)
            return
        cached = self._cache.get(key)
        mine = [r for r in rows if tagged_session(r.tag) == sid]
        for r in mine:
            await self._kill(r.server, r.pane_id)
        try:
            left = [r for r in await self._rows() if tagged_session(r.tag) == sid]
        except MuxError:
            left = []
        if left:
            log.warning("the pane(s) %s of sub-agent %s did not close", ", ".join(r.pane_id for r in left), sid)
            return
        if self._cache.pop(key, None) is not None or mine:
            log.info("closed the pane %s of sub-agent %s", mine[0].pane_id if mine else cached, sid)
            self.pane_closed.emit(sid)

    async def _close_all(self, also: set[str] | None = None) -> None:
        """Close every pane in the cache whose tag still names its child, and any pane tagged
        for a child in ``also`` (a spawn interrupted before the cache was updated). Failures
        are logged and skipped."""
        if not self._cache and not also:
            return
        try:
            rows = await self._rows()
        except MuxError as exc:
            log.info("closing sub-agent panes: %s", exc)
            self._cache.clear()
            return
        live = {(r.server, r.pane_id): r for r in rows}
        cached = {(server, pane) for server, pane in self._cache.values()}
        for row in rows:
            sid = tagged_session(row.tag)
            if sid is not None and sid in (also or set()) and (row.server, row.pane_id) not in cached:
                if await self._kill(row.server, row.pane_id):
                    log.info("closed the pane %s of sub-agent %s (its opening was interrupted)", row.pane_id, sid)
        for key, (server, pane) in list(self._cache.items()):
            r = live.get((server, pane))
            if r is not None and tagged_session(r.tag) == key[1]:
                try:
                    if await self._kill(server, pane):
                        log.info("closed the pane %s of sub-agent %s", pane, key[1])
                except Exception:
                    log.exception("closing pane %s failed", pane)
            del self._cache[key]
            self.pane_closed.emit(key[1])

    # -- adoption --------------------------------------------------------------------------------

    async def _connected(self, url: str, wait_s: float) -> ServerWatcher | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            w = self.source.watchers.get(url)
            if w is not None and w.server_state.phase is ServerPhase.CONNECTED:
                return w
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.2)

    async def adopt_or_clean(self, wait_s: float = ADOPT_WAIT_S) -> None:
        """Panes tagged ``subagent:<id>`` (left by a run that was killed): adopt those whose child
        is still busy on its server, close the others.

        The server comes from the pane's own command line (``opencode-attach URL ID``); its
        watcher gets up to ``wait_s`` seconds to connect. A pane whose server never connects,
        or whose command line names no server, is closed.
        """
        try:
            rows = await self._rows()
        except MuxError as exc:
            log.debug("no sub-agent panes to adopt: %s", exc)
            return
        tagged = [r for r in rows if tagged_session(r.tag) is not None]
        if not tagged:
            return
        procs = {(p.server, p.pane_id): p for p in await self._procs(tagged)}
        for r in tagged:
            sid = tagged_session(r.tag) or ""
            p = procs.get((r.server, r.pane_id))
            targets: list[AttachTarget] = [t for a in (p.cmdlines if p else ()) if (t := attach_target(a))]
            target = next((t for t in targets if t.session_id == sid), None)
            w = await self._connected(normalize_url(target.url), wait_s) if target is not None else None
            key = (w.url, sid) if w is not None else ("", sid)
            if self._enabled and w is not None and sid in w.state.status and not r.dead:
                self._cache[key] = (r.server, r.pane_id)
                self._busy.add(key)
                log.info("adopted the pane %s of sub-agent %s (still busy on %s)", r.pane_id, sid, w.url)
                self.pane_opened.emit(sid, r.ref())
                continue
            why = "its server is not connected" if w is None else "it is no longer busy"
            log.info("closing the pane %s left for sub-agent %s: %s", r.pane_id, sid, why)
            await self._kill(r.server, r.pane_id)
