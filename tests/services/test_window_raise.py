"""show_terminal against a real X server (Xvfb), a real EWMH window manager (evilwm, Debian
``evilwm``: _NET_CLIENT_LIST, _NET_ACTIVE_WINDOW, _NET_WM_DESKTOP, 8 desktops) and two real kitty
windows, each running ``sh -c 'sleep …; true'`` (the sleep is the "agent": kitty → sh → sleep).

The window manager's own word is checked: the root's ``_NET_ACTIVE_WINDOW`` and
``_NET_CURRENT_DESKTOP``, read with python-xlib on a connection of the test's own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from Xlib import X
from Xlib.display import Display
from Xlib.protocol import event as xevent

from deck_tray.core.display import wayland_session
from deck_tray.services.window_raise import RaiseResult, show_terminal
from tests.helpers import wait_until

from .desktop_session import start_xvfb
from .terminal_rigs import kill_tree, need, stop_process

WAYLAND_SENTENCE = "Wayland does not let an app raise another app's window"


class Root:
    """The test's own view of the display: root properties, and the client messages a pager sends."""

    def __init__(self, display: str) -> None:
        self.dpy = Display(display)
        self.root = self.dpy.screen().root

    def cards(self, wid: int | None, name: str) -> list[int]:
        win = self.root if wid is None else self.dpy.create_resource_object("window", wid)
        prop = win.get_full_property(self.dpy.intern_atom(name), X.AnyPropertyType)
        return [] if prop is None else [int(v) for v in prop.value]

    def active(self) -> int:
        return (self.cards(None, "_NET_ACTIVE_WINDOW") or [0])[0]

    def desktop(self) -> int:
        return (self.cards(None, "_NET_CURRENT_DESKTOP") or [-1])[0]

    def windows_of(self, pid: int) -> list[int]:
        """The managed windows whose ``_NET_WM_PID`` is ``pid``."""
        return [w for w in self.cards(None, "_NET_CLIENT_LIST") if self.cards(w, "_NET_WM_PID")[:1] == [pid]]

    def window_of(self, pid: int) -> int:
        """The first managed window of ``pid``, 0 while there is none."""
        return (self.windows_of(pid) or [0])[0]

    def move_to_desktop(self, wid: int, desktop: int) -> None:
        """EWMH §5.4: a client message asking the window manager to move ``wid`` to ``desktop``."""
        win = self.dpy.create_resource_object("window", wid)
        ev = xevent.ClientMessage(window=win, client_type=self.dpy.intern_atom("_NET_WM_DESKTOP"),
                                  data=(32, [desktop, 2, 0, 0, 0]))
        self.root.send_event(ev, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask)
        self.dpy.sync()

    def close(self) -> None:
        self.dpy.close()


@dataclass
class Terminal:
    proc: subprocess.Popen[bytes]
    window: int
    agent: int  # the sleep inside it


@dataclass
class Desktop:
    display: str
    root: Root
    first: Terminal
    second: Terminal

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display}


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    need("Xvfb", "evilwm", "kitty")
    tmp = tmp_path_factory.mktemp("raise")
    xvfb, display = start_xvfb()
    procs: list[subprocess.Popen[bytes]] = [xvfb]
    root: Root | None = None
    try:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("KITTY_") and k not in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE")}
        env.update(DISPLAY=display, LIBGL_ALWAYS_SOFTWARE="1", XDG_CONFIG_HOME=str(tmp / "config"),
                   XDG_CACHE_HOME=str(tmp / "cache"))
        with open(tmp / "evilwm.log", "ab") as log:
            procs.append(subprocess.Popen(["evilwm"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log))
        root = Root(display)
        wait_until(lambda: root.cards(None, "_NET_SUPPORTING_WM_CHECK") or procs[-1].poll() is not None,
                   what="evilwm to manage the display")
        assert procs[-1].poll() is None, (tmp / "evilwm.log").read_text(errors="replace")
        kitties = []
        for n in (1, 2):
            with open(tmp / f"kitty{n}.log", "ab") as log:
                kitty = subprocess.Popen(["kitty", "--config", "NONE", "-o", "shell_integration=disabled",
                                          "-o", "confirm_os_window_close=0", "-T", f"agent {n}",
                                          "sh", "-c", f"sleep {600 + n}; true"],
                                         env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=tmp)
            procs.append(kitty)
            kitties.append(kitty)
        terminals = []
        for n, kitty in enumerate(kitties, 1):
            window = wait_until(lambda k=kitty: root.window_of(k.pid) or k.poll() is not None, timeout=30,
                                what=f"kitty {n}'s window")
            assert kitty.poll() is None, (tmp / f"kitty{n}.log").read_text(errors="replace")[-2000:]
            agent = wait_until(lambda k=kitty: next((c.pid for c in psutil.Process(k.pid).children(recursive=True)
                                                   if c.name() == "sleep"), 0), what=f"the sleep in kitty {n}")
            terminals.append(Terminal(kitty, window, agent))
        yield Desktop(display, root, *terminals)
    finally:
        if root is not None:
            root.close()
        for proc in reversed(procs):
            if proc is not xvfb:
                kill_tree(proc.pid)  # kitty's sh and sleep too
            stop_process(proc)


def run(loop: asyncio.AbstractEventLoop, pid: int, env: dict[str, str], **kw: float) -> RaiseResult:
    result = loop.run_until_complete(show_terminal(pid, env=env, **kw))
    assert isinstance(result, RaiseResult)
    return result


def test_raises_the_window_of_the_nearest_ancestor_with_one(desktop: Desktop, qloop: asyncio.AbstractEventLoop) -> None:
    root, first, second = desktop.root, desktop.first, desktop.second
    assert first.window != second.window
    for term, other in ((first, second), (second, first), (first, second)):
        result = run(qloop, term.agent, desktop.env)
        assert result.ok, result.detail
        assert result.detail.startswith("Raised kitty's window “agent"), result.detail
        wait_until(lambda t=term: root.active() == t.window, what="the window manager to activate the window")
        assert root.active() != other.window


def test_a_window_on_another_desktop_is_shown_by_switching_there(desktop: Desktop,
                                                                 qloop: asyncio.AbstractEventLoop) -> None:
    root, first, second = desktop.root, desktop.first, desktop.second
    home = root.desktop()
    there = (home + 2) % 8
    root.move_to_desktop(first.window, there)
    wait_until(lambda: root.cards(first.window, "_NET_WM_DESKTOP") == [there], what="evilwm to move the window")
    try:
        assert run(qloop, second.agent, desktop.env).ok
        wait_until(lambda: root.active() == second.window and root.desktop() == home, what="the second window")

        result = run(qloop, first.agent, desktop.env)
        assert result.ok, result.detail
        assert f"on desktop {there + 1}" in result.detail
        wait_until(lambda: root.desktop() == there and root.active() == first.window,
                   what="the switch to the first window's desktop")
    finally:
        root.move_to_desktop(first.window, home)
        wait_until(lambda: root.cards(first.window, "_NET_WM_DESKTOP") == [home], what="the window to come back")


def test_one_terminal_process_with_two_windows_raises_one_and_says_so(desktop: Desktop, tmp_path: Path,
                                                                      qloop: asyncio.AbstractEventLoop) -> None:
    """One process, two windows (kitty's OS windows; gnome-terminal-server's windows): both carry
    the same _NET_WM_PID, so the topmost is raised and the sentence says the session may be in the
    other one."""
    root = desktop.root
    sock = f"unix:{tmp_path / 'kitty.sock'}"
    env = {**os.environ, "DISPLAY": desktop.display, "LIBGL_ALWAYS_SOFTWARE": "1",
           "XDG_CONFIG_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    with open(tmp_path / "kitty.log", "ab") as log:
        kitty = subprocess.Popen(["kitty", "--config", "NONE", "-o", "allow_remote_control=socket-only",
                                  "--listen-on", sock, "-o", "confirm_os_window_close=0", "-T", "shared 1",
                                  "sh", "-c", "sleep 603; true"],
                                 env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=tmp_path)
    try:
        one = wait_until(lambda: root.window_of(kitty.pid) or kitty.poll() is not None, timeout=30,
                         what="kitty's first window")
        assert kitty.poll() is None, (tmp_path / "kitty.log").read_text(errors="replace")[-2000:]
        wait_until(lambda: (tmp_path / "kitty.sock").exists(), what="kitty's socket")
        subprocess.run(["kitty", "@", "--to", sock, "launch", "--type=os-window", "--title", "shared 2",
                        "sh", "-c", "sleep 604; true"], env=env, check=True, capture_output=True, timeout=30)
        windows = wait_until(lambda: len(root.windows_of(kitty.pid)) == 2 and root.windows_of(kitty.pid),
                             what="kitty's second window")
        agent = wait_until(lambda: next((c.pid for c in psutil.Process(kitty.pid).children(recursive=True)
                                       if c.cmdline() == ["sleep", "603"]), 0), what="the sleep in the first window")
        assert run(qloop, desktop.second.agent, desktop.env).ok
        result = run(qloop, agent, desktop.env)
        assert result.ok, result.detail
        assert "(kitty has 2 windows: the session may be in another one or in a tab)" in result.detail
        wait_until(lambda: root.active() in windows and root.active() != desktop.second.window,
                   what="one of kitty's windows to be active")
        assert one in windows
    finally:
        kill_tree(kitty.pid)
        stop_process(kitty)


def test_a_process_in_no_window_is_not_found(desktop: Desktop, qloop: asyncio.AbstractEventLoop) -> None:
    before = desktop.root.active()
    lone = subprocess.Popen(["sleep", "60"])  # a child of pytest: no ancestor has a window here
    try:
        result = run(qloop, lone.pid, desktop.env)
    finally:
        stop_process(lone)
    assert not result.ok
    assert result.detail == (f"The terminal window of pid {lone.pid} was not found; it may run in an IDE, in a "
                             "terminal that does not set _NET_WM_PID, or over SSH.")
    assert desktop.root.active() == before

    gone = run(qloop, lone.pid, desktop.env)
    assert not gone.ok
    assert gone.detail == f"Process {lone.pid} is no longer running, so there is no terminal window to show."


def test_wayland_is_refused_before_touching_x(desktop: Desktop, qloop: asyncio.AbstractEventLoop) -> None:
    before = desktop.root.active()
    env = {**desktop.env, "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}
    result = run(qloop, desktop.second.agent, env)
    assert not result.ok
    assert result.detail.startswith(WAYLAND_SENTENCE) and result.detail.endswith("switch to the terminal yourself.")
    assert "XWayland" in result.detail
    assert desktop.root.active() == before


def test_wayland_session_detection() -> None:
    assert wayland_session({"XDG_SESSION_TYPE": "wayland"})
    assert wayland_session({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"})
    assert not wayland_session({"WAYLAND_DISPLAY": "wayland-1", "XDG_SESSION_TYPE": "x11", "DISPLAY": ":0"})
    assert not wayland_session({"DISPLAY": ":0", "XDG_SESSION_TYPE": "tty"})


def test_no_display(qloop: asyncio.AbstractEventLoop) -> None:
    result = run(qloop, os.getpid(), {})
    assert not result.ok
    assert result.detail == ("There is no X display (DISPLAY is not set), so deck-tray cannot raise the terminal "
                             "window; switch to it yourself.")


def free_display_number() -> int:
    """A display number with no X socket (file or abstract) and no TCP listener."""
    with open("/proc/net/unix", encoding="utf-8", errors="replace") as fh:
        taken = fh.read()
    for n in range(4000, 4100):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and f"@/tmp/.X11-unix/X{n}\n" not in taken:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", 6000 + n)) != 0:
                    return n
    pytest.skip("no free X display number in 4000-4099")


def test_a_refused_connection(qloop: asyncio.AbstractEventLoop) -> None:
    n = free_display_number()
    result = run(qloop, os.getpid(), {"DISPLAY": f":{n}"})
    assert not result.ok
    assert result.detail.startswith(f"Could not connect to the X display :{n} (")
    assert result.detail.endswith("); switch to the terminal yourself.")


def test_an_x_server_that_never_answers_times_out(qloop: asyncio.AbstractEventLoop) -> None:
    n = free_display_number()
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(f"\0/tmp/.X11-unix/X{n}")  # abstract: python-xlib connects there when no file exists
    mute.listen(1)
    try:
        start = time.monotonic()
        result = run(qloop, os.getpid(), {"DISPLAY": f":{n}"}, timeout=0.5)
        assert time.monotonic() - start < 5
    finally:
        mute.close()  # the worker thread's pending handshake fails and it ends
    assert not result.ok
    assert result.detail == f"The X server on :{n} did not answer within 0.5 s; switch to the terminal yourself."


def test_a_display_without_a_window_manager(qloop: asyncio.AbstractEventLoop) -> None:
    need("Xvfb")
    xvfb, display = start_xvfb()
    try:
        result = run(qloop, os.getpid(), {"DISPLAY": display})
    finally:
        stop_process(xvfb)
    assert not result.ok
    assert result.detail == ("No EWMH window manager runs on this display, so nothing can raise the terminal window "
                             "(_NET_ACTIVE_WINDOW); switch to it yourself.")

