"""Warm opencode servers that deck-tray starts and owns (reference/seeds.md §3).

When the user starts an opencode session in a folder that no running server serves,
deck-tray starts one itself: ``opencode serve --hostname 127.0.0.1 --port N`` with the
folder as its working directory, on a free loopback port, protected by a fresh password.

Protocol followed (opencode 1.18.33, reference/opencode-server.md §1):

* The port is picked by binding ``127.0.0.1:0`` and closing the socket; if another program
  takes it before opencode binds (opencode then exits with ``Error: Unexpected error`` /
  ``ServeError``), another port is tried, up to :data:`PORT_ATTEMPTS` times.
* The password is ``secrets.token_urlsafe(32)``. It reaches the server **only** through its
  environment (``OPENCODE_SERVER_PASSWORD``, with ``OPENCODE_SERVER_USERNAME`` =
  :meth:`Credentials.username`): never argv (``/proc/<pid>/cmdline`` is world-readable),
  never a log line. Output lines kept for error messages have it replaced by ``***``.
  It is stored with :meth:`Credentials.store` for the URL ``http://127.0.0.1:<port>``
  (the spelling discovery uses) *before* the server starts, so a client that discovers
  the new process finds the password instead of asking the user for it.
* The server is ready when it prints ``opencode server listening on http://127.0.0.1:<port>``
  (stdout; stderr is merged into it). Without that line within ``start_timeout`` seconds
  (default 30) the start fails and the process group is killed. The last
  :data:`OUTPUT_LINES` lines of output are kept (ANSI colours removed) for the error.
* Each server runs in its own session / process group (``start_new_session=True``), so
  stopping it signals the whole group: SIGTERM, then SIGKILL after ``stop_timeout``.
* ``OPENCODE_DISABLE_AUTOUPDATE=1``: a server deck-tray owns never updates itself.

Crash handling: a watcher task per server notices an exit deck-tray did not ask for and
restarts the server on the **same port and password** (clients reconnect to the same URL)
after 1, 2, 4, … seconds (capped at 30). A run shorter than ``failure_window`` seconds, or
a restart that fails, continues a streak of failures; after ``max_failures`` (default 5)
in a row the server is :attr:`WarmState.FAILED` and :attr:`WarmServer.detail` says why.

Only plain asyncio; no Qt. Keyring calls run in the default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import secrets
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deck_tray.services.secrets import Credentials, StoreResult

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: Substring of the line opencode prints once it accepts connections.
LISTENING = "listening on http://"
#: Lines of server output kept for error messages.
OUTPUT_LINES = 50
#: Longest output line kept (characters); longer lines are cut.
MAX_LINE_CHARS = 500
#: Free ports tried on the first start before giving up (another program may take one first).
PORT_ATTEMPTS = 3
#: Seconds to wait for the output reader to reach end-of-file after the process exited.
_DRAIN_S = 2.0

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
#: Output (lower-cased) of a server that could not bind its port; opencode 1.18.33 prints only
#: ``Error: Unexpected error`` and ``ServeError`` then, so the port is also probed.
_PORT_TAKEN = ("eaddrinuse", "address already in use", "serveerror")


class WarmState(enum.Enum):
    """Life cycle of one warm server.

    ``STARTING`` → ``RUNNING`` → (crash) ``RESTARTING`` → ``RUNNING`` …; ``FAILED`` when the
    first start failed or restarts were given up; ``STOPPED`` after :meth:`WarmServer.stop`.
    """

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


#: States in which a server serves, or is about to serve again, on its URL.
LIVE_STATES = frozenset({WarmState.STARTING, WarmState.RUNNING, WarmState.RESTARTING})


@dataclass(frozen=True)
class WarmStatus:
    """A snapshot of one warm server, given to state listeners.

    Attributes:
        folder: the server's working directory (absolute, symlinks resolved).
        url: ``http://127.0.0.1:<port>``.
        state: where it is in its life cycle.
        detail: one or two sentences for the user: what happened and what to do.
        pid: the ``opencode`` process id, or None when no process runs.
        restarts: how many times it was restarted after a crash.
    """

    folder: str
    url: str
    state: WarmState
    detail: str
    pid: int | None
    restarts: int


@dataclass(frozen=True)
class WarmResult:
    """What :meth:`WarmServers.start` did.

    Attributes:
        ok: True when a server for the folder is running (started now or reused).
        folder: the folder asked for (absolute, symlinks resolved).
        url: the server's base URL (``http://127.0.0.1:<port>``), or None when none runs.
        detail: for the user: what happened and, on failure, what to do.
        output: on failure, the server's last output lines (at most :data:`OUTPUT_LINES`,
            the password replaced by ``***``), newline-separated; ``""`` on success.
        reused: True when an already running warm server was returned.
        seconds: wall time of the call (seconds).
        stored: where the password went (keyring or this run's memory), None if not stored.
        server: the server, or None when nothing was started.
    """

    ok: bool
    folder: str
    url: str | None
    detail: str
    output: str = ""
    reused: bool = False
    seconds: float = 0.0
    stored: StoreResult | None = None
    server: WarmServer | None = None


Listener = Callable[[WarmStatus], None]


@dataclass(frozen=True)
class _Launch:
    """Outcome of one spawn: ready, or why not (``detail``); ``port_taken`` asks for another port."""

    ok: bool
    detail: str = ""
    port_taken: bool = False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then close).

    Raises:
        OSError: no loopback socket could be bound.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def port_accepts(port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port`` (within ``timeout`` s)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _killpg(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group is gone or not ours."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class WarmServer:
    """One ``opencode serve`` that deck-tray started for one folder. Made by :class:`WarmServers`.

    Args:
        folder: working directory (absolute).
        binary: the ``opencode`` executable (path, or a name looked up on the child's PATH).
        port: TCP port on 127.0.0.1, kept across restarts.
        password: the server password (environment only).
        username: HTTP Basic user name (``OPENCODE_SERVER_USERNAME``).
        env: base environment of the child (the password variables are replaced).
        notify: called with a :class:`WarmStatus` after every state change.
        start_timeout: seconds to wait for the listening line.
        stop_timeout: seconds between SIGTERM and SIGKILL.
        backoff: ``(first, cap)`` restart delays in seconds; doubles per failure.
        max_failures: failures in a row after which restarts stop.
        failure_window: a run shorter than this (seconds) counts as part of a failure streak.
    """

    def __init__(self, folder: str, binary: str, port: int, password: str, username: str,
                 env: Mapping[str, str], notify: Callable[[WarmServer], None], *,
                 start_timeout: float, stop_timeout: float, backoff: tuple[float, float],
                 max_failures: int, failure_window: float) -> None:
        self._folder = folder
        self._binary = binary
        self._port = port
        self._password = password
        self._username = username
        self._env = env
        self._notify = notify
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._backoff = backoff
        self._max_failures = max_failures
        self._failure_window = failure_window
        self._state = WarmState.STARTING
        self._detail = "Starting opencode serve."
        self._restarts = 0
        self._output: deque[str] = deque(maxlen=OUTPUT_LINES)
        self._proc: asyncio.subprocess.Process | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self._ran_since = 0.0
        self._streak: list[float] = []
        self._waiters: list[asyncio.Future[None]] = []
        #: URLs whose password this server stored (forgotten on stop).
        self._stored_urls: set[str] = set()

    # -- read-only view
    @property
    def folder(self) -> str:
        """The working directory (absolute, symlinks resolved)."""
        return self._folder

    @property
    def binary(self) -> str:
        """The ``opencode`` executable it runs."""
        return self._binary

    @property
    def port(self) -> int:
        """TCP port on 127.0.0.1 (the same after restarts)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the key of its password in :class:`Credentials`."""
        return f"http://{HOST}:{self._port}"

    @property
    def state(self) -> WarmState:
        """Where it is in its life cycle."""
        return self._state

    @property
    def detail(self) -> str:
        """For the user: what happened last and, on failure, what to do."""
        return self._detail

    @property
    def pid(self) -> int | None:
        """The pid of the running ``opencode`` process (also its process group id), or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def restarts(self) -> int:
        """Successful restarts after crashes."""
        return self._restarts

    def output_tail(self) -> str:
        """The last :data:`OUTPUT_LINES` output lines (ANSI removed, password as ``***``)."""
        return "\n".join(self._output)

    def status(self) -> WarmStatus:
        """A snapshot for listeners and the UI."""
        return WarmStatus(self._folder, self.url, self._state, self._detail, self.pid, self._restarts)

    async def wait_settled(self, timeout: float) -> WarmState:
        """Wait until the state is not starting/restarting (or ``timeout`` seconds); return it."""
        if self._state in (WarmState.STARTING, WarmState.RESTARTING):
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                pass
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
        return self._state

    # -- life cycle
    def _set(self, state: WarmState, detail: str) -> None:
        if self._state is WarmState.STOPPED or (self._stopping and state is not WarmState.STOPPED):
            return  # stop() has the last word
        self._state, self._detail = state, detail
        if state not in (WarmState.STARTING, WarmState.RESTARTING):
            for fut in self._waiters:
                if not fut.done():
                    fut.set_result(None)
        self._notify(self)

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in self._env.items()
               if k not in ("OPENCODE_SERVER_PASSWORD", "OPENCODE_SERVER_USERNAME")}
        env["OPENCODE_SERVER_PASSWORD"] = self._password
        env["OPENCODE_SERVER_USERNAME"] = self._username
        env["OPENCODE_DISABLE_AUTOUPDATE"] = "1"
        return env

    def _take_line(self, raw: bytes, ready: asyncio.Future[None]) -> None:
        text = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\r")
        if self._password:
            text = text.replace(self._password, "***")
        if not text.strip():
            return
        text = text[:MAX_LINE_CHARS]
        self._output.append(text)
        log.debug("opencode serve (%s): %s", self.url, text)
        if LISTENING in text and not ready.done():
            ready.set_result(None)

    async def _pump(self, stream: asyncio.StreamReader, ready: asyncio.Future[None]) -> None:
        """Read the merged stdout/stderr to end-of-file (keeps the pipe from filling up)."""
        buf = b""
        while chunk := await stream.read(65536):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                self._take_line(raw, ready)
            if len(buf) > 4 * MAX_LINE_CHARS:
                self._take_line(buf, ready)
                buf = b""
        if buf:
            self._take_line(buf, ready)

    async def _drain(self) -> None:
        """Let the reader reach end-of-file (bounded), so the output holds the last words."""
        task = self._pump_task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), _DRAIN_S)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except (OSError, ValueError) as exc:
            log.debug("reading opencode output failed: %r", exc)

    async def _launch(self) -> _Launch:
        """Spawn the server on :attr:`port` and wait for its listening line.

        Returns ready, or why not. The process (group) is killed when it is not ready in
        time and when this coroutine is cancelled.
        """
        if self._stopping:
            return _Launch(False, "Stopped by deck-tray.")
        argv = [self._binary, "serve", "--hostname", HOST, "--port", str(self._port)]
        self._output.append(f"[deck-tray] starting {' '.join(argv)} in {self._folder}")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=self._folder, env=self._child_env(), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            self._output.append(f"[deck-tray] cannot run {self._binary}: {why}")
            return _Launch(False, f"deck-tray could not run {self._binary} ({why}). Check that opencode is "
                                  "installed (npm install -g opencode-ai) and that the configured path is right.")
        self._proc = proc
        if self._stopping:  # stop() ran while the process was being created
            await self._kill(proc)
            return _Launch(False, "Stopped by deck-tray.")
        ready: asyncio.Future[None] = loop.create_future()
        assert proc.stdout is not None
        self._pump_task = asyncio.create_task(self._pump(proc.stdout, ready), name=f"opencode-output-{proc.pid}")
        exited = asyncio.create_task(proc.wait(), name=f"opencode-wait-{proc.pid}")
        try:
            pending: set[asyncio.Future[Any]] = {ready, exited}
            await asyncio.wait(pending, timeout=self._start_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            await self._kill(proc)
            raise
        finally:
            exited.cancel()
            if not ready.done():
                ready.cancel()
        took = loop.time() - t0
        if proc.returncode is None and ready.done() and not ready.cancelled():
            log.info("opencode serve for %s listening on %s (pid %d, %.1f s)", self._folder, self.url, proc.pid, took)
            self._ran_since = time.monotonic()
            return _Launch(True)
        if proc.returncode is None:  # no listening line in time
            await self._kill(proc)
            return _Launch(False, f"opencode serve did not report that it was listening within "
                                  f"{self._start_timeout:.0f} s, so deck-tray stopped it. A first start that "
                                  "installs plugins, or a network wait, can be slow: try again, or run "
                                  f"`opencode serve` in {self._folder} in a terminal to see what it waits for.")
        await self._drain()
        _killpg(proc.pid, signal.SIGKILL)  # helpers it left behind
        tail = self.output_tail().lower()
        taken = any(s in tail for s in _PORT_TAKEN) or await port_accepts(self._port)
        why = _describe_exit(proc.returncode)
        if taken:
            return _Launch(False, f"opencode serve {why} after {took:.1f} s: port {self._port} seems to be "
                                  "taken by another program.", port_taken=True)
        return _Launch(False, f"opencode serve {why} after {took:.1f} s, before it was ready. Its last output "
                              f"is below; run `opencode serve` in {self._folder} in a terminal to see the "
                              "whole error.")

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the process group, SIGKILL it after ``stop_timeout`` s; tolerate it being gone."""
        if proc.returncode is None:
            if not _killpg(proc.pid, signal.SIGTERM):
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), self._stop_timeout)
            except TimeoutError:
                log.warning("opencode serve (pid %d) ignored SIGTERM for %.0f s; killing it",
                            proc.pid, self._stop_timeout)
                if not _killpg(proc.pid, signal.SIGKILL):
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), self._stop_timeout)
        _killpg(proc.pid, signal.SIGKILL)  # members of the group that outlived the leader
        await self._drain()

    async def _first_start(self, last_try: bool) -> _Launch:
        """Launch, and on success start the crash watcher.

        The state becomes running, or failed; or stopped when the port was taken and
        ``last_try`` is False (the caller tries another port with a new server).
        """
        outcome = await self._launch()
        if outcome.ok and not self._stopping:
            self._watcher = asyncio.create_task(self._guarded_watch(), name=f"opencode-warm-{self._port}")
            self._set(WarmState.RUNNING, f"opencode serve runs for {self._folder} on {self.url}.")
        elif outcome.port_taken and not last_try:
            self._set(WarmState.STOPPED, f"{outcome.detail} deck-tray tries another port.")
        else:
            self._set(WarmState.FAILED, outcome.detail)
        return outcome

    def _delay(self) -> float:
        first, cap = self._backoff
        return float(min(first * 2 ** (len(self._streak) - 1), cap))

    def _failed(self, now: float) -> bool:
        """Record one failure; True when the streak is long enough to give up."""
        self._streak.append(now)
        return len(self._streak) >= self._max_failures

    async def _guarded_watch(self) -> None:
        try:
            await self._watch()
        except Exception as exc:  # a bug or an OS error must not leave the state "running"
            log.exception("watching opencode serve for %s failed", self._folder)
            self._set(WarmState.FAILED, f"deck-tray stopped watching opencode serve for {self._folder} "
                                        f"({type(exc).__name__}: {exc}); stop it and start the session again.")

    async def _watch(self) -> None:
        """Wait for the process to exit; unless asked to stop, restart it with backoff."""
        while True:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            _killpg(proc.pid, signal.SIGKILL)  # now, before the group id can be reused
            await self._drain()
            now = time.monotonic()
            if now - self._ran_since >= self._failure_window:
                self._streak.clear()  # it ran long enough: a new streak starts
            last = f"opencode serve {_describe_exit(code)} after running {now - self._ran_since:.0f} s"
            log.warning("%s (%s, %s)", last, self._folder, self.url)
            give_up = self._failed(now)
            while not give_up:
                delay = self._delay()
                self._set(WarmState.RESTARTING, f"{last}; deck-tray restarts it on {self.url} in {delay:.0f} s "
                                                f"(attempt {len(self._streak)} of {self._max_failures - 1}).")
                await asyncio.sleep(delay)
                outcome = await self._launch()
                if outcome.ok:
                    self._restarts += 1
                    self._set(WarmState.RUNNING, f"{last}; deck-tray restarted it on {self.url}.")
                    break
                last = outcome.detail.split(". ")[0]
                give_up = self._failed(time.monotonic())
            if give_up:
                span = self._streak[-1] - self._streak[0]
                self._set(WarmState.FAILED,
                          f"opencode serve for {self._folder} failed {len(self._streak)} times in a row within "
                          f"{span:.0f} s (last: {last}), so deck-tray stopped restarting it. Its last output is "
                          "kept; run `opencode serve` in that folder in a terminal to see the error, then start "
                          "the session again.")
                log.warning("gave up restarting opencode serve for %s (%s)", self._folder, self.url)
                return

    async def stop(self) -> None:
        """Stop watching and terminate the process group (SIGTERM, SIGKILL after ``stop_timeout``).

        Idempotent; never raises for a process that is already gone. The state becomes
        :attr:`WarmState.STOPPED`.
        """
        self._stopping = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
        if watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self._proc is not None:
            await self._kill(self._proc)
        if self._state is not WarmState.STOPPED:
            self._set(WarmState.STOPPED, f"Stopped by deck-tray ({self.url}).")


class WarmServers:
    """The warm opencode servers of this deck-tray run: start, reuse, watch, stop.

    Args:
        credentials: where passwords are stored (default: a new :class:`Credentials`).
            Its :meth:`Credentials.username` becomes ``OPENCODE_SERVER_USERNAME``.
        env: base environment of the servers (default: ``os.environ`` at spawn time).
        start_timeout: seconds to wait for the listening line (default 30).
        stop_timeout: seconds between SIGTERM and SIGKILL (default 10).
        backoff: ``(first, cap)`` restart delays in seconds (default 1 s doubling to 30 s).
        max_failures: failures in a row after which restarts stop (default 5).
        failure_window: a run shorter than this many seconds continues a failure streak (default 60).

    Attributes:
        listeners: callables given a :class:`WarmStatus` after every state change of any
            server, on the event loop's thread. Exceptions they raise are logged.
    """

    def __init__(self, credentials: Credentials | None = None, *, env: Mapping[str, str] | None = None,
                 start_timeout: float = 30.0, stop_timeout: float = 10.0,
                 backoff: tuple[float, float] = (1.0, 30.0), max_failures: int = 5,
                 failure_window: float = 60.0) -> None:
        self.credentials = credentials if credentials is not None else Credentials()
        self._env = env
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._backoff = backoff
        self._max_failures = max_failures
        self._failure_window = failure_window
        self._servers: dict[str, WarmServer] = {}
        self.listeners: list[Listener] = []

    def _notify(self, server: WarmServer) -> None:
        status = server.status()
        log.info("warm opencode server %s for %s: %s", status.url, status.folder, status.state.value)
        for listener in list(self.listeners):
            try:
                listener(status)
            except Exception:
                log.exception("a warm-server listener failed")

    def servers(self) -> list[WarmServer]:
        """Every server started in this run that was not replaced, in start order (any state)."""
        return list(self._servers.values())

    def server_for(self, folder: str) -> WarmServer | None:
        """The warm server for ``folder`` that is running (or starting / restarting on its URL), or None."""
        server = self._servers.get(os.path.realpath(folder))
        return server if server is not None and server.state in LIVE_STATES else None

    def started_urls(self) -> list[str]:
        """Base URLs of the servers deck-tray started and that are live (starting, running, restarting)."""
        return [s.url for s in self._servers.values() if s.state in LIVE_STATES]

    async def start(self, folder: str, binary: str) -> WarmResult:
        """A running opencode server for ``folder``: the existing warm one, or a new one.

        Args:
            folder: the project folder (the server's working directory).
            binary: the ``opencode`` executable.

        Returns:
            What happened; never raises for a server that cannot start (``ok`` is False,
            ``detail`` says what to do, ``output`` holds the server's last lines).
        """
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        key = os.path.realpath(folder)
        while (existing := self._servers.get(key)) is not None and existing.state in LIVE_STATES:
            # another call started it, or it is restarting: wait for the outcome (the entry
            # may be replaced meanwhile when that call had to try another port)
            state = await existing.wait_settled(max(1.0, t0 + 2 * self._start_timeout - loop.time()))
            if state is WarmState.RUNNING:
                return WarmResult(True, key, existing.url, f"An opencode server deck-tray started already runs "
                                  f"for {key} on {existing.url}.", reused=True, seconds=loop.time() - t0,
                                  server=existing)
            if state in LIVE_STATES:
                return WarmResult(False, key, existing.url, f"The opencode server deck-tray started for {key} is "
                                  f"still {state.value} ({existing.detail}); try again in a moment.",
                                  output=existing.output_tail(), seconds=loop.time() - t0, server=existing)
        if not os.path.isdir(key):
            return WarmResult(False, key, None, f"{folder} is not an existing folder, so no opencode server was "
                              "started there.", seconds=loop.time() - t0)
        if existing is not None:  # failed or stopped: replace it
            await self._retire(existing)
            if self._servers.get(key) is not existing:  # another call replaced it meanwhile
                return await self.start(folder, binary)
        password = secrets.token_urlsafe(32)
        base_env: Mapping[str, str] = os.environ if self._env is None else self._env
        server: WarmServer | None = None
        outcome = _Launch(False, "no port was tried")
        stored: StoreResult | None = None
        for attempt in range(PORT_ATTEMPTS):
            try:
                port = free_port()
            except OSError as exc:
                outcome = _Launch(False, f"deck-tray could not find a free port on {HOST} ({exc}).")
                break
            server = WarmServer(key, binary, port, password, self.credentials.username(), base_env, self._notify,
                                start_timeout=self._start_timeout, stop_timeout=self._stop_timeout,
                                backoff=self._backoff, max_failures=self._max_failures,
                                failure_window=self._failure_window)
            self._servers[key] = server
            stored = await loop.run_in_executor(None, self.credentials.store, server.url, password)
            server._stored_urls.add(server.url)
            self._notify(server)
            try:
                outcome = await server._first_start(last_try=attempt == PORT_ATTEMPTS - 1)
            except BaseException:
                await self._retire(server)
                raise
            if outcome.ok or not outcome.port_taken:
                break
            await self._forget(server)
        assert server is not None or not outcome.ok
        took = loop.time() - t0
        if server is not None and outcome.ok:
            return WarmResult(True, key, server.url, f"Started opencode serve for {key} on {server.url} "
                              f"({took:.1f} s). {stored.detail if stored else ''}".strip(),
                              seconds=took, stored=stored, server=server)
        if server is not None:
            await self._forget(server)
        return WarmResult(False, key, None, outcome.detail, output=server.output_tail() if server else "",
                          seconds=took, server=server)

    async def _forget(self, server: WarmServer) -> None:
        """Drop the passwords ``server`` stored (it created those entries); tolerate failures."""
        loop = asyncio.get_running_loop()
        forget = getattr(self.credentials, "forget", None)
        while server._stored_urls:
            url = server._stored_urls.pop()
            if forget is None:
                continue
            try:
                await loop.run_in_executor(None, forget, url)
            except Exception as exc:  # a keyring backend may raise anything
                log.warning("could not forget the password of %s: %s", url, type(exc).__name__)

    async def _retire(self, server: WarmServer) -> None:
        try:
            await server.stop()
        except Exception:
            log.exception("stopping opencode serve for %s failed", server.folder)
        await self._forget(server)

    async def stop_all(self) -> None:
        """Terminate every server this object started and forget their stored passwords.

        SIGTERM to each process group, SIGKILL after ``stop_timeout`` seconds; servers stop
        in parallel. Failures are logged, never raised.
        """
        servers = list(self._servers.values())
        results = await asyncio.gather(*(self._retire(s) for s in servers), return_exceptions=True)
        for server, result in zip(servers, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("stopping opencode serve for %s failed: %r", server.folder, result)
