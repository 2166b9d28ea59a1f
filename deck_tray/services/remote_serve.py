"""The remote side of issue #18: a headless deck-tray serving :mod:`deck_tray.core.wire` on a
pair of byte streams (``deck-tray serve --stdio``: the SSH channel's stdin and stdout).

Every session the registry knows goes out as a ``snapshot`` once the first scan is done, then
each change as it happens (``session`` / ``removed``: the registry's own signals, so a change
reaches the channel as fast as it reaches a local window). Answers are delivered here, on the
machine where the panes are, by the same :class:`~deck_tray.services.dispatcher.Dispatcher` (all
target checks run here). An answer carries an ``answer_id``; the last :data:`REMEMBERED`
answers are remembered with their report, so an answer repeated after a dropped connection is
never delivered twice.

A ``search`` request is answered from this machine's own history index (the file the app and
``deck-tray search`` here use) by :class:`ServeHistory`: the index is brought up to date on a
worker thread first (for at most :data:`SEARCH_UPDATE_WAIT_S`; the update goes on after that and
the answer says it is still indexing), the query runs on another worker thread, and the loop that
publishes sessions is never held up by either.

The streams are read and written by two daemon threads (a blocking ``read`` / ``write`` on a
pipe never runs on the event loop's thread); lines reach the loop through
``call_soon_threadsafe``. The end of the input (the local side or its ssh went away) ends
:meth:`RemoteServer.closed`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, BinaryIO, Protocol

import orjson

from deck_tray import __version__
from deck_tray.core import wire
from deck_tray.core.history import QueryError, SearchHit, SearchQuery
from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, Session
from deck_tray.core.reply import Reply
from deck_tray.services.registry import SessionRegistry

log = logging.getLogger(__name__)

#: How many answers (by ``answer_id``) are remembered with their reports.
REMEMBERED = 512

#: Seconds a ``search`` waits for the history index to be brought up to date before it searches
#: what is indexed so far (the first update on a host reads every transcript: minutes).
SEARCH_UPDATE_WAIT_S = 3.0
#: Seconds after an update during which a ``search`` does not start another one.
SEARCH_FRESH_S = 5.0
#: Seconds this process waits for the history database's lock (the app there may be writing).
HISTORY_BUSY_S = 5.0

Deliver = Callable[[str, Reply], Awaitable[DeliveryReport]]


class SearchError(RuntimeError):
    """The history of this host cannot be searched; the message says why and what to do."""


class HistoryIndexLike(Protocol):
    """What :class:`ServeHistory` needs of :class:`deck_tray.services.history_store.HistoryIndex`."""

    def open(self) -> None:
        """Open (create, or rebuild) the database (blocking)."""
        ...

    def sync_files(self, files: Iterable[tuple[AgentKind, str]], *, full: bool = False,
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> int:
        """Index what changed in ``files`` (blocking)."""
        ...

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """Ranked hits (blocking)."""
        ...


def _default_index() -> HistoryIndexLike:
    from deck_tray.services.history_store import HistoryIndex

    return HistoryIndex(busy_timeout_s=HISTORY_BUSY_S)


class ServeHistory:
    """Answers the ``search`` requests of :class:`RemoteServer` from this host's history index.

    Args:
        files: the transcripts to index, ``(agent, path)`` each (blocking; called on the update
            thread), e.g. :func:`deck_tray.services.history_store.discover_files` of the agents'
            folders.
        open_index: makes the index (default: :class:`~deck_tray.services.history_store.HistoryIndex`
            at its default path, the one the app and ``deck-tray search`` here use, waiting at most
            :data:`HISTORY_BUSY_S` for its lock).
        update_wait_s: :data:`SEARCH_UPDATE_WAIT_S`.
        fresh_s: :data:`SEARCH_FRESH_S`.

    The index is opened on first use, on a worker thread. Updates run on one thread
    (``deck-tray-serve-index``), queries on another (``deck-tray-serve-search``): a query reads
    beside an update (SQLite's WAL).
    """

    def __init__(self, files: Callable[[], Iterable[tuple[AgentKind, str]]],
                 open_index: Callable[[], HistoryIndexLike] = _default_index, *,
                 update_wait_s: float = SEARCH_UPDATE_WAIT_S, fresh_s: float = SEARCH_FRESH_S) -> None:
        self.files = files
        self.open_index = open_index
        self.update_wait_s = update_wait_s
        self.fresh_s = fresh_s
        self._index: HistoryIndexLike | None = None
        self._open_lock = threading.Lock()
        self._updater = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="deck-tray-serve-index")
        self._searcher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="deck-tray-serve-search")
        self._update: concurrent.futures.Future[None] | None = None
        self._updated_at: float | None = None
        #: ``(files done, files to do)`` while an update runs, else None.
        self.progress: tuple[int, int] | None = None
        self._closed = False

    def _opened(self) -> HistoryIndexLike:
        """The index, opened (worker threads only).

        Raises:
            SearchError: it cannot be opened.
        """
        with self._open_lock:
            if self._index is None:
                try:
                    index = self.open_index()
                    index.open()
                except Exception as exc:  # sqlite3.Error, OSError: the message is what the user needs
                    raise SearchError(f"the history index on this host cannot be opened ({exc}); run "
                                      f"“deck-tray search WORD” there to see why") from exc
                self._index = index
            return self._index

    def _run_update(self) -> None:
        try:
            index = self._opened()
            index.sync_files(self.files(), full=True, progress=self._on_progress, cancelled=lambda: self._closed)
        except Exception as exc:  # searched as it is; the answer is still useful
            log.warning("updating the history index failed: %s", exc)
        finally:
            self.progress = None
            self._updated_at = time.monotonic()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress = (done, total) if done < total else None

    def _start_update(self) -> concurrent.futures.Future[None]:
        running = self._update
        if running is not None and not running.done():
            return running
        if running is not None and self._updated_at is not None and time.monotonic() - self._updated_at < self.fresh_s:
            return running
        self._update = self._updater.submit(self._run_update)
        return self._update

    def _query(self, query: SearchQuery) -> list[SearchHit]:
        index = self._opened()
        try:
            return index.search(query)
        except QueryError as exc:
            raise SearchError(str(exc)) from exc
        except Exception as exc:  # sqlite3.Error: a damaged or locked database
            raise SearchError(f"searching the history index on this host failed ({exc}); run "
                              f"“deck-tray search WORD” there to see why") from exc

    async def search(self, query: SearchQuery) -> dict[str, Any]:
        """Bring the index up to date (waiting at most :attr:`update_wait_s`), then search it.

        Returns:
            The ``result`` fields: ``{"hits": [hit_to_wire...], "indexing": [done, total] | None}``
            (``indexing``: the update was still reading files, so older entries may be missing).

        Raises:
            SearchError: the index cannot be opened or searched (the message says why).
        """
        if self._closed:
            raise SearchError("deck-tray on this host is stopping")
        update = asyncio.wrap_future(self._start_update())
        try:
            await asyncio.wait_for(asyncio.shield(update), self.update_wait_s)
        except TimeoutError:
            pass
        loop = asyncio.get_running_loop()
        hits = await loop.run_in_executor(self._searcher, self._query, query)
        progress = self.progress
        return {"hits": [wire.hit_to_wire(h) for h in hits[:wire.MAX_SEARCH_HITS]],
                "indexing": list(progress) if progress is not None else None}

    def close(self) -> None:
        """Stop: a running update ends after its batch; nothing new starts."""
        self._closed = True
        self._updater.shutdown(wait=False, cancel_futures=True)
        self._searcher.shutdown(wait=False, cancel_futures=True)


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
        history: answers ``search`` requests (None: they are answered with an error saying
            history search is not available here).
    """

    def __init__(self, registry: SessionRegistry, deliver: Deliver, first_scan: Callable[[], Awaitable[None]],
                 *, inp: BinaryIO | None = None, out: BinaryIO | None = None, alive_s: float = wire.ALIVE_S,
                 history: ServeHistory | None = None) -> None:
        self.registry = registry
        self.history = history
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
        elif op == "search":
            self._spawn(self._search(rid, msg))
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

    async def _search(self, rid: int, msg: dict[str, Any]) -> None:
        try:
            query = wire.search_from_wire(msg)
            if self.history is None:
                raise SearchError("history search is not available in this deck-tray serve")
            found = await self.history.search(query)
        except (wire.WireError, SearchError) as exc:
            self._send({"op": "result", "rid": rid, "error": str(exc)})
            return
        except Exception as exc:  # a bug here must not kill the channel
            log.exception("history search failed")
            self._send({"op": "result", "rid": rid, "error": f"history search failed on this host ({exc})"})
            return
        self._send({"op": "result", "rid": rid, **found})

    async def _deliver(self, session_id: str, reply: Reply) -> DeliveryReport:
        try:
            return await self.deliver(session_id, reply)
        except Exception as exc:  # a bug here must not kill the channel
            log.exception("delivering to %s failed", session_id)
            return DeliveryReport(DeliveryState.REFUSED, f"deck-tray on this host failed: {exc}", reply.text)
