"""Small pieces shared by the services that talk D-Bus through jeepney's asyncio API
(:mod:`deck_tray.services.notify_dbus`, :mod:`deck_tray.services.global_shortcut`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class HandlerQueue:
    """Stands in for the ``asyncio.Queue`` of a jeepney router filter
    (``router.filter(rule, queue=HandlerQueue(f))``): hands each message to ``handler`` at once, in
    jeepney's receiver task. An exception from ``handler`` is logged, never raised: one odd
    message must not end the receiver task (and with it every later reply and signal)."""

    def __init__(self, handler: Callable[[Any], None], what: str = "a D-Bus message") -> None:
        self._handler = handler
        self._what = what

    def put_nowait(self, msg: Any) -> None:
        """Hand ``msg`` to the handler now (jeepney's router calls this for each message); an
        exception from the handler is logged, never raised into jeepney's receive loop."""
        try:
            self._handler(msg)
        except Exception:
            log.exception("handling %s failed: %r", self._what, msg)


async def close_quietly(router: Any, conn: Any) -> None:
    """End a jeepney router and its connection (either may be None); never raises: the bus or
    the peer may already be gone, and closing is all that is left to do."""
    if router is not None:
        with contextlib.suppress(Exception):
            await router.__aexit__(None, None, None)
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()
