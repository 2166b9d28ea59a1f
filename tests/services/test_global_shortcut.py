"""The global shortcut (issue #14): bound by an X11 key grab on a real Xvfb (pressed with
xdotool), and through the XDG desktop portal's GlobalShortcuts D-Bus contract.

The portal part runs against a fake portal on a private bus: the portal that runs here
(xdg-desktop-portal 1.16 with KDE's backend 5.27, Debian 12) binds nothing for a program it
cannot name (verified; tests/e2e/test_wayland.py covers that path and the fallback to KDE's
kglobalaccel on a real KWin). The fake follows the interface of xdg-desktop-portal's
``org.freedesktop.portal.GlobalShortcuts.xml`` (version 1) and the Request/Response pattern.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jeepney import DBusAddress, HeaderFields, MatchRule, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.asyncio import DBusRouter, Proxy, open_dbus_connection

from deck_tray.services.global_shortcut import GlobalShortcut
from tests.helpers import run_until

from .desktop_session import start_xvfb
from .test_notifier import PrivateBus

PORTAL = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
IFACE = "org.freedesktop.portal.GlobalShortcuts"


def run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(coro)


# -- X11: XGrabKey on a real X server -------------------------------------------------------

@pytest.fixture
def display() -> Iterator[str]:
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian: xvfb, xdotool)")
    proc, name = start_xvfb()
    try:
        yield name
    finally:
        proc.terminate()
        proc.wait(10)


def test_x11_grab_reports_each_press_and_frees_the_key(display: str, qloop: asyncio.AbstractEventLoop) -> None:
    env = {"DISPLAY": display, "XDG_SESSION_TYPE": "x11"}
    gs = GlobalShortcut(env=env, bus="unix:path=/nonexistent")  # no bus: no portal, no kglobalaccel
    presses: list[str] = []
    gs.activated.connect(presses.append)
    run(qloop, gs.apply("Ctrl+Alt+D"))
    assert gs.way == "x11", gs.status
    assert gs.status == "Ctrl+Alt+D — bound through an X11 key grab."
    key = ["xdotool", "key", "--clearmodifiers", "ctrl+alt+d"]
    subprocess.run(key, env={"DISPLAY": display, "PATH": "/usr/bin:/bin"}, check=True, timeout=10)
    run_until(qloop, lambda: presses, "the press reported")
    # Caps Lock on: still the shortcut.
    subprocess.run(["xdotool", "key", "Caps_Lock", "ctrl+alt+d", "Caps_Lock"], env={"DISPLAY": display},
                   check=True, timeout=10)
    run_until(qloop, lambda: len(presses) == 2, "the press with Caps Lock on")
    assert presses == ["", ""]
    # Another program holding the key: this one says so instead of pretending.
    other = GlobalShortcut(env=env, bus="unix:path=/nonexistent")
    run(qloop, other.apply("Ctrl+Alt+D"))
    assert other.way == "" and "taken by another program" in other.status and "deck-tray --toggle" in other.status
    # A new key: the old one is released (the other instance can have it now).
    run(qloop, gs.apply("Meta+F9"))
    assert gs.status == "Meta+F9 — bound through an X11 key grab."
    run(qloop, other.apply("Ctrl+Alt+D"))
    assert other.way == "x11"
    run(qloop, other.stop())
    run(qloop, gs.apply(""))
    assert (gs.way, gs.status) == ("", "No global shortcut is set.")
    run(qloop, gs.stop())


def test_no_way_on_gnome_wayland_says_what_to_do(qloop: asyncio.AbstractEventLoop) -> None:
    gs = GlobalShortcut(env={"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "w", "DISPLAY": ":0",
                             "XDG_CURRENT_DESKTOP": "GNOME"}, bus="unix:path=/nonexistent")
    run(qloop, gs.apply("Ctrl+Alt+D"))
    assert gs.way == ""
    assert "GNOME offers apps no global shortcuts on Wayland" in gs.status and "deck-tray --toggle" in gs.status
    run(qloop, gs.stop())


# -- the portal's D-Bus contract --------------------------------------------------------------

class FakePortal:
    """``org.freedesktop.portal.GlobalShortcuts`` v1 as xdg-desktop-portal serves it: CreateSession
    and BindShortcuts answer with a request path, then a ``Response`` signal on it."""

    def __init__(self, grant: bool = True) -> None:
        self.grant = grant
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.sessions: list[str] = []
        self.closed: list[str] = []
        self.conn: Any = None
        self.router: Any = None
        self.handles: list[Any] = []

    async def start(self) -> None:
        self.conn = await open_dbus_connection("SESSION")
        self.router = DBusRouter(self.conn)
        self.handles.append(self.router.filter(MatchRule(type="method_call"), queue=_Serve(self)))
        assert await Proxy(message_bus, self.router).RequestName(PORTAL, 4) == (1,)

    async def stop(self) -> None:
        for h in self.handles:
            h.close()
        await self.router.__aexit__(None, None, None)
        await self.conn.close()

    def _send(self, msg: Any) -> None:
        self.conn.writer.write(msg.serialise(next(self.conn.outgoing_serial)))

    def signal(self, path: str, iface: str, member: str, sig: str, body: tuple[Any, ...]) -> None:
        self._send(new_signal(DBusAddress(path, interface=iface), member, sig, body))

    def serve(self, msg: Any) -> None:
        f = msg.header.fields
        member, iface, sender = f.get(HeaderFields.member), f.get(HeaderFields.interface), f.get(HeaderFields.sender)
        self.calls.append((str(member), tuple(msg.body)))
        who = str(sender).lstrip(":").replace(".", "_")
        if iface == "org.freedesktop.DBus.Properties" and member == "Get" and msg.body == (IFACE, "version"):
            self._send(new_method_return(msg, "v", (("u", 1),)))
        elif iface == IFACE and member == "CreateSession":
            opts = msg.body[0]
            req = f"{PATH}/request/{who}/{opts['handle_token'][1]}"
            session = f"{PATH}/session/{who}/{opts['session_handle_token'][1]}"
            self.sessions.append(session)
            self._send(new_method_return(msg, "o", (req,)))
            self.signal(req, "org.freedesktop.portal.Request", "Response", "ua{sv}",
                        (0, {"session_handle": ("s", session)}))
        elif iface == IFACE and member == "BindShortcuts":
            session, wanted, _parent, opts = msg.body
            req = f"{PATH}/request/{who}/{opts['handle_token'][1]}"
            self._send(new_method_return(msg, "o", (req,)))
            granted = [(sid, {"description": d["description"],
                              "trigger_description": ("s", "Ctrl+Alt+D (as the desktop shows it)")})
                       for sid, d in wanted] if self.grant else []
            self.signal(req, "org.freedesktop.portal.Request", "Response", "ua{sv}",
                        (0, {"shortcuts": ("a(sa{sv})", granted)}))
        elif iface == "org.freedesktop.portal.Session" and member == "Close":
            self.closed.append(str(f.get(HeaderFields.path)))
            self._send(new_method_return(msg))
        elif msg.header.message_type is MessageType.method_call:
            self._send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no {member}",)))


class _Serve:
    def __init__(self, portal: FakePortal) -> None:
        self.portal = portal

    def put_nowait(self, msg: Any) -> None:
        self.portal.serve(msg)


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateBus]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("needs dbus-daemon (Debian: dbus)")
    workdir = Path(tempfile.mkdtemp(prefix="dt-gs-"))
    b = PrivateBus.start(workdir)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", b.address)
    try:
        yield b
    finally:
        b.proc.terminate()
        b.proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


KDE_WAYLAND = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "w", "XDG_CURRENT_DESKTOP": "KDE"}


def test_portal_binds_and_reports_presses_with_their_token(bus: PrivateBus, qloop: asyncio.AbstractEventLoop) -> None:
    portal = FakePortal()
    run(qloop, portal.start())
    gs = GlobalShortcut(env=dict(KDE_WAYLAND, DBUS_SESSION_BUS_ADDRESS=bus.address))
    presses: list[str] = []
    gs.activated.connect(presses.append)
    run(qloop, gs.apply("Ctrl+Alt+D"))
    assert gs.way == "portal", gs.status
    assert gs.status == "Ctrl+Alt+D (as the desktop shows it) — bound through the desktop portal."
    bind = next(body for member, body in portal.calls if member == "BindShortcuts")
    assert bind[1] == [("toggle", {"description": ("s", "Show or hide deck-tray (at the oldest waiting request)"),
                                   "preferred_trigger": ("s", "CTRL+ALT+d")})]
    session = portal.sessions[0]
    # A press of another session's shortcut (another app) is not ours.
    portal.signal(PATH, IFACE, "Activated", "osta{sv}", (session + "x", "toggle", 1, {}))
    portal.signal(PATH, IFACE, "Activated", "osta{sv}", (session, "toggle", 2, {"activation_token": ("s", "tok-1")}))
    run_until(qloop, lambda: presses, "the press reported")
    assert presses == ["tok-1"]
    run(qloop, gs.stop())
    assert portal.closed == [session]
    run(qloop, portal.stop())


def test_a_portal_that_binds_nothing_is_not_trusted(bus: PrivateBus, qloop: asyncio.AbstractEventLoop) -> None:
    # xdg-desktop-portal 1.16 with KDE's backend answers BindShortcuts with no shortcuts for a program
    # it cannot name: deck-tray says so instead of claiming a shortcut that never fires.
    portal = FakePortal(grant=False)
    run(qloop, portal.start())
    gs = GlobalShortcut(env=dict(KDE_WAYLAND, DBUS_SESSION_BUS_ADDRESS=bus.address))
    run(qloop, gs.apply("Ctrl+Alt+D"))
    assert gs.way == ""
    assert "the desktop portal: the portal bound nothing" in gs.status and "deck-tray --toggle" in gs.status
    assert portal.closed == portal.sessions  # the empty session is not left open
    run(qloop, gs.stop())
    run(qloop, portal.stop())
