"""Show an agent's terminal window: find it from the process tree and ask the window manager to
activate it (X11 with an EWMH window manager only).

This is the service behind the session tab's "Show terminal" for sessions deck-tray cannot type
into (a plain terminal window, no multiplexer or terminal adapter). It never raises: every outcome
is a :class:`RaiseResult` whose ``detail`` is a sentence for the user.

Protocol (EWMH, "Extended Window Manager Hints" 1.5, https://specifications.freedesktop.org/wm-spec/):

* ``_NET_SUPPORTED`` (§3.1, root, ``ATOM[]``) lists the hints the window manager implements;
  ``_NET_SUPPORTING_WM_CHECK`` (§3.11, root, ``WINDOW``) names a child window that carries the same
  property pointing at itself while a compliant window manager runs (a stale root value left by a
  window manager that died points at a window that is gone).
* ``_NET_CLIENT_LIST`` / ``_NET_CLIENT_LIST_STACKING`` (§3.3, root, ``WINDOW[]``): every managed
  top-level window, in initial mapping order / bottom-to-top stacking order.
* ``_NET_WM_PID`` (§5.10, client window, ``CARDINAL``): the pid of the process that owns the window.
  It is only meaningful together with ICCCM's ``WM_CLIENT_MACHINE`` (the host that pid lives on),
  which the spec requires alongside it; windows of other hosts (``ssh -X``) are skipped.
* ``_NET_ACTIVE_WINDOW`` (§3.7): read on the root it is the active window; a ``ClientMessage`` to
  the root with ``window`` = the window to activate, ``message_type`` = ``_NET_ACTIVE_WINDOW``,
  format 32 and ``data.l = [source indication, timestamp, requestor's active window]`` asks the
  window manager to activate it. Source indication 2 ("pager") marks a direct user request, which
  window managers honour without focus-stealing prevention (§9.1.1.3 "Source indication").
* ``_NET_CURRENT_DESKTOP`` (§3.6, root ``CARDINAL``, and a ``ClientMessage`` ``[desktop,
  timestamp]`` to change it) and ``_NET_WM_DESKTOP`` (§5.4, client window ``CARDINAL``; 0xFFFFFFFF
  = on all desktops): a window on another desktop is shown by switching to its desktop first.
  Client messages go to the root with ``SubstructureNotify | SubstructureRedirect`` (§4.1).

The window is found by walking the agent's pid and its ancestors (agent → shell → terminal
emulator → …) and taking the nearest one that owns a window in ``_NET_CLIENT_LIST``. Dock and
desktop windows (panels, launchers) and deck-tray's own windows never match.

Errors and limits (each a ``RaiseResult(ok=False)``): no ``DISPLAY``; a Wayland session (Wayland
lets no app raise another app's window, and under XWayland the X11 route reaches only X11 windows);
the X server refuses the connection or does not answer; no window manager supporting
``_NET_ACTIVE_WINDOW``; the process is gone; no window in its process tree (an IDE's terminal that
runs elsewhere, ssh, a terminal that does not set ``_NET_WM_PID``); the window manager did not
make the window active (focus-stealing prevention). The X calls block, so they run in a worker
thread, each call on a display connection of its own that is always closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from Xlib import X, Xatom
from Xlib import error as xerror
from Xlib.display import Display
from Xlib.protocol import event as xevent
from Xlib.xobject.drawable import Window

from deck_tray.core import procs
from deck_tray.core.display import wayland_session

log = logging.getLogger(__name__)

#: ``_NET_WM_DESKTOP`` of a window shown on every desktop (EWMH §5.4).
ALL_DESKTOPS = 0xFFFFFFFF
#: Source indication "pager": a request made directly by the user (EWMH §9.1.1.3).
SOURCE_PAGER = 2
_DOCK_TYPES = ("_NET_WM_WINDOW_TYPE_DOCK", "_NET_WM_WINDOW_TYPE_DESKTOP")


@dataclass(frozen=True)
class RaiseResult:
    """What "Show terminal" did.

    Attributes:
        ok: True when the terminal window is now the active window.
        detail: one sentence for the user: what happened and, when it did not work, what to do.
    """

    ok: bool
    detail: str


async def show_terminal(pid: int, *, env: Mapping[str, str] | None = None, timeout: float = 5.0,
                        settle: float = 1.0) -> RaiseResult:
    """Activate the terminal window the process ``pid`` runs in (raising it, switching desktop).

    Args:
        pid: the agent's process id (any process inside the terminal works).
        env: the environment that names the display (``DISPLAY``, ``WAYLAND_DISPLAY``,
            ``XDG_SESSION_TYPE``); ``os.environ`` when None. ``XAUTHORITY`` is read by python-xlib
            from ``os.environ``.
        timeout: seconds the whole X conversation may take before the result says the X server
            did not answer (the worker thread is then left to finish on its own).
        settle: seconds to wait for the window manager to report the window as active
            (root ``_NET_ACTIVE_WINDOW``) after asking it to activate it.

    Returns:
        ``RaiseResult``; never raises (the X calls run in a worker thread).
    """
    env = os.environ if env is None else env
    if wayland_session(env):
        result = RaiseResult(False, "Wayland does not let an app raise another app's window (and through XWayland "
                                    "deck-tray reaches only X11 windows); switch to the terminal yourself.")
    elif not env.get("DISPLAY"):
        result = RaiseResult(False, "There is no X display (DISPLAY is not set), so deck-tray cannot raise the "
                                    "terminal window; switch to it yourself.")
    else:
        display = env["DISPLAY"]
        try:
            result = await asyncio.wait_for(asyncio.to_thread(_show_blocking, pid, display, settle), timeout)
        except TimeoutError:
            result = RaiseResult(False, f"The X server on {display} did not answer within {timeout:g} s; "
                                        "switch to the terminal yourself.")
        except Exception as exc:  # a bug or an unexpected X failure must not reach the button
            log.exception("show_terminal(%d) failed", pid)
            result = RaiseResult(False, f"Raising the terminal window failed ({type(exc).__name__}: {exc}); "
                                        "switch to it yourself.")
    log.info("show terminal of pid %d: %s — %s", pid, "ok" if result.ok else "not done", result.detail)
    return result


def _show_blocking(pid: int, display_name: str, settle: float) -> RaiseResult:
    """The X11 part of :func:`show_terminal` (blocking; runs in a worker thread)."""
    chain = procs.ancestors(pid)
    if not chain:
        return RaiseResult(False, f"Process {pid} is no longer running, so there is no terminal window to show.")
    try:
        dpy = Display(display_name)
    except (xerror.DisplayError, xerror.XError, xerror.ConnectionClosedError, OSError) as exc:
        _close_failed_sockets(exc)
        return RaiseResult(False, f"Could not connect to the X display {display_name} ({exc}); "
                                  "switch to the terminal yourself.")
    try:
        return _Session(dpy).show(pid, chain, settle)
    except (xerror.XError, xerror.ConnectionClosedError, OSError) as exc:
        return RaiseResult(False, f"The X server on {display_name} failed ({exc}); switch to the terminal yourself.")
    finally:
        try:
            dpy.close()
        except Exception:  # already broken: nothing left to close
            log.debug("closing the X display failed", exc_info=True)


def _close_failed_sockets(exc: BaseException) -> None:
    """Close the sockets python-xlib (0.33) leaves open when a connect fails (the unix socket,
    then the TCP fallback); they are locals of the frames in the exception chain's tracebacks."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        tb = cur.__traceback__
        while tb is not None:
            for value in tb.tb_frame.f_locals.values():
                if isinstance(value, socket.socket):
                    value.close()
            tb = tb.tb_next
        cur = cur.__cause__ or cur.__context__


class _Session:
    """One display connection's worth of EWMH reads and requests."""

    def __init__(self, dpy: Display) -> None:
        self.dpy = dpy
        self.root = dpy.screen().root
        self.async_errors: list[str] = []
        # Errors of requests without a reply (send_event) arrive later; keep them out of stderr.
        dpy.set_error_handler(lambda err, *_: self.async_errors.append(str(err)))

    def atom(self, name: str) -> int:
        return int(self.dpy.intern_atom(name))

    def cards(self, win: Window, name: str) -> list[int]:
        """A ``CARDINAL``/``WINDOW``/``ATOM`` list property (format 32); ``[]`` when unset."""
        prop = win.get_full_property(self.atom(name), X.AnyPropertyType)
        if prop is None or prop.format != 32:
            return []
        return [int(v) for v in prop.value]

    def text(self, win: Window, name: str | int) -> str:
        atom = self.atom(name) if isinstance(name, str) else name
        prop = win.get_full_property(atom, X.AnyPropertyType)
        if prop is None or prop.format != 8:
            return ""
        value: Any = prop.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def window(self, wid: int) -> Window:
        win: Window = self.dpy.create_resource_object("window", wid)
        return win

    def wm_name(self) -> str | None:
        """The running EWMH window manager's name (``""`` if unnamed), None when there is none."""
        check = self.cards(self.root, "_NET_SUPPORTING_WM_CHECK")
        if not check:
            return None
        child = self.window(check[0])
        try:
            if self.cards(child, "_NET_SUPPORTING_WM_CHECK")[:1] != check[:1]:
                return None
            return self.text(child, "_NET_WM_NAME")
        except xerror.BadWindow:  # stale: the window manager that set it is gone
            return None

    def send(self, win: Window, name: str, data: list[int]) -> None:
        """A format-32 client message to the root about ``win`` (EWMH §4.1)."""
        ev = xevent.ClientMessage(window=win, client_type=self.atom(name), data=(32, (data + [0] * 5)[:5]))
        self.root.send_event(ev, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask)
        self.dpy.sync()

    def wait_root(self, name: str, want: int, deadline: float) -> bool:
        """Poll (every 20 ms, until ``deadline`` on the monotonic clock) until the root's ``name``
        is ``want``."""
        while self.cards(self.root, name)[:1] != [want]:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.02))
        return True

    def candidates(self) -> dict[int, list[int]]:
        """Managed windows by ``_NET_WM_PID`` (local ones only), topmost first per pid."""
        stacking = self.cards(self.root, "_NET_CLIENT_LIST_STACKING")
        listed = self.cards(self.root, "_NET_CLIENT_LIST")
        order = list(reversed(stacking)) + [w for w in reversed(listed) if w not in stacking]
        host = socket.gethostname().split(".")[0]
        skip_types = {self.atom(t) for t in _DOCK_TYPES}
        by_pid: dict[int, list[int]] = {}
        for wid in order:
            win = self.window(wid)
            try:
                pids = self.cards(win, "_NET_WM_PID")
                if not pids:
                    continue
                machine = self.text(win, Xatom.WM_CLIENT_MACHINE)
                if machine and machine.split(".")[0] != host:
                    continue
                if skip_types & set(self.cards(win, "_NET_WM_WINDOW_TYPE")):
                    continue
            except xerror.BadWindow:  # closed while we looked
                continue
            by_pid.setdefault(pids[0], []).append(wid)
        return by_pid

    def show(self, pid: int, chain: list[int], settle: float) -> RaiseResult:
        wm = self.wm_name()
        if wm is None:
            return RaiseResult(False, "No EWMH window manager runs on this display, so nothing can raise the terminal "
                                      "window (_NET_ACTIVE_WINDOW); switch to it yourself.")
        supported = set(self.cards(self.root, "_NET_SUPPORTED"))
        if self.atom("_NET_ACTIVE_WINDOW") not in supported:
            return RaiseResult(False, f"The window manager{f' ({wm})' if wm else ''} does not support raising windows "
                                      "for other apps (EWMH _NET_ACTIVE_WINDOW); switch to the terminal yourself.")
        by_pid = self.candidates()
        me = os.getpid()
        owner = next((p for p in chain if p != me and p in by_pid), None)
        if owner is None:
            return RaiseResult(False, f"The terminal window of pid {pid} was not found; it may run in an IDE, in a "
                                      "terminal that does not set _NET_WM_PID, or over SSH.")
        windows = by_pid[owner]
        wid = windows[0]
        win = self.window(wid)
        label = procs.name(owner) or f"pid {owner}"
        title = self.text(win, "_NET_WM_NAME") or self.text(win, Xatom.WM_NAME)
        what = f"{label}'s window “{title}”" if title else f"{label}'s window"
        deadline = time.monotonic() + settle

        switched = ""
        desktop = self.cards(win, "_NET_WM_DESKTOP")[:1]
        current = self.cards(self.root, "_NET_CURRENT_DESKTOP")[:1]
        if desktop and current and desktop[0] not in (ALL_DESKTOPS, current[0]) \
                and self.atom("_NET_CURRENT_DESKTOP") in supported:
            self.send(self.root, "_NET_CURRENT_DESKTOP", [desktop[0], X.CurrentTime])
            self.wait_root("_NET_CURRENT_DESKTOP", desktop[0], deadline)
            switched = f" on desktop {desktop[0] + 1}"
        active = self.cards(self.root, "_NET_ACTIVE_WINDOW")[:1]
        self.send(win, "_NET_ACTIVE_WINDOW", [SOURCE_PAGER, X.CurrentTime, active[0] if active else 0])
        log.debug("asked %s to activate 0x%x (pid %d, nearest of %s)", wm or "the window manager", wid, owner, chain)
        if not self.wait_root("_NET_ACTIVE_WINDOW", wid, deadline):
            gone = f" ({self.async_errors[0]})" if self.async_errors else ""
            return RaiseResult(False, f"Asked the window manager to raise {what}{switched}, but it did not make it "
                                      f"the active window{gone}; switch to it yourself.")
        more = (f" ({label} has {len(windows)} windows: the session may be in another one or in a tab)"
                if len(windows) > 1 else "")
        return RaiseResult(True, f"Raised {what}{switched}{more}.")
