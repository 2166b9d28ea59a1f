"""Desktop notifications for sessions that wait on the user: the policy.

The :class:`Notifier` listens to the :class:`~deck_tray.services.registry.SessionRegistry`
and shows **one** notification per pending request: after a short grace period (a request
answered within it never shows), unless notifications are paused or the session's pane has
the user's focus. The notification is replaced when a new request follows in the same
session and closed as soon as the session stops waiting (answered elsewhere). Clicking it,
or its Allow / Deny buttons, comes back as :attr:`Notifier.action_invoked`.

Delivery goes through :class:`~deck_tray.services.notify_dbus.NotificationBackend` adapters in
fallback order (DESIGN.md §2): the freedesktop D-Bus service
(:class:`~deck_tray.services.notify_dbus.DBusNotifications`) first, then a plain
``fallback(title, body, session_id)`` callable (the app passes ``QSystemTrayIcon.showMessage``),
which can neither be closed nor clicked reliably. The choice is logged with the reason the
others were skipped. Everything runs on the app's running asyncio (qasync) loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from deck_tray.core.model import MessageRole, RequestKind, Session, SessionStatus, Transition
from deck_tray.services.notify_dbus import (
    CLOSED_DISMISSED,
    URGENCY_CRITICAL,
    URGENCY_NORMAL,
    NotificationBackend,
    NotificationError,
)
from deck_tray.services.registry import SessionRegistry, is_new_request

log = logging.getLogger(__name__)

#: The last resort: ``(title, body, session_id)``, e.g. a wrapper of ``QSystemTrayIcon.showMessage``.
Fallback = Callable[[str, str, str], None]

#: Backend action keys. ``default`` is what a click on the body invokes (spec 1.2; ``dunstctl action 0``).
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


@dataclass(eq=False)
class _Shown:
    backend: NotificationBackend | None  # None: the fallback callable (cannot be closed)
    nid: int
    text: tuple[str, str]
    request: Session | None  # the request it announces


@dataclass(eq=False)
class _Slot:
    """Per-session state. ``request`` is the request being announced (None: not waiting)."""

    request: Session | None = None
    shown: _Shown | None = None
    timer: asyncio.Task[None] | None = None  # grace / reminder sleep; cancelled freely
    done: bool = False  # no more showings of this request (acted on, dismissed, paused)
    held: bool = False  # quiet hours hold it; shown when they end if still pending
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # serialises the backend calls of one session


def _same_request(req: Session, cur: Session | None) -> bool:
    if req.status is SessionStatus.IDLE:  # a finished turn: the same until the session moves on
        return cur is not None and cur.status is SessionStatus.IDLE
    return cur is not None and cur.status.is_waiting and not is_new_request(req, cur)


class Notifier(QObject):
    """Shows one notification per pending request and reports what the user picked.

    Args:
        registry: the sessions; ``attention_needed``, ``transition`` (a turn seen finishing, a
            session leaving the waiting state), ``session_changed`` (the text of a notification
            shown) and ``session_removed`` drive everything.
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
        self._ready: list[NotificationBackend] = []
        self._retry_at: dict[int, float] = {}  # id(backend) -> monotonic time of the next start attempt
        self._slots: dict[str, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # The loop start() ran on, set while started: registry signals are plain Qt calls and may
        # come while no loop runs (a test applying sessions between steps); tasks go there.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock: asyncio.Lock | None = None  # one backend start at a time
        self._stopping = False
        self._current = ""
        self._paused_until: float | None = None  # monotonic; math.inf = until resume()
        self._pause_timer = QTimer(self)
        self._pause_timer.setSingleShot(True)
        self._pause_timer.timeout.connect(self._pause_expired)
        for b in self.backends:
            b.set_callbacks(functools.partial(self._action, b), functools.partial(self._closed, b))
        registry.attention_needed.connect(self._on_attention)
        registry.transition.connect(self._on_transition)
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
        self._start_lock = asyncio.Lock()
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
            slot = self._slots[s.id] = _Slot()
        slot.request = s
        slot.done = False
        self._arm(s.id, slot, self.grace, s)

    def _on_transition(self, t: Transition) -> None:
        """A status change (the registry emits it after ``session_changed`` for the same change)."""
        s = t.session
        if t.old is SessionStatus.BUSY and t.new is SessionStatus.IDLE \
                and SessionStatus.IDLE in self.announce:
            self._on_attention(s)  # a turn seen finishing now (replaces a stale request's notification)
            return
        slot = self._slots.get(s.id)
        if slot is None or slot.request is None:
            return
        if not _same_request(slot.request, s) and not t.new.is_waiting:
            self._leave(s.id, f"it is {t.new.value} now")
        # else: the same request, or a new one (attention_needed follows and re-arms the slot)

    def _on_changed(self, s: Session) -> None:
        """Keep the text of a notification shown for the same request up to date."""
        slot = self._slots.get(s.id)
        if slot is None or slot.request is None or not _same_request(slot.request, s):
            return  # a status change is handled by _on_transition
        if slot.shown is not None and slot.shown.backend is not None \
                and notification_text(s) != slot.shown.text:
            if self._loop is not None and not self._stopping:
                self._spawn(self._fire(s.id, slot.request, refresh_only=True))

    def _on_removed(self, session_id: str) -> None:
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
        await asyncio.sleep(delay)
        if slot.timer is asyncio.current_task():
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
            b.deliver_early(nid)  # a click that came with the reply
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
