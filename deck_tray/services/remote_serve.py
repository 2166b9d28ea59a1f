"""The remote side of issue #18: a headless deck-tray serving :mod:`deck_tray.core.wire` on a
pair of byte streams (``deck-tray serve --stdio``: the SSH channel's stdin and stdout).

Every session the registry knows goes out as a ``snapshot`` once the first scan is done, then
each change as it happens (``session`` / ``removed``: the registry's own signals, so a change
reaches the channel as fast as it reaches a local window). Answers are delivered here, on the
machine where the panes are, by the same :class:`~deck_tray.services.dispatcher.Dispatcher` (all
target checks run here). An answer carries an ``answer_id``; the last :data:`REMEMBERED`
answers are remembered with their report, so an answer repeated after a dropped connection is
never delivered twice.

The streams are read and written by two daemon threads (a blocking ``read`` / ``write`` on a
pipe never runs on the event loop's thread); lines reach the loop through
``call_soon_threadsafe``. The end of the input (the local side or its ssh went away) ends
:meth:`RemoteServer.closed`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

import orjson

from deck_tray import __version__
from deck_tray.core import wire
from deck_tray.core.model import DeliveryReport, DeliveryState, Session
from deck_tray.core.reply import Reply
from deck_tray.services.registry import SessionRegistry

log = logging.getLogger(__name__)

#: How many answers (by ``answer_id``) are remembered with their reports.
REMEMBERED = 512

Deliver = Callable[[str, Reply], Awaitable[DeliveryReport]]


class RemoteServer:
    """Serves one connection of the remote protocol.

    Args:
        registry: the sessions to publish (its ``session_added`` / ``session_changed`` /
            ``session_removed`` signals are followed).
        deliver: delivers ``(session id, reply)`` here and returns the report.
        first_scan: awaited before the first ``snapshot`` (the monitor's first full scan).
        inp: the stream requests arrive on (binary; default: this process's stdin).
        out: the stream messages go out on (binary; default: this process's stdout).
        alive_s: seconds between ``alive`` lines.
    """

    def __init__(self, registry: SessionRegistry, deliver: Deliver, first_scan: Callable[[], Awaitable[None]],
                 *, inp: BinaryIO | None = None, out: BinaryIO | None = None, alive_s: float = wire.ALIVE_S) -> None:
        self.registry = registry
        self.deliver = deliver
        self.first_scan = first_scan
        self._inp = inp if inp is not None else os.fdopen(0, "rb", buffering=0, closefd=False)
        self._out = out if out is not None else os.fdopen(1, "wb", buffering=0, closefd=False)
        self.alive_s = alive_s
        self._outq: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._answers: collections.OrderedDict[str, asyncio.Future[DeliveryReport]] = collections.OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed: asyncio.Future[str] | None = None
        self._published = False
        #: What each session's conversation was when last sent (:func:`wire.messages_key`).
        self._sent_messages: dict[str, tuple[int, object]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def serve(self) -> str:
        """Say hello, publish the sessions, answer requests; returns why it ended (the input
        ended, or the output broke)."""
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        threading.Thread(target=self._write_loop, name="deck-tray-serve-out", daemon=True).start()
        threading.Thread(target=self._read_loop, args=(loop,), name="deck-tray-serve-in", daemon=True).start()
        self._send({"op": "hello", "app": "deck-tray", "version": __version__, "protocol": wire.PROTOCOL,
                    "hostname": socket.gethostname(), "pid": os.getpid()})
        self._spawn(self._publish())
        self._spawn(self._alive())
        try:
            return await self._closed
        finally:
            self._outq.put(None)
            for t in list(self._tasks):
                t.cancel()

    async def _publish(self) -> None:
        await self.first_scan()
        self._send_snapshot()
        self.registry.session_added.connect(self._session_changed)
        self.registry.session_changed.connect(self._session_changed)
        self.registry.session_removed.connect(self._session_removed)
        self._published = True

    async def _alive(self) -> None:
        while True:
            await asyncio.sleep(self.alive_s)
            self._send({"op": "alive", "at": time.time()})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _close(self, why: str) -> None:
        if self._closed is not None and not self._closed.done():
            log.info("remote channel closed: %s", why)
            self._closed.set_result(why)

    # -- the streams (threads) ---------------------------------------------------------------------

    def _read_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        buf = b""
        try:
            while True:
                chunk = self._inp.read(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        loop.call_soon_threadsafe(self._line, line)
                if len(buf) > wire.MAX_LINE_BYTES:
                    loop.call_soon_threadsafe(self._send, {"op": "result", "rid": None,
                                                           "error": "a request line was too long"})
                    buf = b""
        except (OSError, ValueError) as exc:
            loop.call_soon_threadsafe(self._close, f"reading the input failed: {exc}")
            return
        loop.call_soon_threadsafe(self._close, "the input ended")

    def _write_loop(self) -> None:
        while True:
            data = self._outq.get()
            if data is None:
                return
            try:
                self._out.write(data)
                self._out.flush()
            except (OSError, ValueError):
                return  # the channel is gone; the input's end says so

    def _send(self, msg: dict[str, Any]) -> None:
        self._outq.put(orjson.dumps(msg) + b"\n")

    # -- publishing ------------------------------------------------------------------------------

    def _send_snapshot(self) -> None:
        """Every session, in lines of about :data:`wire.SNAPSHOT_LINE_BYTES` (``more`` on all but
        the last), each with its conversation."""
        chunk: list[bytes] = []
        size = 0
        for s in self.registry.sessions():
            self._sent_messages[s.id] = wire.messages_key(s)
            item = orjson.dumps(wire.session_to_wire(s))
            if chunk and size + len(item) > wire.SNAPSHOT_LINE_BYTES:
                self._send_chunk(chunk, more=True)
                chunk, size = [], 0
            chunk.append(item)
            size += len(item)
        self._send_chunk(chunk, more=False)

    def _send_chunk(self, items: list[bytes], *, more: bool) -> None:
        self._outq.put(b'{"op":"snapshot","more":' + (b"true" if more else b"false") + b',"sessions":['
                       + b",".join(items) + b"]}\n")

    def _session_changed(self, s: Session) -> None:
        key = wire.messages_key(s)
        same = self._sent_messages.get(s.id) == key
        self._sent_messages[s.id] = key
        self._send({"op": "session", "session": wire.session_to_wire(s, messages=not same)})

    def _session_removed(self, session_id: str) -> None:
        self._sent_messages.pop(session_id, None)
        self._send({"op": "removed", "id": session_id})

    # -- requests ------------------------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            self._send({"op": "result", "rid": None, "error": f"not JSON: {exc}"})
            return
        if not isinstance(msg, dict):
            self._send({"op": "result", "rid": None, "error": "a request must be a JSON object"})
            return
        rid = msg.get("rid")
        if not isinstance(rid, int) or isinstance(rid, bool):
            self._send({"op": "result", "rid": None, "error": "a request needs an integer rid"})
            return
        op = msg.get("op")
        if op == "ping":
            self._send({"op": "result", "rid": rid, "at": time.time()})
        elif op == "resync":
            if self._published:
                self._send_snapshot()
            self._send({"op": "result", "rid": rid})
        elif op == "reply":
            self._spawn(self._reply(rid, msg))
        else:
            self._send({"op": "result", "rid": rid, "error": f"unknown op {op!r}"})

    async def _reply(self, rid: int, msg: dict[str, Any]) -> None:
        answer_id, session_id = msg.get("answer_id"), msg.get("session_id")
        try:
            reply = wire.reply_from_wire(msg.get("reply"))
            if not isinstance(answer_id, str) or not answer_id or not isinstance(session_id, str) or not session_id:
                raise wire.WireError("a reply needs answer_id and session_id strings")
        except wire.WireError as exc:
            self._send({"op": "result", "rid": rid, "error": str(exc)})
            return
        fut = self._answers.get(answer_id)
        if fut is None:
            fut = asyncio.ensure_future(self._deliver(session_id, reply))
            self._answers[answer_id] = fut
            while len(self._answers) > REMEMBERED:
                self._answers.popitem(last=False)
        else:
            log.info("answer %s arrived again (a reconnect): its first report is returned, nothing is sent",
                     answer_id[:8])
        report = await asyncio.shield(fut)
        self._send({"op": "result", "rid": rid, "report": wire.report_to_wire(report)})

    async def _deliver(self, session_id: str, reply: Reply) -> DeliveryReport:
        try:
            return await self.deliver(session_id, reply)
        except Exception as exc:  # a bug here must not kill the channel
            log.exception("delivering to %s failed", session_id)
            return DeliveryReport(DeliveryState.REFUSED, f"deck-tray on this host failed: {exc}", reply.text)
