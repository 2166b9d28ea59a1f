"""opencode sessions, live: one event stream per server, answers through the server's API.

* :func:`discover_servers` finds opencode processes of this user listening on loopback.
* :class:`ServerWatcher` keeps one ``GET /global/event`` stream per server: it resyncs
  after every (re)connect (sessions, then per directory ``/session/status``,
  ``/permission``, ``/question``), reconnects with capped backoff, treats 30 s without a
  byte as a dead stream (the server sends a heartbeat every 10 s), and turns what it
  learns into :class:`~deck_tray.core.model.Session` snapshots through the pure
  :class:`~deck_tray.core.opencode.OpencodeState`.
* :class:`OpencodeSource` owns the watchers (discovered and configured servers), feeds
  the registry, asks for passwords on 401 and answers sessions (:func:`answer`).

Verified against opencode 1.18.33 (``reference/opencode-server.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import psutil
from PySide6.QtCore import QObject, QTimer, Signal

from deck_tray.core.model import (
    AgentKind,
    DeliveryReport,
    DeliveryState,
    RequestKind,
    Session,
    SessionStatus,
    Transition,
)
from deck_tray.core.opencode import (
    PERMISSION_OPTIONS,
    PERMISSION_REPLIES,
    OpencodeState,
    ServerPhase,
    ServerState,
    context_limits,
    handoff_prompt,
)
from deck_tray.core.reply import Reply, ReplyKind, sanitize
from deck_tray.services.opencode_client import (
    HISTORY_S,
    AuthRequired,
    NoAnswer,
    NotFound,
    OpencodeClient,
    OpencodeError,
)
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.secrets import Credentials, StoreResult

log = logging.getLogger(__name__)

#: Reconnect delays grow from the first to the second value (seconds), doubling.
BACKOFF_S = (0.5, 5.0)
#: Root sessions whose history is loaded right after a (re)connect (newest first).
HISTORY_EAGER = 30
#: Messages fetched per session history.
HISTORY_LIMIT = 200

Clock = Callable[[], float]
#: Events that only change a conversation's content; their snapshots are rebuilt at most
#: every :data:`CONTENT_FLUSH_S` seconds.
CONTENT_EVENTS = frozenset({"message.part.delta", "message.part.updated", "message.updated",
                            "message.removed", "message.part.removed"})
CONTENT_FLUSH_S = 0.1
#: Longest run of frame handling before the event loop gets a turn (seconds).
YIELD_EVERY_S = 0.005


def normalize_url(url: str) -> str:
    """One spelling per server: no trailing slash, ``localhost`` as ``127.0.0.1`` (the form
    discovery produces), ``http://`` added when no scheme is given."""
    u = url.strip().rstrip("/")
    if "://" not in u:
        u = "http://" + u
    return u.replace("://localhost:", "://127.0.0.1:").replace("://localhost/", "://127.0.0.1/")


def _listens_on_loopback(conn: Any) -> int | None:
    if conn.status != psutil.CONN_LISTEN or not conn.laddr:
        return None
    ip = str(conn.laddr.ip)
    if ip.startswith("127.") or ip in ("::1", "0.0.0.0", "::", "::ffff:127.0.0.1"):
        return int(conn.laddr.port)
    return None


#: Process names that may be an opencode server: its own binary, or a node/bun launcher of it.
_OPENCODE_NAMES = ("opencode", ".opencode", "node", "bun")


def _is_opencode(proc: psutil.Process) -> bool:
    name = proc.info.get("name") or ""
    if name in ("opencode", ".opencode"):
        return True
    argv = proc.info.get("cmdline")
    if argv is None:
        argv = proc.cmdline()
    return name in ("node", "bun") and len(argv) > 1 and argv[1].rsplit("/", 1)[-1] == "opencode"


def discover_servers() -> list[str]:
    """Base URLs of opencode servers run by this user and listening on loopback TCP ports
    (see :func:`discover_server_binaries`)."""
    return sorted(discover_server_binaries())


def discover_server_binaries() -> dict[str, str]:
    """Base URLs of opencode servers run by this user and listening on loopback TCP ports,
    each with the server's executable (``""`` when it cannot be read).

    Looks at processes named ``opencode`` (or a node/bun launcher of it) owned by the
    current uid and their listening sockets (psutil). Blocking: run it in an executor.

    Returns:
        ``{url: executable}``, URLs such as ``http://127.0.0.1:4096``; possibly several per process.
    """
    import os

    uid = os.getuid()
    urls: dict[str, str] = {}
    # Only the name first (one read of /proc/PID/stat per process): this runs every few seconds,
    # also in a remote ``deck-tray serve``, and reading every process's cmdline and status cost
    # ~0.4 % of a core there (bench/bench_remote.py).
    for proc in psutil.process_iter(["name"]):
        try:
            if (proc.info.get("name") or "") not in _OPENCODE_NAMES:
                continue
            if proc.uids().real != uid or not _is_opencode(proc):
                continue
            for conn in proc.net_connections(kind="tcp"):
                port = _listens_on_loopback(conn)
                if port is not None:
                    try:
                        exe = proc.exe() if proc.info.get("name") != "node" else ""
                    except (psutil.AccessDenied, OSError):
                        exe = ""
                    urls[f"http://127.0.0.1:{port}"] = exe
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return urls


async def sync_state(client: OpencodeClient, state: OpencodeState, clock: Clock) -> set[str]:
    """Bring ``state`` up to date from REST (start-up and after every reconnect).

    Fetches the sessions updated in the last day (children included), any session a
    status or request names that is older, then per directory ``/session/status``,
    ``/permission`` and ``/question``. Returns the root ids that may have changed.

    Raises:
        AuthRequired, OpencodeError: as the client does.
    """
    changed = state.set_sessions(await client.sessions(since=clock() - HISTORY_S))
    dirs = sorted(state.directories())
    answers = await asyncio.gather(*(
        asyncio.gather(client.statuses(d), client.permissions(d), client.questions(d)) for d in dirs
    ))
    # Statuses and requests may name sessions older than a day (or created meanwhile).
    statuses = [a[0] for a in answers]
    named = {sid for st in statuses for sid in st} | {
        str(r.get("sessionID")) for a in answers for r in (*a[1], *a[2])}
    for sid in sorted(n for n in named if n not in state.infos):
        with contextlib.suppress(NotFound):
            changed |= state.set_sessions([await client.session(sid)])
    t = clock()
    for d, (st, perms, qs) in zip(dirs, answers, strict=True):
        changed |= state.resync(d, st, perms, qs, t)
    state.offline = ""
    return changed | set(state.roots())


async def answer(client: OpencodeClient, state: OpencodeState, session: Session, reply: Reply,
                 *, settle: Callable[[], Any] | None = None) -> DeliveryReport:
    """Deliver ``reply`` to an opencode session through the server's API.

    * permission pending: Allow → ``once``, Always allow → ``always``, Deny → ``reject``
      with the optional message as feedback (the turn then continues with it); an option
      label of :data:`~deck_tray.core.opencode.PERMISSION_OPTIONS` works too;
    * question pending: an option label, or free text, answers it; Deny dismisses it;
    * otherwise: text is a new prompt (``prompt_async``; a busy session queues it), Stop aborts.

    The answer is ``ACCEPTED`` when the server confirmed it (``true`` / 204). Nothing is
    retried; when the connection fails after the request may have reached the server,
    the state is ``UNKNOWN``.
    """
    pend = state.pending_of(session.id)
    text = sanitize(reply.text).strip()

    def refuse(why: str) -> DeliveryReport:
        return DeliveryReport(DeliveryState.REFUSED, why, reply.text)

    try:
        if reply.kind is ReplyKind.STOP:
            await client.abort(session.id)
            return DeliveryReport(DeliveryState.ACCEPTED, "the turn was stopped", reply.text)
        if not pend:
            if reply.kind is not ReplyKind.PROMPT:
                return refuse("nothing is pending in this session any more (answered elsewhere, or the turn ended)")
            if not text:
                return refuse("the text is empty")
            await client.prompt(session.id, text)
            queued = session.status is SessionStatus.BUSY
            return DeliveryReport(DeliveryState.ACCEPTED,
                                  "queued: opencode takes it when the current step ends" if queued
                                  else "sent to opencode", reply.text)
        shown = session.pending.request_id if session.pending is not None else ""
        if shown and all(p[0] != shown for p in pend):
            return refuse("the request you answered is no longer pending; the session now asks something else")
        rid, req, kind = next((p for p in pend if p[0] == shown), pend[0])
        directory = state.request_dirs.get(rid) or state.directory_of(str(req.get("sessionID") or ""))
        if kind is RequestKind.PERMISSION:
            if reply.kind is ReplyKind.OPTION and reply.text in PERMISSION_OPTIONS:
                choice = PERMISSION_REPLIES[PERMISSION_OPTIONS.index(reply.text)]
            elif reply.kind is ReplyKind.ALLOW:
                choice = "once"
            elif reply.kind is ReplyKind.ALLOW_ALWAYS:
                choice = "always"
            elif reply.kind is ReplyKind.DENY:
                choice = "reject"
            elif reply.kind is ReplyKind.PROMPT:
                return refuse("opencode asks for a permission; answer it with Allow or Deny first (your text is kept)")
            else:
                return refuse(f"no option {reply.text!r} here (options: {', '.join(PERMISSION_OPTIONS)})")
            await client.reply_permission(rid, directory, choice, text if reply.kind is ReplyKind.DENY else "")
            done = {"once": "allowed once", "always": "allowed from now on", "reject": "rejected"}[choice]
        else:
            raw_qs = req.get("questions")
            questions: list[Any] = raw_qs if isinstance(raw_qs, list) else []
            if reply.kind is ReplyKind.DENY:
                await client.reject_question(rid, directory)
                done = "question dismissed"
            else:
                if len(questions) > 1:
                    return refuse(f"this request asks {len(questions)} questions at once; answer it in opencode")
                labels = state.pending_request(rid, session.id, kind, req).options
                if reply.kind is ReplyKind.OPTION:
                    if reply.text not in labels:
                        return refuse(f"no option {reply.text!r} (options: {', '.join(labels)})")
                    picked = reply.text
                elif reply.kind is ReplyKind.PROMPT and text:
                    picked = text
                else:
                    return refuse("the agent asks a question: pick an option or type an answer")
                await client.reply_question(rid, directory, [[picked]])
                done = "answered"
    except NotFound:
        return refuse("the request is no longer pending (answered elsewhere, or the server restarted)")
    except AuthRequired as exc:
        return refuse(f"{exc}; enter it in deck-tray's window or set OPENCODE_SERVER_PASSWORD")
    except NoAnswer as exc:
        return DeliveryReport(DeliveryState.UNKNOWN, f"{exc}; it may have taken the answer. "
                              "Check the session; deck-tray does not send it again.", reply.text)
    except OpencodeError as exc:
        return refuse(str(exc))
    if settle is not None:
        settle()
    return DeliveryReport(DeliveryState.ACCEPTED, f"opencode confirmed: {done}", reply.text)


class ServerWatcher(QObject):
    """Follows one opencode server over its event stream.

    Args:
        url: base URL.
        credentials: password lookup (called in an executor).
        clock: POSIX seconds.
        heartbeat_timeout: seconds without a byte before the stream counts as dead.
        backoff: first and maximum reconnect delay, seconds.
        transport: httpx transport for the client (tests); None for the network.

    Signals:
        sessions_updated(list[Session]): snapshots of root sessions that changed.
        sessions_removed(list[str]): root session ids that are gone (deleted).
        state_changed(ServerState): connection state changed.
    """

    sessions_updated = Signal(object)
    sessions_removed = Signal(object)
    state_changed = Signal(object)

    def __init__(self, url: str, credentials: Credentials, *, clock: Clock = time.time,
                 heartbeat_timeout: float = 30.0, backoff: tuple[float, float] = BACKOFF_S,
                 transport: httpx.AsyncBaseTransport | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.transport = transport
        self.url = normalize_url(url)
        self.credentials = credentials
        self.clock = clock
        self.heartbeat_timeout = heartbeat_timeout
        self.backoff = backoff
        self.state = OpencodeState(self.url)
        self.server_state = ServerState(self.url, ServerPhase.CONNECTING, "connecting…")
        self.client: OpencodeClient | None = None
        self.connects = 0
        self.limits: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._history_tasks: set[asyncio.Task[None]] = set()
        self._dirty: set[str] = set()
        self._flush_handle: asyncio.Handle | None = None
        self._flush_urgent = False
        self._wake = asyncio.Event()
        self._known_roots: set[str] = set()
        self._busy_before_gap: set[str] = set()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start following the server (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop the stream and close the client."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for t in [self._task, *self._history_tasks]:
            if t is not None:
                t.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._history_tasks] if t), return_exceptions=True)
        self._task = None
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def retry_now(self) -> None:
        """Reconnect at once (a password was entered, or the user asked)."""
        self._wake.set()
        self.start()

    def _set_state(self, phase: ServerPhase, detail: str) -> None:
        st = ServerState(self.url, phase, detail, len(self._known_roots))
        if st != self.server_state:
            self.server_state = st
            self.state_changed.emit(st)

    async def _client(self) -> OpencodeClient:
        loop = asyncio.get_running_loop()
        password = await loop.run_in_executor(None, self.credentials.lookup, self.url)
        if self.client is not None:
            await self.client.aclose()
        auth = (self.credentials.username(), password) if password else None
        self.client = OpencodeClient(self.url, auth, transport=self.transport)
        return self.client

    async def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            started = time.monotonic()
            try:
                await self._session_once()
            except asyncio.CancelledError:
                raise
            except AuthRequired as exc:
                self._went_offline("needs a password")
                self._set_state(ServerPhase.AUTH_REQUIRED,
                                f"{exc}. Enter it in deck-tray (it goes to the keyring) "
                                "or set OPENCODE_SERVER_PASSWORD.")
                await self._wake.wait()
                self._wake.clear()
                delay = self.backoff[0]
                continue
            except OpencodeError as exc:
                self._went_offline(str(exc))
                if time.monotonic() - started > 10:
                    delay = self.backoff[0]
                self._set_state(ServerPhase.UNREACHABLE, f"{exc}; retrying in {delay:.0f} s")
                log.info("opencode %s: %s; reconnecting in %.1f s", self.url, exc, delay)
            except Exception:
                log.exception("opencode watcher for %s failed", self.url)
                self._went_offline("internal error (see the log)")
                self._set_state(ServerPhase.UNREACHABLE, "internal error, see the log; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = min(delay * 2, self.backoff[1])

    async def _session_once(self) -> None:
        client = await self._client()
        self._set_state(ServerPhase.CONNECTING, "connecting…")
        synced = False
        slice_start = time.monotonic()
        # Closed here, in this task, however the loop ends (a cancel while a frame is handled
        # left the generator to the garbage collector, which closed it with no loop running).
        async with contextlib.aclosing(client.events(self.heartbeat_timeout)) as frames:
            async for frame in frames:
                if not synced:
                    # The first frame (server.connected) means the stream is live: events from
                    # here on are not lost, so resync now and apply what follows on top.
                    health = await client.health()
                    await self._resync(client)
                    synced = True
                    self.connects += 1
                    self._set_state(ServerPhase.CONNECTED, f"opencode {health.get('version', '?')}")
                payload = frame.get("payload")
                etype = payload.get("type") if isinstance(payload, dict) else None
                self._apply(self.state.handle(frame, self.clock()), urgent=etype not in CONTENT_EVENTS)
                if time.monotonic() - slice_start > YIELD_EVERY_S:
                    # Buffered frames are read without ever giving the loop back: let the GUI
                    # (and the flushes) run between slices of a fast stream.
                    await asyncio.sleep(0)
                    slice_start = time.monotonic()

    async def _resync(self, client: OpencodeClient) -> None:
        was_busy = set(self.state.status) | self._busy_before_gap
        changed = await sync_state(client, self.state, self.clock)
        self._busy_before_gap = set()
        with contextlib.suppress(OpencodeError):
            self.limits = context_limits(await client.providers())
        # Reconcile: sessions that were busy before the gap may have finished in it.
        roots = sorted(self.state.roots(), key=lambda r: -self.state.session(r, self.clock()).updated_at)
        eager = set(roots[:HISTORY_EAGER]) | {self.state.root_of(s) for s in was_busy | set(self.state.status)}
        for r in eager:
            self._load_history(r, force=r in was_busy)
        self._apply(changed)

    def _load_history(self, sid: str, force: bool = False) -> None:
        if (sid in self.state.history_loaded and not force) or self.client is None:
            return
        self.state.history_loaded.add(sid)
        client = self.client

        async def load() -> None:
            try:
                items = await client.messages(sid, HISTORY_LIMIT)
            except OpencodeError as exc:
                log.info("history of %s from %s failed: %s", sid, self.url, exc)
                self.state.history_loaded.discard(sid)
                return
            self._apply(self.state.set_messages(sid, items), urgent=False)

        task = asyncio.ensure_future(load())
        self._history_tasks.add(task)
        task.add_done_callback(self._history_tasks.discard)

    def _went_offline(self, why: str) -> None:
        self._busy_before_gap |= set(self.state.status)
        self.state.go_offline(why, self.clock())
        self._apply(set(self.state.roots()))

    def _apply(self, roots: Iterable[str], urgent: bool = True) -> None:
        """Mark ``roots`` for a snapshot rebuild.

        Urgent changes (status, requests, sessions) are flushed as soon as the frames that
        arrived together are applied; conversation-only changes (streamed text, tool
        progress) at most every :data:`CONTENT_FLUSH_S`, so a fast stream cannot keep the GUI
        thread rebuilding long conversations.
        """
        new = {r for r in roots if r}
        if not new:
            return  # heartbeats, sync duplicates, noise: nothing to rebuild, nothing to hurry
        self._dirty |= new
        loop = asyncio.get_running_loop()
        if urgent and not self._flush_urgent:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self._flush_handle = loop.call_soon(self._flush)
            self._flush_urgent = True
        elif self._flush_handle is None:
            self._flush_handle = loop.call_later(CONTENT_FLUSH_S, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._flush_urgent = False
        dirty, self._dirty = self._dirty, set()
        now = self.clock()
        current = set(self.state.roots())
        gone = [r for r in dirty if r in self._known_roots and r not in current]
        snaps = self.state.sessions(now, {r for r in dirty if r in current})
        for s in snaps:
            if s.id not in self.state.history_loaded and not self.state.offline:
                self._load_history(s.id)
        self._known_roots = (self._known_roots | {s.id for s in snaps}) - set(gone)
        if gone:
            self.sessions_removed.emit(gone)
        if snaps:
            self.sessions_updated.emit(snaps)

    def snapshot(self) -> list[Session]:
        """Every root session of this server, as of now."""
        return self.state.sessions(self.clock())


class OpencodeSource(QObject):
    """All opencode servers: discovered ones and those the user configured.

    Args:
        registry: where sessions go (as source ``opencode <url>``).
        credentials: password lookup and storage.
        urls: configured server URLs (settings and ``--opencode-url``); followed even while down.
        discover: look for local servers (psutil) every ``discover_every`` seconds.
        clock: POSIX seconds.
        heartbeat_timeout: seconds without a frame before a stream counts as dead.
        backoff: first and maximum reconnect delay of each server's watcher, seconds.

    Attributes:
        auto_handoff_percent: when set, an opencode session whose turn ends with its context
            this full (percent of the model's limit) is handed off once, automatically.

    Signals:
        servers_changed(list[ServerState]): any server's state changed, or one came or went.
        password_needed(str): a server answered 401 (once per episode); the UI asks the user.
        handed_off(str, str, bool): old session id, new session id, True when automatic.
    """

    servers_changed = Signal(object)
    password_needed = Signal(str)
    handed_off = Signal(str, str, bool)

    def __init__(self, registry: SessionRegistry, credentials: Credentials | None = None, *,
                 urls: Iterable[str] = (), discover: bool = True, discover_every: float = 5.0,
                 clock: Clock = time.time, heartbeat_timeout: float = 30.0,
                 backoff: tuple[float, float] = BACKOFF_S, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backoff = backoff
        self.registry = registry
        registry.transition.connect(self._on_transition)
        self.credentials = credentials or Credentials()
        self.configured = list(dict.fromkeys(normalize_url(u) for u in urls))
        self.discover = discover
        self.clock = clock
        self.heartbeat_timeout = heartbeat_timeout
        self.watchers: dict[str, ServerWatcher] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(int(discover_every * 1000))
        self._timer.timeout.connect(self._discover_soon)
        self._discovering: asyncio.Task[list[str]] | None = None
        self._asked: set[str] = set()
        self._handoff_tasks: set[asyncio.Task[Any]] = set()
        self.auto_handoff_percent: float | None = None
        self._binaries: dict[str, str] = {}
        self._auto_done: set[str] = set()
        self._started = False
        self._found: set[str] = set()  # what the last discovery found
        self._drops: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Follow the configured servers and start discovering local ones."""
        self._started = True
        for url in self.configured:
            self._add(url)
        if self.discover:
            self._discover_soon()
            self._timer.start()
        self._emit_servers()

    async def stop(self) -> None:
        """Stop every watcher."""
        self._started = False
        self._timer.stop()
        await asyncio.gather(*self._drops, return_exceptions=True)
        if self._discovering is not None:
            self._discovering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._discovering
        for t in list(self._handoff_tasks):
            t.cancel()
        await asyncio.gather(*self._handoff_tasks, return_exceptions=True)
        await asyncio.gather(*(w.stop() for w in self.watchers.values()), return_exceptions=True)

    def servers(self) -> list[ServerState]:
        """States of every followed server."""
        return [w.server_state for w in self.watchers.values()]

    def add_url(self, url: str) -> None:
        """Follow a server the user named (kept while it is down)."""
        url = normalize_url(url)
        if url not in self.configured:
            self.configured.append(url)
        self._add(url)
        self._emit_servers()

    def remove_url(self, url: str) -> None:
        """Stop following a server the user named, unless discovery finds it running here."""
        url = normalize_url(url)
        if url in self.configured:
            self.configured.remove(url)
        if self._started and url in self.watchers and not (self.discover and url in self._found):
            self._spawn_drop(url)

    def set_urls(self, urls: Iterable[str]) -> None:
        """Follow exactly these named servers (besides discovered ones): the settings changed."""
        wanted = list(dict.fromkeys(normalize_url(u) for u in urls))
        for url in [u for u in self.configured if u not in wanted]:
            self.remove_url(url)
        if self._started:
            for url in wanted:
                self.add_url(url)
        self.configured = wanted

    def set_discover(self, on: bool) -> None:
        """Turn looking for local servers on or off (off: servers only discovered are dropped)."""
        if on == self.discover:
            return
        self.discover = on
        if not self._started:
            return
        if on:
            self._discover_soon()
            self._timer.start()
        else:
            self._timer.stop()
            if self._discovering is not None:
                self._discovering.cancel()
            for url in [u for u in self.watchers if u not in self.configured]:
                self._spawn_drop(url)
            self._found.clear()

    def _spawn_drop(self, url: str) -> None:
        task = asyncio.ensure_future(self._drop(url))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    def _add(self, url: str) -> ServerWatcher:
        w = self.watchers.get(url)
        if w is None:
            w = ServerWatcher(url, self.credentials, clock=self.clock, heartbeat_timeout=self.heartbeat_timeout,
                              backoff=self.backoff, parent=self)
            w.sessions_updated.connect(lambda snaps, u=url: self._updated(u, snaps))
            w.sessions_removed.connect(self.registry.remove)
            w.state_changed.connect(self._state_changed)
            self.watchers[url] = w
            w.start()
        return w

    def _updated(self, url: str, snaps: list[Session]) -> None:
        self.registry.apply(snaps, complete=False, source=f"opencode {url}")

    def _on_transition(self, t: Transition) -> None:
        """Hand a session off automatically when its turn is seen ending with a full context."""
        s = t.session
        if self.auto_handoff_percent is None or s.agent is not AgentKind.OPENCODE:
            return
        # Only a turn seen ending now counts: sessions found idle at start-up are left alone.
        ended_now = t.new is SessionStatus.IDLE and t.old in (
            SessionStatus.BUSY, SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION)
        w = self.watcher_for(s)
        if w is None or not ended_now or s.id in self._auto_done:
            return
        use = w.state.context_use(s.id, w.limits)
        if use is not None and use.limit and use.fraction * 100 >= self.auto_handoff_percent:
            self._auto_done.add(s.id)
            log.info("auto hand-off of %s: context %d of %d tokens", s.id, use.tokens, use.limit)
            task = asyncio.ensure_future(self._auto_handoff(s))
            self._handoff_tasks.add(task)
            task.add_done_callback(self._handoff_tasks.discard)

    async def _auto_handoff(self, session: Session) -> None:
        try:
            new_id = await self.handoff(session)
        except OpencodeError as exc:
            log.warning("automatic hand-off of %s failed: %s", session.id, exc)
            return
        self.handed_off.emit(session.id, new_id, True)

    async def _drop(self, url: str) -> None:
        w = self.watchers.pop(url, None)
        if w is None:
            return
        await w.stop()
        self.registry.apply([], complete=True, source=f"opencode {url}")
        self._emit_servers()

    def _discover_soon(self) -> None:
        if self._discovering is None or self._discovering.done():
            self._discovering = asyncio.ensure_future(self.discover_now())

    async def discover_now(self) -> list[str]:
        """Find local servers now; follow new ones, drop discovered ones that are gone."""
        loop = asyncio.get_running_loop()
        try:
            binaries = await loop.run_in_executor(None, discover_server_binaries)
        except Exception:
            log.exception("looking for opencode servers failed")
            return []
        found = sorted(binaries)
        self._binaries = {u: exe for u, exe in binaries.items() if exe}
        self._found = set(found)
        for url in found:
            if url not in self.watchers:
                log.info("found an opencode server at %s", url)
                self._add(url)
        for url in [u for u in self.watchers if u not in found and u not in self.configured]:
            log.info("opencode server at %s is gone", url)
            await self._drop(url)
        self._emit_servers()
        return found

    def _state_changed(self, st: ServerState) -> None:
        if st.phase is ServerPhase.AUTH_REQUIRED and st.url not in self._asked:
            self._asked.add(st.url)
            self.password_needed.emit(st.url)
        elif st.phase is ServerPhase.CONNECTED:
            self._asked.discard(st.url)
        self._emit_servers()

    def _emit_servers(self) -> None:
        self.servers_changed.emit(self.servers())

    async def set_password(self, url: str, password: str) -> StoreResult:
        """Store the password (keyring if it works, else for this run) and reconnect.

        Returns:
            Where the password went (``persistent``: in the keyring) and a sentence for the user.
        """
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, self.credentials.store, url, password)
        self._asked.discard(url)
        w = self.watchers.get(url) or self._add(url)
        w.retry_now()
        return result

    def binary_for(self, url: str) -> str:
        """The opencode executable that serves ``url`` (when discovered locally), else ``""``."""
        return self._binaries.get(url, "")

    def watcher_for(self, session: Session) -> ServerWatcher | None:
        """The watcher of the server that runs ``session``."""
        return self.watchers.get(session.server)

    async def answer(self, session: Session, reply: Reply) -> DeliveryReport:
        """Deliver ``reply`` through the session's server (see :func:`answer`)."""
        w = self.watcher_for(session)
        if w is None or w.client is None:
            return DeliveryReport(DeliveryState.REFUSED,
                                  f"deck-tray is not connected to the opencode server {session.server or '?'}",
                                  reply.text)
        if w.server_state.phase is not ServerPhase.CONNECTED:
            return DeliveryReport(DeliveryState.REFUSED, f"the opencode server {w.url} is "
                                  f"{w.server_state.phase.value}: {w.server_state.detail}", reply.text)
        return await answer(w.client, w.state, session, reply)

    async def handoff(self, session: Session, goal: str = "") -> str:
        """Start a hand-off session for ``session`` and send it the hand-off prompt.

        Returns:
            The new session's id.

        Raises:
            OpencodeError: the server refused or is not connected (the message says which).
        """
        w = self.watcher_for(session)
        if w is None or w.client is None:
            raise OpencodeError(f"not connected to the opencode server {session.server or '?'}")
        client = w.client
        if session.id not in w.state.history_loaded or not w.state.messages.get(session.id):
            w.state.set_messages(session.id, await client.messages(session.id, HISTORY_LIMIT))
        todos: list[dict[str, Any]] = []
        with contextlib.suppress(NotFound):
            todos = await client.todos(session.id)
        convo = w.state.conversation(session.id)
        first_prompt = next((m.text for m in convo if m.role.value == "user"), "")
        last_text = next((m.text for m in reversed(convo) if m.role.value == "assistant"), "")
        prompt = handoff_prompt(title=session.display_title, session_id=session.id, goal=goal or first_prompt,
                                doing=last_text, todos=todos, files=w.state.files_touched(session.id),
                                directory=session.cwd)
        new = await client.create_session(f"Handoff: {session.display_title}", session.cwd)
        w.state.set_sessions([new])
        await client.prompt(str(new["id"]), prompt)
        return str(new["id"])


async def snapshot_server(url: str, credentials: Credentials, *, clock: Clock = time.time,
                          with_history: bool = False) -> tuple[ServerState, OpencodeState, OpencodeClient | None]:
    """One REST pass over a server (the CLI's view; no event stream).

    Returns:
        ``(state of the server, its sessions, an open client or None)``; the caller closes
        the client. On failure the session state is empty and the server state says why.
    """
    loop = asyncio.get_running_loop()
    password = await loop.run_in_executor(None, credentials.lookup, url)
    client = OpencodeClient(url, (credentials.username(), password) if password else None)
    state = OpencodeState(url)
    try:
        health = await client.health()
        await sync_state(client, state, clock)
        if with_history:
            for root in state.roots():
                state.set_messages(root, await client.messages(root, HISTORY_LIMIT))
    except AuthRequired as exc:
        await client.aclose()
        return ServerState(url, ServerPhase.AUTH_REQUIRED, str(exc)), OpencodeState(url), None
    except OpencodeError as exc:
        await client.aclose()
        return ServerState(url, ServerPhase.UNREACHABLE, str(exc)), OpencodeState(url), None
    detail = f"opencode {health.get('version', '?')}"
    return ServerState(url, ServerPhase.CONNECTED, detail, len(state.roots())), state, client


async def snapshot_all(urls: Iterable[str], credentials: Credentials, *, discover: bool = True,
                       clock: Clock = time.time) -> tuple[list[Session], list[ServerState]]:
    """Sessions of every reachable server (configured ``urls`` plus discovered ones)."""
    wanted = list(dict.fromkeys(normalize_url(u) for u in urls))
    if discover:
        loop = asyncio.get_running_loop()
        wanted += [u for u in await loop.run_in_executor(None, discover_servers) if u not in wanted]
    results = await asyncio.gather(*(snapshot_server(u, credentials, clock=clock) for u in wanted))
    sessions: list[Session] = []
    states: list[ServerState] = []
    for st, state, client in results:
        states.append(st)
        sessions += state.sessions(clock())
        if client is not None:
            await client.aclose()
    return sessions, states
