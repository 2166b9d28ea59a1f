"""Agents on other machines (issue #18): one long-lived ``ssh`` per configured host, speaking
:mod:`deck_tray.core.wire` with ``deck-tray serve --stdio`` there.

deck-tray runs the user's own ``ssh`` with the user's config, keys and agent; it never handles a
key or a password. The command is :func:`ssh_base` (``DECK_TRAY_SSH_COMMAND``, else the
``remote/ssh_command`` setting, else ``ssh``) plus :func:`ssh_options`: ``BatchMode=yes`` (nothing
ever waits on a prompt: a login or host-key problem is an error with the command to run by
hand), keep-alives (a dead link is noticed within ~30 s), and a shared connection
(``ControlMaster=auto``, ``ControlPersist``), so the one-shot CLI and reconnects do not pay a
handshake. Nothing listens on a port on either machine.

Each :class:`RemoteHost` keeps its connection up: it reconnects with capped backoff
(:data:`BACKOFF_S`) and resyncs from the remote's fresh ``snapshot`` (the registry source
``remote <name>``), so no stale waiting state survives a drop. While the link is down its
sessions stay listed; once it has been down :data:`UNREACHABLE_GRACE_S` seconds they are shown
unreachable (status ``unknown``, the reason says why and since when) instead of disappearing.
An answer (:meth:`RemoteHost.answer`) carries an ``answer_id``; when the connection drops before
the report arrives the same id is sent again after the reconnect, and the remote, which
remembers it, never delivers it twice.

History search (:meth:`Remotes.search_history`, the ``remote/search_history`` setting) asks
every connected host at once, each bounded by :data:`SEARCH_TIMEOUT_S`, and gives one
:class:`HostSearch` per host: its hits, or why there are none (not reachable, too old, no
answer in time, the search failed there). :class:`RemoteHistory` is the search window's side
of it; :func:`search_hosts` the one-shot CLI's.

Hosts live in the settings file as ``remote/hosts`` (a list of ``NAME=DEST``), see
:func:`load_hosts` / :func:`save_hosts`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import logging
import os
import shlex
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from PySide6.QtCore import QObject, QSettings, Signal

from deck_tray.core import wire
from deck_tray.core.history import SearchQuery
from deck_tray.core.model import DeliveryReport, DeliveryState, Session, SessionStatus, remote_id
from deck_tray.core.reply import Reply

log = logging.getLogger(__name__)

#: Seconds between reconnect attempts: the first retry is at once (a killed ssh or a dropped
#: link comes back fast), then doubling up to the cap.
BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: Seconds a dropped host's sessions keep their last state before they are shown unreachable
#: (a reconnect within this time shows nothing; a notification is not repeated).
UNREACHABLE_GRACE_S = 8.0
#: Seconds without any line from the remote (it sends ``alive`` every :data:`wire.ALIVE_S`)
#: after which the link counts as dead and is dropped.
SILENCE_S = 3 * wire.ALIVE_S
#: Seconds the remote may take from the start of ssh to its ``hello`` (a login, a cold start).
HELLO_TIMEOUT_S = 40.0
#: Seconds an answer may take end to end (reconnects included) before it is reported unknown.
ANSWER_TIMEOUT_S = 60.0
#: The command run on the remote (by the remote user's login shell, as ssh always runs a
#: command): ``deck-tray`` on its ``PATH``, else the pipx / ``pip --user`` place, else it says it
#: is missing (exit 127), which :func:`explain` turns into "run deck-tray remote install".
REMOTE_COMMAND = ('command -v deck-tray >/dev/null 2>&1 && exec deck-tray serve --stdio; '
                  '[ -x "$HOME/.local/bin/deck-tray" ] && exec "$HOME/.local/bin/deck-tray" serve --stdio; '
                  'echo "deck-tray: command not found" >&2; exit 127')
#: Seconds between looks at the clocks for a suspend (:class:`Remotes`), and the gap between
#: ``CLOCK_BOOTTIME`` (counts suspended time) and ``CLOCK_MONOTONIC`` (does not) that counts as
#: the machine having slept: its ssh links are then dead, however they look.
WAKE_CHECK_S, WAKE_GAP_S = 5.0, 10.0
#: Seconds a host may take to answer a history search (it updates its index first for up to
#: :data:`deck_tray.services.remote_serve.SEARCH_UPDATE_WAIT_S`, then searches).
SEARCH_TIMEOUT_S = 10.0
#: The settings key of the hosts (a list of ``NAME=DEST``) and of the ssh command.
HOSTS_KEY, SSH_COMMAND_KEY = "remote/hosts", "remote/ssh_command"


class HostState(enum.Enum):
    """What a user sees of a remote host (the value is the label)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    UNREACHABLE = "unreachable"
    LOGIN_FAILED = "login failed"
    HOST_KEY = "host key not trusted"
    NOT_INSTALLED = "deck-tray not installed there"
    INCOMPATIBLE = "deck-tray there is another version"
    STOPPED = "stopped"


@dataclass(frozen=True)
class HostConfig:
    """One configured host.

    Attributes:
        name: deck-tray's name for it (:func:`wire.valid_host_name`); prefixes its session ids.
        dest: what ``ssh`` takes: ``user@host``, a ``~/.ssh/config`` alias, ``ssh://host:port``.
    """

    name: str
    dest: str


@dataclass(frozen=True)
class HostStatus:
    """A host's connection as a user sees it.

    Attributes:
        name, dest: the host.
        state: see :class:`HostState`.
        detail: what happened and what to do (for failures, the ``ssh`` command to run by hand).
        since: POSIX seconds the state began.
        version: the remote deck-tray's version once it said hello, else ``""``.
        sessions: how many sessions the host has listed.
    """

    name: str
    dest: str
    state: HostState
    detail: str = ""
    since: float = 0.0
    version: str = ""
    sessions: int = 0


def ssh_base(setting: str = "", env: Mapping[str, str] | None = None) -> list[str]:
    """The ssh command words: ``DECK_TRAY_SSH_COMMAND`` (like git's ``GIT_SSH_COMMAND``, e.g.
    ``ssh -F ~/.ssh/lab_config``), else ``setting``, else ``["ssh"]``; split as a POSIX shell
    would (``shlex``), never run through one.

    Raises:
        ValueError: the command cannot be split (an unclosed quote).
    """
    environ = os.environ if env is None else env
    text = environ.get("DECK_TRAY_SSH_COMMAND", "").strip() or setting.strip() or "ssh"
    words = [os.path.expanduser(w) for w in shlex.split(text)]
    if not words:
        raise ValueError("the ssh command is empty")
    return words


def control_dir(env: Mapping[str, str] | None = None) -> Path:
    """The private folder (0700) of the shared ssh connections' sockets (``ControlPath``):
    ``$XDG_RUNTIME_DIR/deck-tray/ssh``, else under the platform's runtime dir."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "deck-tray" / "ssh"
    import platformdirs

    return Path(platformdirs.user_runtime_dir("deck-tray")) / "ssh"


def ssh_options(control: Path | None) -> list[str]:
    """The options deck-tray adds to every ssh it runs (see the module docstring)."""
    opts = ["-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3",
            "-o", "ConnectTimeout=15"]
    if control is not None:
        # %C: a hash of the connection's parameters (short, so the socket path stays under 108 bytes).
        opts += ["-o", "ControlMaster=auto", "-o", f"ControlPath={control}/%C", "-o", "ControlPersist=60"]
    return opts


def ssh_argv(base: Sequence[str], dest: str, command: str, control: Path | None) -> list[str]:
    """The whole argv: ``base`` + :func:`ssh_options` + ``-- DEST COMMAND``.

    Raises:
        ValueError: ``dest`` is empty or starts with ``-`` (it would be read as an option).
    """
    if not dest or dest.startswith("-"):
        raise ValueError(f"“{dest}” is not an ssh destination")
    return [*base, *ssh_options(control), "--", dest, command]


def by_hand(base: Sequence[str], dest: str) -> str:
    """The command a user runs in a terminal to see and fix what ssh needs (a key, a host key)."""
    return shlex.join([*base, dest])


def explain(rc: int | None, stderr: Sequence[str], base: Sequence[str], dest: str,
            name: str = "") -> tuple[HostState, str]:
    """What a failed or ended ssh means for the user, from its exit code and last stderr lines
    (OpenSSH 9.2's words): ``(state, sentence with what to do)``; ``name`` is the host's name in
    deck-tray (``remote add NAME``), used in the commands it suggests."""
    text = "\n".join(stderr)
    last = next((ln.strip() for ln in reversed(stderr) if ln.strip()), "")
    hand = by_hand(base, dest)
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text \
            or "No ED25519 host key is known" in text or "host key for" in text.lower() and "is not known" in text:
        return HostState.HOST_KEY, (f"ssh does not trust the host key of {dest} (it changed, or was never "
                                    f"accepted): nothing was sent. Check why, then run “{hand}” in a terminal "
                                    f"to accept the key; deck-tray connects again by itself.")
    if "Permission denied" in text or "Too many authentication failures" in text:
        return HostState.LOGIN_FAILED, (f"ssh could not log in to {dest} ({last}). deck-tray uses your ssh "
                                        f"keys and agent and never asks for a password: run “{hand}” in a "
                                        f"terminal to set up the key; deck-tray connects again by itself.")
    if rc == 127 or "deck-tray: command not found" in text:
        return HostState.NOT_INSTALLED, (f"deck-tray is not installed on {dest} (or not on the PATH of "
                                         f"non-interactive ssh commands). Run “deck-tray remote install "
                                         f"{name or 'NAME'}” to install this version there.")
    if rc == 255 or not text:
        why = last or "the connection ended"
        return HostState.UNREACHABLE, f"{dest} cannot be reached: {why}. deck-tray keeps trying."
    return HostState.UNREACHABLE, f"deck-tray on {dest} stopped ({last or f'exit code {rc}'}); deck-tray keeps trying."


def load_hosts(settings: QSettings) -> list[HostConfig]:
    """The configured hosts (``remote/hosts``, read by the settings table's own rules:
    :data:`deck_tray.core.settings.REMOTE_HOSTS`), in the order added; malformed entries are
    logged and skipped."""
    from deck_tray.core import settings as cfg

    hosts, warning = cfg.coerce(cfg.REMOTE_HOSTS, settings.value(HOSTS_KEY))
    if warning:
        log.warning("%s", warning)
    return [HostConfig(name, dest) for name, dest in hosts]


def save_hosts(settings: QSettings, hosts: Sequence[HostConfig]) -> None:
    """Store ``hosts`` as ``remote/hosts`` (see :func:`load_hosts`)."""
    from deck_tray.core import settings as cfg

    settings.setValue(HOSTS_KEY, cfg.to_ini(cfg.REMOTE_HOSTS, tuple((h.name, h.dest) for h in hosts)))
    settings.sync()


async def _end(proc: asyncio.subprocess.Process, grace: float = 0.3) -> int:
    """Wait up to ``grace`` seconds for ``proc`` to exit, else kill it; its exit code.

    Not ``kill()`` first: on an exited but not yet reaped process, Popen's ``send_signal`` reaps
    it itself (``poll``), and asyncio's child watcher then logs "Unknown child process".
    """
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(proc.wait(), grace)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    return await proc.wait()


class SearchProblem(enum.Enum):
    """Why a host gave no history search hits (the value is the status line's words)."""

    NOT_REACHABLE = "not reachable"
    CONNECTING = "still connecting"
    OTHER_VERSION = "another version"
    TOO_OLD = "too old"
    NO_ANSWER = "no answer"
    FAILED = "search failed"


@dataclass(frozen=True)
class HostSearch:
    """One host's answer to a history search.

    Attributes:
        host: the host's name.
        hits: what it found, best first (empty with a ``problem``).
        problem: None when it answered, else why not.
        detail: a sentence: what happened and what to do ("" when all went well).
        indexing: ``(files done, files to do)`` when the host was still bringing its index up
            to date (its older entries may be missing), else None.
        elapsed_s: seconds from the request to the answer (or the failure).
    """

    host: str
    hits: tuple[wire.RemoteHit, ...] = ()
    problem: SearchProblem | None = None
    detail: str = ""
    indexing: tuple[int, int] | None = None
    elapsed_s: float = 0.0

    @property
    def label(self) -> str:
        """``"lab: not reachable"`` / ``"lab: 3 results"`` (the search window's status line)."""
        if self.problem is not None:
            return f"{self.host}: {self.problem.value}"
        n = len(self.hits)
        more = " (still indexing)" if self.indexing is not None else ""
        return f"{self.host}: {n} result{'s' if n != 1 else ''}{more}"


class NotConnectedError(ConnectionError):
    """There is no synced connection to the host: nothing was sent."""


def host_json(st: HostStatus) -> dict[str, Any]:
    """``{"name", "dest", "state", "detail", "since", "version", "sessions"}`` (the socket's and
    ``remote list --json``'s shape)."""
    return {"name": st.name, "dest": st.dest, "state": st.state.value, "detail": st.detail, "since": st.since,
            "version": st.version, "sessions": st.sessions}


def ssh_command(settings: QSettings, env: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """:func:`ssh_base` from the ``remote/ssh_command`` setting: ``(words, "")``, or ``(["ssh"],
    why the configured command was not used)``."""
    from deck_tray.core import settings as cfg

    text, _warning = cfg.coerce(cfg.REMOTE_SSH_COMMAND, settings.value(SSH_COMMAND_KEY))
    try:
        return ssh_base(text, env), ""
    except ValueError as exc:
        return ["ssh"], f"the ssh command in the settings or DECK_TRAY_SSH_COMMAND cannot be read ({exc}); using ssh"


class _Link:
    """One running ssh process and what arrived on it."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.results: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.hello: dict[str, Any] | None = None
        self.synced = asyncio.Event()
        #: The parts of a snapshot received so far (it comes in several lines).
        self.snapshot: list[Session] = []
        self.stderr: collections.deque[str] = collections.deque(maxlen=20)

    def send(self, msg: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(dict(msg)) + b"\n")


class RemoteHost(QObject):
    """Keeps one host's connection up and its sessions in the registry.

    Args:
        config: the host.
        registry: where its sessions go (source ``remote <name>``, ids ``<name>:<id>``).
        ssh: the ssh command words (:func:`ssh_base`).
        command: what runs on the remote (default :data:`REMOTE_COMMAND`).
        control: the folder of shared-connection sockets (None: no connection sharing).
        backoff: seconds between reconnects (:data:`BACKOFF_S`).
        unreachable_grace: :data:`UNREACHABLE_GRACE_S`.
        silence: :data:`SILENCE_S`.
        retry: reconnect after a failure or a drop (False: one attempt, for the one-shot CLI).

    Signals:
        status_changed(HostStatus): the connection's state changed.
        connected(str): a fresh snapshot from the host is in the registry (the host's name);
            emitted on every (re)connect.
    """

    status_changed = Signal(object)
    connected = Signal(str)

    def __init__(self, config: HostConfig, registry: Any, ssh: Sequence[str], *, command: str = REMOTE_COMMAND,
                 control: Path | None = None, backoff: Sequence[float] = BACKOFF_S,
                 unreachable_grace: float = UNREACHABLE_GRACE_S, silence: float = SILENCE_S,
                 retry: bool = True) -> None:
        super().__init__()
        self.config = config
        self.registry = registry
        self.ssh = list(ssh)
        self.command = command
        self.control = control
        self.backoff = tuple(backoff)
        self.unreachable_grace = unreachable_grace
        self.silence = silence
        self.retry = retry
        self.status = HostStatus(config.name, config.dest, HostState.STOPPED, since=time.time())
        self._link: _Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._rid = 0
        self._up = asyncio.Event()
        self._grace: asyncio.TimerHandle | None = None
        #: Times (monotonic) each fresh snapshot arrived, for the figures in tests and the bench.
        self.reconnects: list[float] = []
        #: Connection attempts that ended (failed, or dropped after working).
        self.attempts = 0

    @property
    def source(self) -> str:
        """The registry source of this host's sessions."""
        return f"remote {self.config.name}"

    def argv(self) -> list[str]:
        """The ssh argv this host runs."""
        return ssh_argv(self.ssh, self.config.dest, self.command, self.control)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, and keep reconnecting, in the background."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Close the connection (the remote serve ends with its input) and stop reconnecting; the
        host's sessions leave the registry."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._close_link()
        if self._grace is not None:
            self._grace.cancel()
        self.registry.apply([], complete=True, source=self.source)
        self._set(HostState.STOPPED, "")

    def reconnect_now(self) -> None:
        """Drop the current connection so it is made again at once (the machine woke from sleep)."""
        link = self._link
        if link is not None and link.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                link.proc.kill()

    async def _run(self) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                rc, stderr = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let a bug end the reconnect loop
                log.exception("remote %s: the connection failed", self.config.name)
                rc, stderr = None, [str(exc)]
            self._up.clear()
            self.attempts += 1
            state, detail = explain(rc, stderr, self.ssh, self.config.dest, self.config.name)
            if self.status.state is HostState.INCOMPATIBLE:
                state, detail = self.status.state, self.status.detail
            if time.monotonic() - started > 30 or self.status.state is HostState.CONNECTED:
                attempt = 0
            self._set(state, detail)
            if not self.retry:
                return
            self._start_grace(detail)
            delay = self.backoff[min(attempt, len(self.backoff) - 1)]
            attempt += 1
            log.info("remote %s: %s; again in %.1f s", self.config.name, detail, delay)
            await asyncio.sleep(delay)

    async def _connect_once(self) -> tuple[int | None, list[str]]:
        if self.control is not None:
            self.control.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.status.state is HostState.STOPPED:  # a retry keeps saying why the last attempt failed
            self._set(HostState.CONNECTING, f"connecting to {self.config.dest} over ssh")
        proc = await asyncio.create_subprocess_exec(
            *self.argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=wire.MAX_LINE_BYTES)
        link = self._link = _Link(proc)
        err_task = asyncio.ensure_future(self._read_stderr(link))
        try:
            await self._read(link)
        finally:
            rc = await _end(proc)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(err_task, 2.0)
            for fut in link.results.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("the connection dropped"))
            if self._link is link:
                self._link = None
        return rc, list(link.stderr)

    async def _read_stderr(self, link: _Link) -> None:
        assert link.proc.stderr is not None
        while line := await link.proc.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip()
            link.stderr.append(text)
            log.debug("remote %s stderr: %s", self.config.name, text)

    async def _read(self, link: _Link) -> None:
        assert link.proc.stdout is not None
        timeout = HELLO_TIMEOUT_S
        while True:
            try:
                line = await asyncio.wait_for(link.proc.stdout.readline(), timeout)
            except TimeoutError:
                link.stderr.append(f"no answer from deck-tray on {self.config.dest} in {timeout:.0f} s")
                return
            except (ValueError, asyncio.LimitOverrunError):
                link.stderr.append("the remote sent a line over the size limit")
                return
            if not line:
                return
            timeout = self.silence
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("remote %s sent a line that is not JSON: %r", self.config.name, line[:200])
                continue
            if isinstance(msg, dict) and not self._handle(link, msg):
                return

    def _handle(self, link: _Link, msg: dict[str, Any]) -> bool:
        """One message from the remote; False to drop the connection."""
        op = msg.get("op")
        if op == "hello":
            link.hello = msg
            if msg.get("protocol") != wire.PROTOCOL:
                from deck_tray import __version__

                self._set(HostState.INCOMPATIBLE,
                          f"deck-tray {msg.get('version', '?')} on {self.config.dest} speaks protocol "
                          f"{msg.get('protocol')!r}, this deck-tray ({__version__}) speaks {wire.PROTOCOL}: run "
                          f"“deck-tray remote install {self.config.name}” to install this version there.")
                return False
        elif op == "snapshot":
            link.snapshot += self._sessions(msg.get("sessions") or [])
            if msg.get("more") is True:
                return True
            sessions, link.snapshot = link.snapshot, []
            self.registry.apply(sessions, complete=True, source=self.source)
            if self._grace is not None:
                self._grace.cancel()
                self._grace = None
            link.synced.set()
            self._up.set()
            self.reconnects.append(time.monotonic())
            self._set(HostState.CONNECTED, f"{len(sessions)} sessions", version=str((link.hello or {}).get("version")))
            self.connected.emit(self.config.name)
        elif op == "session":
            sessions = self._sessions([msg.get("session")])
            if sessions and link.synced.is_set():
                self.registry.apply(sessions, complete=False, source=self.source)
        elif op == "removed":
            if isinstance(msg.get("id"), str):
                self.registry.remove([remote_id(self.config.name, msg["id"])])
        elif op == "result":
            rid = msg.get("rid")
            fut = link.results.pop(rid, None) if isinstance(rid, int) else None
            if fut is not None and not fut.done():
                fut.set_result(msg)
            elif msg.get("error"):
                log.warning("remote %s: %s", self.config.name, msg["error"])
        return True

    def _sessions(self, items: Sequence[Any]) -> list[Session]:
        out = []
        for d in items:
            if not isinstance(d, Mapping):
                continue
            try:
                previous = self.registry.get(remote_id(self.config.name, str(d.get("id"))))
                out.append(wire.session_from_wire(d, self.config.name, previous))
            except wire.WireError as exc:
                log.warning("remote %s sent %s", self.config.name, exc)
        return out

    async def _close_link(self) -> None:
        link = self._link
        if link is None:
            return
        if link.proc.stdin is not None:
            link.proc.stdin.close()
        await _end(link.proc, 2.0)

    # -- what the user sees -------------------------------------------------------------------------

    def _set(self, state: HostState, detail: str, version: str = "") -> None:
        old = self.status
        count = sum(1 for s in self.registry.sessions() if s.host == self.config.name)
        since = old.since if old.state is state else time.time()
        new = HostStatus(self.config.name, self.config.dest, state, detail, since, version or old.version, count)
        if new != old:
            self.status = new
            self.status_changed.emit(new)

    def _start_grace(self, detail: str) -> None:
        if self._grace is None:
            self._grace = asyncio.get_running_loop().call_later(self.unreachable_grace, self._mark_unreachable, detail)

    def _mark_unreachable(self, detail: str) -> None:
        """Still down after the grace: its sessions are shown unreachable, with why and since when."""
        self._grace = None
        if self._up.is_set():
            return
        when = time.strftime("%H:%M", time.localtime(self.status.since))
        why = self.status.detail or detail
        stale = [dataclasses.replace(s, status=SessionStatus.UNKNOWN, pending=None, pid=None,
                                     reason=f"{self.config.name} unreachable since {when}: {why} "
                                            f"(last seen: {s.status.label})")
                 for s in self.registry.sessions() if s.host == self.config.name
                 and not s.reason.startswith(f"{self.config.name} unreachable")]
        if stale:
            self.registry.apply(stale, complete=False, source=self.source)

    # -- answers ----------------------------------------------------------------------------------

    async def request(self, msg: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request (``rid`` added) on the current connection and wait for its result.

        Raises:
            NotConnectedError: no connection (nothing was sent).
            ConnectionError: the connection dropped after the request left, before the result.
            TimeoutError: no result within ``timeout`` seconds.
        """
        link = self._link
        if link is None or not link.synced.is_set() or link.proc.stdin is None:
            raise NotConnectedError(f"not connected to {self.config.dest}")
        self._rid += 1
        rid = self._rid
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        link.results[rid] = fut
        try:
            link.send({**msg, "rid": rid})
            await link.proc.stdin.drain()
        except (OSError, RuntimeError) as exc:
            link.results.pop(rid, None)
            raise ConnectionError(str(exc)) from exc
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            link.results.pop(rid, None)

    async def search_history(self, query: SearchQuery, timeout: float = SEARCH_TIMEOUT_S) -> HostSearch:
        """Search this host's history (``search`` request, :mod:`deck_tray.core.wire`); never
        raises for the host's problems: a host not connected, an older deck-tray there (it
        answers "unknown op"), no answer within ``timeout`` seconds or an error there is a
        :class:`HostSearch` with a ``problem`` and what to do."""
        name, dest = self.config.name, self.config.dest
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        def failed(problem: SearchProblem, detail: str) -> HostSearch:
            return HostSearch(name, problem=problem, detail=detail, elapsed_s=loop.time() - t0)

        state = self.status.state
        if state is not HostState.CONNECTED:
            why = self.status.detail.replace(" deck-tray keeps trying.", "") or state.value
            problem = {HostState.CONNECTING: SearchProblem.CONNECTING,
                       HostState.INCOMPATIBLE: SearchProblem.OTHER_VERSION}.get(state, SearchProblem.NOT_REACHABLE)
            return failed(problem, f"{name} ({dest}) is not connected: {why}")
        try:
            result = await self.request({"op": "search", **wire.search_to_wire(query)}, timeout)
        except TimeoutError:
            return failed(SearchProblem.NO_ANSWER, f"{name} ({dest}) did not answer the search within "
                                                   f"{timeout:.0f} s; try again (its first search indexes "
                                                   f"its whole history)")
        except ConnectionError as exc:
            return failed(SearchProblem.NOT_REACHABLE, f"{name} ({dest}) is not connected: {exc}")
        if wire.is_unknown_op(result):
            return failed(SearchProblem.TOO_OLD, f"{name}'s deck-tray is too old for history search; run "
                                                 f"deck-tray remote install {name}")
        if result.get("error"):
            return failed(SearchProblem.FAILED, f"deck-tray on {name}: {result['error']}")
        hits, bad = wire.hits_from_wire(result.get("hits"), name)
        if bad:
            log.warning("remote %s: %d search hits skipped (%s)", name, len(bad), bad[0])
        indexing = result.get("indexing")
        progress = (int(indexing[0]), int(indexing[1])) if isinstance(indexing, list) and len(indexing) == 2 \
            and all(isinstance(v, int) for v in indexing) else None
        return HostSearch(name, tuple(hits), indexing=progress, elapsed_s=loop.time() - t0)

    async def answer(self, session: Session, reply: Reply, timeout: float = ANSWER_TIMEOUT_S) -> DeliveryReport:
        """Deliver ``reply`` to ``session`` (of this host) through the remote deck-tray, which
        runs every target check there. A dropped connection is waited out (up to ``timeout``
        seconds) and the same answer sent again; the remote never delivers it twice."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        answer_id = uuid.uuid4().hex
        msg = {"op": "reply", "answer_id": answer_id, "session_id": session.local_id,
               "reply": wire.reply_to_wire(reply)}
        sent = False
        last_error = ""
        while loop.time() < deadline:
            left = deadline - loop.time()
            if not self._up.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._up.wait(), left)
                continue
            try:
                result = await self.request(msg, max(0.1, deadline - loop.time()))
            except NotConnectedError as exc:
                last_error = str(exc)
                self._up.clear()
                continue
            except ConnectionError as exc:
                last_error = str(exc)
                sent = True  # it may have left before the drop: only the same id is ever sent again
                self._up.clear()
                continue
            except TimeoutError:
                break
            if result.get("error"):
                return DeliveryReport(DeliveryState.REFUSED, f"deck-tray on {self.config.dest}: {result['error']}",
                                      reply.text)
            try:
                return wire.report_from_wire(result.get("report"))
            except wire.WireError as exc:
                return DeliveryReport(DeliveryState.UNKNOWN, f"{self.config.dest} answered oddly ({exc})", reply.text)
        if not sent:
            return DeliveryReport(DeliveryState.REFUSED, f"nothing was sent: {self.config.dest} is not connected "
                                                         f"({self.status.detail or last_error})", reply.text)
        return DeliveryReport(DeliveryState.UNKNOWN, f"the connection to {self.config.dest} dropped after the answer "
                                                     f"left and did not come back in {timeout:.0f} s; look at the "
                                                     f"session before answering again", reply.text)


def _slept() -> float:
    """Seconds this machine has been suspended since boot (0.0 where Linux's clocks are missing)."""
    boot = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boot) - time.monotonic() if boot is not None else 0.0


class Remotes(QObject):
    """Every configured host (:class:`RemoteHost` each), and the answers to their sessions.

    Args:
        registry: where the hosts' sessions go.
        hosts: the hosts to connect to.
        ssh: the ssh command words (:func:`ssh_base`).
        control: the shared-connection folder (:func:`control_dir`; None: no sharing).
        slept: seconds the machine has spent suspended so far (default: ``CLOCK_BOOTTIME`` minus
            ``CLOCK_MONOTONIC``); a jump means it woke from a suspend.
        wake_check: seconds between looks at ``slept`` (:data:`WAKE_CHECK_S`).

    Signals:
        status_changed(HostStatus): a host's connection state changed.
        hosts_changed(): hosts were added or removed (:meth:`set_hosts`).
    """

    status_changed = Signal(object)
    hosts_changed = Signal()

    def __init__(self, registry: Any, hosts: Sequence[HostConfig] = (), *, ssh: Sequence[str] = ("ssh",),
                 control: Path | None = None, slept: Callable[[], float] | None = None,
                 wake_check: float = WAKE_CHECK_S, **host_options: Any) -> None:
        super().__init__()
        self.slept = slept or _slept
        self.wake_check = wake_check
        self.registry = registry
        self.ssh = list(ssh)
        self.control = control
        self._options = host_options
        self.hosts: dict[str, RemoteHost] = {}
        self._started = False
        self._wake_task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self.set_hosts(hosts)

    def set_hosts(self, hosts: Sequence[HostConfig]) -> None:
        """Follow exactly ``hosts`` (new ones connect, removed ones are closed, changed ones
        reconnect)."""
        wanted = {h.name: h for h in hosts}
        for name, host in list(self.hosts.items()):
            if wanted.get(name) != host.config:
                del self.hosts[name]
                if self._started:  # its connection and sessions go (a host never started has neither)
                    task = asyncio.ensure_future(host.stop())
                    self._stopping.add(task)
                    task.add_done_callback(self._stopping.discard)
        for name, cfg in wanted.items():
            if name not in self.hosts:
                host = RemoteHost(cfg, self.registry, self.ssh, control=self.control, **self._options)
                host.status_changed.connect(self.status_changed)
                self.hosts[name] = host
                if self._started:
                    host.start()
        if self._started:
            self._watch_if_needed()
        self.hosts_changed.emit()

    def start(self) -> None:
        """Connect to every host (in the background)."""
        self._started = True
        for host in self.hosts.values():
            host.start()
        self._watch_if_needed()

    def _watch_if_needed(self) -> None:
        """Watch for a suspend while there is a host to reconnect (none: nothing runs, and no
        event loop is needed yet)."""
        if self._wake_task is None and self.hosts:
            self._wake_task = asyncio.ensure_future(self._watch_sleep())

    async def _watch_sleep(self) -> None:
        """Reconnect every host at once when the machine woke from a suspend (a laptop lid): the
        links died while it slept, and ssh's keep-alive would take ~30 s to notice."""
        last = self.slept()
        while True:
            await asyncio.sleep(self.wake_check)
            now = self.slept()
            if now - last > WAKE_GAP_S:
                log.info("the machine slept for %.0f s: reconnecting the remote hosts", now - last)
                for host in self.hosts.values():
                    host.reconnect_now()
            last = now

    async def stop(self) -> None:
        """Close every connection."""
        self._started = False
        if self._wake_task is not None:
            self._wake_task.cancel()
            self._wake_task = None
        await asyncio.gather(*(h.stop() for h in self.hosts.values()), return_exceptions=True)

    def statuses(self) -> list[HostStatus]:
        """Each host's connection, in configuration order."""
        return [h.status for h in self.hosts.values()]

    async def search_history(self, query: SearchQuery, timeout: float = SEARCH_TIMEOUT_S,
                             each: Callable[[HostSearch], None] | None = None) -> list[HostSearch]:
        """Search every configured host's history at once (:meth:`RemoteHost.search_history`),
        each bounded by ``timeout`` seconds; ``each`` is called with every host's answer as it
        arrives. Returns the answers in configuration order."""
        async def one(host: RemoteHost) -> HostSearch:
            got = await host.search_history(query, timeout)
            if each is not None:
                each(got)
            return got

        return list(await asyncio.gather(*(one(h) for h in list(self.hosts.values()))))

    async def answer(self, session: Session, reply: Reply) -> DeliveryReport:
        """Deliver ``reply`` to a remote ``session`` through its host (see :meth:`RemoteHost.answer`)."""
        host = self.hosts.get(session.host)
        if host is None:
            return DeliveryReport(DeliveryState.REFUSED, f"the host {session.host} is no longer configured", reply.text)
        return await host.answer(session, reply)


class RemoteHistory(QObject):
    """The remote hosts' part of the history search window (GUI thread, asyncio loop running).

    Args:
        remotes: the hosts.
        enabled: whether remote history search is on (read at every search: the
            ``remote/search_history`` setting, live).
        timeout: seconds each host may take (:data:`SEARCH_TIMEOUT_S`).

    Signals:
        answered(int, HostSearch): one host's answer to the search of generation ``int``.
    """

    answered = Signal(int, object)

    def __init__(self, remotes: Remotes, enabled: Callable[[], bool], timeout: float = SEARCH_TIMEOUT_S) -> None:
        super().__init__()
        self.remotes = remotes
        self.enabled = enabled
        self.timeout = timeout
        self._task: asyncio.Task[Any] | None = None

    def search(self, gen: int, query: SearchQuery) -> list[str]:
        """Ask every host for ``query`` in the background (an earlier search still running is
        cancelled); each answer comes as :attr:`answered` ``(gen, HostSearch)``. Returns the
        names of the hosts asked (none when remote search is off or no host is configured)."""
        self.cancel()
        if not self.enabled() or not self.remotes.hosts:
            return []
        self._task = asyncio.ensure_future(
            self.remotes.search_history(query, self.timeout, each=lambda got: self.answered.emit(gen, got)))
        return list(self.remotes.hosts)

    def cancel(self) -> None:
        """Drop the search running, if any (its answers are not emitted)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None


async def search_hosts(hosts: Sequence[HostConfig], query: SearchQuery, ssh: Sequence[str], control: Path | None,
                       timeout: float = 20.0) -> list[HostSearch]:
    """Search each host's history once (the CLI without the app), all at once: connect (at most
    ``timeout`` seconds), ask (at most :data:`SEARCH_TIMEOUT_S` more), close. One answer per
    host, in the order given; never raises for a host's problems."""
    from deck_tray.services.registry import SessionRegistry

    async def one(cfg: HostConfig) -> HostSearch:
        host = RemoteHost(cfg, SessionRegistry(announce_hold=0), ssh, control=control, retry=False)
        host.start()
        try:
            await _until(lambda: host.status.state is HostState.CONNECTED or host.attempts > 0, timeout)
            if host.status.state is not HostState.CONNECTED and not host.attempts:
                return HostSearch(cfg.name, problem=SearchProblem.NOT_REACHABLE,
                                  detail=f"{cfg.name} ({cfg.dest}) did not answer within {timeout:.0f} s")
            return await host.search_history(query, max(SEARCH_TIMEOUT_S, timeout))
        finally:
            await host.stop()

    return list(await asyncio.gather(*(one(h) for h in hosts)))


async def _until(cond: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond() and loop.time() < deadline:
        await asyncio.sleep(0.02)


async def snapshot_hosts(hosts: Sequence[HostConfig], ssh: Sequence[str], control: Path | None,
                         timeout: float = 20.0) -> tuple[list[Session], list[HostStatus]]:
    """Ask each host once for its sessions (the CLI without the app), all at once, each bounded
    by ``timeout`` seconds: the sessions of the hosts that answered, and every host's status
    (``connected``, or why not)."""
    from deck_tray.services.registry import SessionRegistry

    registry = SessionRegistry(announce_hold=0)
    found: list[Session] = []
    statuses: list[HostStatus] = []

    async def one(cfg: HostConfig) -> None:
        host = RemoteHost(cfg, registry, ssh, control=control, retry=False)
        host.start()
        await _until(lambda: host.status.state is HostState.CONNECTED or host.attempts > 0, timeout)
        status = dataclasses.replace(host.status, detail=host.status.detail.replace(" deck-tray keeps trying.", ""))
        if status.state is not HostState.CONNECTED and not host.attempts:
            status = dataclasses.replace(status, state=HostState.UNREACHABLE,
                                         detail=f"{cfg.dest} did not answer within {timeout:.0f} s")
        found.extend(s for s in registry.sessions() if s.host == cfg.name)
        statuses.append(status)
        await host.stop()

    await asyncio.gather(*(one(h) for h in hosts))
    return found, statuses


async def answer_once(cfg: HostConfig, session: Session, reply: Reply, ssh: Sequence[str], control: Path | None,
                      timeout: float = 60.0) -> DeliveryReport:
    """Connect to ``cfg``, deliver ``reply`` to its ``session`` (the CLI's ``reply HOST:ID``
    without the app), close; never raises for delivery problems."""
    from deck_tray.services.registry import SessionRegistry

    host = RemoteHost(cfg, SessionRegistry(announce_hold=0), ssh, control=control, retry=False)
    host.start()
    try:
        await _until(lambda: host.status.state is HostState.CONNECTED or host.attempts > 0, min(timeout, 30.0))
        if host.status.state is not HostState.CONNECTED:
            return DeliveryReport(DeliveryState.REFUSED, f"nothing was sent: {host.status.detail}", reply.text)
        return await host.answer(session, reply, timeout)
    finally:
        await host.stop()
