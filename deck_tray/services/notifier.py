"""Desktop notifications for sessions that wait on the user, with an ordered fallback.

The :class:`Notifier` listens to the :class:`~deck_tray.services.registry.SessionRegistry`
and shows **one** notification per pending request: after a short grace period (a request
answered within it never shows), unless notifications are paused or the session's pane has
the user's focus. The notification is replaced when a new request follows in the same
session and closed as soon as the session stops waiting (answered elsewhere). Clicking it,
or its Allow / Deny buttons, comes back as :attr:`Notifier.action_invoked`.

Delivery goes through :class:`NotificationBackend` adapters in fallback order (DESIGN.md §2):
the freedesktop D-Bus service (:class:`DBusNotifications`, over jeepney's asyncio API on the
running qasync loop) first, then a plain ``fallback(title, body, session_id)`` callable (the
app passes ``QSystemTrayIcon.showMessage``), which can neither be closed nor clicked reliably.
The choice is logged with the reason the others were skipped.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import functools
import html
import importlib.resources
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from deck_tray import APP_ID
from deck_tray.core.model import MessageRole, RequestKind, Session, SessionStatus
from deck_tray.services.dbus import HandlerQueue, close_quietly
from deck_tray.services.registry import SessionRegistry, is_new_request

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
T = TypeVar("T")

#: Called with ``(notification id, action key)`` when the user picks an action.
ActionCallback = Callable[[int, str], None]
#: Called with ``(notification id, reason)``; reasons as in the spec (see ``CLOSED_*``).
ClosedCallback = Callable[[int, int], None]
#: The last resort: ``(title, body, session_id)``, e.g. a wrapper of ``QSystemTrayIcon.showMessage``.
Fallback = Callable[[str, str, str], None]

#: NotificationClosed reasons (freedesktop Desktop Notifications spec 1.2).
CLOSED_EXPIRED = 1
CLOSED_DISMISSED = 2
CLOSED_BY_CALL = 3
CLOSED_UNDEFINED = 4

#: Urgency hint values (spec: 0 low, 1 normal, 2 critical).
URGENCY_NORMAL = 1
URGENCY_CRITICAL = 2

#: Backend action keys. ``default`` is what a click on the body invokes (``dunstctl action 0``).
ACTION_DEFAULT = "default"
ACTION_ALLOW = "allow"
ACTION_DENY = "deny"
#: What :attr:`Notifier.action_invoked` reports for each backend action key.
ACTIONS = {ACTION_DEFAULT: "open", ACTION_ALLOW: "allow", ACTION_DENY: "deny"}

BODY_MAX = 240
#: While quiet hours hold a notification, it is looked at again this often (seconds).
QUIET_RECHECK_S = 30.0
#: What a :class:`Notifier` announces unless told otherwise (:attr:`Notifier.announce`).
ANNOUNCE_DEFAULT = frozenset({SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION})
_QUIET = "it is quiet hours (held until they end)"
FDN_NAME = "org.freedesktop.Notifications"
FDN_PATH = "/org/freedesktop/Notifications"
NOTIFY_SIGNATURE = "susssasa{sv}i"


class NotificationError(Exception):
    """A backend could not start, show or close a notification (the message says why)."""


def notification_text(s: Session) -> tuple[str, str]:
    """Title and body of the notification for a waiting session.

    Returns:
        ``("Claude Code needs you — Fix the login bug", "Permission for Bash: rm -f x")``;
        questions read ``"Question: <question>"``; a finished turn (``IDLE``)
        ``("Claude Code finished — …", "Turn finished: <first line of the last answer>")``.
        The body is cut to 240 characters.
    """
    title = f"{s.agent.label} needs you — {s.display_title}"
    p = s.pending
    if p is None and s.status is SessionStatus.IDLE:
        title = f"{s.agent.label} finished — {s.display_title}"
        last = next((m.text.strip() for m in reversed(s.messages)
                     if m.role is MessageRole.ASSISTANT and m.text.strip()), "")
        body = "Turn finished" + (f": {last.splitlines()[0]}" if last else "")
    elif p is not None and p.kind is RequestKind.QUESTION:
        body = f"Question: {p.question or p.summary}"
    elif p is not None:
        body = f"Permission for {p.tool or 'a command'}: {p.summary}"
    else:
        body = s.reason.split(" — ")[0]
    if len(body) > BODY_MAX:
        body = body[: BODY_MAX - 1] + "…"
    return title, body


def notification_actions(s: Session) -> list[tuple[str, str]]:
    """``(key, label)`` pairs: Open (the ``default`` action) always, Allow / Deny for permissions."""
    actions = [(ACTION_DEFAULT, "Open")]
    if s.pending is not None and s.pending.kind is RequestKind.PERMISSION:
        actions += [(ACTION_ALLOW, "Allow"), (ACTION_DENY, "Deny")]
    return actions


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

    def _report_action(self, notification_id: int, action: str) -> None:
        if self._on_action is not None:
            self._on_action(notification_id, action)

    def _report_closed(self, notification_id: int, reason: int) -> None:
        if self._on_closed is not None:
            self._on_closed(notification_id, reason)


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
    (capabilities are asked again).

    Args:
        bus: jeepney bus spec: ``"SESSION"`` (``$DBUS_SESSION_BUS_ADDRESS``) or an address.
        app_name: the ``app_name`` argument.
        desktop_entry: the ``desktop-entry`` hint (the .desktop file name without suffix).
        icon: ``app_icon``; None = the packaged ``state-waiting.svg`` as a real file path.
        timeout: seconds to wait for any reply from the bus or the daemon.
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner = ""  # unique bus name of the daemon we talk to
        self._ids: set[int] = set()
        self._tokens: dict[int, str] = {}
        self._caps_stale = True
        self.capabilities: frozenset[str] = frozenset()
        #: ``(name, vendor, version, spec_version)`` from GetServerInformation.
        self.server_info: tuple[str, str, str, str] = ("", "", "", "")

    # -- NotificationBackend -------------------------------------------------------------

    @property
    def supports_actions(self) -> bool:
        return "actions" in self.capabilities

    def describe(self) -> str:
        name, vendor, version, spec = self.server_info
        acts = "with actions" if self.supports_actions else "without actions (clicks are not reported)"
        return f"freedesktop D-Bus: {name or '?'} {version} ({vendor}, spec {spec}), {acts}"

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

    async def stop(self) -> None:
        await self._disconnect()
        self._ids.clear()
        self._files.close()
        self._icon = None

    async def notify(self, key: str, title: str, body: str, actions: list[tuple[str, str]],
                     replaces_id: int = 0, *, urgency: int = URGENCY_CRITICAL) -> int:
        if self._caps_stale:
            await self._refresh_server()
        if not self.supports_actions:
            actions = []
        if "body-markup" in self.capabilities:
            body = html.escape(body, quote=False)
        flat = [part for pair in actions for part in pair]
        hints = {"desktop-entry": ("s", self.desktop_entry), "urgency": ("y", urgency)}
        args = (self.app_name, replaces_id, self._icon or "", title, body, flat, hints, 0)
        reply = await self._call("Notify", NOTIFY_SIGNATURE, args)
        nid = int(reply[0])
        if replaces_id and replaces_id != nid:
            self._ids.discard(replaces_id)
        self._ids.add(nid)
        log.debug("notification %d shown for %s (%d actions)", nid, key[:8], len(actions))
        return nid

    async def close(self, notification_id: int) -> None:
        if notification_id not in self._ids:
            return
        self._ids.discard(notification_id)
        await self._call("CloseNotification", "u", (notification_id,))

    def take_activation_token(self, notification_id: int) -> str:
        return self._tokens.pop(notification_id, "")

    # -- D-Bus plumbing ------------------------------------------------------------------

    async def _connect(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        try:
            conn = await _timeout(loop, self.timeout, open_dbus_connection(self.bus))
        except (OSError, EOFError, KeyError, RuntimeError, ValueError, TimeoutError) as exc:
            raise NotificationError(f"cannot connect to the D-Bus session bus: {_why(exc)}") from exc
        self._conn = conn
        self._router = DBusRouter(conn)
        sink = HandlerQueue(self._dispatch, "a notification signal")
        rules = [
            MatchRule(type="signal", interface=FDN_NAME, path=FDN_PATH),
            MatchRule(type="signal", sender="org.freedesktop.DBus", interface="org.freedesktop.DBus",
                      member="NameOwnerChanged", path="/org/freedesktop/DBus"),
        ]
        rules[1].add_arg_condition(0, FDN_NAME)
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
        caps = await self._call("GetCapabilities", None, ())
        self.capabilities = frozenset(str(c) for c in caps[0])
        info = await self._call("GetServerInformation", None, ())
        self.server_info = (str(info[0]), str(info[1]), str(info[2]), str(info[3]))
        owner = await self._bus_call(message_bus.GetNameOwner(FDN_NAME))
        self._owner = str(owner[0])
        self._caps_stale = False
        name, vendor, version, spec = self.server_info
        log.info("notification server: %s %s by %s (spec %s), capabilities: %s",
                 name, version, vendor, spec, ", ".join(sorted(self.capabilities)) or "none")

    async def _call(self, method: str, signature: str | None, body: tuple[Any, ...]) -> tuple[Any, ...]:
        addr = DBusAddress(FDN_PATH, bus_name=FDN_NAME, interface=FDN_NAME)
        return await self._bus_call(new_method_call(addr, method, signature, body))

    async def _bus_call(self, msg: Any) -> tuple[Any, ...]:
        for attempt in (1, 2):
            if self._router is None:
                await self._connect()
            try:
                assert self._loop is not None
                reply = await _timeout(self._loop, self.timeout, self._router.send_and_get_reply(msg))
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
        if member == "ActivationToken" and len(msg.body) == 2:
            nid, token = int(msg.body[0]), str(msg.body[1])
            if nid in self._ids:
                self._tokens[nid] = token
        elif member == "ActionInvoked" and len(msg.body) == 2:
            nid, action = int(msg.body[0]), str(msg.body[1])
            if nid in self._ids:
                self._report_action(nid, action)
        elif member == "NotificationClosed" and len(msg.body) == 2:
            nid, reason = int(msg.body[0]), int(msg.body[1])
            if nid in self._ids:
                self._ids.discard(nid)
                self._tokens.pop(nid, None)
                self._report_closed(nid, reason)

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


# qasync's run_until_complete() ends with one more processEvents() outside run_forever(), so a
# task step can run while no loop is "running" (tests drive the loop that way). asyncio.sleep,
# wait_for, Queue and Lock need the running loop there, so this module uses the loop explicitly.

def _sleep(loop: asyncio.AbstractEventLoop, delay: float) -> asyncio.Future[None]:
    fut: asyncio.Future[None] = loop.create_future()
    handle = loop.call_later(delay, lambda: None if fut.done() else fut.set_result(None))
    fut.add_done_callback(lambda _f: handle.cancel())
    return fut


async def _timeout(loop: asyncio.AbstractEventLoop, seconds: float, aw: Awaitable[T]) -> T:
    """``await aw``, raising TimeoutError after ``seconds`` (like ``asyncio.wait_for``)."""
    task = asyncio.current_task(loop)
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = loop.call_later(seconds, expire)
    try:
        return await aw
    except asyncio.CancelledError:
        if expired and task.uncancel() == 0:
            raise TimeoutError from None
        raise
    finally:
        handle.cancel()


class _Lock:
    """A FIFO async lock bound to ``loop`` (see above for why not asyncio.Lock)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._locked = False
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def __aenter__(self) -> None:
        if not self._locked and not self._waiters:
            self._locked = True
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(fut)
        try:
            await fut  # the lock is handed over still locked
        except BaseException:
            if fut in self._waiters:
                self._waiters.remove(fut)
            elif fut.done() and not fut.cancelled():
                self._release()  # handed over, but we are cancelled: pass it on
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._locked = False




@dataclass(eq=False)
class _Shown:
    backend: NotificationBackend | None  # None: the fallback callable (cannot be closed)
    nid: int
    text: tuple[str, str]
    request: Session | None  # the request it announces


@dataclass(eq=False)
class _Slot:
    """Per-session state. ``request`` is the request being announced (None: not waiting)."""

    lock: _Lock  # serialises the backend calls of one session
    request: Session | None = None
    shown: _Shown | None = None
    timer: asyncio.Task[None] | None = None  # grace / reminder sleep; cancelled freely
    done: bool = False  # no more showings of this request (acted on, dismissed, paused)
    held: bool = False  # quiet hours hold it; shown when they end if still pending


def _same_request(req: Session, cur: Session | None) -> bool:
    if req.status is SessionStatus.IDLE:  # a finished turn: the same until the session moves on
        return cur is not None and cur.status is SessionStatus.IDLE
    return cur is not None and cur.status.is_waiting and not is_new_request(req, cur)


class Notifier(QObject):
    """Shows one notification per pending request and reports what the user picked.

    Args:
        registry: the sessions; ``attention_needed``, ``session_changed`` and ``session_removed``
            drive everything.
        backends: adapters in fallback order (normally ``[DBusNotifications()]``).
        fallback: ``(title, body, session_id)`` shown when no backend works (tray message).
        is_focused: True when the user already looks at the session (its pane has focus):
            no notification then.
        grace: seconds a request must stay pending before it is shown.
        renotify_after: seconds after which a request still pending is shown again (in place,
            repeatedly); None = never. A notification the user dismissed is not repeated.
        quiet: True while notifications are to be held (quiet hours). A held request is not
            dropped: it is shown once ``quiet`` turns False (checked every
            :data:`QUIET_RECHECK_S` seconds, or at once by :meth:`release_held`) if it is still
            pending.
        parent: Qt parent.

    Attributes:
        grace, renotify_after, quiet: as the arguments; changes apply to what is announced next.
        announce: the statuses announced: ``WAITING_PERMISSION``, ``WAITING_QUESTION`` and
            ``IDLE`` (a turn seen finishing, not a session found idle); empty = notifications
            off. Default :data:`ANNOUNCE_DEFAULT`.

    Signals:
        action_invoked(str, str, str): ``(session_id, action, activation token)`` with action
            ``"open"`` (click or Open), ``"allow"`` or ``"deny"``; the token is the one the
            notification server sent for the click (xdg-activation, for raising the window on
            Wayland), or ``""``.
        backend_changed(str): the backend now used: a backend ``name``, ``"fallback"`` or ``"none"``.
        paused_changed(bool): notifications were paused (True) or resumed / the pause ran out.
    """

    action_invoked = Signal(str, str, str)
    backend_changed = Signal(str)
    paused_changed = Signal(bool)

    RETRY_START_AFTER = 60.0

    def __init__(self, registry: SessionRegistry, backends: Sequence[NotificationBackend] = (), *,
                 fallback: Fallback | None = None, is_focused: Callable[[Session], bool] | None = None,
                 grace: float = 0.3, renotify_after: float | None = None,
                 quiet: Callable[[], bool] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.backends = list(backends)
        self.fallback = fallback
        self.is_focused = is_focused
        self.grace = grace
        self.renotify_after = renotify_after
        self.quiet = quiet
        self.announce: frozenset[SessionStatus] = ANNOUNCE_DEFAULT
        self._status: dict[str, SessionStatus] = {}  # last status seen, to spot a turn finishing
        self._ready: list[NotificationBackend] = []
        self._retry_at: dict[int, float] = {}  # id(backend) -> monotonic time of the next start attempt
        self._slots: dict[str, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # set while started
        self._start_lock: _Lock | None = None  # one backend start at a time
        self._stopping = False
        self._current = ""
        self._paused_until: float | None = None  # monotonic; math.inf = until resume()
        self._pause_timer = QTimer(self)
        self._pause_timer.setSingleShot(True)
        self._pause_timer.timeout.connect(self._pause_expired)
        for b in self.backends:
            b.set_callbacks(functools.partial(self._action, b), functools.partial(self._closed, b))
        registry.attention_needed.connect(self._on_attention)
        registry.session_added.connect(self._on_added)
        registry.session_changed.connect(self._on_changed)
        registry.session_removed.connect(self._on_removed)

    # -- public API ----------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """The backend last used or chosen: a backend name, ``"fallback"`` or ``"none"``."""
        return self._current

    @property
    def paused_until(self) -> float | None:
        """POSIX time the pause ends, ``math.inf`` for "until resume()", None when not paused."""
        if self._paused_until is None:
            return None
        left = self._paused_until - time.monotonic()
        if left <= 0:
            return None
        return math.inf if math.isinf(left) else time.time() + left

    def pause(self, seconds: float | None = None) -> None:
        """Show nothing for ``seconds`` (None: until :meth:`resume`).

        Requests that arrive meanwhile are never shown later; the next new request after the
        pause is. Notifications already on screen stay.
        """
        self._pause_timer.stop()
        if seconds is None:
            self._paused_until = math.inf
        else:
            self._paused_until = time.monotonic() + max(0.0, seconds)
            self._pause_timer.start(min(int(seconds * 1000) + 1, 2**31 - 1))
        log.info("notifications paused %s", "until resumed" if seconds is None else f"for {seconds:g} s")
        self.paused_changed.emit(True)

    def release_held(self) -> None:
        """Look at the requests quiet hours hold now (not at the next check): call it when the
        quiet hours setting changed."""
        for sid, slot in self._slots.items():
            if slot.held and slot.request is not None and not self._stopping and self._loop is not None:
                self._arm(sid, slot, 0.0, slot.request)

    def resume(self) -> None:
        """End a pause."""
        self._pause_timer.stop()
        was = self._paused_until is not None
        self._paused_until = None
        if was:
            log.info("notifications resumed")
            self.paused_changed.emit(False)

    async def start(self) -> None:
        """Start the backends (logging which one is used and why others were skipped) and
        announce the sessions already waiting. Call on the running qasync loop."""
        self._loop = asyncio.get_running_loop()
        self._start_lock = _Lock(self._loop)
        self._stopping = False
        for b in self.backends:
            await self._try_start(b)
        if self._ready:
            self._set_backend(self._ready[0].name, f"using {self._ready[0].describe()}")
        elif self.fallback is not None:
            self._set_backend("fallback", "no notification service works; using the tray message fallback "
                                          "(it cannot be closed or clicked reliably)")
        else:
            self._set_backend("none", "no notification service works and there is no fallback")
        for s in self.registry.waiting():
            self._on_attention(s)

    async def stop(self) -> None:
        """Cancel timers and tasks, close the notifications still shown, stop the backends."""
        self._stopping = True
        self._pause_timer.stop()
        for slot in self._slots.values():
            if slot.timer is not None:
                slot.timer.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for slot in list(self._slots.values()):
            shown, slot.shown = slot.shown, None
            if shown is not None and shown.backend is not None:
                with contextlib.suppress(NotificationError):
                    await shown.backend.close(shown.nid)
        self._slots.clear()
        for b in self._ready:
            await b.stop()
        self._ready.clear()
        self._loop = None

    # -- registry signals ----------------------------------------------------------------

    def _on_attention(self, s: Session) -> None:
        if self._loop is None or self._stopping:
            return  # not started; start() picks up the sessions already waiting
        slot = self._slots.get(s.id)
        if slot is None:
            slot = self._slots[s.id] = _Slot(_Lock(self._loop))
        slot.request = s
        slot.done = False
        self._arm(s.id, slot, self.grace, s)

    def _on_added(self, s: Session) -> None:
        self._status[s.id] = s.status

    def _on_changed(self, s: Session) -> None:
        before = self._status.get(s.id)
        self._status[s.id] = s.status
        if before is SessionStatus.BUSY and s.status is SessionStatus.IDLE \
                and SessionStatus.IDLE in self.announce:
            self._on_attention(s)  # a turn seen finishing now (replaces a stale request's notification)
            return
        slot = self._slots.get(s.id)
        if slot is None or slot.request is None:
            return
        if _same_request(slot.request, s):
            if slot.shown is not None and slot.shown.backend is not None \
                    and notification_text(s) != slot.shown.text:
                if self._loop is not None and not self._stopping:
                    self._spawn(self._fire(s.id, slot.request, refresh_only=True))
        elif not s.status.is_waiting:
            self._leave(s.id, f"it is {s.status.value} now")
        # else: a new request; attention_needed follows and re-arms the slot

    def _on_removed(self, session_id: str) -> None:
        self._status.pop(session_id, None)
        if session_id in self._slots:
            self._leave(session_id, "it is gone")

    # -- scheduling ----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("notification task failed", exc_info=task.exception())

    def _arm(self, sid: str, slot: _Slot, delay: float, req: Session) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        if self._stopping:
            return
        slot.timer = self._spawn(self._after(sid, slot, delay, req))

    async def _after(self, sid: str, slot: _Slot, delay: float, req: Session) -> None:
        assert self._loop is not None
        await _sleep(self._loop, delay)
        if slot.timer is asyncio.current_task(self._loop):
            slot.timer = None  # from here on the task is never cancelled (a Notify may be in flight)
        await self._fire(sid, req)

    def _leave(self, sid: str, why: str) -> None:
        slot = self._slots.get(sid)
        if slot is None:
            return
        slot.request = None
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        if self._loop is not None and not self._stopping:
            if slot.shown is not None:
                log.info("closing the notification of %s: %s", sid[:8], why)
            self._spawn(self._close_slot(sid, slot))

    async def _close_slot(self, sid: str, slot: _Slot) -> None:
        async with slot.lock:
            if slot.request is None:
                await self._close_shown(slot)
                if self._slots.get(sid) is slot and slot.request is None and slot.timer is None:
                    del self._slots[sid]

    async def _close_shown(self, slot: _Slot) -> None:
        shown, slot.shown = slot.shown, None
        if shown is not None and shown.backend is not None:
            try:
                await shown.backend.close(shown.nid)
            except NotificationError as exc:
                log.warning("could not close notification %d: %s", shown.nid, exc)

    def _suppressed(self, cur: Session) -> str | None:
        if self.paused_until is not None:
            return "notifications are paused"
        if cur.status not in self.announce:
            return f"{cur.status.label.lower()} is not announced (settings)"
        if self.quiet is not None:
            try:
                if self.quiet():
                    return _QUIET
            except Exception:
                log.exception("quiet failed")
        if self.is_focused is not None:
            try:
                if self.is_focused(cur):
                    return "its pane has the focus"
            except Exception:
                log.exception("is_focused failed")
        return None

    async def _fire(self, sid: str, req: Session, *, refresh_only: bool = False) -> None:
        slot = self._slots.get(sid)
        if slot is None:
            return
        async with slot.lock:
            cur = self.registry.get(sid)
            if slot.request is not req or not _same_request(req, cur) or slot.done:
                return  # superseded, answered, or the user already acted on it
            assert cur is not None
            if refresh_only:
                if slot.shown is not None and slot.shown.backend is not None:
                    await self._show(sid, slot, cur, refresh=True)
                return
            first = slot.shown is None or slot.shown.request is not req
            slot.held = False
            why = self._suppressed(cur)
            if why is not None:
                log.info("not notifying about %s: %s", sid[:8], why)
                if first:
                    await self._close_shown(slot)  # a stale notification of an earlier request
                if why == _QUIET:
                    slot.held = True  # shown when quiet hours end, if still pending
                    if slot.timer is None:
                        self._arm(sid, slot, QUIET_RECHECK_S, req)
                    return
                if first and (self.paused_until is not None or cur.status not in self.announce):
                    slot.done = True  # never shown retroactively
            else:
                await self._show(sid, slot, cur)
            if self.renotify_after is not None and req.status.is_waiting and not slot.done \
                    and slot.request is req and slot.timer is None:
                self._arm(sid, slot, self.renotify_after, req)

    async def _show(self, sid: str, slot: _Slot, cur: Session, *, refresh: bool = False) -> None:
        title, body = notification_text(cur)
        actions = notification_actions(cur)
        old = slot.shown
        for b in self._candidates(refresh, old):
            if b not in self._ready and not await self._try_start(b):
                continue
            replaces = old.nid if old is not None and old.backend is b else 0
            try:
                nid = await b.notify(sid, title, body, actions, replaces,
                                     urgency=URGENCY_CRITICAL if cur.status.is_waiting else URGENCY_NORMAL)
            except NotificationError as exc:
                log.warning("%s could not show the notification for %s: %s", b.name, sid[:8], exc)
                continue
            if old is not None and old.backend is not b and old.backend is not None:
                with contextlib.suppress(NotificationError):
                    await old.backend.close(old.nid)
            slot.shown = _Shown(b, nid, (title, body), slot.request)
            log.info("notified about %s via %s (id %d%s)", sid[:8], b.name, nid,
                     f", replacing {replaces}" if replaces else "")
            self._set_backend(b.name, f"using {b.describe()}")
            return
        if refresh:
            return
        if old is not None and old.backend is not None:
            with contextlib.suppress(NotificationError):
                await old.backend.close(old.nid)
        if self.fallback is not None:
            self.fallback(title, body, sid)
            slot.shown = _Shown(None, 0, (title, body), slot.request)
            log.info("notified about %s via the fallback", sid[:8])
            self._set_backend("fallback", "no notification service could show it; using the tray message fallback")
        else:
            slot.shown = None
            log.warning("no way to notify about %s", sid[:8])
            self._set_backend("none", "no notification service could show it and there is no fallback")

    def _candidates(self, refresh: bool, old: _Shown | None) -> list[NotificationBackend]:
        if refresh:
            return [old.backend] if old is not None and old.backend is not None else []
        return list(self.backends)

    async def _try_start(self, b: NotificationBackend) -> bool:
        now = time.monotonic()
        if self._retry_at.get(id(b), 0.0) > now or self._start_lock is None:
            return False
        async with self._start_lock:
            if b in self._ready:
                return True
            return await self._start_backend(b, now)

    async def _start_backend(self, b: NotificationBackend, now: float) -> bool:
        try:
            await b.start()
        except NotificationError as exc:
            self._retry_at[id(b)] = now + self.RETRY_START_AFTER
            log.warning("notifications: skipping %s: %s", b.name, exc)
            return False
        except Exception:
            self._retry_at[id(b)] = now + self.RETRY_START_AFTER
            log.exception("notifications: %s failed to start", b.name)
            return False
        if b not in self._ready:
            self._ready.append(b)
            self._ready.sort(key=self.backends.index)
        log.debug("notifications: %s is ready: %s", b.name, b.describe())
        return True

    def _set_backend(self, name: str, why: str) -> None:
        if name != self._current:
            self._current = name
            log.info("notifications: %s", why)
            self.backend_changed.emit(name)

    # -- backend callbacks ---------------------------------------------------------------

    def _find(self, b: NotificationBackend, nid: int) -> tuple[str, _Slot] | None:
        for sid, slot in self._slots.items():
            if slot.shown is not None and slot.shown.backend is b and slot.shown.nid == nid:
                return sid, slot
        return None

    def _action(self, b: NotificationBackend, nid: int, key: str) -> None:
        found = self._find(b, nid)
        action = ACTIONS.get(key)
        if found is None or action is None:
            log.debug("ignoring action %r on notification %d", key, nid)
            return
        sid, slot = found
        log.info("notification action %s for %s", action, sid[:8])
        slot.done = True
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        self.action_invoked.emit(sid, action, b.take_activation_token(nid))
        if self._loop is not None and not self._stopping:
            self._spawn(self._close_after_action(slot, slot.shown))

    async def _close_after_action(self, slot: _Slot, shown: _Shown | None) -> None:
        async with slot.lock:
            if shown is not None and slot.shown is shown:
                await self._close_shown(slot)

    def _closed(self, b: NotificationBackend, nid: int, reason: int) -> None:
        found = self._find(b, nid)
        if found is None:
            return
        sid, slot = found
        slot.shown = None
        if reason == CLOSED_DISMISSED:
            log.info("the user dismissed the notification of %s", sid[:8])
            slot.done = True
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None

    def _pause_expired(self) -> None:
        if self._paused_until is not None and not math.isinf(self._paused_until):
            self._paused_until = None
            log.info("notifications pause ran out")
            self.paused_changed.emit(False)
