"""A fake ``org.freedesktop.Notifications`` daemon on a private session bus (jeepney, asyncio).

It checks every call the way a real (GLib/dbus-based) server does — above all that ``Notify``
arrives with the spec's signature ``susssasa{sv}i`` (``replaces_id`` a uint32, a string/variant
hint dict) — and answers ``org.freedesktop.DBus.Error.InvalidArgs`` otherwise. It records the
calls, can emit ``ActionInvoked`` / ``NotificationClosed``, can be told to fail ``Notify``, and
can leave the bus (the daemon "goes away").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from jeepney import DBusAddress, HeaderFields, MatchRule, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.asyncio import DBusRouter, Proxy, open_dbus_connection

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
NOTIFY_SIGNATURE = "susssasa{sv}i"
SIGNATURES = {
    "Notify": NOTIFY_SIGNATURE,
    "CloseNotification": "u",
    "GetCapabilities": "",
    "GetServerInformation": "",
}
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"


@dataclass
class NotifyCall:
    """One accepted ``Notify`` call, as received."""

    app_name: str
    replaces_id: int
    app_icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, tuple[str, Any]]
    expire_timeout: int
    signature: str
    sender: str
    returned_id: int = 0


@dataclass
class FakeNotifications:
    """The fake daemon. ``await start()`` owns the name; ``await stop()`` leaves the bus.

    Attributes:
        capabilities: what ``GetCapabilities`` returns.
        server: ``GetServerInformation`` (name, vendor, version, spec version).
        fail_notify: when set, ``Notify`` answers with this D-Bus error name.
        calls: accepted ``Notify`` calls in order.
        rejected: ``(member, signature)`` of calls refused for a wrong signature.
        closed_by_call: ids closed through ``CloseNotification``.
        open: ids currently shown.
        bus: the bus to serve on (jeepney: ``"SESSION"`` or an address).
        signals_after_notify: ``(member, argument)`` signals sent for the new id right behind
            each ``Notify`` reply, in one write (``("ActionInvoked", "default")``: a click that
            lands as the notification appears; ``("ActivationToken", "t")`` before it).
    """

    capabilities: tuple[str, ...] = ("actions", "body", "body-markup")
    server: tuple[str, str, str, str] = ("fake-notifyd", "deck-tray tests", "1.0", "1.2")
    fail_notify: str | None = None
    calls: list[NotifyCall] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    closed_by_call: list[int] = field(default_factory=list)
    open: set[int] = field(default_factory=set)
    bus: str = "SESSION"
    signals_after_notify: list[tuple[str, str]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: count(1))
    _conn: Any = None
    _router: Any = None
    _filter: Any = None

    async def start(self) -> None:
        self._conn = await open_dbus_connection(self.bus)
        self._router = DBusRouter(self._conn)
        # Calls are answered right in jeepney's receiver task, in the order they arrive (also
        # when the fake is served from a thread of its own, as in tests/e2e/test_wayland.py).
        self._filter = self._router.filter(MatchRule(type="method_call", path=PATH), queue=_Serve(self))
        reply = await Proxy(message_bus, self._router).RequestName(NAME, 4)  # DO_NOT_QUEUE
        assert reply == (1,), f"could not own {NAME}: {reply}"

    async def stop(self) -> None:
        """Leave the bus (the name's owner disappears, as when the daemon crashes)."""
        if self._filter is not None:
            self._filter.close()
            self._filter = None
        if self._router is not None:
            with contextlib.suppress(Exception):
                await self._router.__aexit__(None, None, None)
            await self._conn.close()
            self._router = self._conn = None

    @property
    def unique_name(self) -> str:
        return str(self._conn.unique_name)

    async def emit_action(self, nid: int, action: str) -> None:
        self._emit("ActionInvoked", "us", (nid, action))

    async def emit_activation_token(self, nid: int, token: str) -> None:
        """``ActivationToken(u, s)`` (spec 1.2): what a server that is a Wayland client sends just
        before ``ActionInvoked`` for a click."""
        self._emit("ActivationToken", "us", (nid, token))

    async def emit_closed(self, nid: int, reason: int) -> None:
        self._emit_closed(nid, reason)

    def _emit_closed(self, nid: int, reason: int) -> None:
        self.open.discard(nid)
        self._emit("NotificationClosed", "uu", (nid, reason))

    def _emit(self, member: str, signature: str, body: tuple[Any, ...]) -> None:
        self._send(new_signal(DBusAddress(PATH, interface=NAME), member, signature, body))

    def _send(self, msg: Any) -> None:
        self._conn.writer.write(msg.serialise(next(self._conn.outgoing_serial)))

    def serve(self, msg: Any) -> None:
        closed_before = len(self.closed_by_call)
        calls_before = len(self.calls)
        reply = self._handle(msg)
        if len(self.calls) > calls_before and self.signals_after_notify:
            nid = self.calls[-1].returned_id
            data = reply.serialise(next(self._conn.outgoing_serial))
            for member, arg in self.signals_after_notify:
                sig = new_signal(DBusAddress(PATH, interface=NAME), member, "us", (nid, arg))
                data += sig.serialise(next(self._conn.outgoing_serial))
            self._conn.writer.write(data)
            return
        self._send(reply)
        if len(self.closed_by_call) > closed_before:  # like real servers: signal the closure
            self._emit_closed(self.closed_by_call[-1], 3)

    def _handle(self, msg: Any) -> Any:
        fields = msg.header.fields
        member = fields.get(HeaderFields.member)
        iface = fields.get(HeaderFields.interface)
        sig = fields.get(HeaderFields.signature, "")
        if msg.header.message_type is not MessageType.method_call or iface not in (None, NAME):
            return new_error(msg, "org.freedesktop.DBus.Error.UnknownInterface", "s", (f"no interface {iface}",))
        if member not in SIGNATURES:
            return new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",))
        if sig != SIGNATURES[member]:
            self.rejected.append((member, sig))
            return new_error(msg, INVALID_ARGS, "s", (
                f"Type of message, '({sig})', does not match expected type '({SIGNATURES[member]})'",))
        if member == "GetCapabilities":
            return new_method_return(msg, "as", (list(self.capabilities),))
        if member == "GetServerInformation":
            return new_method_return(msg, "ssss", self.server)
        if member == "CloseNotification":
            (nid,) = msg.body
            if nid in self.open:
                self.open.discard(nid)
                self.closed_by_call.append(nid)
            return new_method_return(msg)
        return self._notify(msg, sig)

    def _notify(self, msg: Any, sig: str) -> Any:
        app, replaces, icon, summary, body, actions, hints, timeout = msg.body
        if len(actions) % 2:
            self.rejected.append(("Notify", "odd number of action strings"))
            return new_error(msg, INVALID_ARGS, "s", ("actions must be key/label pairs",))
        urgency = hints.get("urgency")
        if urgency is not None and urgency[0] != "y":
            self.rejected.append(("Notify", f"urgency hint of type {urgency[0]}"))
            return new_error(msg, INVALID_ARGS, "s", ("urgency must be a byte",))
        if self.fail_notify:
            return new_error(msg, self.fail_notify, "s", ("told to fail",))
        nid = replaces if replaces in self.open else next(self._ids)
        self.open.add(nid)
        self.calls.append(NotifyCall(app, replaces, icon, summary, body, list(actions), dict(hints), timeout, sig,
                                     str(msg.header.fields.get(HeaderFields.sender, "")), nid))
        return new_method_return(msg, "u", (nid,))


class _Serve:
    """The ``queue`` of the jeepney filter: serves each call as it arrives."""

    def __init__(self, daemon: FakeNotifications) -> None:
        self.daemon = daemon

    def put_nowait(self, msg: Any) -> None:
        self.daemon.serve(msg)
