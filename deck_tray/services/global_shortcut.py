"""The global shortcut: a key that shows deck-tray's window at the oldest waiting request (or
hides it) from anywhere on the desktop, bound the way the desktop offers (issue #14).

Ways, tried in the order :func:`deck_tray.core.shortcuts.ways` gives:

* ``portal`` — the XDG desktop portal, ``org.freedesktop.portal.GlobalShortcuts`` version 1 on
  ``/org/freedesktop/portal/desktop`` (xdg-desktop-portal >= 1.16): ``CreateSession(a{sv})`` and
  ``BindShortcuts(o session, a(sa{sv}) shortcuts, s parent_window, a{sv})``, each answered by a
  ``Response(u code, a{sv} results)`` signal on ``org.freedesktop.portal.Request`` at
  ``/org/freedesktop/portal/desktop/request/<sender>/<handle_token>``; ``results["shortcuts"]``
  lists what the desktop granted (``trigger_description``). The key press arrives as
  ``Activated(o session, s id, t timestamp, a{sv} options)`` (``options["activation_token"]``
  where the portal sends one). Portals that cannot tell which app a host program is bind
  nothing: xdg-desktop-portal 1.16 with KDE's backend 5.27 answers an empty list (verified,
  Debian 12); then the next way is tried.
* ``kglobalaccel`` — KDE's own global shortcut service, ``org.kde.kglobalaccel`` (in KWin on
  Plasma Wayland, verified on KWin 5.27.5): ``org.kde.KGlobalAccel.doRegister(as actionId)`` and
  ``setShortcut(as actionId, ai keys, u flags)`` (Qt key codes; flags ``SetPresent | NoAutoloading``;
  the answer ``[0]`` means another action holds the key), presses as
  ``globalShortcutPressed(s component, s action, x timestamp)`` on
  ``org.kde.kglobalaccel.Component`` at the path ``getComponent(s)`` returns; ``setInactive``
  releases it on stop.
* ``x11`` — ``XGrabKey`` on the root window of an X11 session (python-xlib in a thread of its own,
  once per Caps Lock / Num Lock state); ``BadAccess`` means another program grabbed the key.

GNOME on Wayland before 48 offers none of these: the status then says to bind
``deck-tray --toggle`` in the desktop's keyboard settings.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import select
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QObject, Signal
from typing_extensions import override

from deck_tray import APP_ID
from deck_tray.core import shortcuts
from deck_tray.core.shortcuts import Trigger
from deck_tray.services.dbus import HandlerQueue, close_quietly

try:
    from jeepney import (  # type: ignore[import-untyped]
        DBusAddress,
        MatchRule,
        MessageType,
        message_bus,
        new_method_call,
    )
    from jeepney.io.asyncio import DBusRouter, open_dbus_connection  # type: ignore[import-untyped]
    from jeepney.wrappers import DBusErrorResponse, unwrap_msg  # type: ignore[import-untyped]

    HAVE_JEEPNEY = True
except ImportError:  # pragma: no cover - jeepney is a dependency
    HAVE_JEEPNEY = False

log = logging.getLogger(__name__)

PORTAL_NAME = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
PORTAL_IFACE = "org.freedesktop.portal.GlobalShortcuts"
KGA_NAME = "org.kde.kglobalaccel"
#: kglobalaccel's ``setShortcut`` flags: SetPresent (2) | NoAutoloading (4).
KGA_FLAGS = 6
#: Seconds a bus call (or a portal's Response) may take.
CALL_TIMEOUT_S = 10.0

Activated = Callable[[str], None]


class ShortcutError(Exception):
    """A way could not bind the shortcut (the message says why, for the status line)."""


class Unavailable(ShortcutError):
    """The way is not there at all (a portal without GlobalShortcuts): not worth reporting."""


class _Way(abc.ABC):
    """One way of binding: :meth:`bind` returns what the desktop granted, as words for the user."""

    name = "way"

    def __init__(self, on_activated: Activated) -> None:
        self.on_activated = on_activated

    @abc.abstractmethod
    async def bind(self, trigger: Trigger) -> str:
        """Bind ``trigger``; the granted trigger as the desktop describes it.

        Raises:
            ShortcutError: not bound (why).
        """

    @abc.abstractmethod
    async def unbind(self) -> None:
        """Release the key. Never raises."""


class _Bus:
    """One jeepney connection on the running loop, with signal subscriptions."""

    def __init__(self, bus: str) -> None:
        self.bus = bus
        self.conn: Any = None
        self.router: Any = None

    async def open(self) -> None:
        self.conn = await asyncio.wait_for(open_dbus_connection(self.bus), CALL_TIMEOUT_S)
        self.router = DBusRouter(self.conn)

    async def close(self) -> None:
        router, conn, self.router, self.conn = self.router, self.conn, None, None
        await close_quietly(router, conn)

    async def call(self, addr: DBusAddress, method: str, signature: str | None = None,
                   body: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        msg = new_method_call(addr, method, signature, body)
        reply = await asyncio.wait_for(self.router.send_and_get_reply(msg), CALL_TIMEOUT_S)
        return tuple(unwrap_msg(reply))

    async def has(self, name: str) -> bool:
        """Whether ``name`` has an owner or can be started by the bus."""
        try:
            owned = (await self.call(message_bus, "NameHasOwner", "s", (name,)))[0]
            if owned:
                return True
            return name in (await self.call(message_bus, "ListActivatableNames"))[0]
        except (DBusErrorResponse, TimeoutError, OSError):
            return False

    async def subscribe(self, rule: MatchRule, handler: Callable[[Any], None]) -> Any:
        await self.call(message_bus, "AddMatch", "s", (rule.serialise(),))
        return self.router.filter(rule, queue=HandlerQueue(handler, "a global shortcut signal"))




class PortalWay(_Way):
    """``org.freedesktop.portal.GlobalShortcuts`` (see the module docstring)."""

    name = "portal"

    def __init__(self, bus: _Bus, on_activated: Activated) -> None:
        super().__init__(on_activated)
        self.bus = bus
        self.session = ""
        self._filters: list[Any] = []

    def _request_path(self, token: str) -> str:
        sender = str(self.bus.conn.unique_name).lstrip(":").replace(".", "_")
        return f"{PORTAL_PATH}/request/{sender}/{token}"

    async def _request(self, method: str, signature: str, body: tuple[Any, ...], token: str) -> dict[str, Any]:
        """Call a portal method whose answer comes as a ``Response`` signal; its results."""
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        rule = MatchRule(type="signal", interface="org.freedesktop.portal.Request", member="Response",
                         path=self._request_path(token))
        def answered(msg: Any) -> None:
            if not got.done():
                got.set_result(msg)

        handle = await self.bus.subscribe(rule, answered)
        try:
            await self.bus.call(DBusAddress(PORTAL_PATH, PORTAL_NAME, PORTAL_IFACE), method, signature, body)
            msg = await asyncio.wait_for(got, CALL_TIMEOUT_S)
        finally:
            handle.close()
        code, results = msg.body
        if code != 0:
            raise ShortcutError("the desktop declined it" if code == 1 else f"the portal answered {code}")
        return {k: v[1] for k, v in results.items()}

    @override
    async def bind(self, trigger: Trigger) -> str:
        addr = DBusAddress(PORTAL_PATH, PORTAL_NAME, "org.freedesktop.DBus.Properties")
        try:
            await self.bus.call(addr, "Get", "ss", (PORTAL_IFACE, "version"))
        except (DBusErrorResponse, TimeoutError) as exc:
            raise Unavailable(f"no GlobalShortcuts portal ({getattr(exc, 'name', 'no answer')})") from exc
        # Portals >= 1.19 learn a host program's app id this way; older ones answer an error.
        with contextlib.suppress(DBusErrorResponse, TimeoutError):
            await self.bus.call(DBusAddress(PORTAL_PATH, PORTAL_NAME, "org.freedesktop.host.portal.Registry"),
                                "Register", "sa{sv}", (APP_ID, {}))
        tag = uuid.uuid4().hex[:12]
        self._filters.append(await self.bus.subscribe(
            MatchRule(type="signal", interface=PORTAL_IFACE, member="Activated", path=PORTAL_PATH), self._signal))
        try:
            try:
                created = await self._request("CreateSession", "a{sv}", (
                    {"handle_token": ("s", f"dt_c{tag}"), "session_handle_token": ("s", f"dt_s{tag}")},),
                    f"dt_c{tag}")
            except (ShortcutError, DBusErrorResponse) as exc:
                # GNOME's portal before 48 answers CreateSession with code 2 (verified: 43.1).
                raise Unavailable(f"the portal opened no session ({exc})") from exc
            self.session = str(created.get("session_handle", ""))
            if not self.session:
                raise ShortcutError("the portal opened no session")
            bound = await self._request("BindShortcuts", "oa(sa{sv})sa{sv}", (
                self.session,
                [(shortcuts.SHORTCUT_ID, {"description": ("s", shortcuts.DESCRIPTION),
                                          "preferred_trigger": ("s", trigger.portal())})],
                "", {"handle_token": ("s", f"dt_b{tag}")}), f"dt_b{tag}")
        except BaseException:
            await self.unbind()
            raise
        granted = {sid: {k: v[1] for k, v in opts.items()} for sid, opts in bound.get("shortcuts", [])}
        if shortcuts.SHORTCUT_ID not in granted:
            await self.unbind()
            raise ShortcutError("the portal bound nothing (portals before 1.17 cannot tell which app a program "
                                "started outside its desktop entry is)")
        return str(granted[shortcuts.SHORTCUT_ID].get("trigger_description") or trigger.text())

    def _signal(self, msg: Any) -> None:
        if msg.header.message_type is not MessageType.signal or len(msg.body) < 2:
            return
        if str(msg.body[0]) == self.session and msg.body[1] == shortcuts.SHORTCUT_ID:
            options = msg.body[3] if len(msg.body) > 3 else {}
            token = options.get("activation_token", ("s", ""))[1] if isinstance(options, dict) else ""
            self.on_activated(str(token))

    @override
    async def unbind(self) -> None:
        for handle in self._filters:
            handle.close()
        self._filters.clear()
        session, self.session = self.session, ""
        if session and self.bus.router is not None:
            with contextlib.suppress(Exception):
                await self.bus.call(DBusAddress(session, PORTAL_NAME, "org.freedesktop.portal.Session"), "Close")


class KGlobalAccelWay(_Way):
    """KDE's ``org.kde.kglobalaccel`` (see the module docstring)."""

    name = "kglobalaccel"
    ACTION = [APP_ID, shortcuts.SHORTCUT_ID, "deck-tray", shortcuts.DESCRIPTION]

    def __init__(self, bus: _Bus, on_activated: Activated) -> None:
        super().__init__(on_activated)
        self.bus = bus
        self._filter: Any = None
        self._bound = False

    @override
    async def bind(self, trigger: Trigger) -> str:
        kga = DBusAddress("/kglobalaccel", KGA_NAME, "org.kde.KGlobalAccel")
        try:
            await self.bus.call(kga, "doRegister", "as", (self.ACTION,))
            keys = (await self.bus.call(kga, "setShortcut", "asaiu", (self.ACTION, [trigger.qt_code()], KGA_FLAGS)))[0]
            component = str((await self.bus.call(kga, "getComponent", "s", (APP_ID,)))[0])
        except DBusErrorResponse as exc:
            raise ShortcutError(f"kglobalaccel refused it ({exc.name})") from exc
        self._bound = True
        if not keys or keys[0] != trigger.qt_code():
            await self.unbind()
            raise ShortcutError(f"{trigger.text()} is already another global shortcut in KDE; choose another key "
                                "or free it in System Settings → Shortcuts")
        self._filter = await self.bus.subscribe(
            MatchRule(type="signal", interface="org.kde.kglobalaccel.Component", member="globalShortcutPressed",
                      path=component), self._signal)
        return trigger.text()

    def _signal(self, msg: Any) -> None:
        if len(msg.body) >= 2 and msg.body[0] == APP_ID and msg.body[1] == shortcuts.SHORTCUT_ID:
            self.on_activated("")

    @override
    async def unbind(self) -> None:
        if self._filter is not None:
            self._filter.close()
            self._filter = None
        if self._bound and self.bus.router is not None:
            self._bound = False
            with contextlib.suppress(Exception):
                await self.bus.call(DBusAddress("/kglobalaccel", KGA_NAME, "org.kde.KGlobalAccel"),
                                    "setInactive", "as", (self.ACTION,))


class X11GrabWay(_Way):
    """``XGrabKey`` on the root window (see the module docstring)."""

    name = "x11"

    def __init__(self, display: str, on_activated: Activated) -> None:
        super().__init__(on_activated)
        self.display = display
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @override
    async def bind(self, trigger: Trigger) -> str:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[str] = loop.create_future()

        def report(error: str) -> None:
            if not ready.done():
                if error:
                    ready.set_exception(ShortcutError(error))
                else:
                    ready.set_result(trigger.text())

        def pressed() -> None:
            loop.call_soon_threadsafe(self.on_activated, "")

        self._stop.clear()
        self._thread = threading.Thread(
            target=_grab_loop, name="x11-shortcut", daemon=True,
            args=(self.display, trigger, self._stop, lambda e: loop.call_soon_threadsafe(report, e), pressed))
        self._thread.start()
        try:
            return await asyncio.wait_for(ready, CALL_TIMEOUT_S)
        except BaseException:
            await self.unbind()
            raise

    @override
    async def unbind(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 2.0)


def _grab_loop(display: str, trigger: Trigger, stop: threading.Event, report: Callable[[str], None],
               pressed: Callable[[], None]) -> None:
    """The X11 grab: grab, report ``""`` (or why not), then wait for presses until ``stop``."""
    from Xlib import XK, X
    from Xlib import error as xerror
    from Xlib.display import Display

    try:
        dpy = Display(display)
    except Exception as exc:
        report(f"cannot open the X display {display}: {exc}")
        return
    try:
        root = dpy.screen().root
        keysym = XK.string_to_keysym(trigger.keysym())
        keycode = dpy.keysym_to_keycode(keysym) if keysym else 0
        if not keycode:
            report(f"this keyboard has no {trigger.key} key")
            return
        mods = 0
        for name in trigger.modifiers:
            mods |= {"Control": X.ControlMask, "Mod1": X.Mod1Mask, "Shift": X.ShiftMask, "Mod4": X.Mod4Mask}[name]
        catch = xerror.CatchError(xerror.BadAccess)
        variants = [mods | extra for extra in (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask)]
        for m in variants:
            root.grab_key(keycode, m, True, X.GrabModeAsync, X.GrabModeAsync, onerror=catch)
        dpy.sync()
        if catch.get_error() is not None:
            for m in variants:
                root.ungrab_key(keycode, m)
            dpy.sync()
            report(f"{trigger.text()} is taken by another program on this display; choose another key")
            return
        report("")
        fd = dpy.fileno()
        while not stop.is_set():
            if not dpy.pending_events():
                select.select([fd], [], [], 0.2)
                if not dpy.pending_events():
                    continue
            ev = dpy.next_event()
            if ev.type == X.KeyPress and ev.detail == keycode and (ev.state & mods) == mods:
                pressed()
        for m in variants:
            root.ungrab_key(keycode, m)
        dpy.sync()
    except Exception as exc:
        log.exception("the X11 shortcut grab failed")
        report(f"the X11 key grab failed ({type(exc).__name__}: {exc})")
    finally:
        with contextlib.suppress(Exception):
            dpy.close()


class GlobalShortcut(QObject):
    """Binds the user's global shortcut the best way the desktop offers and reports presses.

    Args:
        env: the environment (session type, ``DISPLAY``); ``os.environ`` when None.
        bus: jeepney bus spec for the portal and kglobalaccel (``"SESSION"`` or an address).

    Attributes:
        way: the way in use (``"portal"``, ``"kglobalaccel"``, ``"x11"``) or ``""``.
        status: one sentence for the settings dialog and ``doctor``: the way and what the desktop
            granted, or why there is none and what to do.

    Signals:
        activated(str): the shortcut was pressed; the xdg-activation token that came with it, or ``""``.
        changed(): :attr:`way` / :attr:`status` changed.
    """

    activated = Signal(str)
    changed = Signal()

    def __init__(self, env: Mapping[str, str] | None = None, bus: str = "SESSION",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.env = dict(os.environ if env is None else env)
        self._bus_spec = bus
        self._bus: _Bus | None = None
        self._way: _Way | None = None
        self.way = ""
        self.status = "No global shortcut is set."
        self._lock = asyncio.Lock()

    async def apply(self, text: str) -> None:
        """Bind ``text`` (Qt's portable notation; ``""`` = none), releasing the old one first.
        Never raises: what happened is in :attr:`status`."""
        async with self._lock:
            await self._release()
            if not text.strip():
                self._set("", "No global shortcut is set.")
                return
            try:
                trigger = shortcuts.parse(text)
            except ValueError as exc:
                self._set("", f"Not bound: {exc}.")
                return
            tried: list[str] = []
            for name in await self._ways():
                way = self._make(name)
                try:
                    granted = await way.bind(trigger)
                except (ShortcutError, TimeoutError, OSError, DBusErrorResponse) as exc:
                    log.info("global shortcut %s not bound through %s: %s", trigger.text(), name, exc)
                    if not isinstance(exc, Unavailable):
                        tried.append(f"{_WAY_WORDS[name]}: {exc or type(exc).__name__}")
                    continue
                self._way = way
                self._set(name, f"{granted} — bound through {_WAY_WORDS[name]}.")
                log.info("global shortcut %s bound through %s (%s)", trigger.text(), name, granted)
                return
            if not tried:
                self._set("", shortcuts.none_reason(self.env))
            else:
                self._set("", "Not bound. " + "; ".join(tried)
                          + ". Instead, bind deck-tray --toggle to a key in your desktop's keyboard settings.")

    async def stop(self) -> None:
        """Release the key and close the bus connection. Never raises."""
        async with self._lock:
            await self._release()
            if self._bus is not None:
                await self._bus.close()
                self._bus = None

    async def _release(self) -> None:
        way, self._way = self._way, None
        if way is not None:
            await way.unbind()

    async def _ways(self) -> list[str]:
        portal = kga = False
        has_bus = self._bus_spec != "SESSION" or bool(self.env.get("DBUS_SESSION_BUS_ADDRESS"))
        if HAVE_JEEPNEY and has_bus:
            try:
                if self._bus is None:
                    bus = _Bus(self._bus_spec)
                    await bus.open()
                    self._bus = bus
                portal = await self._bus.has(PORTAL_NAME)
                kga = await self._bus.has(KGA_NAME)
            except (OSError, TimeoutError, ValueError, KeyError, RuntimeError) as exc:
                log.info("global shortcut: no session bus (%s)", exc)
        return shortcuts.ways(self.env, portal=portal, kglobalaccel=kga)

    def _make(self, name: str) -> _Way:
        if name == "portal" and self._bus is not None:
            return PortalWay(self._bus, self._pressed)
        if name == "kglobalaccel" and self._bus is not None:
            return KGlobalAccelWay(self._bus, self._pressed)
        return X11GrabWay(self.env.get("DISPLAY", ""), self._pressed)

    def _pressed(self, token: str) -> None:
        log.info("global shortcut pressed (%s)", self.way or "?")
        self.activated.emit(token)

    def _set(self, way: str, status: str) -> None:
        self.way, self.status = way, status
        self.changed.emit()


_WAY_WORDS = {"portal": "the desktop portal", "kglobalaccel": "KDE global shortcuts (kglobalaccel)",
              "x11": "an X11 key grab"}
