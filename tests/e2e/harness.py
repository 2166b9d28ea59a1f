"""End-to-end harness: real Claude Code / Codex CLI in a private tmux server.

Plain Python (no pytest import) so it can be used from tests, fixtures and
ad-hoc scripts alike.  Building blocks:

* :func:`find_agent_bin` - locate the pinned ``claude`` / ``codex`` binaries.
* :class:`FakeModel` - one of the fake model servers in ``tests/fakes``.
* :class:`TmuxServer` - a private tmux server with its own ``TMUX_TMPDIR``.
* :class:`ClaudeAgent` / :class:`CodexAgent` - a real agent, configured to
  talk to a :class:`FakeModel`, running in a pane of a :class:`TmuxServer`.

Everything is a context manager and cleans up after itself.  All waits are
deadline-based polls; the only fixed sleep is the 0.3 s pause between typed
text and Enter (Codex treats an Enter in the same burst as a pasted newline).

Example::

    with FakeModel("anthropic") as model, TmuxServer() as tmux:
        with ClaudeAgent(tmux, model, scratch_dir) as claude:   # start() + stop()
            claude.type_line("please FAKE_BASH now")
            claude.wait_for(r"Do you want to proceed\\?")
            claude.send_keys("1")
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import psutil

from tests import helpers
from tests.helpers import end_process, until

REPO_ROOT: Path = Path(__file__).resolve().parents[2]
"""Root of the deck-tray repository (``tests/e2e/harness.py`` -> repo)."""

FAKES_DIR: Path = REPO_ROOT / "tests" / "fakes"
"""Directory holding the fake model server scripts."""

AGENTS_DIR_ENV = "DECK_TRAY_AGENTS_DIR"
"""Env var naming the npm prefix the pinned agents are installed under."""

DEFAULT_AGENTS_DIR: Path = REPO_ROOT / ".agents"
"""Default npm prefix (``npm install --prefix .agents ...``)."""

NEWEST_AGENTS_DIR_ENV = "DECK_TRAY_NEWEST_AGENTS_DIR"
"""Env var naming the npm prefix of the newest agent releases (checked beside the pinned ones)."""

DEFAULT_NEWEST_AGENTS_DIR: Path = REPO_ROOT / ".agents-newest"
"""Default npm prefix of the newest releases (``scripts/test.sh`` installs them there)."""

AGENTS_CHOICE_ENV = "DECK_TRAY_AGENTS"
"""Env var choosing which agent builds the suite drives: ``pinned`` (default) or ``latest``.

``latest`` (``DECK_TRAY_AGENTS=latest ./scripts/test.sh``) runs every test against the newest
releases from :data:`NEWEST_AGENTS_DIR_ENV` instead; an agent not installed there (opencode,
whose newest release is the pinned one: ``deck_tray.core.agent_versions``) still comes from
:data:`AGENTS_DIR_ENV`."""

TYPE_PAUSE_S = 0.3
"""Pause between typed text and Enter (needed by Codex's paste detection)."""

POLL_INTERVAL_S = 0.2
"""Polling interval used by every wait in this module."""

__all__ = [
    "AGENTS_CHOICE_ENV",
    "AGENTS_DIR_ENV",
    "ClaudeAgent",
    "CodexAgent",
    "FakeModel",
    "HarnessError",
    "REPO_ROOT",
    "agent_builds",
    "latest_agents",
    "until",
    "TmuxServer",
    "capture_screens",
    "find_agent_bin",
    "wait_shown",
    "wait_until",
]

_COUNTER = itertools.count()
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


class HarnessError(RuntimeError):
    """A harness operation (not an assertion about the agent) failed."""


def latest_agents() -> bool:
    """Whether the suite drives the newest releases (``DECK_TRAY_AGENTS=latest``).

    Raises :class:`HarnessError` for a value other than ``pinned``, ``latest`` or empty."""
    choice = os.environ.get(AGENTS_CHOICE_ENV, "").strip().lower() or "pinned"
    if choice not in ("pinned", "latest"):
        raise HarnessError(f"{AGENTS_CHOICE_ENV}={choice!r}: expected 'pinned' or 'latest'")
    return choice == "latest"


def _installed(prefix: Path, name: str) -> str | None:
    """``<prefix>/node_modules/.bin/<name>`` when it is an executable file, else None."""
    candidate = prefix / "node_modules" / ".bin" / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def _pinned_dir() -> Path:
    return Path(os.environ.get(AGENTS_DIR_ENV) or DEFAULT_AGENTS_DIR)


def _newest_dir() -> Path:
    return Path(os.environ.get(NEWEST_AGENTS_DIR_ENV) or DEFAULT_NEWEST_AGENTS_DIR)


def find_agent_bin(name: str) -> str | None:
    """Return the path of agent executable ``name`` (``claude``/``codex``/``opencode``), or None.

    Looks first at ``$DECK_TRAY_AGENTS_DIR/node_modules/.bin/<name>`` (default
    ``<repo>/.agents``, where CI runs ``npm install --prefix .agents ...``), then on ``PATH``.
    With ``DECK_TRAY_AGENTS=latest`` (:func:`latest_agents`) the newest release in
    ``$DECK_TRAY_NEWEST_AGENTS_DIR`` (default ``<repo>/.agents-newest``) comes before both.
    """
    if latest_agents():
        newest = _installed(_newest_dir(), name)
        if newest:
            return newest
    return _installed(_pinned_dir(), name) or shutil.which(name)


def agent_builds(name: str) -> list[tuple[str, str]]:
    """``[(label, binary)]`` of agent ``name`` to test: the pinned build (:func:`find_agent_bin`),
    then the newest release from ``$DECK_TRAY_NEWEST_AGENTS_DIR`` (default ``<repo>/.agents-newest``)
    when it is installed there and is another file. Labels are ``"pinned"`` and ``"newest"``.
    With ``DECK_TRAY_AGENTS=latest`` only the newest (``[("newest", binary)]``), or the pinned
    build when no newer one is installed."""
    found = find_agent_bin(name)
    if found is None:
        return []
    if latest_agents():
        return [("newest" if found == _installed(_newest_dir(), name) else "pinned", found)]
    builds: list[tuple[str, str]] = [("pinned", found)]
    newest = _installed(_newest_dir(), name)
    if newest and Path(newest).resolve() != Path(found).resolve():
        builds.append(("newest", newest))
    return builds


wait_until = functools.partial(helpers.wait_until, interval=POLL_INTERVAL_S)
""":func:`tests.helpers.wait_until` polling every :data:`POLL_INTERVAL_S` (agents' panes and files:
``wait_until(predicate, timeout, what)``). :func:`until`, its coroutine form, is
:func:`tests.helpers.until`."""


READ_DIALOG_S = 1.0
"""Seconds a test acting as the user lets an agent's dialog be on screen before answering it, as a
person reads it first: Claude Code 2.1.332 drops a key that arrives right as the first permission
dialog of a session appears (0.5 s later it is taken; ``deck_tray.services.dispatcher.MENU_SETTLE_S``).
The pane keeps changing meanwhile (a blinking mark), so "stable" cannot be waited for."""


def wait_shown(screen: Callable[[], str], regex: str | re.Pattern[str], for_s: float = READ_DIALOG_S,
               timeout: float = 60.0) -> str:
    """Wait until ``regex`` has matched ``screen()`` in every poll for ``for_s`` seconds in a row
    (the dialog is up, and has been for that long); return the last text.

    Raises :class:`AssertionError` after ``timeout`` seconds.
    """
    rx = re.compile(regex)
    deadline = time.monotonic() + timeout
    since: float | None = None
    while True:
        text = screen()
        now = time.monotonic()
        if rx.search(text):
            since = now if since is None else since
            if now - since >= for_s:
                return text
        else:
            since = None
        if now >= deadline:
            raise AssertionError(f"{rx.pattern!r} was not shown for {for_s:g} s in a row within {timeout:.0f} s; "
                                 f"last text:\n{text[-3000:]}")
        time.sleep(0.05)


def _kill_tree(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM ``pid`` and all its descendants, SIGKILL whatever survives ``timeout``."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=timeout)


# --------------------------------------------------------------------------- fake model


class FakeModel:
    """A fake model server (``tests/fakes``) run as a subprocess.

    ``kind`` is ``"anthropic"`` (Messages API, for Claude Code), ``"openai"``
    (Responses API, for Codex) or ``"gemini"`` (Gemini API plus OpenAI chat completions, for
    Gemini CLI and Qwen Code: ``tests/e2e/gemini_harness.py``).  Use as a context manager, or call
    :meth:`start` / :meth:`stop`.  ``env`` adds variables for the server
    (``FAKE_CMD``, ``FAKE_ESCALATE``).
    """

    SCRIPTS: dict[str, str] = {
        "anthropic": "fake_llm_anthropic.py",
        "openai": "fake_llm_openai_responses.py",
        "gemini": "fake_llm_gemini.py",
    }

    def __init__(
        self,
        kind: Literal["anthropic", "openai", "gemini"],
        workdir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        if kind not in self.SCRIPTS:
            raise ValueError(f"unknown fake model kind {kind!r}")
        self.kind: str = kind
        self._own_dir = workdir is None
        self.workdir: Path = Path(workdir or tempfile.mkdtemp(prefix=f"fake-{kind}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.script: Path = FAKES_DIR / self.SCRIPTS[kind]
        self.port_file: Path = self.workdir / f"{kind}.port"
        self.log_path: Path = self.workdir / f"{kind}.requests.jsonl"
        self.output_path: Path = self.workdir / f"{kind}.server.out"
        self.extra_env: dict[str, str] = dict(env or {})
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    def start(self) -> Self:
        """Start the server and wait (up to ``start_timeout``) for its port file."""
        self.port_file.unlink(missing_ok=True)
        self.log_path.unlink(missing_ok=True)
        env = dict(os.environ, **self.extra_env)
        with open(self.output_path, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(self.script),
                    "--port",
                    "0",
                    "--port-file",
                    str(self.port_file),
                    "--log",
                    str(self.log_path),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.port_file.is_file():
                text = self.port_file.read_text().strip()
                if text:
                    self._port = int(text)
                    return self
            if self.proc.poll() is not None:
                raise HarnessError(
                    f"fake {self.kind} server exited with {self.proc.returncode}: "
                    f"{self.output_path.read_text(errors='replace')}"
                )
            if time.monotonic() >= deadline:
                self.stop()
                raise HarnessError(f"fake {self.kind} server wrote no port file in {self.start_timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        end_process(self.proc)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def port(self) -> int:
        """The TCP port the server listens on (127.0.0.1)."""
        if self._port is None:
            raise HarnessError("fake model not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no path; Codex configs add ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        """Every request logged so far, parsed (``t``, ``method``, ``path``, ``headers``, ``body``)."""
        if not self.log_path.is_file():
            return []
        out: list[dict[str, Any]] = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line being written right now
        return out

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- tmux


class TmuxServer:
    """A private tmux server, isolated from the user's.

    The server's socket lives at ``<tmpdir>/tmux-<uid>/<name>``: that is where
    ``TMUX_TMPDIR=<tmpdir> tmux -L <name>`` looks, so code under test can be
    pointed at it either with ``-S socket_path`` or with ``-L name`` plus
    :attr:`client_env`.  The harness itself always uses ``-S`` (and ``-f
    /dev/null``, so no user ``~/.tmux.conf`` is read).  Needs tmux >= 3.2
    (``new-session -e``).  ``tmpdir`` is created
    (and removed on exit) when not given; it must be short enough for a unix
    socket path.
    """

    def __init__(
        self, tmpdir: str | os.PathLike[str] | None = None, name: str | None = None, tmux_bin: str = "tmux"
    ) -> None:
        self._own_tmpdir = tmpdir is None
        self.tmpdir: Path = Path(tmpdir or tempfile.mkdtemp(prefix="dt-tmux-"))
        self.name: str = name or f"dt-{os.getpid()}-{next(_COUNTER)}"
        self.socket_dir: Path = self.tmpdir / f"tmux-{os.getuid()}"
        self.socket_path: Path = self.socket_dir / self.name
        if len(os.fsencode(self.socket_path)) > _SOCKET_PATH_MAX:
            raise ValueError(f"tmux socket path too long for a unix socket: {self.socket_path}")
        self.tmux_bin: str = tmux_bin
        self._env: dict[str, str] = self._make_env()
        self.client_env: dict[str, str] = dict(self._make_env(), TMUX_TMPDIR=str(self.tmpdir))
        """Environment for a client using ``tmux -L <name>`` (code under test): has ``TMUX_TMPDIR``."""

    @staticmethod
    def _make_env() -> dict[str, str]:
        """Minimal UTF-8 environment for the harness's tmux clients.

        The server inherits it from the first client and passes it to every
        pane (plus the agent's ``-e`` variables), so panes do not see the test
        runner's environment, nor ``TMUX_TMPDIR``.
        """
        keep = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "TZ")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env["LANG"] = "C.UTF-8"
        env["LC_ALL"] = "C.UTF-8"
        return env

    # -- lifecycle
    def start(self) -> Self:
        """Create the socket directory (the server itself starts with the first session)."""
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.socket_dir, 0o700)
        return self

    def kill(self) -> None:
        """Kill the tmux server and every process still running in its panes; idempotent."""
        if self.socket_path.exists():
            pids = self.run("list-panes", "-a", "-F", "#{pane_pid}", check=False).split()
            self.run("kill-server", check=False)
            wait_until(lambda: not self._server_alive(), 10, "tmux server to exit")
            for pid in pids:
                _kill_tree(int(pid))
        if self._own_tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _server_alive(self) -> bool:
        proc = subprocess.run(self._argv("list-sessions"), env=self._env, capture_output=True, timeout=30)
        return proc.returncode == 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()

    # -- commands
    def _argv(self, *args: str) -> list[str]:
        return [self.tmux_bin, "-u", "-f", "/dev/null", "-S", str(self.socket_path), *args]

    def run(self, *args: str, check: bool = True) -> str:
        """Run one tmux command against this server and return its stdout.

        ``args`` is an argv list (no shell).  With ``check`` a non-zero exit
        raises :class:`HarnessError` carrying tmux's stderr.
        """
        proc = subprocess.run(self._argv(*args), env=self._env, capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise HarnessError(f"tmux {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def new_session(
        self,
        name: str,
        argv: Sequence[str],
        cwd: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        width: int = 160,
        height: int = 45,
    ) -> str:
        """Start ``argv`` (exec'd directly, no shell) in a new detached session.

        ``env`` entries are set with ``new-session -e`` and override the
        server's (minimal) environment; tmux itself adds ``TMUX`` and
        ``TMUX_PANE``.  Returns the pane id, e.g. ``"%0"``.
        """
        argv = list(argv)
        if not argv:
            raise ValueError("argv must not be empty")
        if len(argv) == 1:
            # tmux runs a single-word command through the shell; keep it an exec.
            argv = ["/usr/bin/env", *argv]
        cmd = [
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            str(cwd),
            "-P",
            "-F",
            "#{pane_id}",
        ]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        cmd += ["--", *argv]
        pane = self.run(*cmd).strip()
        return pane

    def display(self, pane_id: str, fmt: str) -> str:
        """``display-message -p -t pane_id fmt`` (e.g. ``"#{pane_current_command}"``)."""
        return self.run("display-message", "-p", "-t", pane_id, fmt).rstrip("\n")

    def pane_pid(self, pane_id: str) -> int:
        """The pid of the process tmux started in the pane (``#{pane_pid}``)."""
        return int(self.display(pane_id, "#{pane_pid}"))

    def capture(self, pane_id: str) -> str:
        """The visible pane text, as ``capture-pane -p`` prints it."""
        return self.run("capture-pane", "-p", "-t", pane_id)

    def wait_for(self, pane_id: str, regex: str | re.Pattern[str], timeout: float = 90) -> str:
        """Poll the pane every 0.2 s until ``regex`` matches; return the pane text.

        On timeout (or if the pane disappears) raise :class:`AssertionError`
        with the last pane text.
        """
        pattern = re.compile(regex, re.MULTILINE) if isinstance(regex, str) else regex
        deadline = time.monotonic() + timeout
        text = ""
        while True:
            try:
                text = self.capture(pane_id)
            except HarnessError as exc:
                raise AssertionError(
                    f"pane {pane_id} gone while waiting for /{pattern.pattern}/ ({exc}); last text:\n{text}"
                ) from None
            if pattern.search(text):
                return text
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for "
                    f"/{pattern.pattern}/ in pane {pane_id}; pane text:\n{text}"
                )
            time.sleep(POLL_INTERVAL_S)

    def wait_stable(self, pane_id: str, quiet: float = 1.0, timeout: float = 30) -> str:
        """Wait until the pane text has not changed for ``quiet`` seconds; return it.

        Raises :class:`AssertionError` (with the last text) after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        last = self.capture(pane_id)
        since = time.monotonic()
        while True:
            time.sleep(POLL_INTERVAL_S)
            text = self.capture(pane_id)
            now = time.monotonic()
            if text != last:
                last, since = text, now
            elif now - since >= quiet:
                return text
            if now >= deadline:
                raise AssertionError(f"pane {pane_id} still changing after {timeout:.0f} s; last text:\n{text}")

    def send_keys(self, pane_id: str, *keys: str) -> None:
        """``send-keys`` with tmux key names (``"Enter"``, ``"Escape"``, ``"1"``, ``"BTab"``...)."""
        self.run("send-keys", "-t", pane_id, *keys)

    def send_text(self, pane_id: str, text: str) -> None:
        """Type ``text`` literally (``send-keys -l``)."""
        self.run("send-keys", "-t", pane_id, "-l", text)

    def type_line(self, pane_id: str, text: str) -> None:
        """Type ``text``, pause 0.3 s, press Enter (how a human submits a prompt)."""
        self.send_text(pane_id, text)
        time.sleep(TYPE_PAUSE_S)
        self.send_keys(pane_id, "Enter")

    def has_pane(self, pane_id: str) -> bool:
        """Whether ``pane_id`` still exists."""
        out = self.run("list-panes", "-a", "-F", "#{pane_id}", check=False)
        return pane_id in out.split()


# --------------------------------------------------------------------------- agents


def _descendants(pid: int) -> list[psutil.Process]:
    """``pid`` itself followed by all its descendants (breadth first)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _proc_matches(proc: psutil.Process, names: Iterable[str]) -> bool:
    names = set(names)
    try:
        if proc.name() in names:
            return True
        cmd = proc.cmdline()
        return bool(cmd) and os.path.basename(cmd[0]) in names
    except psutil.Error:
        return False


class _Agent:
    """Common part of :class:`ClaudeAgent` and :class:`CodexAgent`."""

    #: regex that the pane shows once the agent is ready for a prompt
    READY_RE: str = ""
    #: regex (multiline) of a "still loading" screen that must be gone before :meth:`start` returns
    LOADING_RE: str = ""
    #: command typed by :meth:`stop` for a clean exit
    EXIT_COMMAND: str = ""
    #: process names (``psutil.Process.name()`` / argv[0] basename) of the agent itself
    PROCESS_NAMES: tuple[str, ...] = ()
    #: binary name for :func:`find_agent_bin`
    BIN_NAME: str = ""

    def __init__(
        self,
        tmux: TmuxServer,
        model: FakeModel,
        scratch: str | os.PathLike[str],
        *,
        binary: str | None = None,
        session_name: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        width: int = 160,
        height: int = 45,
    ) -> None:
        self.tmux: TmuxServer = tmux
        self.model: FakeModel = model
        self.scratch: Path = Path(scratch).resolve()
        self.scratch.mkdir(parents=True, exist_ok=True)
        found = binary or find_agent_bin(self.BIN_NAME)
        if not found:
            raise HarnessError(f"{self.BIN_NAME} not found (set {AGENTS_DIR_ENV} or PATH)")
        self.binary: str = found
        self.session_name: str = session_name or f"{self.BIN_NAME}-{next(_COUNTER)}"
        self.extra_env: dict[str, str] = dict(extra_env or {})
        self.width, self.height = width, height
        self.home: Path = self.scratch / "home"
        self.project: Path = self.scratch / "project"
        self._pane: str | None = None
        self._pid: int | None = None
        self.startup_seconds: float | None = None
        """Seconds from ``new-session`` until the ready marker was on screen."""

    # -- to override
    def prepare(self) -> None:
        """Write the agent's config files (called by :meth:`start`)."""
        raise NotImplementedError

    def argv(self) -> list[str]:
        """The command line started in the pane."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        """Environment for the agent (on top of the tmux server's minimal one)."""
        env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", os.defpath),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "ANTHROPIC_BASE_URL": self.model.base_url,
            "ANTHROPIC_API_KEY": "dummy",
            "FAKE_OPENAI_KEY": "dummy",
        }
        env.update(self.extra_env)
        return env

    # -- lifecycle
    def start(self, timeout: float = 120.0) -> Self:
        """Prepare config, start the agent in a new tmux session, wait for its prompt."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.project.mkdir(parents=True, exist_ok=True)
        self.prepare()
        t0 = time.monotonic()
        self._pane = self.tmux.new_session(
            self.session_name, self.argv(), self.project, env=self.env(), width=self.width, height=self.height
        )
        try:
            self.wait_ready(timeout)
            self.startup_seconds = time.monotonic() - t0
            self._pid = wait_until(self._find_pid, 30, f"{self.BIN_NAME} process in pane {self._pane}")
        except BaseException:
            self.stop()
            raise
        return self

    def is_ready(self, text: str) -> bool:
        """Whether pane ``text`` shows the agent's input prompt (and no loading screen)."""
        if not re.search(self.READY_RE, text, re.MULTILINE):
            return False
        return not (self.LOADING_RE and re.search(self.LOADING_RE, text, re.MULTILINE))

    def wait_ready(self, timeout: float = 120.0) -> str:
        """Poll until :meth:`is_ready`; return the pane text (AssertionError with it on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.tmux.wait_for(self.pane, self.READY_RE, timeout=max(0.0, deadline - time.monotonic()))
            if self.is_ready(text):
                return text
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.BIN_NAME} not ready after {timeout:.0f} s; pane text:\n{text}")
            time.sleep(POLL_INTERVAL_S)

    def _find_pid(self) -> int | None:
        for proc in _descendants(self.tmux.pane_pid(self.pane)):
            if _proc_matches(proc, self.PROCESS_NAMES):
                return proc.pid
        return None

    def stop(self, timeout: float = 20.0) -> None:
        """Exit the agent: type the exit command if it is idle, then kill what is left."""
        if self._pane is None:
            return
        pane, self._pane = self._pane, None
        try:
            root = self.tmux.pane_pid(pane)
        except HarnessError:
            return  # pane (and process) already gone
        try:
            if self.is_ready(self.tmux.capture(pane)):
                self.tmux.type_line(pane, self.EXIT_COMMAND)
                psutil.wait_procs(_descendants(root)[:1], timeout=timeout)
        except HarnessError:
            pass
        _kill_tree(root)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- accessors and driving
    @property
    def pane(self) -> str:
        """tmux pane id (``"%N"``) the agent runs in."""
        if self._pane is None:
            raise HarnessError("agent not running")
        return self._pane

    @property
    def pid(self) -> int:
        """pid of the agent process itself (see the class docstring for which one)."""
        if self._pid is None:
            raise HarnessError("agent not started")
        return self._pid

    @property
    def pane_pid(self) -> int:
        """tmux ``#{pane_pid}`` of the agent's pane."""
        return self.tmux.pane_pid(self.pane)

    def capture(self) -> str:
        """Current pane text."""
        return self.tmux.capture(self.pane)

    def wait_for(self, regex: str | re.Pattern[str], timeout: float = 90) -> str:
        """Wait for ``regex`` on the agent's pane (see :meth:`TmuxServer.wait_for`)."""
        return self.tmux.wait_for(self.pane, regex, timeout=timeout)

    def wait_stable(self, quiet: float = 1.0, timeout: float = 30) -> str:
        """Wait until the agent's pane stops changing (see :meth:`TmuxServer.wait_stable`)."""
        return self.tmux.wait_stable(self.pane, quiet=quiet, timeout=timeout)

    def type_line(self, text: str) -> None:
        """Type a prompt and submit it (text, 0.3 s pause, Enter)."""
        self.tmux.type_line(self.pane, text)

    def send_keys(self, *keys: str) -> None:
        """Press tmux keys in the agent's pane (``"1"``, ``"y"``, ``"Escape"``, ``"Enter"``)."""
        self.tmux.send_keys(self.pane, *keys)


class ClaudeAgent(_Agent):
    """A real Claude Code (interactive TUI) in a tmux pane, talking to a fake Anthropic model.

    Layout under ``scratch``: ``home/`` (``$HOME``; ``.claude.json`` marks
    onboarding done, the ``dummy`` API key approved and the project trusted)
    and ``project/`` (the cwd).  With ``config_dir`` (absolute, or ``True``
    for ``scratch/claude-config``), ``CLAUDE_CONFIG_DIR`` is set and
    ``.claude.json`` is written there too (``claude_json`` adds keys to it).  ``settings`` is
    written as ``<config_dir>/settings.json`` (hooks etc.).

    The native ``claude`` binary is exec'd in the pane, so :attr:`pid` equals
    the pane pid; it is also the ``<pid>`` of ``<config_dir>/sessions/<pid>.json``.

    Claude Code 2.1.332 starts in "auto" permission mode (its new default: tools run without
    asking; the footer reads ``⏵⏵ auto mode on``) where 2.1.197 asks. With ``manual_mode``
    (the default) :meth:`wait_ready` switches it to the asking mode as a user would, with
    Shift+Tab, until the footer reads ``⏸ manual mode on`` (the transcript still records
    ``permissionMode: "default"``; fixture ``claude-code-2.1.332-interactive.jsonl``).
    """

    READY_RE = r"\? for shortcuts|(?:auto|manual) mode on"
    #: footer of 2.1.332's auto permission mode
    AUTO_MODE_RE = r"⏵⏵ auto mode on"
    #: footer of 2.1.332's manual (asking) permission mode
    MANUAL_MODE_RE = r"manual mode on"
    EXIT_COMMAND = "/exit"
    PROCESS_NAMES = ("claude", "claude.exe")
    BIN_NAME = "claude"

    def __init__(
        self,
        tmux: TmuxServer,
        model: FakeModel,
        scratch: str | os.PathLike[str],
        *,
        config_dir: str | os.PathLike[str] | bool | None = None,
        settings: Mapping[str, Any] | None = None,
        claude_json: Mapping[str, Any] | None = None,
        manual_mode: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(tmux, model, scratch, **kwargs)
        self.manual_mode: bool = manual_mode
        self.custom_config_dir: Path | None
        if config_dir is True:
            self.custom_config_dir = self.scratch / "claude-config"
        elif config_dir:
            self.custom_config_dir = Path(config_dir)
        else:
            self.custom_config_dir = None
        self.settings: dict[str, Any] | None = dict(settings) if settings is not None else None
        self.claude_json_extra: dict[str, Any] = dict(claude_json or {})

    @property
    def config_dir(self) -> Path:
        """Claude's config dir: ``$CLAUDE_CONFIG_DIR`` if set, else ``<home>/.claude``."""
        return self.custom_config_dir or self.home / ".claude"

    def prepare(self) -> None:
        """Write ``.claude.json`` (and ``settings.json`` if given)."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "hasCompletedOnboarding": True,
            "theme": "dark",
            "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
            "projects": {str(self.project): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}},
            # 2.1.332, with `permissions.defaultMode: "default"` in settings: skip its one-time
            # "Make auto mode your default permission mode?" offer (answered "No, keep manual
            # mode" this is what it stores); its status file says waiting / "dialog open" while
            # the offer is up, and a prompt typed then is lost.
            "hasSeenAutoDefaultNudge": True,
        }
        state.update(self.claude_json_extra)
        targets = [self.home / ".claude.json"]
        if self.custom_config_dir is not None:
            targets.append(self.custom_config_dir / ".claude.json")
        for path in targets:
            path.write_text(json.dumps(state, indent=1))
        if self.settings is not None:
            (self.config_dir / "settings.json").write_text(json.dumps(self.settings, indent=1))

    def argv(self) -> list[str]:
        """``[claude]``."""
        return [self.binary]

    def env(self) -> dict[str, str]:
        """Common agent env plus ``CLAUDE_CONFIG_DIR`` when configured."""
        env = super().env()
        if self.custom_config_dir is not None:
            env["CLAUDE_CONFIG_DIR"] = str(self.custom_config_dir)
        return env

    def wait_ready(self, timeout: float = 120.0) -> str:
        """Wait for the input prompt; with :attr:`manual_mode` leave auto mode first (Shift+Tab,
        up to 3 tries: a key sent while Claude still loads can be lost). Returns the pane text."""
        deadline = time.monotonic() + timeout
        text = super().wait_ready(timeout)
        tries = 0
        while self.manual_mode and re.search(self.AUTO_MODE_RE, text):
            if tries == 3 or time.monotonic() >= deadline:
                raise AssertionError(f"claude stayed in auto mode after {tries} Shift+Tab; pane text:\n{text}")
            tries += 1
            self.send_keys("BTab")
            try:
                text = self.tmux.wait_for(self.pane, self.MANUAL_MODE_RE,
                                          timeout=max(1.0, min(15.0, deadline - time.monotonic())))
            except AssertionError:
                text = self.capture()
        return text

    def session_file(self) -> Path:
        """``<config_dir>/sessions/<pid>.json`` (live status file of this process)."""
        return self.config_dir / "sessions" / f"{self.pid}.json"

    def session_status(self) -> dict[str, Any] | None:
        """Parsed :meth:`session_file`, or None if absent / being rewritten."""
        try:
            data = json.loads(self.session_file().read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def transcripts(self) -> list[Path]:
        """Transcript files ``<config_dir>/projects/*/*.jsonl``."""
        return sorted(self.config_dir.glob("projects/*/*.jsonl"))


class CodexAgent(_Agent):
    """A real Codex CLI TUI (``--no-daemon``) in a tmux pane, talking to a fake Responses API.

    Layout under ``scratch``: ``home/`` (``$HOME``), ``codex-home/``
    (``$CODEX_HOME`` with ``config.toml``: fake provider, ``on-request``
    approvals, read-only sandbox, trusted project, BEL notifications) and
    ``project/`` (a fresh git repo, the cwd).  ``extra_config`` is appended to
    ``config.toml``; ``hooks`` (a ``{"hooks": ...}`` mapping) is written as
    ``hooks.json`` (run without review thanks to
    ``--dangerously-bypass-hook-trust``).

    ``codex`` on PATH is a node launcher (``codex.js``) that spawns the native
    ``codex`` binary: :attr:`pane_pid` is the ``node`` process,
    :attr:`pid` its child, the native ``codex`` process.
    """

    READY_RE = r"for shortcuts"
    LOADING_RE = r"^\s*loading\s*$"  # 0.169 shows "? for shortcuts" while still "loading"
    EXIT_COMMAND = "/quit"
    PROCESS_NAMES = ("codex",)
    BIN_NAME = "codex"

    def __init__(
        self,
        tmux: TmuxServer,
        model: FakeModel,
        scratch: str | os.PathLike[str],
        *,
        extra_config: str = "",
        hooks: Mapping[str, Any] | None = None,
        extra_args: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(tmux, model, scratch, **kwargs)
        self.codex_home: Path = self.scratch / "codex-home"
        self.extra_config: str = extra_config
        self.hooks: dict[str, Any] | None = dict(hooks) if hooks is not None else None
        self.extra_args: list[str] = list(extra_args)

    def config_toml(self) -> str:
        """The ``config.toml`` text written to ``$CODEX_HOME``."""
        return f'''model = "gpt-fake"
model_provider = "fake"
approval_policy = "on-request"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[model_providers.fake]
name = "fake"
base_url = "{self.model.base_url}/v1"
wire_api = "responses"
env_key = "FAKE_OPENAI_KEY"

[projects.{json.dumps(str(self.project))}]
trust_level = "trusted"

[tui]
notifications = true
notification_method = "bel"
notification_condition = "always"
''' + (("\n" + self.extra_config + "\n") if self.extra_config else "")

    def prepare(self) -> None:
        """Write ``config.toml`` (+ ``hooks.json``) and ``git init`` the project."""
        self.codex_home.mkdir(parents=True, exist_ok=True)
        (self.codex_home / "config.toml").write_text(self.config_toml())
        if self.hooks is not None:
            (self.codex_home / "hooks.json").write_text(json.dumps(self.hooks, indent=1))
        if not (self.project / ".git").exists():
            subprocess.run(
                ["git", "init", "-q", str(self.project)],
                check=True,
                env=dict(os.environ, HOME=str(self.home)),
                capture_output=True,
                timeout=60,
            )

    def argv(self) -> list[str]:
        """``[codex, --no-daemon, --dangerously-bypass-hook-trust, *extra_args]``."""
        return [self.binary, "--no-daemon", "--dangerously-bypass-hook-trust", *self.extra_args]

    def env(self) -> dict[str, str]:
        """Common agent env plus ``CODEX_HOME``."""
        env = super().env()
        env["CODEX_HOME"] = str(self.codex_home)
        return env

    def rollouts(self) -> list[Path]:
        """Rollout files ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl``."""
        return sorted(self.codex_home.glob("sessions/*/*/*/rollout-*.jsonl"))


# --------------------------------------------------------------------------- fixture capture


def capture_screens(
    out_dir: str | os.PathLike[str], scratch_root: str | os.PathLike[str] = "/tmp/deck-tray-screens"
) -> list[Path]:
    """Capture reference pane texts of both agents into ``out_dir``; return the files.

    Each screen comes from a fresh agent whose scratch dir is always
    ``<scratch_root>/<agent>`` so paths shown on screen are stable.  Files:
    ``claude-<v>-{idle,permission-bash,question,busy}.txt`` and
    ``codex-<v>-{idle,approval,busy}.txt`` (``<v>`` read from the screen).
    Agents not found are skipped.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(scratch_root)
    written: list[Path] = []

    def save(prefix: str, version: str, kind: str, text: str) -> None:
        path = out / f"{prefix}-{version}-{kind}.txt"
        path.write_text(text, encoding="utf-8")
        written.append(path)

    with TmuxServer() as tmux:
        if find_agent_bin("claude"):
            with FakeModel("anthropic", root / "claude-fake") as model:

                def claude() -> ClaudeAgent:
                    shutil.rmtree(root / "claude", ignore_errors=True)
                    return ClaudeAgent(tmux, model, root / "claude")

                with claude() as agent:
                    idle = agent.wait_stable()
                    match = re.search(r"Claude Code v(\S+)", idle)
                    version = match.group(1) if match else "unknown"
                    save("claude", version, "idle", idle)
                with claude() as agent:
                    agent.type_line("please FAKE_BASH now")
                    agent.wait_for(r"Do you want to proceed\?[\s\S]*Esc to cancel")
                    save("claude", version, "permission-bash", agent.wait_stable())
                with claude() as agent:
                    agent.type_line("please FAKE_ASK now")
                    agent.wait_for(r"Enter to select · ↑/↓ to navigate")
                    save("claude", version, "question", agent.wait_stable())
                with claude() as agent:
                    agent.type_line("please FAKE_SLOW now")
                    # spinner line with its timer, e.g. "✶ Nesting… (1s · ↓ 6 tokens)"
                    save("claude", version, "busy", agent.wait_for(r"… \(\d+s · [\s\S]*esc to interrupt"))
        if find_agent_bin("codex"):
            with FakeModel("openai", root / "codex-fake") as model:

                def codex() -> CodexAgent:
                    shutil.rmtree(root / "codex", ignore_errors=True)
                    return CodexAgent(tmux, model, root / "codex")

                with codex() as cx:
                    idle = cx.wait_stable()
                    match = re.search(r"OpenAI Codex \(v([^)\s]+)\)", idle)
                    version = match.group(1) if match else "unknown"
                    save("codex", version, "idle", idle)
                with codex() as cx:
                    cx.type_line("please FAKE_SHELL now")
                    cx.wait_for(
                        r"Would you like to run the following command\?"
                        r"[\s\S]*Press enter to confirm or esc to cancel"
                    )
                    save("codex", version, "approval", cx.wait_stable())
                with codex() as cx:
                    cx.type_line("please FAKE_SLOW now")
                    # mid-stream: 0.169 shows its "Working (… esc to interrupt)" line only
                    # until the first text delta arrives, then just the growing answer
                    save("codex", version, "busy", cx.wait_for(r"• This answer is s"))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python3 -m tests.e2e.harness capture-screens [OUT_DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python3 -m tests.e2e.harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    cap = sub.add_parser("capture-screens", help="(re)capture tests/fixtures/screens/*.txt")
    cap.add_argument("out_dir", nargs="?", default=str(REPO_ROOT / "tests" / "fixtures" / "screens"))
    args = parser.parse_args(argv)
    if args.cmd == "capture-screens":
        for path in capture_screens(args.out_dir):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
