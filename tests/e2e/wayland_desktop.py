"""A real Wayland desktop for the app: GNOME's mutter or KDE's KWin, headless, with Xwayland.

Plain Python (no pytest import), beside :mod:`tests.e2e.live_desktop`, whose private folder,
session bus and process handling it keeps; the display is a compositor instead of Xvfb:

* ``mutter --headless --wayland --virtual-monitor WxH`` (mutter 43.8, Debian 12), Xwayland on
  the first free X display (read from its log: "Using public X11 display :N"), or ``--no-x11``.
* ``kwin_wayland --virtual --xwayland`` (KWin 5.27.5). Debian gives ``/usr/bin/kwin_wayland`` the
  file capability ``cap_sys_resource``, which a container without that capability cannot exec
  ("Operation not permitted"): a copy (capabilities are not copied) is run instead. The X
  display is what KWin hands the program it starts (a script that writes ``$DISPLAY``).
  ``KWIN_WAYLAND_NO_PERMISSION_CHECKS`` / ``KWIN_SCREENSHOT_NO_PERMISSION_CHECKS`` let the test's
  programs use KWin's restricted interfaces (scripting, ``org.kde.KWin.ScreenShot2``) without a
  desktop file that grants them.

What the tests read from the compositor:

* :meth:`WaylandDesktop.x_stacking` — the X11 windows bottom to top (``_NET_CLIENT_LIST_STACKING``
  that the compositor's X11 window manager keeps on the Xwayland root) and the active one.
* :meth:`WaylandDesktop.kwin_windows` — every window KWin manages, Wayland and X11 alike, bottom
  to top, from a KWin script (``workspace.stackingOrder``) whose ``print`` lands in KWin's log.
* :meth:`WaylandDesktop.kwin_screenshot` — the screen as KWin composites it (``ScreenShot2``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.live_desktop import LiveDesktop
from tests.helpers import wait_until

#: A window of its own process that takes focus when shown (the "other app" of the tests).
OTHER_WINDOW = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication(sys.argv)
w = QLabel(sys.argv[1])
w.setWindowTitle(sys.argv[1])
w.setStyleSheet("background: #c0392b; color: white; font-size: 28px;")
w.resize(1100, 700)
w.move(0, 0)
w.show()
w.raise_()
w.activateWindow()
print("shown", flush=True)
app.exec()
"""


#: Prints the X11 stacking order of $DISPLAY as JSON (see WaylandDesktop.x_stacking).
X_STACKING = r"""
import json
from Xlib import X, Xatom
from Xlib.display import Display
dpy = Display()
root = dpy.screen().root
atom = dpy.intern_atom
def prop(win, name, kind):
    p = win.get_full_property(atom(name), kind)
    return list(p.value) if p is not None else []
stack = []
for wid in prop(root, "_NET_CLIENT_LIST_STACKING", Xatom.WINDOW):
    win = dpy.create_resource_object("window", wid)
    name = win.get_full_property(atom("_NET_WM_NAME"), atom("UTF8_STRING"))
    title = name.value.decode(errors="replace") if name is not None else str(win.get_wm_name() or "")
    pid = prop(win, "_NET_WM_PID", Xatom.CARDINAL)
    stack.append((wid, title, pid[0] if pid else None))
active = prop(root, "_NET_ACTIVE_WINDOW", Xatom.WINDOW)
print(json.dumps({"stack": stack, "active": active[0] if active else 0}))
dpy.close()
"""


def missing(compositor: str) -> list[str]:
    """The programs a :class:`WaylandDesktop` with ``compositor`` needs that are not installed."""
    need = ["dbus-daemon", "Xwayland", "mutter" if compositor == "mutter" else "kwin_wayland"]
    return [t for t in need if shutil.which(t) is None]


class WaylandDesktop(LiveDesktop):
    """A session bus and a headless Wayland compositor (no tray host, no notification daemon).

    Args:
        compositor: ``mutter`` or ``kwin``.
        xwayland: start Xwayland beside it (``DISPLAY`` set); False: a Wayland-only session.
        scale: the output's scale (KWin only: ``--scale``).
        size: the virtual monitor, ``(width, height)`` in pixels.

    Attributes:
        env: as :class:`LiveDesktop`, with ``WAYLAND_DISPLAY``, ``XDG_SESSION_TYPE=wayland``,
            ``XDG_CURRENT_DESKTOP`` and, with Xwayland, ``DISPLAY``.
    """

    def __init__(self, compositor: str, *, xwayland: bool = True, scale: float = 1.0,
                 size: tuple[int, int] = (1280, 800)) -> None:
        self.compositor, self.xwayland, self.scale, self.size = compositor, xwayland, scale, size
        super().__init__(tray=False, dunst=False)

    # -- start-up ------------------------------------------------------------------------
    def _start_display(self) -> None:
        self.wl_name = f"wl-{uuid.uuid4().hex[:8]}"
        self.env.update(XDG_SESSION_TYPE="wayland", WAYLAND_DISPLAY=self.wl_name,
                        XDG_CURRENT_DESKTOP="GNOME" if self.compositor == "mutter" else "KDE")
        self.env.pop("DISPLAY", None)
        if self.compositor == "mutter":
            self._start_mutter()
        elif self.compositor == "kwin":
            self._start_kwin()
        else:
            raise ValueError(f"unknown compositor {self.compositor!r}")
        wait_until(lambda: (self.runtime / self.wl_name).exists() or self._died(), 30, "the Wayland socket")
        self._died()
        # What a desktop session does at login (dbus-update-activation-environment): services the
        # bus starts (the desktop portal and its backend) see the session's display and desktop.
        names = ("WAYLAND_DISPLAY", "DISPLAY", "XAUTHORITY", "XDG_CURRENT_DESKTOP", "XDG_SESSION_TYPE",
                 "XDG_RUNTIME_DIR", "HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
        from jeepney.bus_messages import message_bus

        activation = {k: self.env[k] for k in names if k in self.env}
        self._dbus_call(message_bus.bus_name, message_bus.object_path, "org.freedesktop.DBus",
                        "UpdateActivationEnvironment", "a{ss}", (activation,))

    def _died(self) -> bool:
        proc = self.procs["compositor"]
        if proc.poll() is not None:
            raise RuntimeError(f"{self.compositor} exited ({proc.returncode}): {self.compositor_log()[-2000:]}")
        return False

    def compositor_log(self) -> str:
        """What the compositor printed so far."""
        try:
            return (self.root / "compositor.log").read_text(errors="replace")
        except OSError:
            return ""

    def _spawn(self, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.root / "compositor.log", "ab")
        self.procs["compositor"] = subprocess.Popen(argv, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

    def _start_mutter(self) -> None:
        w, h = self.size
        argv = ["mutter", "--headless", "--wayland", "--virtual-monitor", f"{w}x{h}",
                "--wayland-display", self.wl_name]
        if not self.xwayland:
            argv.append("--no-x11")
        self._spawn(argv, dict(self.env))
        if self.xwayland:
            def public_display() -> str | None:
                self._died()
                for line in self.compositor_log().splitlines():
                    if "Using public X11 display" in line:
                        return line.split("display", 1)[1].split(",")[0].strip()
                return None

            self.env["DISPLAY"] = wait_until(public_display, 30, "mutter's Xwayland display")
            # mutter's Xwayland takes clients with the cookie it writes here (and sets XAUTHORITY
            # only in gnome-session's environment).
            self.env["XAUTHORITY"] = str(wait_until(lambda: next(self.runtime.glob(".mutter-Xwaylandauth.*"), None),
                                                    30, "mutter's Xauthority file"))

    def _start_kwin(self) -> None:
        exe = self.root / "kwin_wayland"  # a copy without the file capability (see the module doc)
        shutil.copyfile(shutil.which("kwin_wayland") or "/usr/bin/kwin_wayland", exe)  # no xattrs
        exe.chmod(0o755)
        w, h = self.size
        env = dict(self.env, KWIN_WAYLAND_NO_PERMISSION_CHECKS="1", KWIN_SCREENSHOT_NO_PERMISSION_CHECKS="1",
                   QT_LOGGING_RULES="kwin_scripting.debug=true")
        argv = [str(exe), "--virtual", "--socket", self.wl_name, "--width", str(w), "--height", str(h),
                "--scale", f"{self.scale:g}", "--no-lockscreen", "--no-global-shortcuts"]
        if self.xwayland:
            probe = self.root / "kwin-display.sh"
            out = self.root / "kwin-display"
            probe.write_text(f"#!/bin/sh\nprintf %s \"$DISPLAY\" > {out}.tmp && mv {out}.tmp {out}\n")
            probe.chmod(0o755)
            argv += ["--xwayland", str(probe)]
        self._spawn(argv, env)
        if self.xwayland:
            def x_display() -> str | None:
                self._died()
                return out.read_text().strip() if out.exists() else None

            self.env["DISPLAY"] = wait_until(x_display, 60, "KWin's Xwayland display")

    # -- what the compositor shows -------------------------------------------------------
    def other_window(self, title: str = "Other app", platform: str = "wayland") -> subprocess.Popen[bytes]:
        """Start a window of another process that takes focus (a Qt label, ``platform`` xcb or
        wayland); returns its process (the caller ends it)."""
        env = dict(self.env, QT_QPA_PLATFORM=platform)
        proc = subprocess.Popen([sys.executable, "-c", OTHER_WINDOW, title], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        self.procs[f"other-{proc.pid}"] = proc  # type: ignore[assignment]
        return proc

    def x_stacking(self) -> tuple[list[tuple[int, str, int | None]], int]:
        """The managed X11 windows bottom to top as ``(window id, title, _NET_WM_PID)``, and the
        active window's id (0 for none or a Wayland window).

        Read in a child process: python-xlib keeps extension event tables per process, and a
        connection to this Xwayland (other extensions than Xvfb's) breaks later connections to an
        Xvfb in the same process ("'type' object does not support item assignment").
        """
        out = subprocess.run([sys.executable, "-c", X_STACKING], env=self.env, capture_output=True, text=True,
                             timeout=30, check=True)
        data = json.loads(out.stdout)
        return [(int(w), str(t), p) for w, t, p in data["stack"]], int(data["active"])

    def x_display(self) -> Any:
        """A python-xlib connection to this desktop's Xwayland (the caller closes it), for a process of
        its own (see :meth:`x_stacking`). python-xlib takes the Xauthority file from ``os.environ``
        only, so it is set there for the connect."""
        from Xlib.display import Display

        old = os.environ.get("XAUTHORITY")
        os.environ["XAUTHORITY"] = self.env.get("XAUTHORITY", old or "")
        try:
            return Display(self.env["DISPLAY"])
        finally:
            if old is None:
                os.environ.pop("XAUTHORITY", None)
            else:
                os.environ["XAUTHORITY"] = old

    def kwin_windows(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Every window KWin manages, bottom to top: ``{"caption", "pid", "keepAbove", "active",
        "x11"}`` (a KWin script run over D-Bus; its ``print`` is read back from KWin's log)."""
        tag = f"DT-{uuid.uuid4().hex[:8]}"
        script = self.root / f"{tag}.js"
        script.write_text(
            "var out = [];\n"
            "var all = workspace.clientList();\n"
            "for (var i = 0; i < all.length; ++i) { var w = all[i];\n"
            "  if (!w.normalWindow && !w.dialog) continue;\n"
            "  out.push({caption: w.caption, pid: w.pid, keepAbove: w.keepAbove, order: w.stackingOrder,\n"
            "            demandsAttention: w.demandsAttention, minimized: w.minimized,\n"
            "            active: w === workspace.activeClient, x11: w.windowId > 0}); }\n"
            "out.sort(function (a, b) { return a.order - b.order; });\n"
            f"print('{tag}' + JSON.stringify(out));\n")
        sid = self._dbus_call("org.kde.KWin", "/Scripting", "org.kde.kwin.Scripting", "loadScript",
                              "ss", (str(script), tag))[0]
        del sid  # KWin 5.27 runs every loaded script on start()
        self._dbus_call("org.kde.KWin", "/Scripting", "org.kde.kwin.Scripting", "start", None, ())

        def printed() -> list[dict[str, Any]] | None:
            for line in self.compositor_log().splitlines():
                if tag + "[" in line:
                    return list(json.loads(line.split(tag, 1)[1].strip().rstrip('"')))
            return None

        try:
            return list(wait_until(printed, timeout, "the KWin script output"))
        finally:
            self._dbus_call("org.kde.KWin", "/Scripting", "org.kde.kwin.Scripting", "unloadScript", "s", (tag,))

    def kwin_screenshot(self, path: Path) -> Path:
        """The whole screen as KWin composites it (``org.kde.KWin.ScreenShot2.CaptureActiveScreen``,
        raw pixels through a pipe), saved as PNG at ``path``."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg
        from PySide6.QtGui import QImage

        r, w = os.pipe()
        addr = DBusAddress("/org/kde/KWin/ScreenShot2", bus_name="org.kde.KWin.ScreenShot2",
                           interface="org.kde.KWin.ScreenShot2")
        conn = open_dbus_connection(bus=self.env["DBUS_SESSION_BUS_ADDRESS"], enable_fds=True)
        try:
            msg = new_method_call(addr, "CaptureActiveScreen", "a{sv}h", ({"native-resolution": ("b", True)}, w))
            reply = conn.send_and_get_reply(msg, timeout=20)
        finally:
            os.close(w)
            conn.close()
        info = {k: v[1] for k, v in unwrap_msg(reply)[0].items()}
        with os.fdopen(r, "rb") as fh:
            data = fh.read()
        img = QImage(data, int(info["width"]), int(info["height"]), int(info["stride"]),
                     QImage.Format(int(info["format"])))
        img.copy().save(str(path))
        return path

    def _dbus_call(self, dest: str, path: str, iface: str, method: str, sig: str | None,
                   body: tuple[Any, ...]) -> tuple[Any, ...]:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        conn = open_dbus_connection(bus=self.env["DBUS_SESSION_BUS_ADDRESS"])
        try:
            reply = conn.send_and_get_reply(new_method_call(DBusAddress(path, dest, iface), method, sig, body),
                                            timeout=20)
        finally:
            conn.close()
        return tuple(unwrap_msg(reply))

    def kill_all(self, sig: int = 9) -> None:
        """End the helper windows, the compositor and the bus."""
        for name in [n for n in self.procs if n.startswith("other-")] + ["compositor", "bus"]:
            self.kill(name, sig)


def time_left(deadline: float) -> float:
    """Seconds until ``deadline`` (``time.monotonic()`` based), at least 0."""
    return max(0.0, deadline - time.monotonic())
