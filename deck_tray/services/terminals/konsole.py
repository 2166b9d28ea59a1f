"""Konsole through its D-Bus interface (``org.kde.konsole.Session``), run with Konsole 22.12.3
(Debian 12) on a private session bus; newer versions read from KDE/konsole's source.

Facts this relies on (``shared/reference/terminals.md`` §3):

* Every session's programs get ``KONSOLE_DBUS_SERVICE`` (the unique bus name of that Konsole
  process, ``:1.17``), ``KONSOLE_DBUS_SESSION`` (``/Sessions/N``) and the bus they are on,
  ``DBUS_SESSION_BUS_ADDRESS`` — which is the one deck-tray must use (another login or a
  ``dbus-run-session`` has another bus).
* ``processId()`` → the session's first process; ``foregroundProcessId()`` → the foreground
  process group of its pty (the first process again when only the shell runs).
* ``sendText(s)`` writes the UTF-8 text unchanged (no bracketed-paste markers, LF stays LF).
  Konsole 25.12 and newer refuse it with ``org.freedesktop.DBus.Error.AccessDenied`` unless
  ``EnableSecuritySensitiveDBusAPI=true`` is set in konsolerc ``[KonsoleWindow]`` *(read)*.
* ``getAllDisplayedText(b)`` (the screen) exists from Konsole 24.05 *(read)*; 22.12 answers
  ``UnknownMethod``, so its screen cannot be read (:class:`ScreenUnreadableError`).
* A closed tab answers ``UnknownObject``, a closed Konsole ``ServiceUnknown``.

D-Bus calls use jeepney's blocking API on the default executor, one connection per query.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from typing_extensions import override

from deck_tray.core import procs
from deck_tray.core.model import PaneRef
from deck_tray.services.panes import MuxError, PaneInfo, PartialSendError, ScreenUnreadableError
from deck_tray.services.terminals.common import TerminalAdapter, off_loop

try:  # jeepney is a Linux-only dependency.
    from jeepney import DBusAddress, new_method_call  # type: ignore[import-untyped]
    from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
    from jeepney.wrappers import DBusErrorResponse, unwrap_msg  # type: ignore[import-untyped]

    HAVE_JEEPNEY = True
except ImportError:  # pragma: no cover - platforms without jeepney only
    HAVE_JEEPNEY = False

log = logging.getLogger(__name__)

INTERFACE = "org.kde.konsole.Session"
KONSOLE_TIMEOUT_S = 5.0
ACCESS_DENIED = (
    "Konsole refuses to take typed text over D-Bus (Konsole 25.12 and newer turn that off). To allow "
    "it, set EnableSecuritySensitiveDBusAPI=true in the [KonsoleWindow] group of ~/.config/konsolerc "
    "(or in Konsole's settings), or answer in the terminal"
)
NO_SCREEN = ("this Konsole cannot show its screen over D-Bus (Konsole 24.05 and newer can), so "
             "deck-tray cannot see menus or text already typed in the agent's input line")
_GONE = ("UnknownObject", "ServiceUnknown", "NameHasNoOwner", "Disconnected", "NoReply")


class DBusCallError(MuxError):
    """A D-Bus call failed; ``name`` is the D-Bus error name (``""`` for connection failures)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}" if name else message)
        self.name = name


def make_server(service: str, bus: str) -> str:
    """``PaneRef.server`` for a Konsole: ``"<unique bus name> <bus address>"`` (a bus address
    has no spaces: the D-Bus spec percent-encodes them)."""
    return f"{service} {bus}"


def split_server(server: str) -> tuple[str, str]:
    """The inverse of :func:`make_server`: ``(service, bus address)``."""
    service, _sep, bus = server.partition(" ")
    return service, bus


def call(server: str, path: str, calls: list[tuple[str, str, tuple[Any, ...]]],
         timeout: float = KONSOLE_TIMEOUT_S) -> list[tuple[Any, ...]]:
    """Make ``calls`` (``(method, signature, args)``) on ``path`` of the Konsole ``server``,
    in order, on one connection (blocking).

    Raises:
        DBusCallError: the bus cannot be reached, or Konsole answered with an error (its name
            kept, e.g. ``org.freedesktop.DBus.Error.UnknownObject``).
    """
    if not HAVE_JEEPNEY:
        raise DBusCallError("", "jeepney is not installed")
    service, bus = split_server(server)
    try:
        conn = open_dbus_connection(bus or "SESSION", auth_timeout=timeout)
    except Exception as exc:  # OSError, auth failures, malformed addresses, KeyError (no address)
        raise DBusCallError("Disconnected", f"cannot connect to the session bus {bus!r}: {exc!r}") from exc
    out: list[tuple[Any, ...]] = []
    try:
        addr = DBusAddress(path, bus_name=service, interface=INTERFACE)
        for method, sig, args in calls:
            msg = new_method_call(addr, method, sig, args) if sig else new_method_call(addr, method)
            try:
                out.append(tuple(unwrap_msg(conn.send_and_get_reply(msg, timeout=timeout))))
            except DBusErrorResponse as exc:
                name = str(exc.name or "")
                detail = exc.data[0] if exc.data and isinstance(exc.data[0], str) else ""
                raise DBusCallError(name, detail or name) from exc
            except (OSError, TimeoutError) as exc:
                raise DBusCallError("NoReply", f"Konsole did not answer {method}: {exc!r}") from exc
    finally:
        conn.close()
    return out


def _gone(exc: DBusCallError) -> bool:
    return any(g in exc.name for g in _GONE)


class Konsole(TerminalAdapter):
    """Konsole sessions (tabs and splits). A :class:`PaneRef` is ``PaneRef("konsole",
    "/Sessions/N", "<service> <bus address>", "session N")``.

    Args:
        timeout: seconds one D-Bus exchange may take.
    """

    name = "konsole"

    def __init__(self, timeout: float = KONSOLE_TIMEOUT_S) -> None:
        self.timeout = timeout

    @property
    def available(self) -> bool:
        """True when jeepney (the D-Bus client) can be imported."""
        return HAVE_JEEPNEY

    @property
    @override
    def unavailable_reason(self) -> str:
        return "the jeepney D-Bus library is missing, so deck-tray cannot reach Konsole"

    async def _call(self, ref: PaneRef, *calls: tuple[str, str, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return await off_loop(lambda: call(ref.server, ref.pane_id, list(calls), self.timeout))

    async def pane_for_agent(self, pid: int, env: Mapping[str, str]) -> PaneInfo | None:
        """The session ``KONSOLE_DBUS_SERVICE``/``KONSOLE_DBUS_SESSION`` name, on the agent's bus."""
        service, session = env.get("KONSOLE_DBUS_SERVICE", ""), env.get("KONSOLE_DBUS_SESSION", "")
        bus = env.get("DBUS_SESSION_BUS_ADDRESS") or os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
        if not service or not session.startswith("/Sessions/") or not bus:
            return None
        return await self.pane(PaneRef(self.name, session, make_server(service, bus)))

    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        """The session now (``processId``, ``foregroundProcessId``); None if it or Konsole is gone."""
        try:
            (root,), (fg,) = await self._call(ref, ("processId", "", ()), ("foregroundProcessId", "", ()))
        except DBusCallError as exc:
            if _gone(exc):
                return None
            raise
        n = ref.pane_id.rsplit("/", 1)[-1]
        root, fg = int(root), int(fg)
        return PaneInfo(
            server=ref.server, pane_id=ref.pane_id, pane_pid=max(root, 0), command=procs.name(fg) if fg > 0 else "",
            dead=root <= 0, session="", window="", index=n, focused=False, multiplexer=self.name,
            foreground_pgid=fg if fg > 0 else -1, label=f"session {n}",
        )

    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        """The session's screen (``getAllDisplayedText(true)``, Konsole 24.05+).

        Raises:
            ScreenUnreadableError: this Konsole has no such method (22.12 has not).
        """
        try:
            ((text,),) = await self._call(ref, ("getAllDisplayedText", "b", (True,)))
        except DBusCallError as exc:
            if "UnknownMethod" in exc.name:
                raise ScreenUnreadableError(NO_SCREEN) from exc
            raise
        return str(text)

    async def write(self, ref: PaneRef, text: str) -> None:
        """``sendText(text)``: the text unchanged.

        Raises:
            MuxError: Konsole refused (25.12+ without the setting: how to allow it) or failed.
            PartialSendError: the call went out but no answer came back.
        """
        try:
            await self._call(ref, ("sendText", "s", (text,)))
        except DBusCallError as exc:
            if "AccessDenied" in exc.name:
                raise MuxError(ACCESS_DENIED) from exc
            if exc.name == "NoReply":
                raise PartialSendError(f"{exc}; the text may have reached the session") from exc
            raise
