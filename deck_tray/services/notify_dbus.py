"""How notifications reach the screen: the backend interface and the freedesktop D-Bus backend.

The :class:`~deck_tray.services.notifier.Notifier` decides *what* to announce and *when*; it
hands the result to :class:`NotificationBackend` adapters. This module holds that interface
and :class:`DBusNotifications`, which speaks the freedesktop Desktop Notifications protocol
(spec 1.2, ``org.freedesktop.Notifications`` on the session bus) through jeepney's asyncio API
on the running (qasync) loop.

The protocol's names and values below are the one copy in the package: ``deck-tray doctor``
asks the same service with them. The module needs neither Qt nor jeepney to be imported
(jeepney is a Linux-only dependency; without it :meth:`DBusNotifications.start` says so).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import html
import importlib.resources
import logging
import time
from collections.abc import Callable
from typing import Any

from typing_extensions import override

from deck_tray import APP_ID
from deck_tray.services.dbus import HandlerQueue, close_quietly

try:  # jeepney is a Linux-only dependency (it comes with keyring there).
    from jeepney import (  # type: ignore[import-untyped]
        DBusAddress,
        HeaderFields,
        MatchRule,
        MessageType,
        new_method_call,
    )
    from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
    from jeepney.io.asyncio import DBusRouter, open_dbus_connection  # type: ignore[import-untyped]
    from jeepney.io.common import RouterClosed  # type: ignore[import-untyped]
    from jeepney.wrappers import DBusErrorResponse, unwrap_msg  # type: ignore[import-untyped]

    HAVE_JEEPNEY = True
except ImportError:  # pragma: no cover - exercised on platforms without jeepney only
    HAVE_JEEPNEY = False

log = logging.getLogger(__name__)

# -- the protocol (Desktop Notifications spec 1.2) -------------------------------------------

#: The service's well-known bus name, its object path and its interface.
BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
INTERFACE = "org.freedesktop.Notifications"

#: Methods. ``Notify(s app_name, u replaces_id, s app_icon, s summary, s body, as actions,
#: a{sv} hints, i expire_timeout) -> u id``; ``CloseNotification(u id)``;
#: ``GetCapabilities() -> as``; ``GetServerInformation() -> (s name, s vendor, s version, s spec_version)``.
NOTIFY = "Notify"
CLOSE_NOTIFICATION = "CloseNotification"
GET_CAPABILITIES = "GetCapabilities"
GET_SERVER_INFORMATION = "GetServerInformation"
#: ``Notify``'s signature; ``replaces_id`` is a uint32 (servers reject an ``i`` there).
NOTIFY_SIGNATURE = "susssasa{sv}i"

#: Signals. ``ActionInvoked(u id, s action_key)``; ``NotificationClosed(u id, u reason)``;
#: ``ActivationToken(u id, s token)`` (new in 1.2: the xdg-activation token, sent just before
#: ``ActionInvoked`` by servers that are Wayland clients).
ACTION_INVOKED = "ActionInvoked"
NOTIFICATION_CLOSED = "NotificationClosed"
ACTIVATION_TOKEN = "ActivationToken"

#: Capabilities (``GetCapabilities``) the backend looks at: action buttons / clicks reported,
#: and a body that is parsed as markup (so plain text must be escaped).
CAP_ACTIONS = "actions"
CAP_BODY_MARKUP = "body-markup"

#: ``NotificationClosed`` reasons: expired, dismissed by the user, closed by ``CloseNotification``,
#: undefined (this backend also reports its notifications closed with 4 when the daemon leaves).
CLOSED_EXPIRED = 1
CLOSED_DISMISSED = 2
CLOSED_BY_CALL = 3
CLOSED_UNDEFINED = 4

#: ``urgency`` hint values (a byte): 0 low, 1 normal, 2 critical.
URGENCY_LOW = 0
URGENCY_NORMAL = 1
URGENCY_CRITICAL = 2

#: Signals for an id not (yet) ours are kept this long (seconds) and at most this many: a click
#: that lands as a notification appears arrives right behind the ``Notify`` reply, and is read
#: before ``notify`` has taken the id (seen under load: the click was lost).
EARLY_KEEP_S = 5.0
EARLY_KEPT = 32

# -- the backend interface -------------------------------------------------------------------

#: Called with ``(notification id, action key)`` when the user picks an action.
ActionCallback = Callable[[int, str], None]
#: Called with ``(notification id, reason)``; reasons as in the spec (see ``CLOSED_*``).
ClosedCallback = Callable[[int, int], None]


class NotificationError(Exception):
    """A backend could not start, show or close a notification (the message says why)."""


class NotificationBackend(abc.ABC):
    """One way to show notifications that can be closed and clicked.

    Backends report user actions and closures through the callbacks set with
    :meth:`set_callbacks`; they only report ids they returned from :meth:`notify`.
    """

    #: Short name used in logs and :attr:`Notifier.backend_changed`.
    name = "backend"

    def __init__(self) -> None:
        self._on_action: ActionCallback | None = None
        self._on_closed: ClosedCallback | None = None

    def set_callbacks(self, on_action: ActionCallback | None, on_closed: ClosedCallback | None) -> None:
        """Where to report ``ActionInvoked(id, action_key)`` and ``NotificationClosed(id, reason)``."""
        self._on_action = on_action
        self._on_closed = on_closed

    def describe(self) -> str:
        """Human description for the log once started (server name, capabilities)."""
        return self.name

    @property
    def supports_actions(self) -> bool:
        """Whether action buttons / clicks are reported."""
        return True

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect; raises :class:`NotificationError` with the reason when unusable."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect and end every task the backend owns. Never raises."""

    @abc.abstractmethod
    async def notify(self, key: str, title: str, body: str, actions: list[tuple[str, str]],
                     replaces_id: int = 0, *, urgency: int = URGENCY_CRITICAL) -> int:
        """Show (or replace) a notification that stays until it is closed.

        Args:
            key: what it is about (the session id), for logs.
            title: the summary line (plain text).
            body: the body (plain text; backends escape it where the server parses markup).
            actions: ``(key, label)`` pairs; ignored when the server has no actions.
            replaces_id: an id from an earlier call to replace in place, or 0.
            urgency: 0 low, 1 normal, 2 critical.

        Returns:
            The notification id (> 0).

        Raises:
            NotificationError: the server refused or is unreachable.
        """

    @abc.abstractmethod
    async def close(self, notification_id: int) -> None:
        """Close a notification this backend showed; raises :class:`NotificationError`."""

    def take_activation_token(self, notification_id: int) -> str:
        """The xdg-activation token the server sent for this notification's last click (and
        forgets it), or ``""``. Backends whose server sends none keep this default."""
        return ""

    def deliver_early(self, notification_id: int) -> None:
        """Report what happened to ``notification_id`` before :meth:`notify` returned it (a click
        that came with the reply): the caller calls this once it has recorded the id, so the
        report finds it. Backends that report nothing early keep this default."""
        return None

    def _report_action(self, notification_id: int, action: str) -> None:
        if self._on_action is not None:
            self._on_action(notification_id, action)

    def _report_closed(self, notification_id: int, reason: int) -> None:
        if self._on_closed is not None:
            self._on_closed(notification_id, reason)


# -- freedesktop D-Bus -----------------------------------------------------------------------

class DBusNotifications(NotificationBackend):
    """``org.freedesktop.Notifications`` over jeepney on the running asyncio (qasync) loop.

    Sends ``Notify`` with the spec's signature ``susssasa{sv}i`` (``replaces_id`` is a uint32):
    app name ``deck-tray``, the ``state-waiting.svg`` icon as an absolute file path, hints
    ``desktop-entry`` (the app id) and ``urgency`` (byte), and ``expire_timeout`` 0 (stays until
    answered). Actions are sent only when ``GetCapabilities`` lists ``actions``; the body is
    escaped when it lists ``body-markup``. ``ActionInvoked`` / ``NotificationClosed`` are taken
    only from the current owner of the service name and only for ids this backend returned.
    ``ActivationToken(u id, s token)`` (spec 1.2; sent just before ``ActionInvoked`` by servers
    that are Wayland clients, e.g. mako 1.7, KDE Plasma, GNOME Shell) is kept for that id until
    :meth:`take_activation_token` asks for it. ``NameOwnerChanged`` tells when the daemon goes
    away (its notifications are reported closed with reason 4) or a new one appears
    (capabilities are asked again). A bus connection found dead is opened again once per call.

    Args:
        bus: jeepney bus spec: ``"SESSION"`` (``$DBUS_SESSION_BUS_ADDRESS``) or an address.
        app_name: the ``app_name`` argument.
        desktop_entry: the ``desktop-entry`` hint (the .desktop file name without suffix).
        icon: ``app_icon``; None = the packaged ``state-waiting.svg`` as a real file path.
        timeout: seconds to wait for any reply from the bus or the daemon.

    Attributes:
        capabilities: what ``GetCapabilities`` listed (empty until started).
        server_info: ``(name, vendor, version, spec_version)`` from ``GetServerInformation``.

    Errors: every method that talks to the bus raises :class:`NotificationError` with the
    reason (no bus, an error reply, no reply within ``timeout``, the connection lost twice).
    """

    name = "freedesktop"

    def __init__(self, *, bus: str = "SESSION", app_name: str = "deck-tray", desktop_entry: str = APP_ID,
                 icon: str | None = None, timeout: float = 5.0) -> None:
        super().__init__()
        self.bus = bus
        self.app_name = app_name
        self.desktop_entry = desktop_entry
        self.timeout = timeout
        self._icon = icon
        self._files = contextlib.ExitStack()
        self._conn: Any = None
        self._router: Any = None
        self._filters: list[Any] = []
        self._owner = ""  # unique bus name of the daemon we talk to
        self._ids: set[int] = set()
        self._tokens: dict[int, str] = {}
        #: Signals that came for ids not ours yet: ``(monotonic s, member, id, argument)``.
        self._early: list[tuple[float, str, int, Any]] = []
        self._caps_stale = True
        self.capabilities: frozenset[str] = frozenset()
        self.server_info: tuple[str, str, str, str] = ("", "", "", "")

    # -- NotificationBackend -------------------------------------------------------------

    @property
    @override
    def supports_actions(self) -> bool:
        return CAP_ACTIONS in self.capabilities

    @override
    def describe(self) -> str:
        name, vendor, version, spec = self.server_info
        acts = "with actions" if self.supports_actions else "without actions (clicks are not reported)"
        return f"freedesktop D-Bus: {name or '?'} {version} ({vendor}, spec {spec}), {acts}"

    @override
    async def start(self) -> None:
        if not HAVE_JEEPNEY:
            raise NotificationError("jeepney is not installed")
        if self._icon is None:
            ref = importlib.resources.files("deck_tray.resources") / "state-waiting.svg"
            self._icon = str(self._files.enter_context(importlib.resources.as_file(ref)))
        if self._router is not None:
            return  # already started
        try:
            await self._connect()
            await self._refresh_server()
        except NotificationError:
            await self._disconnect()
            raise

    @override
    async def stop(self) -> None:
        await self._disconnect()
        self._ids.clear()
        self._early.clear()
        self._files.close()
        self._icon = None

    @override
    async def notify(self, key: str, title: str, body: str, actions: list[tuple[str, str]],
                     replaces_id: int = 0, *, urgency: int = URGENCY_CRITICAL) -> int:
        if self._caps_stale:
            await self._refresh_server()
        if not self.supports_actions:
            actions = []
        if CAP_BODY_MARKUP in self.capabilities:
            body = html.escape(body, quote=False)
        flat = [part for pair in actions for part in pair]
        hints = {"desktop-entry": ("s", self.desktop_entry), "urgency": ("y", urgency)}
        args = (self.app_name, replaces_id, self._icon or "", title, body, flat, hints, 0)
        reply = await self._call(NOTIFY, NOTIFY_SIGNATURE, args)
        nid = int(reply[0])
        if replaces_id and replaces_id != nid:
            self._ids.discard(replaces_id)
        self._ids.add(nid)
        log.debug("notification %d shown for %s (%d actions)", nid, key[:8], len(actions))
        return nid

    @override
    async def close(self, notification_id: int) -> None:
        if notification_id not in self._ids:
            return
        self._ids.discard(notification_id)
        await self._call(CLOSE_NOTIFICATION, "u", (notification_id,))

    @override
    def take_activation_token(self, notification_id: int) -> str:
        return self._tokens.pop(notification_id, "")

    # -- D-Bus plumbing ------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            conn = await asyncio.wait_for(open_dbus_connection(self.bus), self.timeout)
        except (OSError, EOFError, KeyError, RuntimeError, ValueError, TimeoutError) as exc:
            raise NotificationError(f"cannot connect to the D-Bus session bus: {_why(exc)}") from exc
        self._conn = conn
        self._router = DBusRouter(conn)
        sink = HandlerQueue(self._dispatch, "a notification signal")
        rules = [
            MatchRule(type="signal", interface=INTERFACE, path=OBJECT_PATH),
            MatchRule(type="signal", sender="org.freedesktop.DBus", interface="org.freedesktop.DBus",
                      member="NameOwnerChanged", path="/org/freedesktop/DBus"),
        ]
        rules[1].add_arg_condition(0, BUS_NAME)
        for rule in rules:
            self._filters.append(self._router.filter(rule, queue=sink))
            await self._bus_call(message_bus.AddMatch(rule))
        self._caps_stale = True

    async def _disconnect(self) -> None:
        for handle in self._filters:
            handle.close()
        self._filters.clear()
        router, conn, self._router, self._conn = self._router, self._conn, None, None
        await close_quietly(router, conn)
        self._owner = ""

    async def _refresh_server(self) -> None:
        caps = await self._call(GET_CAPABILITIES, None, ())
        self.capabilities = frozenset(str(c) for c in caps[0])
        info = await self._call(GET_SERVER_INFORMATION, None, ())
        self.server_info = (str(info[0]), str(info[1]), str(info[2]), str(info[3]))
        owner = await self._bus_call(message_bus.GetNameOwner(BUS_NAME))
        self._owner = str(owner[0])
        self._caps_stale = False
        name, vendor, version, spec = self.server_info
        log.info("notification server: %s %s by %s (spec %s), capabilities: %s",
                 name, version, vendor, spec, ", ".join(sorted(self.capabilities)) or "none")

    async def _call(self, method: str, signature: str | None, body: tuple[Any, ...]) -> tuple[Any, ...]:
        addr = DBusAddress(OBJECT_PATH, bus_name=BUS_NAME, interface=INTERFACE)
        return await self._bus_call(new_method_call(addr, method, signature, body))

    async def _bus_call(self, msg: Any) -> tuple[Any, ...]:
        for attempt in (1, 2):
            if self._router is None:
                await self._connect()
            try:
                reply = await asyncio.wait_for(self._router.send_and_get_reply(msg), self.timeout)
                return tuple(unwrap_msg(reply))
            except RouterClosed as exc:
                # The bus connection died; RouterClosed is raised before anything is sent.
                await self._disconnect()
                if attempt == 2:
                    raise NotificationError(f"D-Bus connection lost: {exc}") from exc
                log.info("D-Bus connection lost; reconnecting")
            except DBusErrorResponse as exc:
                raise NotificationError(_why(exc)) from exc
            except TimeoutError as exc:
                raise NotificationError(f"no reply within {self.timeout:g} s") from exc
            except (OSError, EOFError) as exc:
                await self._disconnect()
                raise NotificationError(f"D-Bus connection failed: {_why(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _dispatch(self, msg: Any) -> None:
        fields = msg.header.fields
        member = fields.get(HeaderFields.member)
        if msg.header.message_type is not MessageType.signal:
            return
        if member == "NameOwnerChanged":
            _name, old, new = msg.body
            self._owner_changed(str(old), str(new))
            return
        if fields.get(HeaderFields.sender) != self._owner or not self._owner:
            return  # not from the daemon we talk to
        if member not in (ACTIVATION_TOKEN, ACTION_INVOKED, NOTIFICATION_CLOSED) or len(msg.body) != 2:
            return
        nid = int(msg.body[0])
        if nid in self._ids:
            self._handle(str(member), nid, msg.body[1])
            return
        # Not ours, or ours before ``notify`` has seen its reply: the reply and a click right
        # behind it arrive together, and this runs as soon as each is read, before the awaiting
        # ``notify`` resumes. Kept a moment, for :meth:`deliver_early`.
        now = time.monotonic()
        self._early = [e for e in self._early[-(EARLY_KEPT - 1):] if now - e[0] < EARLY_KEEP_S]
        self._early.append((now, str(member), nid, msg.body[1]))

    def _handle(self, member: str, nid: int, arg: Any) -> None:
        """One signal about our notification ``nid``."""
        if member == ACTIVATION_TOKEN:
            self._tokens[nid] = str(arg)
        elif member == ACTION_INVOKED:
            self._report_action(nid, str(arg))
        elif member == NOTIFICATION_CLOSED:
            self._ids.discard(nid)
            self._tokens.pop(nid, None)
            self._report_closed(nid, int(arg))

    @override
    def deliver_early(self, notification_id: int) -> None:
        nid = notification_id
        early = [e for e in self._early if e[2] == nid]
        if early:
            self._early = [e for e in self._early if e[2] != nid]
            for _at, member, _nid, arg in early:
                if nid in self._ids:
                    self._handle(member, nid, arg)

    def _owner_changed(self, old: str, new: str) -> None:
        if old and old == self._owner:
            log.warning("the notification daemon (%s) left the session bus", self.server_info[0] or old)
            self._owner = ""
            gone, self._ids = self._ids, set()
            for nid in sorted(gone):
                self._report_closed(nid, CLOSED_UNDEFINED)
        if new:
            log.info("a notification daemon appeared on the session bus (%s)", new)
            self._caps_stale = True


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
