"""A tiny desktop for one command, on the session bus it runs in (start it under ``dbus-run-session``).

    dbus-run-session -- python desktop_session.py [--xvfb] [--dunst] [--xembed-tray] [--sni HOST]
                        [--no-dbus-env] -- COMMAND...

* ``--xvfb``: an Xvfb display (``DISPLAY`` is set for the rest);
* ``--dunst``: a real dunst on it, owning ``org.freedesktop.Notifications`` before COMMAND starts;
* ``--xembed-tray``: a window owning ``_NET_SYSTEM_TRAY_S0`` (what an XEmbed tray host does);
* ``--sni yes|no``: a ``org.kde.StatusNotifierWatcher`` whose ``IsStatusNotifierHostRegistered`` is
  true / false.

COMMAND's stdout and stderr pass through; its exit code is returned. Everything started is
stopped afterwards.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

SNW = "org.kde.StatusNotifierWatcher"


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            pass_fds=[w], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    if not number:
        raise SystemExit("Xvfb did not report a display")
    return proc, f":{number}"


def has_owner(name: str) -> bool:
    with open_dbus_connection("SESSION") as conn:
        reply = conn.send_and_get_reply(message_bus.NameHasOwner(name), timeout=2)
        return bool(reply.body[0])


def wait_for_name(name: str, proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not has_owner(name):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name} did not appear on the bus")
        time.sleep(0.05)


class XEmbedTray:
    """Owns the ``_NET_SYSTEM_TRAY_S0`` selection with a 1x1 window (libX11 through ctypes)."""

    def __init__(self, display: str) -> None:
        x = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XCreateSimpleWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong] + [ctypes.c_int] * 2 + \
            [ctypes.c_uint] * 3 + [ctypes.c_ulong] * 2
        x.XCreateSimpleWindow.restype = ctypes.c_ulong
        x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x.XInternAtom.restype = ctypes.c_ulong
        x.XSetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        x.XFlush.argtypes = [ctypes.c_void_p]
        x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.x = x
        self.dpy = x.XOpenDisplay(display.encode())
        if not self.dpy:
            raise SystemExit(f"cannot open {display}")
        win = x.XCreateSimpleWindow(self.dpy, x.XDefaultRootWindow(self.dpy), 0, 0, 1, 1, 0, 0, 0)
        atom = x.XInternAtom(self.dpy, b"_NET_SYSTEM_TRAY_S0", 0)
        x.XSetSelectionOwner(self.dpy, atom, win, 0)
        x.XSync(self.dpy, 0)

    def close(self) -> None:
        self.x.XCloseDisplay(self.dpy)


class FakeWatcher:
    """``org.kde.StatusNotifierWatcher`` answering ``IsStatusNotifierHostRegistered`` (Properties.Get)."""

    def __init__(self, host: bool) -> None:
        self.host = host
        self.conn = open_dbus_connection("SESSION")
        reply = self.conn.send_and_get_reply(message_bus.RequestName(SNW, 4), timeout=2)
        assert reply.body == (1,), reply.body
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                msg = self.conn.receive()
            except Exception:
                return
            if msg.header.message_type is not MessageType.method_call:
                continue
            member = msg.header.fields.get(HeaderFields.member)
            if member == "Get" and tuple(msg.body) == (SNW, "IsStatusNotifierHostRegistered"):
                self.conn.send(new_method_return(msg, "v", (("b", self.host),)))
            else:
                self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (str(member),)))

    def close(self) -> None:
        self.conn.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--xvfb", action="store_true")
    p.add_argument("--dunst", action="store_true")
    p.add_argument("--xembed-tray", action="store_true")
    p.add_argument("--sni", choices=["yes", "no"])
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    procs: list[subprocess.Popen[Any]] = []
    closers: list[Any] = []
    env = dict(os.environ)
    workdir = Path(tempfile.mkdtemp(prefix="dt-desk-"))
    try:
        if args.xvfb:
            xvfb, display = start_xvfb()
            procs.append(xvfb)
            env["DISPLAY"] = display
        if args.dunst:
            (workdir / "dunstrc").write_text("[global]\n    font = Monospace 8\n    markup = full\n")
            with open(workdir / "dunst.log", "w") as log:
                dunst = subprocess.Popen(["dunst", "-conf", str(workdir / "dunstrc")], env=env, stdout=log,
                                         stderr=log)
            procs.append(dunst)
            wait_for_name("org.freedesktop.Notifications", dunst)
        if args.xembed_tray:
            closers.append(XEmbedTray(env["DISPLAY"]))
        if args.sni:
            closers.append(FakeWatcher(args.sni == "yes"))
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        for c in closers:
            c.close()
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


if __name__ == "__main__":
    sys.exit(main())
