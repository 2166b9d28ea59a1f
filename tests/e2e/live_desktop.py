"""A whole private desktop around the real app, each part its own process so it can be killed.

Plain Python (no pytest import): used by ``tests/e2e/test_teardown.py`` and ``bench/soak.py``.

* :class:`LiveDesktop` — a private session bus (``dbus-daemon --session``), an Xvfb display, a
  real XEmbed tray host (``trayer``) and a real notification daemon (``dunst``), all on that
  bus and display, plus a folder that is the user's ``HOME``, ``XDG_RUNTIME_DIR``, the agents'
  config folders and the tmux socket folder.
* :class:`AppProcess` — ``python -m deck_tray`` started in that desktop (xcb platform, its log
  and stderr kept), with ``ping`` / ``sessions`` over its socket and /proc readings (RSS, fds,
  threads).
* :func:`fake_claude` — a Claude Code session made of files (live status file + transcript,
  the shapes Claude Code 2.1.197 writes) whose process is a ``sleep`` in a tmux pane.

Every wait is a deadline-based poll.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tests.helpers import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def proc_start(pid: int) -> str:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks), as Claude's ``procStart``."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[19]


def missing_tools() -> list[str]:
    """The desktop programs this module needs that are not on PATH."""
    return [t for t in ("dbus-daemon", "Xvfb", "trayer", "dunst", "dunstctl", "tmux") if shutil.which(t) is None]


class LiveDesktop:
    """Bus, display, tray host and notification daemon; each :meth:`kill_*` ends one at once.

    Args:
        tray: start ``trayer`` (an XEmbed system tray).
        dunst: start ``dunst`` (``org.freedesktop.Notifications``).

    Attributes:
        root: the private folder (removed by :meth:`close`).
        env: the environment for programs of this desktop (DISPLAY, DBUS_SESSION_BUS_ADDRESS,
            HOME, XDG_* folders, CLAUDE_CONFIG_DIR, CODEX_HOME, TMUX_TMPDIR).
    """

    def __init__(self, *, tray: bool = True, dunst: bool = True) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dt-desk-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        r = self.root
        self.home, self.runtime, self.claude, self.codex, self.tmux_dir = (
            r / "home", r / "run", r / "home" / ".claude", r / "home" / ".codex", r / "tmux")
        for d in (self.home, self.runtime, self.claude / "sessions", self.claude / "projects",
                  self.codex / "sessions", self.tmux_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.runtime, 0o700)
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "DECK_TRAY_AGENTS_DIR", "PYTHONPATH")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(HOME=str(self.home), XDG_RUNTIME_DIR=str(self.runtime),
                   XDG_CONFIG_HOME=str(r / "config"), XDG_DATA_HOME=str(r / "data"),
                   XDG_STATE_HOME=str(r / "state"), XDG_CACHE_HOME=str(r / "cache"),
                   CLAUDE_CONFIG_DIR=str(self.claude), CODEX_HOME=str(self.codex),
                   TMUX_TMPDIR=str(self.tmux_dir), NO_AT_BRIDGE="1")
        self.env = env
        try:
            self._start_bus()
            self._start_display()
            if tray:
                self._start_trayer()
            if dunst:
                (r / "dunstrc").write_text("[global]\n    font = Monospace 8\n")
                self.procs["dunst"] = subprocess.Popen(["dunst", "-conf", str(r / "dunstrc")], env=self.env,
                                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                wait_until(lambda: self.dunstctl("count", "displayed") is not None, 15, "dunst on the bus")
        except BaseException:
            self.close()
            raise

    def _start_trayer(self, tries: int = 3) -> None:
        """trayer on the display; started again when it exits at start (seen once in ~50 starts
        on a loaded machine, exit 1)."""
        for attempt in range(tries):
            log = open(self.root / "trayer.log", "ab")
            self.procs["trayer"] = subprocess.Popen(
                ["trayer", "--edge", "top", "--align", "right", "--height", "24", "--width", "10"],
                env=self.env, stdout=log, stderr=log)
            log.close()
            try:
                wait_until(self._tray_owned, 15, "trayer owns _NET_SYSTEM_TRAY_S0")
                return
            except RuntimeError:
                if attempt == tries - 1:
                    raise RuntimeError("trayer exited at start: "
                                       + (self.root / "trayer.log").read_text(errors="replace")[-500:]) from None

    def _start_bus(self) -> None:
        r, w = os.pipe()
        proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", "--nosyslog",
                                 f"--address=unix:path={self.root}/bus", f"--print-address={w}"],
                                pass_fds=[w], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            address = f.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon printed no address")
        self.procs["bus"] = proc
        self.env["DBUS_SESSION_BUS_ADDRESS"] = address

    def _start_display(self) -> None:
        """The display the desktop's programs use: an Xvfb (subclasses start a compositor)."""
        self._start_xvfb()

    def _start_xvfb(self) -> None:
        r, w = os.pipe()
        proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                                pass_fds=[w], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            raise RuntimeError("Xvfb reported no display")
        self.procs["xvfb"] = proc
        self.env["DISPLAY"] = f":{number}"

    def _tray_owned(self) -> bool:
        """Whether some window owns ``_NET_SYSTEM_TRAY_S0`` (libX11 through ctypes)."""
        if self.procs["trayer"].poll() is not None:
            raise RuntimeError(f"trayer exited ({self.procs['trayer'].returncode})")
        x = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x.XInternAtom.restype = ctypes.c_ulong
        x.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        x.XGetSelectionOwner.restype = ctypes.c_ulong
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        dpy = x.XOpenDisplay(self.env["DISPLAY"].encode())
        if not dpy:
            return False
        try:
            return bool(x.XGetSelectionOwner(dpy, x.XInternAtom(dpy, b"_NET_SYSTEM_TRAY_S0", 0)))
        finally:
            x.XCloseDisplay(dpy)

    def dunstctl(self, *args: str) -> str | None:
        """``dunstctl ARGS`` on this bus; its stdout, or None when it failed."""
        try:
            out = subprocess.run(["dunstctl", *args], env=self.env, capture_output=True, text=True, timeout=5,
                                 check=False)
        except subprocess.TimeoutExpired:
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    def displayed(self) -> int:
        """Notifications dunst shows now (0 when it does not answer)."""
        out = self.dunstctl("count", "displayed")
        return int(out) if out and out.isdigit() else 0

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one part (``bus``, ``xvfb``, ``trayer``, ``dunst``) without waiting."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """End the tray host, the notification daemon, the X server and the bus, in that order."""
        for name in ("trayer", "dunst", "xvfb", "bus"):
            self.kill(name, sig)

    def close(self) -> None:
        """End every part and remove the folder."""
        self.kill_all(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        sockets = self.tmux_socket.parent
        for sock in sockets.iterdir() if sockets.is_dir() else ():
            subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- agents' panes -------------------------------------------------------------------
    def tmux_socket_of(self, server: str = "default") -> Path:
        """A private tmux server's socket (``$TMUX_TMPDIR/tmux-<uid>/<server>``, as ``tmux -L``)."""
        return self.tmux_dir / f"tmux-{os.getuid()}" / server

    @property
    def tmux_socket(self) -> Path:
        """The default private tmux server's socket."""
        return self.tmux_socket_of()

    def tmux(self, *args: str, server: str = "default") -> subprocess.CompletedProcess[str]:
        """Run ``tmux ARGS`` against a private server (``-f /dev/null``)."""
        return subprocess.run(["tmux", "-f", "/dev/null", "-S", str(self.tmux_socket_of(server)), *args],
                              env=self.env, capture_output=True, text=True, timeout=10, check=False)

    def pane_process(self, command: str = "sleep 100000", server: str = "default") -> int:
        """A new tmux window running ``command``; returns its pid (the pane's first process)."""
        self.tmux_socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.tmux("has-session", server=server).returncode != 0:
            out = self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-P", "-F", "#{pane_pid}", command,
                            server=server)
        else:
            out = self.tmux("new-window", "-d", "-P", "-F", "#{pane_pid}", command, server=server)
        if out.returncode != 0 or not out.stdout.strip().isdigit():
            raise RuntimeError(f"tmux: {out.stderr.strip()}")
        return int(out.stdout.strip())

    def __enter__(self) -> LiveDesktop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fake_claude(desk: LiveDesktop, pid: int, status: str = "waiting", sid: str | None = None,
                cwd: str = "/home/dev/proj") -> tuple[str, Path, Path]:
    """A Claude Code session of files: transcript with a pending Bash ``tool_use`` and a live
    status file for ``pid`` (shapes of Claude Code 2.1.197, see tests/fixtures).

    Returns:
        ``(session id, status file, transcript)``.
    """
    sid = sid or str(uuid.uuid4())
    tdir = desk.claude / "projects" / cwd.replace("/", "-")
    tdir.mkdir(parents=True, exist_ok=True)
    transcript = tdir / f"{sid}.jsonl"
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    recs = [
        {"type": "user", "sessionId": sid, "cwd": cwd, "uuid": "u1", "timestamp": ts,
         "message": {"role": "user", "content": "please remove x"}},
        {"type": "assistant", "sessionId": sid, "cwd": cwd, "uuid": "a1", "timestamp": ts,
         "message": {"id": "m1", "role": "assistant", "stop_reason": "tool_use",
                     "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                  "input": {"command": "rm -f x", "description": "Remove x"}}]}},
    ]
    transcript.write_text("".join(json.dumps(r) + "\n" for r in recs))
    spath = desk.claude / "sessions" / f"{pid}.json"
    write_status(spath, pid, sid, cwd, status)
    return sid, spath, transcript


def write_status(path: Path, pid: int, sid: str, cwd: str, status: str) -> None:
    """Write a Claude live status file atomically (write + rename, as Claude does)."""
    now_ms = int(time.time() * 1000)
    rec = {"pid": pid, "sessionId": sid, "cwd": cwd, "procStart": proc_start(pid), "status": status,
           "updatedAt": now_ms, "statusUpdatedAt": now_ms}
    if status == "waiting":
        rec["waitingFor"] = "permission prompt"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rec))
    os.replace(tmp, path)


class AppProcess:
    """``python -m deck_tray`` in a :class:`LiveDesktop`.

    Args:
        desk: the desktop.
        args: extra arguments for ``deck_tray``.
        python: the interpreter (default: this one).
        env: variables to add or override.
        platform: ``QT_QPA_PLATFORM`` for the app; None leaves it unset, so the app chooses
            (deck_tray.core.display), as on a user's desktop.
    """

    def __init__(self, desk: LiveDesktop, args: list[str] | None = None, python: str = sys.executable,
                 env: dict[str, str] | None = None, platform: str | None = "xcb") -> None:
        self.desk = desk
        self.stderr_path = desk.root / f"app-{time.monotonic_ns()}.stderr"
        e = dict(desk.env, PYTHONPATH=str(REPO_ROOT), PYTHONFAULTHANDLER="1")
        e.pop("QT_QPA_PLATFORM", None)
        if platform is not None:  # None: the app chooses (core.display), as on a user's desktop
            e["QT_QPA_PLATFORM"] = platform
        e.update(env or {})
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([python, "-m", "deck_tray", *(args or [])], env=e, cwd=str(desk.home),
                                     stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr)
        self.pid = self.proc.pid

    @property
    def socket(self) -> Path:
        """The app's socket."""
        return self.desk.runtime / "deck-tray" / "ipc.sock"

    @property
    def log_path(self) -> Path:
        """The app's log file (platformdirs' user log dir under the desktop's XDG_STATE_HOME)."""
        return self.desk.root / "state" / "deck-tray" / "log" / "deck-tray.log"

    def request(self, msg: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
        """One request over the socket; None when the app does not answer."""
        from deck_tray.services import ipc

        try:
            return ipc.request(msg, path=self.socket, timeout=timeout, connect_timeout=timeout)
        except ipc.IpcError:
            return None

    def ping(self, timeout: float = 1.0) -> float | None:
        """Seconds a ``ping`` took to be answered; None when not answered within ``timeout``."""
        t0 = time.monotonic()
        return time.monotonic() - t0 if self.request({"op": "ping"}, timeout) else None

    def sessions(self) -> list[dict[str, Any]]:
        """The app's session list (``sessions`` over the socket); [] when it does not answer."""
        answer = self.request({"op": "sessions"}, timeout=10.0)
        return list(answer["sessions"]) if answer else []

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until this app (its pid, not another holding the socket) answers ``ping``.

        Raises:
            RuntimeError: it exited first (its output is in the message).
        """
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited ({self.proc.returncode}): {self.output()[-3000:]}")
            answer = self.request({"op": "ping"}, 1.0)
            return answer is not None and answer.get("pid") == self.pid

        wait_until(up, timeout, "the app answers ping", 0.1)

    def output(self) -> str:
        """What the app printed so far (stdout and stderr)."""
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def log(self) -> str:
        """The app's log file so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def status(self, field: str) -> int:
        """A ``/proc/<pid>/status`` field in its unit (``VmRSS`` in kB, ``Threads``); -1 when gone."""
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                for line in fh:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return -1

    def fds(self) -> int:
        """Open file descriptors (-1 when gone)."""
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return -1

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None when it still runs after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """SIGKILL if still running, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._stderr.close()


def churn(path: Path, stop: threading.Event) -> None:
    """Append to a watched transcript as fast as possible (watchdog events all the time)."""
    n = 0
    while not stop.is_set():
        with open(path, "a") as fh:
            fh.write(json.dumps({"type": "progress", "n": n}) + "\n")
        n += 1


def teardown_round(desk: LiveDesktop, exit_within: float = 5.0) -> tuple[int | None, float, AppProcess]:
    """The logout of issue #20: a waiting session notified and its notification clicked, file
    events streaming, then everything ended at once — the tmux server, the app (SIGTERM), the
    tray host, the notification daemon, the X server and the session bus.

    Returns:
        ``(exit code or None if still running after exit_within, seconds from the first kill to
        the exit, the app)``; the caller closes the app.
    """
    pid = desk.pane_process()
    sid, _status, transcript = fake_claude(desk, pid)
    app = AppProcess(desk)
    app.wait_ready(60)
    wait_until(lambda: any(s["id"] == sid and s["status"] == "waiting_permission" for s in app.sessions()), 30,
               "the app lists the waiting session")
    wait_until(lambda: desk.displayed() >= 1, 15, "dunst shows the notification")
    desk.dunstctl("action", "0")  # the click: the app opens the session's tab
    wait_until(lambda: "notification action" in app.log(), 10, "the click reached the app")
    stop = threading.Event()
    writer = threading.Thread(target=churn, args=(transcript, stop))
    writer.start()
    try:
        time.sleep(0.2)  # let events flow (not a wait for a condition: the load is the point)
        t0 = time.monotonic()
        desk.tmux("kill-server")
        app.proc.send_signal(signal.SIGTERM)
        desk.kill_all()
        rc = app.wait_exit(exit_within)
        return rc, time.monotonic() - t0, app
    finally:
        stop.set()
        writer.join()
