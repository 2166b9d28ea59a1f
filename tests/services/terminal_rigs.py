"""Terminals to run a stand-in agent in, for the terminal adapter tests.

Each rig starts one terminal — real kitty under Xvfb, real GNU screen, real Konsole on a private
session bus, or the fakes of WezTerm (``fake_wezterm/wezterm``) and Konsole
(``fake_konsole/konsole_service``) — and opens windows in it. Every window runs the same small
job-control shell::

    bash window.sh   # set -m; AGENT; AFTER

``AGENT`` is ``standin_agent.py`` (raw mode, bracketed paste on, every byte it receives appended
to its log). With ``set -m`` it gets its own process group and the terminal's foreground, as an
agent started from an interactive shell does. When it exits (or is stopped), the shell takes the
terminal back and runs ``AFTER``: the stand-in again, recording into a second log, under a
chosen command name (``bash`` to look like a shell, anything else to look like another program).
So "nothing was typed" is checked byte for byte in both logs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from deck_tray.core import procs
from deck_tray.core.model import AgentKind, PaneRef, Session, SessionStatus
from deck_tray.services.panes import Multiplexer, MuxSet, PaneInfo
from deck_tray.services.terminals import Kitty, Konsole, Screen, WezTerm
from tests.helpers import wait_until

from .desktop_session import start_xvfb

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "standin_agent.py"
FAKE_WEZTERM_DIR = HERE / "fake_wezterm"
FAKE_KONSOLE = HERE / "fake_konsole" / "konsole_service"
#: Debian packages of the programs the rigs need, named in skip messages.
PACKAGES = {"kitty": "kitty", "Xvfb": "xvfb", "screen": "screen", "konsole": "konsole", "dbus-daemon": "dbus",
            "bash": "bash"}
WINDOW_SCRIPT = 'set -m; "$1" "$2" "$3" "$4"; "$5" "$2" "$6" idle'


def need(*programs: str) -> None:
    """Skip the test, naming the Debian packages, when a program is missing."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pkgs = ", ".join(sorted({PACKAGES.get(p, p) for p in missing}))
        pytest.skip(f"needs {', '.join(missing)} (Debian package: {pkgs})")


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """End a process a rig started (and wait for it)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def kill_tree(root: int) -> None:
    """SIGKILL a window's processes (the rig's own: found under ``root``)."""
    try:
        tree = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return
    for p in tree:
        try:
            p.kill()
        except psutil.Error:
            pass


@contextmanager
def xvfb_display() -> Iterator[str]:
    """An Xvfb display of its own (Debian ``xvfb``) for as long as the block runs."""
    need("Xvfb")
    proc, display = start_xvfb()
    try:
        yield display
    finally:
        stop_process(proc)


def private_bus(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    """A private session bus (``dbus-daemon --session`` listening in ``workdir``); its address."""
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1",
                             f"--address=unix:path={workdir / 'bus'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    if not address:
        stop_process(proc)
        pytest.fail("dbus-daemon printed no address")
    return proc, address


@dataclass
class Agent:
    """A stand-in agent in a terminal window, and where deck-tray found it."""

    pid: int
    log: Path
    after_log: Path
    pane: PaneInfo

    @property
    def ref(self) -> PaneRef:
        return self.pane.ref()

    def session(self, status: SessionStatus = SessionStatus.IDLE) -> Session:
        return Session(id="terminal-agent-1", agent=AgentKind.CLAUDE_CODE, pid=self.pid, status=status, pane=self.ref)

    def received(self) -> bytes:
        return self.log.read_bytes() if self.log.exists() else b""

    def after_received(self) -> bytes:
        return self.after_log.read_bytes() if self.after_log.exists() else b""


class Recording(Multiplexer):
    """An adapter that notes every call that could type (``sends``), for "nothing was typed"
    without waiting: a refusal must come before any of them."""

    def __init__(self, inner: Multiplexer) -> None:
        self.inner = inner
        self.name = inner.name
        self.sends: list[tuple[str, str]] = []

    @property
    def available(self) -> bool:
        return self.inner.available

    def reason_for(self, ref: PaneRef) -> str | None:
        return self.inner.reason_for(ref)

    async def all_panes(self) -> list[PaneInfo]:
        return await self.inner.all_panes()

    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        return await self.inner.pane(ref)

    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        return await self.inner.capture(ref, lines)

    async def capture_styled(self, ref: PaneRef) -> str:
        return await self.inner.capture_styled(ref)

    async def send_literal(self, ref: PaneRef, text: str) -> None:
        self.sends.append(("literal", text))
        await self.inner.send_literal(ref, text)

    async def paste(self, ref: PaneRef, text: str) -> None:
        self.sends.append(("paste", text))
        await self.inner.paste(ref, text)

    async def send_key(self, ref: PaneRef, key: str) -> None:
        self.sends.append(("key", key))
        await self.inner.send_key(ref, key)


class Rig:
    """A terminal the tests open windows in. ``adapter`` is a fresh deck-tray adapter for it."""

    name = ""
    #: The adapter can read the window's screen (Konsole 22.12 cannot).
    reads_screen = True

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = dict(os.environ)

    @property
    def adapter(self) -> Multiplexer:
        raise NotImplementedError

    def open(self, argv: list[str]) -> None:
        """Open a new window running ``argv`` (the terminal starts on the first call)."""
        raise NotImplementedError

    def close(self, agent: Agent) -> None:
        """Close the agent's window; the terminal itself keeps running where it can."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------

    def start_agent(self, mode: str = "idle", after: str = "bash") -> Agent:
        """Open a window with the stand-in agent; wait until it runs and deck-tray finds its pane."""
        n = time.monotonic_ns()
        log, after_log = self.tmp / f"agent-{n}.bin", self.tmp / f"after-{n}.bin"
        bindir = self.tmp / f"bin-{n}"
        bindir.mkdir()
        after_exe = bindir / after
        after_exe.symlink_to(sys.executable)
        script = self.tmp / "window.sh"
        script.write_text(WINDOW_SCRIPT + "\n", encoding="utf-8")
        # A script file rather than ``-c``: screen's -X would expand the ``$1`` in an argument.
        self.open(["bash", "--norc", "--noprofile", str(script), sys.executable, str(STANDIN), str(log), mode,
                   str(after_exe), str(after_log)])
        wait_until(log.exists, what="the stand-in agent to start")
        me = [sys.executable, str(STANDIN), str(log)]
        pid = wait_until(lambda: next((p.pid for p in psutil.process_iter(["cmdline"])
                                     if (p.info.get("cmdline") or [])[:3] == me), 0), what="the agent's pid")
        pane = wait_until(lambda: asyncio.run(MuxSet([self.adapter]).pane_for_agent(pid, procs.environ(pid))),
                          what=f"{self.name} to show the agent's window")
        return Agent(pid, log, after_log, pane)

    def screen_shows(self, agent: Agent, marker: str) -> bool:
        try:
            return marker in asyncio.run(self.adapter.capture(agent.ref))
        except Exception:
            return False


def start_kitty(tmp: Path, display: str, argv: list[str], *, remote_control: bool = True) -> subprocess.Popen[bytes]:
    """Real kitty (Debian ``kitty``) on an Xvfb display running ``argv`` in its first window; with
    ``remote_control``, allowed on the socket ``tmp/kitty.sock`` only (kitty.conf's
    ``allow_remote_control socket-only`` + ``listen_on``)."""
    opts = ["--config", "NONE", "-o", "shell_integration=disabled", "-o", "confirm_os_window_close=0"]
    if remote_control:
        opts += ["-o", "allow_remote_control=socket-only", "--listen-on", f"unix:{tmp / 'kitty.sock'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITTY_")}
    env["DISPLAY"] = display
    with open(tmp / "kitty.log", "ab") as out:
        proc = subprocess.Popen(["kitty", *opts, *argv], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                cwd=tmp)
    if remote_control:
        wait_until(lambda: (tmp / "kitty.sock").exists() or proc.poll() is not None, what="kitty's socket")
        if proc.poll() is not None:
            pytest.fail(f"kitty exited: {(tmp / 'kitty.log').read_text(errors='replace')[-2000:]}")
    return proc


class KittyRig(Rig):
    """Windows of one real kitty (:func:`start_kitty`, shared by the tests of a module: its first
    window runs ``sleep``, so closing an agent's window leaves kitty running), opened with
    ``kitty @ launch``; or, without remote control, one kitty per window."""

    name = "kitty"

    def __init__(self, tmp: Path, display: str, kitty_dir: Path | None) -> None:
        super().__init__(tmp)
        self.display = display
        self.kitty_dir = kitty_dir
        self.sock = f"unix:{kitty_dir / 'kitty.sock'}" if kitty_dir else ""
        self.procs: list[subprocess.Popen[bytes]] = []
        self.windows: list[str] = []
        self._adapter = Kitty()

    @property
    def adapter(self) -> Multiplexer:
        return self._adapter

    def kitty_at(self, *args: str) -> str:
        return subprocess.run(["kitty", "@", "--to", self.sock, *args], check=True, capture_output=True,
                              text=True, timeout=20).stdout

    def open(self, argv: list[str]) -> None:
        if not self.kitty_dir:
            self.procs.append(start_kitty(self.tmp, self.display, argv, remote_control=False))
            return
        # An OS window of its own: full size, whatever the other tests left open.
        self.windows.append(self.kitty_at("launch", "--type=os-window", "--cwd", str(self.tmp), *argv).strip())

    def close(self, agent: Agent) -> None:
        self.kitty_at("close-window", "--match", f"id:{agent.ref.pane_id}")

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        for wid in self.windows:
            subprocess.run(["kitty", "@", "--to", self.sock, "close-window", "--match", f"id:{wid}"],
                           capture_output=True, timeout=20)


class ScreenRig(Rig):
    """Real GNU screen (Debian ``screen``), detached, in a private ``SCREENDIR``, UTF-8. Window 0
    runs ``sleep``, so closing an agent's window leaves the session running."""

    name = "screen"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        # A unix socket path has at most 107 bytes: keep SCREENDIR short.
        self.screendir = Path(tempfile.mkdtemp(prefix="dt-scr-"))
        self.screendir.chmod(0o700)
        self.env.update(SCREENDIR=str(self.screendir), LANG="C.UTF-8")
        for var in ("STY", "WINDOW"):
            self.env.pop(var, None)
        self.session = f"dt{os.getpid()}x{time.monotonic_ns() % 100000}"
        self.sty = ""
        self._adapter = Screen()

    @property
    def adapter(self) -> Multiplexer:
        return self._adapter

    def screen(self, *args: str) -> str:
        return subprocess.run(["screen", *args], env=self.env, capture_output=True, text=True, timeout=20,
                              cwd=self.tmp).stdout

    def open(self, argv: list[str]) -> None:
        if not self.sty:
            subprocess.run(["screen", "-dmS", self.session, "sleep", "600"], env=self.env, check=True, timeout=20,
                           cwd=self.tmp)
            self.sty = wait_until(lambda: next((w for ln in self.screen("-ls").splitlines()
                                              for w in ln.split() if w.endswith("." + self.session)), ""),
                                  what="the screen session")
        self.screen("-S", self.sty, "-X", "screen", *argv)

    def close(self, agent: Agent) -> None:
        self.screen("-S", self.sty, "-p", agent.ref.pane_id, "-X", "kill")

    def stop(self) -> None:
        if self.sty:
            server = int(self.sty.split(".")[0])
            try:
                self.screen("-S", self.sty, "-X", "quit")
            except subprocess.TimeoutExpired:  # a window that never reads can wedge the server
                kill_tree(server)
            wait_until(lambda: not psutil.pid_exists(server) or psutil.Process(server).status() == "zombie",
                       what="screen to quit")
        shutil.rmtree(self.screendir, ignore_errors=True)


class WezTermRig(Rig):
    """The fake WezTerm (``fake_wezterm/wezterm``, its CLI read from WezTerm's source): a GUI
    process whose panes run on real ptys. Pane 0 runs ``sleep``."""

    name = "wezterm"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        py_dir = tmp / "python-bin"
        py_dir.mkdir(exist_ok=True)
        shim = py_dir / "python3"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
        self.runtime = Path(tempfile.mkdtemp(prefix="dt-wez-"))
        self.env.update(PATH=os.pathsep.join([str(FAKE_WEZTERM_DIR), str(py_dir), self.env.get("PATH", "")]),
                        XDG_RUNTIME_DIR=str(self.runtime), FAKE_WEZTERM_LOG=str(tmp / "wezterm-argv.jsonl"))
        for var in ("WEZTERM_PANE", "WEZTERM_UNIX_SOCKET"):
            self.env.pop(var, None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock = ""
        self._adapter = WezTerm(str(FAKE_WEZTERM_DIR / "wezterm"))

    @property
    def adapter(self) -> Multiplexer:
        return self._adapter

    def cli(self, *args: str) -> str:
        return subprocess.run(["wezterm", "cli", "--no-auto-start", *args], env=dict(self.env,
                              WEZTERM_UNIX_SOCKET=self.sock), check=True, capture_output=True, text=True,
                              timeout=20).stdout

    def open(self, argv: list[str]) -> None:
        if self.proc is None:
            self.proc = subprocess.Popen(["wezterm", "start", "--cwd", str(self.tmp), "--", "sleep", "600"],
                                         env=self.env, stdin=subprocess.DEVNULL)
            self.sock = str(self.runtime / "wezterm" / f"gui-sock-{self.proc.pid}")
            wait_until(lambda: os.path.exists(self.sock), what="the fake WezTerm's socket")
        self.cli("spawn", "--cwd", str(self.tmp), "--", *argv)

    def close(self, agent: Agent) -> None:
        self.cli("kill-pane", "--pane-id", agent.ref.pane_id)

    def calls(self) -> list[dict[str, Any]]:
        """Every wezterm invocation but the GUI and the rig's own set-up calls."""
        log = self.tmp / "wezterm-argv.jsonl"
        rows = [json.loads(ln) for ln in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
        return [r for r in rows if not any(a in r["argv"] for a in ("spawn", "kill-pane", "start"))]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.runtime, ignore_errors=True)


class KonsoleFakeRig(Rig):
    """The fake Konsole (``fake_konsole/konsole_service``) on a private session bus; session 1 runs
    ``sleep``. ``version`` picks the behaviour: 22.12.3 (as run here), 24.05.0 and 25.12.0 (read)."""

    name = "konsole"

    def __init__(self, tmp: Path, version: str = "22.12.3") -> None:
        super().__init__(tmp)
        self.version = version
        self.reads_screen = tuple(int(x) for x in version.split(".")[:2]) >= (24, 5)
        self.bus: subprocess.Popen[str] | None = None
        self.proc: subprocess.Popen[str] | None = None
        self._adapter = Konsole()

    @property
    def adapter(self) -> Multiplexer:
        return self._adapter

    def _control(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def open(self, argv: list[str]) -> None:
        if self.proc is None:
            self.bus, address = private_bus(self.tmp)
            self.env["DBUS_SESSION_BUS_ADDRESS"] = address
            self.proc = subprocess.Popen([sys.executable, str(FAKE_KONSOLE), "--version", self.version, "--",
                                          "sleep", "600"], env=self.env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, cwd=self.tmp)
            assert self.proc.stdout is not None
            if not self.proc.stdout.readline():
                pytest.fail("the fake Konsole did not start")
        self._control({"new": argv})

    def close(self, agent: Agent) -> None:
        self._control({"close": int(agent.ref.pane_id.rsplit("/", 1)[1])})

    def stop(self) -> None:
        for proc in (self.proc, self.bus):
            if proc is not None:
                stop_process(proc)


class KonsoleRealRig(Rig):
    """Real Konsole (Debian ``konsole``) on a private session bus, Qt's offscreen platform (it needs
    no X). Each window is a Konsole process of its own (``--separate``); closing the window ends it."""

    name = "konsole"
    reads_screen = False  # Konsole 22.12 (Debian 12) has no D-Bus method for its screen

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.bus: subprocess.Popen[str] | None = None
        self.procs: list[subprocess.Popen[bytes]] = []
        runtime = Path(tempfile.mkdtemp(prefix="dt-kon-"))
        runtime.chmod(0o700)
        self.runtime = runtime
        self.env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(runtime))
        for var in [k for k in self.env if k.startswith("KONSOLE_")]:
            self.env.pop(var)
        self._adapter = Konsole()
        self.roots: dict[str, int] = {}

    @property
    def adapter(self) -> Multiplexer:
        return self._adapter

    def open(self, argv: list[str]) -> None:
        if self.bus is None:
            self.bus, address = private_bus(self.tmp)
            self.env["DBUS_SESSION_BUS_ADDRESS"] = address
        with open(self.tmp / "konsole.log", "ab") as out:
            self.procs.append(subprocess.Popen(["konsole", "--separate", "--nofork", "-e", *argv], env=self.env,
                                               stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=self.tmp))

    def close(self, agent: Agent) -> None:
        os.kill(agent.pane.pane_pid, signal.SIGHUP)  # the tab's program ends: Konsole closes the tab

    def stop(self) -> None:
        for proc in [*self.procs, *([self.bus] if self.bus else [])]:
            stop_process(proc)
        shutil.rmtree(self.runtime, ignore_errors=True)
