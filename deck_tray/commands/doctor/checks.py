"""What ``deck-tray doctor`` checks: the desktop, the tools and the agents deck-tray relies on.

Every probe returns :class:`Check` lines (``OK`` / ``WARN`` / ``FAIL``, what was found, what
to do) and none can hang or crash the report: blocking probes (D-Bus, X11, keyring, process
table, files) run in daemon threads, programs run as argv lists (never a shell), and each
probe is cut off after :data:`PROBE_TIMEOUT_S` seconds. A probe that fails or times out
becomes a ``WARN`` line saying so.

Probes, in report order:

* Python and PySide6 (Qt) versions; the Qt platform deck-tray would start on (X11 / Wayland /
  none) and whether Qt's xcb plugin and its libraries load (dlopen; ``ldd`` names what is missing).
* The D-Bus session bus; the tray host: a ``org.kde.StatusNotifierWatcher`` with a registered host
  on the bus (what Qt's tray uses first), else an XEmbed tray (the ``_NET_SYSTEM_TRAY_S<screen>``
  selection on the X display); the notification server (``GetServerInformation``,
  ``GetCapabilities``: ``actions`` and ``body-markup``).
* The keyring backend (``keyring.get_keyring()``; the ``fail`` backend means passwords last one run).
* tmux (>= 3.2) and zellij (>= 0.44); the agents (``claude``, ``codex``, ``opencode`` on ``PATH``,
  then ``$DECK_TRAY_AGENTS_DIR/node_modules/.bin``) against the versions deck-tray is verified with
  (:data:`deck_tray.core.agent_versions.VERIFIED_AGENTS`: the pinned release up to the newest one).
* The agent hooks (through a ``hooks_status()`` callable given by the caller) and the opencode
  servers found on this machine (``GET /global/health``; 401 means a password is needed).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import enum
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deck_tray.core import display, shortcuts
from deck_tray.core.agent_versions import VERIFIED_AGENTS, Verdict, judge
from deck_tray.core.display import WindowPlatform
from deck_tray.core.executables import find_agent, parse_version, version_text, which
from deck_tray.services import notify_dbus as fdn

T = TypeVar("T")

#: Longest any single probe may take (seconds).
PROBE_TIMEOUT_S = 2.0

TMUX_MIN = (3, 2)
ZELLIJ_MIN = (0, 44, 0)
PYTHON_MIN = (3, 11)
#: PySide6 releases known to break deck-tray (docs/adr/001-pyside6-below-6.12.md).
PYSIDE6_BROKEN_FROM = (6, 12, 0)

SNW_NAME = "org.kde.StatusNotifierWatcher"
SNW_PATH = "/StatusNotifierWatcher"

TRAY_HINT = ("GNOME: install and enable the AppIndicator extension (Debian/Ubuntu: "
             "gnome-shell-extension-appindicator); other desktops: add a system tray / StatusNotifier "
             "applet to the panel. Without a tray deck-tray keeps its window open instead.")
BUS_HINT = ("start the desktop session with a D-Bus session bus (Debian: apt install dbus-user-session, "
            "then log in again), or run deck-tray under `dbus-run-session`")

#: Shared libraries Qt's xcb plugin needs → the Debian/Ubuntu package that has them.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1", "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb.so.1": "libxcb1", "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6", "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0", "libdbus-1.so.3": "libdbus-1-3",
}

class Level(enum.Enum):
    """How a check came out. ``FAIL`` makes ``deck-tray doctor`` exit non-zero."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the report.

    Attributes:
        name: what was checked (``"tmux"``, ``"notification server"``).
        level: the verdict.
        detail: what was found (versions, names, paths, the error).
        hint: what to do about it; empty when nothing needs doing.
    """

    name: str
    level: Level
    detail: str
    hint: str = ""

    def to_json(self) -> dict[str, str]:
        """``{"name", "level", "detail", "hint"}``."""
        return {"name": self.name, "level": self.level.value, "detail": self.detail, "hint": self.hint}


class ProbeError(Exception):
    """A probe could not find out (the message says why)."""






# -- running things without hanging ----------------------------------------------------------

async def in_thread(fn: Callable[[], T], timeout: float = PROBE_TIMEOUT_S) -> T:
    """Run a blocking ``fn`` in a daemon thread; TimeoutError after ``timeout`` seconds.

    A thread that is still blocked when the report ends does not keep the process alive.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def run() -> None:
        try:
            result: Any = fn()
            ok = True
        except Exception as exc:
            result, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(deliver, ok, result)

    threading.Thread(target=run, name="deck-tray-doctor-probe", daemon=True).start()
    return await asyncio.wait_for(fut, timeout)


async def run_program(argv: list[str], env: Mapping[str, str], timeout: float = PROBE_TIMEOUT_S) -> str:
    """The stdout + stderr of ``argv`` (no shell, stdin closed, its own session); ProbeError when it
    cannot run, exits non-zero with no output, or takes longer than ``timeout`` (it is then
    killed with everything it started)."""
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT, env=dict(env),
                                                    start_new_session=True)
    except OSError as exc:
        raise ProbeError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        raise ProbeError(f"`{Path(argv[0]).name} {' '.join(argv[1:])}` did not answer within {timeout:g} s") from None
    except asyncio.CancelledError:  # the caller's time limit: still reap the child
        _kill(proc)
        await proc.wait()
        raise
    text = out.decode("utf-8", "replace").strip()
    if proc.returncode and not text:
        raise ProbeError(f"exited with code {proc.returncode}")
    return text


def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill the child and everything it started (its own session), so no pipe stays open."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


async def guarded(names: Sequence[str], aw: Awaitable[list[Check]], timeout: float = PROBE_TIMEOUT_S) -> list[Check]:
    """``await aw`` with a time limit; a timeout or any error becomes one WARN line per name."""
    try:
        return await asyncio.wait_for(aw, timeout)
    except TimeoutError:
        why = f"no answer within {timeout:g} s"
    except Exception as exc:
        why = f"the check failed: {exc or type(exc).__name__}"
    return [Check(n, Level.WARN, why) for n in names]


# -- Python and Qt ----------------------------------------------------------------------------

def python_check(version: Sequence[int] = tuple(sys.version_info[:3])) -> Check:
    """Python >= 3.11."""
    text = f"{version_text(version)} ({sys.executable})"
    if tuple(version[:2]) < PYTHON_MIN:
        return Check("Python", Level.FAIL, text, f"deck-tray needs Python {version_text(PYTHON_MIN)} or newer")
    return Check("Python", Level.OK, text)


def pyside_check() -> Check:
    """PySide6 imports, and is not a release known to break deck-tray."""
    try:
        import PySide6
        from PySide6 import QtCore
    except Exception as exc:  # ImportError, or a missing system library (OSError)
        return Check("PySide6", Level.FAIL, f"does not load: {exc}",
                     "reinstall deck-tray (pip/pipx), which installs PySide6-Essentials >= 6.8, < 6.12")
    ver = str(PySide6.__version__)
    text = f"{ver} (Qt {QtCore.qVersion()})"
    parsed = parse_version(ver)
    if parsed is not None and parsed >= PYSIDE6_BROKEN_FROM:
        return Check("PySide6", Level.WARN, text + ": 6.12.0 aborts Python 3.11 on void method calls",
                     "install PySide6-Essentials < 6.12 (docs/adr/001-pyside6-below-6.12.md)")
    return Check("PySide6", Level.OK, text)


def platform_of(env: Mapping[str, str], pinned: bool = False) -> tuple[str, str]:
    """The Qt platform deck-tray would start on, and why: ``("xcb", "DISPLAY=:0")``,
    ``("wayland", ...)``, ``("none", ...)`` or what ``QT_QPA_PLATFORM`` names; on Wayland a pinned
    window runs through XWayland (:func:`deck_tray.core.display.choose`)."""
    choice = display.choose(env, pinned=pinned)
    if env.get("QT_QPA_PLATFORM", "").strip():
        return choice.name, f"QT_QPA_PLATFORM={env['QT_QPA_PLATFORM']}"
    if choice.name == "xcb" and choice.session == "wayland":
        return "xcb", f"DISPLAY={env.get('DISPLAY', '')}: XWayland in a Wayland session, for the pinned window"
    if choice.name == "wayland":
        return "wayland", f"WAYLAND_DISPLAY={env.get('WAYLAND_DISPLAY', '')}"
    if choice.name == "xcb":
        return "xcb", f"DISPLAY={env.get('DISPLAY', '')}"
    return "none", "neither DISPLAY nor WAYLAND_DISPLAY is set"


def plugin_dirs(env: Mapping[str, str]) -> list[Path]:
    """Where Qt looks for plugins: ``QT_PLUGIN_PATH``, then Qt's own plugin directory."""
    dirs = [Path(p) for p in env.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    try:
        from PySide6.QtCore import QLibraryInfo

        dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)))
    except Exception:  # PySide6 does not load: the PySide6 line says so
        pass
    meipass = getattr(sys, "_MEIPASS", None)  # a PyInstaller bundle
    if meipass:
        dirs.append(Path(meipass) / "PySide6" / "Qt" / "plugins")
    return dirs


def find_platform_plugin(name: str, env: Mapping[str, str]) -> Path | None:
    """``platforms/libq<name>.so`` in the first plugin directory that has it."""
    for d in plugin_dirs(env):
        p = d / "platforms" / f"libq{name}.so"
        if p.is_file():
            return p
    return None


def missing_libraries(ldd_output: str) -> list[str]:
    """Library names ``ldd`` reports as ``not found``."""
    out = []
    for line in ldd_output.splitlines():
        if "not found" in line:
            name = line.strip().split()[0]
            if name not in out:
                out.append(name)
    return out


def install_hint(libs: Iterable[str]) -> str:
    """``apt install`` line (Debian/Ubuntu) for the missing libraries."""
    libs = list(libs)
    pkgs = [DEBIAN_PACKAGES[lib] for lib in libs if lib in DEBIAN_PACKAGES]
    others = [lib for lib in libs if lib not in DEBIAN_PACKAGES]
    parts = []
    if pkgs:
        parts.append("Debian/Ubuntu: sudo apt install " + " ".join(pkgs))
    if others:
        parts.append("install the packages that provide " + ", ".join(others))
    return "; ".join(parts)


def load_plugin(plugin: Path) -> str | None:
    """Load the plugin with dlopen (and so every library it needs); None when it loads, else the error."""
    try:
        ctypes.CDLL(str(plugin), mode=os.RTLD_LAZY | os.RTLD_LOCAL)
    except OSError as exc:
        return str(exc)
    return None


async def xcb_libraries_check(env: Mapping[str, str], on_x11: bool) -> list[Check]:
    """Qt's xcb plugin loads with all its libraries (FAIL on X11 when not, WARN otherwise)."""
    name = "Qt xcb plugin"
    plugin = find_platform_plugin("xcb", env)
    if plugin is None:
        return [Check(name, Level.FAIL if on_x11 else Level.WARN, "platforms/libqxcb.so not found in the Qt plugins",
                      "reinstall deck-tray (its PySide6 wheel ships the plugin)")]
    error = await in_thread(lambda: load_plugin(plugin))
    if error is None:
        return [Check(name, Level.OK, "loads with all its libraries")]
    missing: list[str] = []
    ldd = shutil.which("ldd", path=env.get("PATH"))
    if ldd:
        with contextlib.suppress(ProbeError):
            missing = missing_libraries(await run_program([ldd, str(plugin)], env))
    detail = ("missing " + ", ".join(missing)) if missing else f"does not load: {error}"
    if not on_x11:
        detail += " (needed on X11 and as the fallback under XWayland)"
    hint = install_hint(missing) if missing else "install Qt 6's X11 runtime libraries (libxcb-cursor0 and friends)"
    return [Check(name, Level.FAIL if on_x11 else Level.WARN, detail, hint)]


# -- X11 ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class X11Facts:
    """What the X display said. ``xembed_tray``: whether ``_NET_SYSTEM_TRAY_S<screen>`` has an owner;
    ``wm``: the EWMH window manager's name (``_NET_SUPPORTING_WM_CHECK`` → ``_NET_WM_NAME``), ``""``
    when none runs; ``keeps_above``: whether it lists ``_NET_WM_STATE_ABOVE`` in ``_NET_SUPPORTED``
    (what a pinned window asks for), None when not found out."""

    display: str
    error: str = ""
    xembed_tray: bool = False
    selection: str = ""
    wm: str = ""
    keeps_above: bool | None = None


def x11_probe(display: str) -> X11Facts:
    """Connect to ``display`` with libX11 (ctypes) and look for an XEmbed tray. Blocking."""
    lib = ctypes.util.find_library("X11")
    if lib is None:
        return X11Facts(display, "libX11 is not installed")
    x = ctypes.CDLL(lib)
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XDefaultScreen.argtypes = [ctypes.c_void_p]
    x.XDefaultScreen.restype = ctypes.c_int
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x.XGetSelectionOwner.restype = ctypes.c_ulong
    x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x.XOpenDisplay(display.encode())
    if not dpy:
        return X11Facts(display, f"cannot open the X display {display}")
    try:
        selection = f"_NET_SYSTEM_TRAY_S{x.XDefaultScreen(dpy)}"
        atom = x.XInternAtom(dpy, selection.encode(), 1)  # only if it exists
        owner = x.XGetSelectionOwner(dpy, atom) if atom else 0
    finally:
        x.XCloseDisplay(dpy)
    wm, above = window_manager_probe(display)
    return X11Facts(display, "", bool(owner), selection, wm, above)


def window_manager_probe(display: str) -> tuple[str, bool | None]:
    """The EWMH window manager on ``display`` (EWMH 1.5 §3.11 ``_NET_SUPPORTING_WM_CHECK``, its
    ``_NET_WM_NAME``) and whether ``_NET_SUPPORTED`` (§3.1) lists ``_NET_WM_STATE_ABOVE`` (§5.7);
    ``("", None)`` when no compliant window manager runs or the display cannot be read. Blocking."""
    try:
        from Xlib import X, Xatom
        from Xlib.display import Display

        dpy = Display(display)
    except Exception:
        return "", None
    try:
        root = dpy.screen().root
        check = root.get_full_property(dpy.intern_atom("_NET_SUPPORTING_WM_CHECK"), Xatom.WINDOW)
        if check is None or not check.value:
            return "", None
        child = dpy.create_resource_object("window", int(check.value[0]))
        name = child.get_full_property(dpy.intern_atom("_NET_WM_NAME"), X.AnyPropertyType)
        wm = name.value.decode(errors="replace") if name is not None and isinstance(name.value, bytes) else "?"
        supported = root.get_full_property(dpy.intern_atom("_NET_SUPPORTED"), Xatom.ATOM)
        atoms = set(supported.value) if supported is not None else set()
        return wm, dpy.intern_atom("_NET_WM_STATE_ABOVE") in atoms
    except Exception:
        return "", None
    finally:
        dpy.close()


# -- D-Bus ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class NotificationFacts:
    """``GetServerInformation`` + ``GetCapabilities`` of the notification server."""

    name: str
    vendor: str
    version: str
    spec: str
    capabilities: tuple[str, ...]
    process: str = ""


@dataclass(frozen=True)
class BusFacts:
    """What the session bus said. ``error`` set: no bus (the rest is empty).

    Attributes:
        address: the bus address used.
        sni_process: the process owning ``org.kde.StatusNotifierWatcher`` ("" = nobody; "?" unknown).
        sni_host: its ``IsStatusNotifierHostRegistered`` (None: not asked / no watcher).
        notifications: the notification server, or None (``notifications_error`` says why).
        portal: ``org.freedesktop.portal.Desktop`` is owned or can be started (None: not asked).
        kglobalaccel: ``org.kde.kglobalaccel`` is owned or can be started (None: not asked).
    """

    address: str
    error: str = ""
    sni_process: str = ""
    sni_host: bool | None = None
    notifications: NotificationFacts | None = None
    notifications_error: str = ""
    portal: bool | None = None
    kglobalaccel: bool | None = None


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
    except OSError:
        return "?"


def bus_probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> BusFacts:
    """Ask the session bus at ``address`` about the tray watcher and the notification server.

    Blocking (jeepney's blocking API); every call waits at most what is left of ``timeout``.
    The notification server may be started by D-Bus activation.
    """
    import time

    from jeepney import DBusAddress, Properties, new_method_call  # type: ignore[import-untyped]
    from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
    from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
    from jeepney.wrappers import DBusErrorResponse, unwrap_msg  # type: ignore[import-untyped]

    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.05, deadline - time.monotonic())

    try:
        conn = open_dbus_connection(address, auth_timeout=left())
    except Exception as exc:  # OSError, auth failures, malformed addresses
        return BusFacts(address, f"cannot connect: {exc or type(exc).__name__}")

    def call(msg: Any) -> tuple[Any, ...]:
        return tuple(unwrap_msg(conn.send_and_get_reply(msg, timeout=left())))

    def owner_process(name: str) -> str:
        try:
            (owner,) = call(message_bus.GetNameOwner(name))
            (pid,) = call(message_bus.GetConnectionUnixProcessID(owner))
            return _process_name(int(pid))
        except (DBusErrorResponse, OSError, TimeoutError, ValueError):
            return "?"

    with conn:
        sni_process, sni_host = "", None
        if call(message_bus.NameHasOwner(SNW_NAME))[0]:
            sni_process = owner_process(SNW_NAME)
            try:
                props = Properties(DBusAddress(SNW_PATH, bus_name=SNW_NAME, interface=SNW_NAME))
                (value,) = call(props.get("IsStatusNotifierHostRegistered"))
                sni_host = bool(value[1])
            except (DBusErrorResponse, TimeoutError) as exc:
                sni_host = None
                sni_process += f" (IsStatusNotifierHostRegistered failed: {exc})"
        activatable = set(call(message_bus.ListActivatableNames())[0])
        shortcut_names = {name: name in activatable or bool(call(message_bus.NameHasOwner(name))[0])
                          for name in ("org.freedesktop.portal.Desktop", "org.kde.kglobalaccel")}
        more: dict[str, Any] = {"portal": shortcut_names["org.freedesktop.portal.Desktop"],
                                "kglobalaccel": shortcut_names["org.kde.kglobalaccel"]}
        owned = bool(call(message_bus.NameHasOwner(fdn.BUS_NAME))[0])
        if not owned and fdn.BUS_NAME not in activatable:
            return BusFacts(address, "", sni_process, sni_host, None, "no notification server on the session bus",
                            **more)
        addr = DBusAddress(fdn.OBJECT_PATH, bus_name=fdn.BUS_NAME, interface=fdn.INTERFACE)
        try:
            info = call(new_method_call(addr, fdn.GET_SERVER_INFORMATION))
            (caps,) = call(new_method_call(addr, fdn.GET_CAPABILITIES))
        except DBusErrorResponse as exc:
            return BusFacts(address, "", sni_process, sni_host, None, f"the notification server refused: {exc}",
                            **more)
        except TimeoutError:
            return BusFacts(address, "", sni_process, sni_host, None,
                            f"the notification server did not answer within {timeout:g} s", **more)
        facts = NotificationFacts(str(info[0]), str(info[1]), str(info[2]), str(info[3]),
                                  tuple(sorted(str(c) for c in caps)), owner_process(fdn.BUS_NAME))
        return BusFacts(address, "", sni_process, sni_host, facts, **more)


def bus_address(env: Mapping[str, str]) -> tuple[str, str]:
    """``(address, problem)``: the session bus address from ``DBUS_SESSION_BUS_ADDRESS``, or
    ``("", why)``."""
    addr = env.get("DBUS_SESSION_BUS_ADDRESS", "")
    if addr:
        return addr, ""
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime, "bus").exists():
        return "", (f"DBUS_SESSION_BUS_ADDRESS is not set (a bus socket exists: export "
                    f"DBUS_SESSION_BUS_ADDRESS=unix:path={runtime}/bus)")
    return "", "DBUS_SESSION_BUS_ADDRESS is not set"


def bus_check(facts: BusFacts | None, problem: str) -> Check:
    """The session bus line."""
    name = "D-Bus session bus"
    if facts is None:
        return Check(name, Level.FAIL, problem + "; notifications, the tray and the keyring need it", BUS_HINT)
    if facts.error:
        return Check(name, Level.FAIL, f"{facts.address}: {facts.error}; notifications, the tray and the keyring "
                                       f"need it", BUS_HINT)
    return Check(name, Level.OK, f"reachable at {facts.address}")


def tray_check(bus: BusFacts | None, x11: X11Facts | None, platform: str) -> Check:
    """The tray host line: a StatusNotifierItem host on the bus, else an XEmbed tray on X11."""
    name = "tray host"
    if bus is not None and not bus.error and bus.sni_process:
        if bus.sni_host is False:
            why = (f"{SNW_NAME} runs ({bus.sni_process}) but no host is registered with it, so Qt shows "
                   f"no icon")
        else:
            host = "host registered" if bus.sni_host else "host state unknown"
            return Check(name, Level.OK, f"StatusNotifierItem: {SNW_NAME} owned by {bus.sni_process}, {host}")
    else:
        why = f"no {SNW_NAME} on the session bus" if bus is not None and not bus.error \
            else "StatusNotifierItem not checked (no session bus)"
    if x11 is not None and not x11.error and x11.xembed_tray:
        return Check(name, Level.OK, f"XEmbed system tray on {x11.display} ({x11.selection} is owned); {why}")
    if platform == "xcb" and x11 is not None:
        why += f"; no XEmbed tray on {x11.display}" if not x11.error else f"; XEmbed not checked ({x11.error})"
    elif platform == "wayland":
        why += "; XEmbed trays do not exist on Wayland"
    return Check(name, Level.WARN, "none found: " + why, TRAY_HINT)


def notification_check(bus: BusFacts | None) -> Check:
    """The notification server line: present, with actions (buttons, clicks) and body markup."""
    name = "notification server"
    if bus is None or bus.error:
        return Check(name, Level.WARN, "not checked: no session bus; deck-tray falls back to tray messages",
                     BUS_HINT)
    n = bus.notifications
    if n is None:
        return Check(name, Level.WARN, f"{bus.notifications_error}; deck-tray falls back to tray messages, which "
                                       f"cannot be clicked or closed",
                     "install and start a notification daemon (your desktop's own, or dunst / mako / swaync)")
    who = f"{n.name} {n.version} ({n.vendor}, spec {n.spec}" + (f", process {n.process}" if n.process else "") + ")"
    caps = ", ".join(n.capabilities) or "none"
    markup = fdn.CAP_BODY_MARKUP in n.capabilities
    if fdn.CAP_ACTIONS not in n.capabilities:
        return Check(name, Level.WARN, f"{who} without actions: no Open / Allow / Deny buttons, clicks are not "
                                       f"reported; capabilities: {caps}",
                     "use a notification server with actions (most desktops' own; dunst, mako, swaync)")
    return Check(name, Level.OK, f"{who}; actions: yes, body-markup: {'yes' if markup else 'no'}; "
                                 f"capabilities: {caps}")


# -- keyring --------------------------------------------------------------------------------

def keyring_probe() -> tuple[str, bool]:
    """``(backend description, usable)`` from ``keyring.get_keyring()``. Blocking."""
    import keyring
    from keyring.backends import chainer, fail

    kr = keyring.get_keyring()
    label = f"{type(kr).__module__}.{type(kr).__qualname__}"
    if isinstance(kr, fail.Keyring):
        return label, False
    if isinstance(kr, chainer.ChainerBackend):
        inner = list(kr.backends)
        if not inner:
            return label + " (no backends)", False
        return label + " (" + ", ".join(f"{type(b).__module__}.{type(b).__qualname__}" for b in inner) + ")", True
    if type(kr).__module__ == "keyring.backends.null":
        return label, False
    return label, True


def keyring_check(label: str, usable: bool) -> Check:
    """The keyring line; the ``fail`` / ``null`` backend is a WARN with what to install."""
    if usable:
        return Check("keyring", Level.OK, label)
    return Check("keyring", Level.WARN, f"{label}: no usable keyring, so opencode server passwords last only until "
                                        f"deck-tray quits",
                 "install and unlock a Secret Service keyring (Debian: apt install gnome-keyring; or KWallet, "
                 "KeePassXC with Secret Service on)")


# -- programs -------------------------------------------------------------------------------



async def multiplexer_checks(env: Mapping[str, str]) -> list[Check]:
    """Check tmux (>= 3.2) and zellij (>= 0.44). Absent: WARN (both absent too: the hooks and the terminal
    adapters still answer, issue #13)."""
    tmux, zellij = which("tmux", env), which("zellij", env)

    async def version(binary: str, flag: str) -> tuple[str, tuple[int, ...] | None]:
        text = await run_program([binary, flag], env)
        return text.splitlines()[0] if text else "", parse_version(text)

    if tmux is None and zellij is None:
        why = ("neither tmux nor zellij is installed: deck-tray types answers only into GNU screen, kitty, "
               "WezTerm or Konsole windows; Claude Code's permissions and questions are still answered through "
               "its hooks, opencode through its server")
        hint = "install tmux (Debian: apt install tmux) and run the agents in it"
        return [Check("tmux", Level.WARN, why, hint), Check("zellij", Level.WARN, "not installed", hint)]
    out: list[Check] = []
    if tmux is None:
        out.append(Check("tmux", Level.WARN, "not installed (zellij is used)", "install tmux >= 3.2 to use it"))
    else:
        try:
            text, v = await version(tmux, "-V")
        except ProbeError as exc:
            out.append(Check("tmux", Level.WARN, f"{tmux}: {exc}"))
        else:
            if v is None:
                out.append(Check("tmux", Level.WARN, f"{tmux} printed no version ({text!r})"))
            elif v[:2] < TMUX_MIN:
                out.append(Check("tmux", Level.WARN, f"{text} at {tmux} is older than {version_text(TMUX_MIN)}",
                                 f"upgrade tmux to {version_text(TMUX_MIN)} or newer"))
            else:
                out.append(Check("tmux", Level.OK, f"{text} at {tmux}"))
    if zellij is None:
        out.append(Check("zellij", Level.WARN, "not installed (optional: tmux is used)",
                         f"install zellij >= {version_text(ZELLIJ_MIN)} only if you run agents in zellij"))
    else:
        try:
            text, v = await version(zellij, "--version")
        except ProbeError as exc:
            out.append(Check("zellij", Level.WARN, f"{zellij}: {exc}"))
        else:
            if v is None:
                out.append(Check("zellij", Level.WARN, f"{zellij} printed no version ({text!r})"))
            elif v < ZELLIJ_MIN:
                out.append(Check("zellij", Level.WARN,
                                 f"{text} at {zellij}: deck-tray shows its sessions but cannot type into its panes "
                                 f"(needs {version_text(ZELLIJ_MIN)})",
                                 f"upgrade zellij to {version_text(ZELLIJ_MIN)} or newer"))
            else:
                out.append(Check("zellij", Level.OK, f"{text} at {zellij}"))
    return out




def npm_package_version(path: str, package: str) -> str | None:
    """The version in the ``package.json`` of the npm package ``path`` belongs to (the agents
    installed with npm), without running anything; None when it is not such a package."""
    here = Path(os.path.realpath(path)).parent
    for d in (here, *list(here.parents)[:3]):
        try:
            data = json.loads((d / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") == package and isinstance(data.get("version"), str):
            return str(data["version"])
        return None  # the nearest package.json is someone else's
    return None


async def agent_check(binary: str, env: Mapping[str, str]) -> list[Check]:
    """One agent against the releases deck-tray is verified with
    (:data:`~deck_tray.core.agent_versions.VERIFIED_AGENTS`).

    From the pinned release to the newest verified one: ``OK`` with the version; newer: ``WARN``
    "newer than the newest verified (X); deck-tray may misread it — report problems"; older:
    ``WARN`` "older than the tested X" with the update command.

    The version comes from the npm package's ``package.json`` when the binary is one (opencode's
    ``--version`` alone takes 1.5 s), else from ``<binary> --version``.
    """
    agent = VERIFIED_AGENTS[binary]
    label, tested, package = agent.label, agent.pinned, agent.package
    install = f"npm install -g {package}@{version_text(tested)}"
    path = find_agent(binary, env)
    if path is None:
        return [Check(label, Level.WARN, f"not installed (`{binary}` is not on PATH)",
                      f"{install} if you use it")]
    text = await in_thread(lambda: npm_package_version(path, package))
    if text is None:
        try:
            text = await run_program([path, "--version"], env)
        except ProbeError as exc:
            return [Check(label, Level.WARN, f"{path}: {exc}")]
    v = parse_version(text)
    if v is None:
        return [Check(label, Level.WARN, f"{path} printed no version ({text[:60]!r})")]
    found = f"{version_text(v)} at {path}"
    verdict = judge(agent, v)
    if verdict is Verdict.VERIFIED:
        which_one = ("the tested version" if v == tested else
                     "the newest verified version" if v == agent.newest else
                     f"within the verified {version_text(tested)} to {version_text(agent.newest)}")
        return [Check(label, Level.OK, f"{found} ({which_one})")]
    if verdict is Verdict.NEWER:
        return [Check(label, Level.WARN, f"{found}: newer than the newest verified ({version_text(agent.newest)}); "
                                         "deck-tray may misread it — report problems",
                      f"if states look wrong, npm install -g {package}@{version_text(agent.newest)}")]
    return [Check(label, Level.WARN, f"{found}: older than the tested {version_text(tested)}",
                  f"update: {install}")]


# -- hooks and opencode ---------------------------------------------------------------------

_HOOK_OK = {"installed", "ok", "current", "up-to-date", "up_to_date", "up to date", "enabled"}
_HOOK_MISSING = {"missing", "not installed", "not_installed", "absent", "none", "uninstalled", "disabled"}


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def hooks_checks(statuses: Iterable[Any]) -> list[Check]:
    """One line per ``hooks_status()`` entry (objects with ``agent``, ``path``, ``state``, ``detail``)."""
    out = []
    for st in statuses:
        agent = _text(getattr(st, "agent", "?"))
        path = _text(getattr(st, "path", ""))
        state = _text(getattr(st, "state", "?"))
        detail = _text(getattr(st, "detail", "") or "")
        where = f" in {path}" if path and path not in detail else ""
        text = f"{state}{where}" + (f": {detail}" if detail else "")
        key = state.lower().replace("-", " ").replace("_", " ")
        name = f"hooks ({agent})"
        if state.lower() in _HOOK_OK or key in _HOOK_OK:
            out.append(Check(name, Level.OK, text))
        elif state.lower() in _HOOK_MISSING or key in _HOOK_MISSING:
            out.append(Check(name, Level.WARN, text, "run `deck-tray hooks install` for instant, exact states"))
        else:
            out.append(Check(name, Level.WARN, text, "run `deck-tray hooks install` (and for Codex, trust them once "
                                                     "with /hooks)"))
    if not out:
        out.append(Check("hooks", Level.WARN, "no agent configuration found to check"))
    return out


async def hooks_check(hooks_status: Callable[[], Any] | None) -> list[Check]:
    """Hook state through ``hooks_status`` (sync or async); WARN when it is not available."""
    if hooks_status is None:
        return [Check("hooks", Level.WARN, "status unavailable (this deck-tray cannot read hook state)")]
    result = await in_thread(hooks_status)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        result = await result
    return hooks_checks(result)


def app_check(answer: Mapping[str, Any] | None, problem: str = "", now: float | None = None, *,
              hung_pid: int | None = None) -> Check:
    """The running app and the hooks it received, from its ``ping`` answer
    (:mod:`deck_tray.services.ipc`); ``answer`` None: not running (``problem`` says why), or,
    with ``hung_pid``, that process holds the socket but did not answer (FAIL)."""
    name = "deck-tray app"
    if answer is None and hung_pid is not None:
        return Check(name, Level.FAIL, f"deck-tray (pid {hung_pid}) holds its socket but does not answer "
                                       f"({problem or 'no answer'}): it hangs, and no other deck-tray can start",
                     "end it and start a new one: deck-tray --replace")
    if answer is None:
        return Check(name, Level.WARN, f"not running ({problem or 'nothing listens on its socket'}): agent hooks "
                                       f"are dropped and nobody is notified until it runs",
                     "start deck-tray from your desktop session, or enable it at login: deck-tray autostart enable")
    now = time.time() if now is None else now
    heard = []
    hooks = answer.get("hooks") or {}
    for agent in sorted(hooks):
        last = hooks[agent] if isinstance(hooks[agent], Mapping) else {}
        age = max(0.0, now - float(last.get("received") or now))
        heard.append(f"{agent} {last.get('event') or 'event'} {_ago(age)}")
    said = ("last hook from " + ", ".join(heard)) if heard else "no hook received since it started"
    return Check(name, Level.OK, f"running (pid {answer.get('pid', '?')}, {answer.get('version', '?')}); {said}")


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


async def running_app_check(env: Mapping[str, str], timeout: float = PROBE_TIMEOUT_S,
                            answers: list[Mapping[str, Any]] | None = None) -> list[Check]:
    """Ping the running app over its socket (in ``env``'s ``XDG_RUNTIME_DIR``); its answer is
    appended to ``answers`` when given (the window line reads it)."""
    from deck_tray.services import ipc

    runtime = env.get("XDG_RUNTIME_DIR", "").strip()
    path = Path(runtime) / ipc.APP_DIR / ipc.SOCKET_NAME if runtime else None

    def ping() -> Check:
        from deck_tray.services import lifecycle

        try:
            # Less than the check's own limit: a hung holder is still named in time.
            answer = ipc.request({"op": "ping"}, path=path, timeout=max(0.5, timeout - 0.5))
        except ipc.NotRunning:
            return app_check(None)
        except ipc.IpcError as exc:
            return app_check(None, str(exc), hung_pid=lifecycle.holder_pid(path or ipc.socket_path(env)))
        if answers is not None:
            answers.append(answer)
        return app_check(answer)

    return [await in_thread(ping, timeout + 0.2)]


def shortcut_check(env: Mapping[str, str], bus: BusFacts | None, running: Mapping[str, Any] | None,
                   trigger: str = "") -> Check:
    """The global shortcut line: the running app's binding (which way, what the desktop granted)
    when it answered, else the ways this desktop offers (:func:`deck_tray.core.shortcuts.ways`)."""
    name = "global shortcut"
    if running and "shortcut" in running:
        status, way = str(running.get("shortcut", "")), str(running.get("shortcut_way", ""))
        if way or not trigger:
            return Check(name, Level.OK, status if way else "none set; set one in Settings → Window")
        return Check(name, Level.WARN, status, "bind deck-tray --toggle in your desktop's keyboard settings")
    portal = bool(bus and bus.portal)
    kga = bool(bus and bus.kglobalaccel)
    found = shortcuts.ways(env, portal=portal, kglobalaccel=kga)
    words = {"portal": "the desktop portal (GlobalShortcuts)", "kglobalaccel": "KDE global shortcuts (kglobalaccel)",
             "x11": "an X11 key grab"}
    set_text = f"{trigger} is set" if trigger else "none set (Settings → Window)"
    if found:
        return Check(name, Level.OK, f"{set_text}; deck-tray will try " + ", then ".join(words[w] for w in found)
                     + " (the running app says which one bound it)")
    return Check(name, Level.WARN if trigger else Level.OK, f"{set_text}; {shortcuts.none_reason(env)}",
                 "bind deck-tray --toggle in your desktop's keyboard settings")


def window_check(platform: WindowPlatform, x11: X11Facts | None, running: Mapping[str, Any] | None,
                 pinned: bool = False) -> Check:
    """The pinned-window line: where the window runs (the running app's own report when it
    answered, else where it would start: :func:`deck_tray.core.display.choose`) and whether
    "pinned" (the running window's state, else the saved setting ``pinned``) keeps it above other
    windows there (issue #14). WARN when the window is pinned but cannot stay on top."""
    name = "pinned window"
    if running:
        where = str(running.get("platform", "?"))
        works = bool(running.get("pinning_works"))
        pinned = bool(running.get("pinned"))
        via = " through XWayland" if where == "xcb" and platform.session == "wayland" else ""
        said = f"the running deck-tray's window runs on {where}{via}, {'pinned' if pinned else 'not pinned'}"
    else:
        where, works = platform.name, platform.pinning
        said = f"the window would run on {platform.detail.rstrip('.')}"
    if where == "xcb":
        if x11 is not None and not x11.error and x11.keeps_above is False:
            return Check(name, Level.WARN, f"{said}; the window manager ({x11.wm or 'none'}) does not list "
                                           f"_NET_WM_STATE_ABOVE, so a pinned window may not stay on top",
                         "use a window manager that supports EWMH keep-above (most do)")
        wm = f" ({x11.wm} honours _NET_WM_STATE_ABOVE)" if x11 is not None and x11.wm and x11.keeps_above else ""
        return Check(name, Level.OK, f"{said}; pinning keeps it on top{wm}")
    if where.startswith("wayland"):
        xwayland = platform.pinning_after_restart or platform.pinning  # XWayland is there
        if running:
            said += ("; native Wayland cannot keep a window on top: restart deck-tray and it runs the pinned "
                     "window through XWayland, where it stays on top" if xwayland else
                     "; without XWayland (DISPLAY is not set) a pinned window cannot stay on top")
        hint = ("pin the window and use its Restart deck-tray button" if xwayland
                else "enable XWayland in your desktop, then restart deck-tray")
        return Check(name, Level.WARN if pinned and not works else Level.OK, said + ".", hint)
    return Check(name, Level.OK, f"{said}; pinning: {'works' if works else 'not available there'}")


async def opencode_checks(env: Mapping[str, str], timeout: float = PROBE_TIMEOUT_S) -> list[Check]:
    """Every opencode server found on this machine answers ``/global/health`` (401: WARN)."""
    from deck_tray.services.opencode_client import AuthRequired, OpencodeClient, OpencodeError
    from deck_tray.services.opencode_source import discover_servers
    from deck_tray.services.secrets import Credentials

    urls = await in_thread(discover_servers, timeout * 0.4)
    if not urls:
        return [Check("opencode servers", Level.OK, "none running (deck-tray finds them when they start)")]
    creds = Credentials(env)

    async def health(url: str, password: str | None) -> dict[str, Any]:
        client = OpencodeClient(url, (creds.username(), password) if password else None, timeout=timeout * 0.4)
        try:
            return await client.health()
        finally:
            await client.aclose()

    async def one(url: str) -> Check:
        name = f"opencode server {url}"
        password = env.get("OPENCODE_SERVER_PASSWORD") or None
        try:
            try:
                info = await health(url, password)
            except AuthRequired:
                if password:
                    raise
                # Only now ask the keyring (it may be locked; never wait for an unlock prompt).
                try:
                    password = await in_thread(lambda: creds.lookup(url), timeout * 0.15)
                except TimeoutError:
                    password = None
                if not password:
                    raise
                info = await health(url, password)
        except AuthRequired:
            how = "the password deck-tray has is refused" if password else "deck-tray has no password for it"
            return Check(name, Level.WARN, f"needs a password (HTTP 401): {how}",
                         "open deck-tray: the window asks for it and keeps it in the keyring; or set "
                         "OPENCODE_SERVER_PASSWORD")
        except OpencodeError as exc:
            return Check(name, Level.WARN, f"not reachable: {exc}", "is the server still starting, or hung?")
        return Check(name, Level.OK, f"opencode {info.get('version', '?')}, healthy"
                                     + (" (with a password)" if password else ""))

    return list(await asyncio.gather(*(one(u) for u in urls)))


# -- the whole report -----------------------------------------------------------------------

async def run_checks(env: Mapping[str, str] | None = None, *,
                     hooks_status: Callable[[], Any] | None = None,
                     timeout: float = PROBE_TIMEOUT_S, pinned: bool = False, shortcut: str = "") -> list[Check]:
    """Run every probe concurrently; the report in a fixed order.

    Args:
        env: the environment to judge (default ``os.environ``).
        pinned: the saved "Pin on top" setting (the window's platform depends on it on Wayland).
        shortcut: the saved global shortcut (``""``: none).
        hooks_status: returns the hook state per agent; None: the hooks line says it is unavailable.
        timeout: per-probe limit in seconds.
    """
    env = dict(os.environ if env is None else env)
    window_platform = display.choose(env, pinned=pinned)
    platform, platform_why = platform_of(env, pinned)
    answers: list[Mapping[str, Any]] = []
    address, bus_problem = bus_address(env)

    async def bus() -> BusFacts | None:
        if not address:
            return None
        try:
            return await in_thread(lambda: bus_probe(address, timeout), timeout + 0.2)
        except TimeoutError:
            return BusFacts(address, f"no answer within {timeout:g} s")

    async def x11() -> X11Facts | None:
        display = env.get("DISPLAY", "")
        if not display:
            return None
        try:
            return await in_thread(lambda: x11_probe(display), timeout)
        except TimeoutError:
            return X11Facts(display, f"the X display {display} did not answer within {timeout:g} s")
        except Exception as exc:
            return X11Facts(display, f"could not be asked: {exc}")

    async def keyring_lines() -> list[Check]:
        label, usable = await in_thread(keyring_probe, timeout)
        return [keyring_check(label, usable)]

    async def agents() -> list[Check]:
        lines = await asyncio.gather(*(guarded([a.label], agent_check(b, env), timeout + 0.2)
                                       for b, a in VERIFIED_AGENTS.items()))
        return [c for group in lines for c in group]

    facts = asyncio.gather(bus(), x11())
    lines = asyncio.gather(
        guarded(["Qt xcb plugin"], xcb_libraries_check(env, platform == "xcb"), timeout),
        guarded(["keyring"], keyring_lines(), timeout + 0.2),
        guarded(["tmux", "zellij"], multiplexer_checks(env), timeout + 0.2),
        agents(),
        guarded(["hooks"], hooks_check(hooks_status), timeout),
        guarded(["opencode servers"], opencode_checks(env, timeout), timeout + 0.2),
        guarded(["deck-tray app"], running_app_check(env, timeout, answers), timeout + 0.4),
    )
    (bus_facts, x11_facts), (xcb_lines, keyring_lines_, mux_lines, agent_lines, hook_lines, opencode_lines,
                             app_lines) = await asyncio.gather(facts, lines)
    running = answers[0].get("window") if answers else None
    window_line = window_check(window_platform, x11_facts, running if isinstance(running, Mapping) else None, pinned)
    shortcut_line = shortcut_check(env, bus_facts, running if isinstance(running, Mapping) else None, shortcut)
    report = [python_check(), pyside_check(), qt_platform_check(platform, platform_why, x11_facts), window_line,
              shortcut_line, *xcb_lines,
              bus_check(bus_facts, bus_problem), tray_check(bus_facts, x11_facts, platform),
              notification_check(bus_facts), *keyring_lines_, *mux_lines, *agent_lines, *hook_lines,
              *app_lines, *opencode_lines]
    return report


def qt_platform_check(platform: str, why: str, x11: X11Facts | None) -> Check:
    """Which Qt platform deck-tray would start on; no display is a WARN (the CLI still works)."""
    name = "Qt platform"
    if platform == "xcb":
        if x11 is not None and x11.error:
            return Check(name, Level.FAIL, f"X11 ({why}): {x11.error}",
                         "run deck-tray inside your desktop session, where DISPLAY points to a running X server")
        return Check(name, Level.OK, f"X11 ({why})")
    if platform.startswith("wayland"):
        return Check(name, Level.OK, f"Wayland ({why}); the tray needs a StatusNotifierItem host there")
    if platform == "none":
        return Check(name, Level.WARN, f"no display ({why}): the tray app cannot start from this shell; the "
                                       f"command-line commands work",
                     "start deck-tray from your desktop session (or enable autostart: deck-tray autostart enable)")
    return Check(name, Level.WARN, f"{platform} ({why}): no window or tray icon on your desktop",
                 "unset QT_QPA_PLATFORM to use the desktop's platform")


def exit_code(checks: Iterable[Check]) -> int:
    """0 when no check failed, else 1."""
    return 1 if any(c.level is Level.FAIL for c in checks) else 0


def format_report(checks: Iterable[Check]) -> str:
    """``LEVEL  name: detail`` lines, each followed by an indented ``→ hint`` when there is one."""
    lines = []
    for c in checks:
        lines.append(f"{c.level.value:<5} {c.name}: {c.detail}")
        if c.hint and c.level is not Level.OK:
            lines.append(f"      → {c.hint}")
    return "\n".join(lines)
