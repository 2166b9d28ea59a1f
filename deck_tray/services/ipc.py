r"""The app's private local socket: hook events in, single instance, the CLI's view of the app.

Socket: ``$XDG_RUNTIME_DIR/deck-tray/ipc.sock`` (without ``XDG_RUNTIME_DIR``:
``platformdirs.user_runtime_dir("deck-tray")/ipc.sock``). The folder is the user's own,
mode 0700; the socket is mode 0600; the server reads every client's uid with
``SO_PEERCRED`` and drops clients of another uid.

Protocol: one JSON object per line (UTF-8, ``\n``-terminated) each way. Requests:

=====================================================================  =============================================
request                                                                answer
=====================================================================  =============================================
``{"op": "hook", "agent": "claude-code"|"codex"|…, "kind": "hook"|    none (fire and forget; see
"notify", "payload": {...}, "received": <POSIX s>, "event"?: str}``    :mod:`deck_tray.core.hooks`)
``{"op": "hook", ..., "wait": true}`` (a ``PermissionRequest``)         ``{"held": true}`` (``"wait_s": N`` added
                                                                       for a bounded hold) at once, then
                                                                       ``{"decision": {...} | null}`` once the user
                                                                       answered in deck-tray (the object the hook
                                                                       prints) or the request went elsewhere
                                                                       (null); ``{"decision": null}`` alone when
                                                                       it is not held. See
                                                                       :mod:`deck_tray.services.decisions`
``{"op": "remotes_changed"}`` (``deck-tray remote add|remove``)       ``{"ok": true}`` (the hosts are read again)
``{"op": "show", "token"?: str}``                                      ``{"ok": true}`` (the window is raised, with
                                                                       the xdg-activation token when given)
``{"op": "toggle", "token"?: str}``                                    ``{"ok": true}`` (shown at the oldest waiting
                                                                       request, or hidden when it is active)
``{"op": "ping"}``                                                     ``{"ok": true, "app": "deck-tray", "version",
                                                                       "pid", "hooks": {agent: {"event",
                                                                       "received"}}, "window"?: {"platform",
                                                                       "shown", "active", "pinned",
                                                                       "pinning_works", "tab", "notice",
                                                                       "shortcut", "shortcut_way"}}`` (the last
                                                                       hook per agent)
``{"op": "sessions"}``                                                 ``{"sessions": [Session.to_json()...],
                                                                       "panes": {id: pane label}, "answer_via":
                                                                       {id: "hook"|"tmux"|…|null}, "claude_dir",
                                                                       "codex_dir", "opencode": [{"url", "phase",
                                                                       "detail"}], "remotes": [{"name", "dest",
                                                                       "state", "detail", "since",
                                                                       "version"}]}``
``{"op": "reply", "id": <full session id>, "kind": <ReplyKind value>,  ``{"state": <DeliveryState value>,
"text": str}``                                                         "detail": str}``
``{"op": "new", "agent": "claude-code"|"codex"|"opencode", "folder",   ``{"ok": bool, "detail": str, "pane": str|null,
"worktree"?, "prompt"?, "name"?, "args"?: [str], "trust"?: bool,       "session_id": str, "server": str,
"env": {str: str}}`` (``deck-tray new`` through the app, which owns    "prompt": <DeliveryState value>|null}``
the opencode servers; ``env``: the asking process's environment)
=====================================================================  =============================================

Anything malformed is answered ``{"error": "<why>"}`` (a hook without ``wait`` is never answered). Several
requests may share one connection; the server closes a connection idle for
:data:`IDLE_TIMEOUT_S`. The forwarder (:mod:`deck_tray.commands.hook_forwarder`) writes the hook
line itself, without importing this module (it must start in a few milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from PySide6.QtCore import QObject, Signal

from deck_tray import __version__
from deck_tray.core.hooks import HookEvent, parse_message
from deck_tray.core.model import (
    AgentKind,
    DeliveryReport,
    PaneRef,
    PendingRequest,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.core.opencode import ServerPhase, ServerState
from deck_tray.core.reply import Reply, ReplyKind

log = logging.getLogger(__name__)

#: Folder (under the runtime dir) and file name of the socket.
APP_DIR, SOCKET_NAME = "deck-tray", "ipc.sock"
#: Longest request line accepted (bytes); hook payloads carry whole tool inputs.
MAX_LINE = 8 * 1024 * 1024
#: A connection with no request for this long is closed (seconds).
IDLE_TIMEOUT_S = 60.0
#: Seconds a connect may take before the app counts as not answering.
CONNECT_TIMEOUT_S = 1.0

#: Answers the ``sessions`` request (see the protocol table).
SessionsHandler = Callable[[], Awaitable[dict[str, Any]]]
#: Delivers a reply to a session by id (the app's dispatcher).
ReplyHandler = Callable[[str, Reply], Awaitable[DeliveryReport]]
#: Holds a waiting hook until its decision (the JSON the hook prints) or None.
HoldHandler = Callable[[HookEvent], Awaitable[dict[str, Any] | None]]


class IpcError(Exception):
    """The socket cannot be served, or the app did not answer properly."""


class NotRunning(IpcError):
    """Nothing listens on the socket (no file, or a stale file of a crashed app)."""


class AlreadyRunning(IpcError):
    """Another process already serves the socket."""


class Refused(IpcError):
    """The app answered ``{"error": ...}``: the request was malformed or not served; nothing was done."""


def socket_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the socket is.

    Args:
        env: environment to read (default ``os.environ``).

    Returns:
        ``$XDG_RUNTIME_DIR/deck-tray/ipc.sock``, or, when ``XDG_RUNTIME_DIR`` is unset or
        blank, ``platformdirs.user_runtime_dir("deck-tray")/ipc.sock`` (``/run/user/<uid>``
        or a private folder in the temporary directory).
    """
    e = os.environ if env is None else env
    runtime = e.get("XDG_RUNTIME_DIR", "").strip()
    if runtime:
        return Path(runtime) / APP_DIR / SOCKET_NAME
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about the fallback it takes
        return Path(platformdirs.user_runtime_dir(APP_DIR, appauthor=False)) / SOCKET_NAME


# -- peer credentials ------------------------------------------------------------------
_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


def peer_credentials(sock: socket.socket) -> tuple[int, int, int] | None:
    """``(pid, uid, gid)`` of the process at the other end of a Unix socket, or None if unknown."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except (OSError, AttributeError):
        return None
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def listener_credentials(path: str | os.PathLike[str], timeout: float = 1.0) -> tuple[int, int, int] | None:
    """``(pid, uid, gid)`` of the process listening on the Unix socket ``path``, from
    ``SO_PEERCRED`` of a fresh connection (the kernel answers even when the listener's threads
    are stuck); None when nothing listens (no file, a stale file) or the connect fails."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(os.fspath(path))
        except OSError:
            return None
        return peer_credentials(s)


def peer_allowed(creds: tuple[int, int, int] | None, own_uid: int) -> bool:
    """Whether a client may talk to the app: only processes of the app's own uid.

    Args:
        creds: :func:`peer_credentials` of the client (None when they cannot be read).
        own_uid: the app's uid (``os.getuid()``).

    Returns:
        True only when the credentials are known and the uids are equal (root included:
        root's hooks go to root's app).
    """
    return creds is not None and creds[1] == own_uid


# -- socket file -----------------------------------------------------------------------
def prepare_dir(folder: Path) -> None:
    """Create the socket's folder (mode 0700) or check an existing one.

    Raises:
        IpcError: it is not a folder (or a symlink), or belongs to another user.
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
    except OSError as exc:
        raise IpcError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise IpcError(f"{folder} is not a folder")
    if st.st_uid != os.getuid():
        raise IpcError(f"{folder} belongs to uid {st.st_uid}, not to this user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(folder, 0o700)


def answers(path: Path, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """True when a process accepts connections on ``path`` (a live app, not a stale file)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except TimeoutError:
            return True  # its backlog is full: alive but busy
        except OSError:
            return False
        return True


def bind(path: Path) -> socket.socket:
    """A listening socket at ``path``, replacing a stale file a crashed app left behind.

    Raises:
        AlreadyRunning: another process serves ``path``.
        IpcError: the folder is unusable, ``path`` is something other than a socket, or it
            cannot be bound (e.g. longer than the 107 bytes a socket path may have).
    """
    prepare_dir(path.parent)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise IpcError(f"{path} exists and is not a socket; not replacing it")
        if answers(path):
            raise AlreadyRunning(f"another deck-tray serves {path}")
        log.info("replacing the stale socket %s (left by an app that did not exit cleanly)", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == 98:  # EADDRINUSE: another instance bound it a moment ago
            raise AlreadyRunning(f"another deck-tray serves {path}") from exc
        raise IpcError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


# -- client ----------------------------------------------------------------------------
def request(msg: Mapping[str, Any], *, path: Path | None = None, timeout: float = 10.0,
            connect_timeout: float = CONNECT_TIMEOUT_S) -> dict[str, Any]:
    """Send one request to the running app and wait for its answer (blocking).

    Args:
        msg: the request (see the protocol table); must not be a ``hook``.
        path: the socket (default :func:`socket_path`).
        timeout: seconds to wait for the answer after connecting.
        connect_timeout: seconds the connect may take.

    Returns:
        The answer object.

    Raises:
        NotRunning: no app listens (nothing was sent).
        Refused: the app answered ``{"error": ...}`` (nothing was done).
        IpcError: the app was reached but did not answer in time or answered garbage; the
            request may have been acted on.
    """
    p = path or socket_path()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(connect_timeout)
        try:
            s.connect(str(p))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
            raise NotRunning(f"no deck-tray listens on {p}") from exc
        except OSError as exc:
            raise NotRunning(f"cannot connect to {p}: {exc}") from exc
        if not peer_allowed(peer_credentials(s), os.getuid()):
            raise NotRunning(f"{p} is served by another user's process; not using it")
        deadline = time.monotonic() + timeout
        try:
            s.settimeout(timeout)
            s.sendall(orjson.dumps(dict(msg)) + b"\n")
            buf = b""
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    raise IpcError("the running deck-tray closed the connection without answering")
                buf += chunk
        except TimeoutError as exc:
            raise IpcError(f"the running deck-tray did not answer within {timeout:g} s") from exc
        except OSError as exc:
            raise IpcError(f"the connection to the running deck-tray failed: {exc}") from exc
    try:
        answer = orjson.loads(buf.split(b"\n", 1)[0])
    except orjson.JSONDecodeError as exc:
        raise IpcError("the running deck-tray answered something that is not JSON") from exc
    if not isinstance(answer, dict):
        raise IpcError("the running deck-tray answered something that is not a JSON object")
    if "error" in answer:
        raise Refused(f"the running deck-tray refused the request: {answer['error']}")
    return answer


# -- the sessions answer ---------------------------------------------------------------
@dataclass(frozen=True)
class AppView:
    """The running app's answer to ``sessions``, as the CLI uses it.

    Attributes:
        sessions: every session the app knows.
        claude_dir: the Claude config folder the app watches.
        codex_dir: the Codex home the app watches.
        servers: the opencode servers the app follows.
        answer_via: how each session would be answered now, by id (see
            :func:`deck_tray.core.decisions.answer_via`).
        remotes: the remote hosts the app connects to: ``{"name", "dest", "state", "detail",
            "since", "version"}`` each (issue #18).
    """

    sessions: list[Session]
    claude_dir: str
    codex_dir: str
    servers: list[ServerState]
    answer_via: dict[str, str | None] = dataclasses.field(default_factory=dict)
    remotes: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def sessions_answer(sessions: Iterable[Session], *, claude_dir: str, codex_dir: str,
                    servers: Iterable[ServerState], answer_via: Mapping[str, str | None] | None = None,
                    remotes: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Build the answer to ``sessions`` (see the protocol table)."""
    ss = list(sessions)
    return {
        "remotes": [dict(r) for r in remotes],
        "answer_via": dict(answer_via or {}),
        "sessions": [s.to_json() for s in ss],
        "panes": {s.id: s.pane.label for s in ss if s.pane is not None and s.pane.label},
        "claude_dir": claude_dir,
        "codex_dir": codex_dir,
        "opencode": [{"url": st.url, "phase": st.phase.value, "detail": st.detail} for st in servers],
    }


def parse_sessions_answer(answer: Mapping[str, Any]) -> AppView:
    """The inverse of :func:`sessions_answer`.

    Raises:
        IpcError: a field is missing or malformed.
    """
    try:
        labels = answer.get("panes") or {}
        sessions = [session_from_json(d, str(labels.get(d["id"], ""))) for d in answer["sessions"]]
        servers = [ServerState(str(d["url"]), ServerPhase(d["phase"]), str(d.get("detail") or ""))
                   for d in answer.get("opencode") or []]
        via = answer.get("answer_via") or {}
        remotes = [dict(r) for r in answer.get("remotes") or [] if isinstance(r, dict)]
        return AppView(sessions, str(answer["claude_dir"]), str(answer["codex_dir"]), servers,
                       {str(k): (str(v) if v else None) for k, v in via.items()}, remotes)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IpcError(f"the running deck-tray sent a malformed session list ({exc!r})") from exc


def session_from_json(d: Mapping[str, Any], pane_label: str = "") -> Session:
    """A :class:`Session` from its :meth:`Session.to_json` shape (no conversation).

    Args:
        d: ``{"id", "agent", "status", "reason", "cwd", "title", "pid", "pane":
            "<multiplexer>:<server>:<pane id>" | None, "pending": {...} | None,
            "updated_at": ISO 8601 | None, "server": url | None}``.
        pane_label: the pane's human location (not part of the JSON shape).

    Raises:
        KeyError, TypeError, ValueError: malformed input.
    """
    pane: PaneRef | None = None
    if isinstance(d.get("pane"), str):
        mux, rest = d["pane"].split(":", 1)
        server, pane_id = rest.rsplit(":", 1)
        pane = PaneRef(mux, pane_id, server, pane_label)
    pending: PendingRequest | None = None
    p = d.get("pending")
    if isinstance(p, dict):
        pending = PendingRequest(RequestKind(p["kind"]), str(p.get("tool") or ""), str(p.get("summary") or ""),
                                 tuple(str(o) for o in p.get("options") or ()), asker=str(p.get("asker") or ""))
    updated = d.get("updated_at")
    pid = d.get("pid")
    return Session(
        id=str(d["id"]),
        agent=AgentKind(d["agent"]),
        cwd=str(d.get("cwd") or ""),
        title=str(d.get("title") or ""),
        pid=pid if isinstance(pid, int) else None,
        pane=pane,
        status=SessionStatus(d["status"]),
        reason=str(d.get("reason") or ""),
        pending=pending,
        updated_at=_dt.datetime.fromisoformat(updated).timestamp() if isinstance(updated, str) else 0.0,
        server=str(d.get("server") or ""),
        host=str(d.get("host") or ""),
    )


# -- server ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Wait:
    """A hook that waits for its decision on its connection."""

    event: HookEvent


_GONE = object()  # the held hook's process closed its connection first


class IpcServer(QObject):
    """Serves the socket on the running (qasync) loop.

    Args:
        path: the socket (default :func:`socket_path`).
        sessions: answers ``sessions`` (None: refused).
        reply: delivers ``reply`` (None: refused).
        hold: holds a hook sent with ``"wait": true`` until its decision (None: answered
            ``{"decision": null}`` at once).

    Signals:
        hook_received(HookEvent): a forwarded hook or notify call (a
            :class:`deck_tray.core.hooks.HookEvent`).
        show_requested(str): another ``deck-tray`` was started and asks to raise the window; the
            argument is the activation token it was started with (``XDG_ACTIVATION_TOKEN``, or
            X11's ``DESKTOP_STARTUP_ID``), or ``""``.
        toggle_requested(str): ``deck-tray --toggle`` (a desktop's own keyboard shortcut) asks to
            show the window at the oldest waiting request, or hide it; the token as above.
        remotes_changed(): ``deck-tray remote add|remove`` changed the hosts in the settings file.
    """

    hook_received = Signal(object)
    show_requested = Signal(str)
    toggle_requested = Signal(str)
    remotes_changed = Signal()

    def __init__(self, path: Path | None = None, *, sessions: SessionsHandler | None = None,
                 reply: ReplyHandler | None = None, hold: HoldHandler | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = path or socket_path()
        self._sessions = sessions
        self._reply = reply
        self._hold = hold
        #: Called with a held hook's event when its process closes the connection first.
        self.hold_abandoned: Callable[[HookEvent], None] | None = None
        #: The most a held hook of this event is held (seconds), told to the forwarder in its
        #: ``held`` line (``{"held":true,"wait_s":3.0}``) so that it never waits longer; None:
        #: the usual hold (``{"held":true}``).
        self.hold_limit: Callable[[HookEvent], float | None] | None = None
        #: What ``ping`` reports as ``"window"`` (the app's window: platform, shown, active,
        #: pinned, current tab, notice); None: not reported.
        self.window_state: Callable[[], dict[str, Any]] | None = None
        self._server: asyncio.Server | None = None
        self._starting: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._ino: int | None = None
        self._warned_uids: set[int] = set()
        #: Starts a session for ``{"op": "new", ...}`` (the whole message) and answers it; None:
        #: refused. Only this user's processes reach the socket (0600, peer uid checked), so the
        #: environment in the message stays with this user.
        self.new_session: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
        #: The last hook per agent value: ``{"event": hook/notify name, "received": POSIX s}``.
        self.last_hooks: dict[str, dict[str, Any]] = {}

    @property
    def listening(self) -> bool:
        """True once :meth:`start` bound the socket (until :meth:`stop`)."""
        return self._ino is not None

    def start(self) -> None:
        """Bind the socket (replacing a stale one) and start serving on the running loop.

        Raises:
            AlreadyRunning: another deck-tray serves the socket.
            IpcError: the socket cannot be served (the message says why).
        """
        sock = bind(self.path)
        self._ino = os.stat(self.path).st_ino
        self._starting = asyncio.ensure_future(self._serve(sock))
        log.info("listening for hooks and other deck-tray commands on %s", self.path)

    async def _serve(self, sock: socket.socket) -> None:
        try:
            self._server = await asyncio.start_unix_server(self._client, sock=sock, limit=MAX_LINE)
        except BaseException:
            sock.close()
            raise

    async def stop(self) -> None:
        """Stop serving, close every connection and remove the socket file (if still ours)."""
        if self._starting is not None:
            # Not cancelled: it only sets the server up, and a half set-up server would keep its
            # listening socket registered with the loop after the socket is closed.
            with contextlib.suppress(Exception):
                await self._starting
            self._starting = None
        if self._server is not None:
            self._server.close()
            for t in list(self._clients):
                t.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        self.remove_socket_file()

    def remove_socket_file(self) -> None:
        """Remove the socket file if it is still the one :meth:`start` bound (synchronous; the
        last step of :meth:`stop`, and all that is done when the process must end at once)."""
        if self._ino is not None:
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._ino:
                    os.unlink(self.path)
            self._ino = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            creds = peer_credentials(writer.get_extra_info("socket"))
            if not peer_allowed(creds, os.getuid()):
                uid = creds[1] if creds else -1
                if uid not in self._warned_uids:
                    self._warned_uids.add(uid)
                    log.warning("dropped a connection to %s from uid %s (pid %s): only this user's processes "
                                "may talk to deck-tray", self.path, uid, creds[0] if creds else "?")
                return
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT_S)
                except (TimeoutError, ValueError, ConnectionError):
                    return  # idle, a line over MAX_LINE, or the peer went away
                if not line:
                    return
                answer = await self._handle(line)
                if isinstance(answer, _Wait):
                    limit = self.hold_limit(answer.event) if self.hold_limit is not None else None
                    # The hook gives up without this line (0.5 s); a bounded hold says its limit.
                    writer.write(b'{"held":true}\n' if limit is None else
                                 b'{"held":true,"wait_s":%s}\n' % repr(float(limit)).encode())
                    await writer.drain()
                    decision = await self._held(answer.event, reader)
                    if decision is _GONE:
                        return
                    writer.write(orjson.dumps({"decision": decision}) + b"\n")
                    await writer.drain()
                    return
                if answer is not None:
                    writer.write(orjson.dumps(answer) + b"\n")
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            if task is not None:
                self._clients.discard(task)

    async def _held(self, event: HookEvent, reader: asyncio.StreamReader) -> Any:
        """Wait for the decision of a held hook, or for its process to close the connection
        (then :attr:`hold_abandoned` is told and :data:`_GONE` returned)."""
        assert self._hold is not None
        decision = asyncio.ensure_future(self._hold(event))
        eof = asyncio.ensure_future(reader.read(1))
        try:
            done, _ = await asyncio.wait({decision, eof}, return_when=asyncio.FIRST_COMPLETED)
            if decision in done:
                return decision.result()
            if self.hold_abandoned is not None:
                self.hold_abandoned(event)
            with contextlib.suppress(Exception):
                await decision
            return _GONE
        finally:
            for t in (decision, eof):
                if not t.done():
                    t.cancel()
            await asyncio.gather(decision, eof, return_exceptions=True)

    async def _handle(self, line: bytes) -> dict[str, Any] | _Wait | None:
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError:
            return {"error": "not a JSON line"}
        if not isinstance(msg, dict):
            return {"error": "not a JSON object"}
        op = msg.get("op")
        if op == "hook":
            ev = parse_message(msg)
            wait = msg.get("wait") is True
            if ev is None:
                log.debug("ignored a malformed hook message")
                return {"decision": None} if wait else None
            log.debug("hook %s %s for session %s", ev.agent.value, ev.name or "?", ev.session_id[:12] or "?")
            self.last_hooks[ev.agent.value] = {"event": ev.name or ev.kind, "received": ev.received}
            self.hook_received.emit(ev)
            if not wait:
                return None
            return _Wait(ev) if self._hold is not None else {"decision": None}
        if op in ("show", "toggle"):
            token = msg.get("token")
            (self.show_requested if op == "show" else self.toggle_requested).emit(
                token if isinstance(token, str) else "")
            return {"ok": True}
        if op == "remotes_changed":
            self.remotes_changed.emit()
            return {"ok": True}
        if op == "ping":
            answer = {"ok": True, "app": "deck-tray", "version": __version__, "pid": os.getpid(),
                      "hooks": self.last_hooks}
            if self.window_state is not None:
                answer["window"] = self.window_state()
            return answer
        if op == "sessions":
            if self._sessions is None:
                return {"error": "this deck-tray does not serve sessions"}
            try:
                return await self._sessions()
            except Exception as exc:
                log.exception("answering a sessions request failed")
                return {"error": f"internal error: {exc}"}
        if op == "reply":
            return await self._handle_reply(msg)
        if op == "new":
            if self.new_session is None:
                return {"error": "this deck-tray does not start sessions"}
            try:
                return await self.new_session(msg)
            except Exception as exc:
                log.exception("starting a session through the socket failed")
                return {"error": f"internal error: {exc}"}
        return {"error": f"unknown op {op!r}"}

    async def _handle_reply(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self._reply is None:
            return {"error": "this deck-tray does not send replies"}
        sid, text = msg.get("id"), msg.get("text", "")
        try:
            kind = ReplyKind(msg.get("kind"))
        except ValueError:
            return {"error": f"unknown reply kind {msg.get('kind')!r}"}
        if not isinstance(sid, str) or not sid or not isinstance(text, str):
            return {"error": "reply needs a session id and a text string"}
        try:
            report = await self._reply(sid, Reply(kind, text))
        except Exception as exc:
            log.exception("a reply through the socket failed")
            return {"error": f"internal error: {exc}"}
        return {"state": report.state.value, "detail": report.detail}
