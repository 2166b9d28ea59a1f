"""Hand calls from worker threads to the GUI thread, and never into objects being torn down.

watchdog's dispatcher thread and the history indexer's worker thread must not call into Qt
(DESIGN.md §6.3): a Qt signal emitted from a foreign thread takes Qt's locks while the thread
holds Python's GIL, and at tear-down the GUI thread may hold those locks while it waits for the
GIL — the deadlock behind issue #20 (a watchdog thread inside ``files_changed.emit`` and the main
thread waiting on a futex, for half an hour). A :class:`Handover` queues the call on the asyncio
loop with ``call_soon_threadsafe`` (a write to the loop's self-pipe: no Qt lock) and runs it on the
loop's thread only while the handover is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class Handover:
    """Runs ``fn(*args)`` on an asyncio loop's thread on behalf of other threads.

    :meth:`open` binds the loop (call it on the loop's thread); :meth:`call` may be called from
    any thread; :meth:`close` stops delivery at once: calls queued before it are dropped when
    their turn comes, so nothing reaches an object after its owner closed the handover.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open = False

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._open

    def open(self, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Bind ``loop`` (default: the running loop).

        Returns:
            False when there is no loop to bind (then :meth:`call` delivers nothing).
        """
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._loop = loop
        self._open = loop is not None
        return self._open

    def close(self) -> None:
        """Deliver nothing more, including calls already queued."""
        self._open = False

    def call(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue ``fn(*args)`` for the loop's thread (thread-safe).

        Returns:
            False when it was dropped: the handover is closed or its loop is closed.
        """
        loop = self._loop
        if not self._open or loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(self._run, fn, args)
        except RuntimeError:  # the loop closed between the check and the call
            return False
        return True

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if self._open:
            fn(*args)

