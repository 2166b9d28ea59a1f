"""The remote side of #18 (deck_tray.services.remote_serve) on real pipes: hello, snapshot, the
registry's changes as they happen, answers delivered once per answer_id, bad lines answered."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from deck_tray.core import wire
from deck_tray.core.history import HistoryRole, SearchHit, SearchQuery
from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, Session, SessionStatus
from deck_tray.core.reply import Reply
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.remote_serve import RemoteServer, ServeHistory


class Pipes:
    """The two pipes an ssh channel would be: requests in, messages out."""

    def __init__(self) -> None:
        r_in, self.w_in = os.pipe()
        self.r_out, w_out = os.pipe()
        self.inp = os.fdopen(r_in, "rb", buffering=0)
        self.out = os.fdopen(w_out, "wb", buffering=0)
        self.reader = os.fdopen(self.r_out, "rb", buffering=0)
        self.got: list[dict[str, Any]] = []
        self._buf = b""

    def send(self, line: bytes) -> None:
        os.write(self.w_in, line + b"\n")

    def close_input(self) -> None:
        os.close(self.w_in)

    def read_available(self) -> None:
        os.set_blocking(self.r_out, False)
        try:
            while chunk := self.reader.read(65536):
                self._buf += chunk
        except BlockingIOError:
            pass
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self.got.append(orjson.loads(line))


def session(sid: str, status: SessionStatus = SessionStatus.IDLE) -> Session:
    return Session(id=sid, agent=AgentKind.CLAUDE_CODE, cwd="/p", status=status, updated_at=time.time())


async def until(pipes: Pipes, cond: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        pipes.read_available()
        if cond(pipes.got):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not seen within {timeout} s; got {pipes.got}")


@pytest.fixture
def pipes() -> Iterator[Pipes]:
    p = Pipes()
    yield p
    for f in (p.inp, p.out, p.reader):
        f.close()


def test_hello_snapshot_changes_and_one_delivery_per_answer_id(qloop: asyncio.AbstractEventLoop, pipes: Pipes) -> None:
    registry = SessionRegistry(announce_hold=0)
    registry.apply([session("s1")])
    delivered: list[tuple[str, Reply]] = []
    gate = asyncio.Event()

    async def deliver(sid: str, reply: Reply) -> DeliveryReport:
        delivered.append((sid, reply))
        await gate.wait()
        return DeliveryReport(DeliveryState.ACCEPTED, "the agent took it", reply.text)

    async def first_scan() -> None:
        await asyncio.sleep(0.05)

    server = RemoteServer(registry, deliver, first_scan, inp=pipes.inp, out=pipes.out, alive_s=0.2)

    async def scenario() -> str:
        serving = asyncio.ensure_future(server.serve())
        await until(pipes, lambda g: any(m["op"] == "snapshot" for m in g))
        hello = pipes.got[0]
        assert hello["op"] == "hello" and hello["protocol"] == wire.PROTOCOL and hello["app"] == "deck-tray"
        snap = next(m for m in pipes.got if m["op"] == "snapshot")
        assert [s["id"] for s in snap["sessions"]] == ["s1"]
        # A change reaches the channel as the registry makes it.
        registry.apply([session("s1", SessionStatus.WAITING_PERMISSION)])
        await until(pipes, lambda g: any(m["op"] == "session" and m["session"]["status"] == "waiting_permission"
                                         for m in g))
        registry.apply([], complete=True)
        await until(pipes, lambda g: {"op": "removed", "id": "s1"} in g)
        # The same answer twice (a reconnect resends it): delivered once, both get the report.
        req = {"op": "reply", "answer_id": "a-1", "session_id": "s1", "reply": {"kind": "prompt", "text": "hi\nthere"}}
        pipes.send(orjson.dumps({**req, "rid": 1}))
        await until(pipes, lambda g: len(delivered) == 1)
        pipes.send(orjson.dumps({**req, "rid": 2}))
        await asyncio.sleep(0.1)
        gate.set()
        await until(pipes, lambda g: {m.get("rid") for m in g if m["op"] == "result"} >= {1, 2})
        reports = [m["report"] for m in pipes.got if m["op"] == "result"]
        assert reports == [{"state": "accepted", "detail": "the agent took it", "text": "hi\nthere"}] * 2
        assert delivered == [("s1", Reply(wire.reply_from_wire(req["reply"]).kind, "hi\nthere"))]
        # Bad lines are answered, not fatal.
        pipes.send(b"not json")
        pipes.send(b'{"op": "reply", "rid": 3, "answer_id": "", "session_id": "s1", "reply": {}}')
        pipes.send(b'{"op": "fly", "rid": 4}')
        pipes.send(b'{"op": "ping"}')
        await until(pipes, lambda g: sum(1 for m in g if m.get("error")) >= 4)
        await until(pipes, lambda g: any(m["op"] == "alive" for m in g))
        pipes.close_input()
        return await asyncio.wait_for(serving, 10)

    assert qloop.run_until_complete(scenario()) == "the input ended"


def test_a_big_snapshot_comes_in_parts_and_unchanged_conversations_are_not_resent(
        qloop: asyncio.AbstractEventLoop, pipes: Pipes) -> None:
    from dataclasses import replace

    from deck_tray.core.model import Message, MessageRole

    talk = tuple(Message(MessageRole.ASSISTANT, f"{i} " + "x" * 7000) for i in range(40))
    registry = SessionRegistry(announce_hold=0)
    registry.apply([replace(session(f"s{i}"), messages=talk) for i in range(12)])  # ~3.4 MB of conversation

    async def deliver(sid: str, reply: Reply) -> DeliveryReport:
        raise AssertionError("no answer in this test")

    async def first_scan() -> None:
        pass

    server = RemoteServer(registry, deliver, first_scan, inp=pipes.inp, out=pipes.out)

    async def scenario() -> None:
        serving = asyncio.ensure_future(server.serve())
        await until(pipes, lambda g: any(m["op"] == "snapshot" and not m["more"] for m in g))
        parts = [m for m in pipes.got if m["op"] == "snapshot"]
        assert len(parts) >= 3 and all(p["more"] for p in parts[:-1])
        assert sorted(s["id"] for p in parts for s in p["sessions"]) == sorted(f"s{i}" for i in range(12))
        registry.apply([replace(registry.get("s3"), status=SessionStatus.WAITING_PERMISSION)],  # type: ignore[arg-type]
                       complete=False)
        await until(pipes, lambda g: any(m["op"] == "session" for m in g))
        changed = next(m for m in pipes.got if m["op"] == "session")["session"]
        assert changed["status"] == "waiting_permission" and "messages" not in changed
        got = wire.session_from_wire(changed, "lab", wire.session_from_wire(parts[0]["sessions"][0], "lab"))
        assert len(got.messages) == 40, "the receiver keeps the conversation it has"
        pipes.close_input()
        await asyncio.wait_for(serving, 10)

    qloop.run_until_complete(scenario())


# -- history search (``search``) -------------------------------------------------------------------

class FakeIndex:
    """What ServeHistory needs of HistoryIndex: records the updates and queries; an update can be
    held (``gate``) to play a first indexing that takes minutes."""

    def __init__(self, hits: list[SearchHit], gate: threading.Event | None = None, fail_open: str = "") -> None:
        self.hits = hits
        self.gate = gate
        self.fail_open = fail_open
        self.events: list[str] = []
        self.queries: list[SearchQuery] = []

    def open(self) -> None:
        if self.fail_open:
            raise sqlite3.OperationalError(self.fail_open)

    def sync_files(self, files: Any, *, full: bool = False, progress: Any = None, cancelled: Any = None) -> int:
        files = list(files)
        self.events.append(f"update {len(files)} files")
        if progress is not None:
            progress(0, 240)
        if self.gate is not None:
            self.gate.wait(10)
        if progress is not None:
            progress(240, 240)
        return 0

    def search(self, query: SearchQuery) -> list[SearchHit]:
        self.events.append("search")
        self.queries.append(query)
        return [h for h in self.hits if query.text in h.text][:query.limit]


def _hits(n: int) -> list[SearchHit]:
    return [SearchHit(AgentKind.CLAUDE_CODE, f"sid-{i}", f"Title {i}", "/home/lab/proj", "/home/lab/.claude/x.jsonl",
                      "", i, HistoryRole.USER, 1796000000.0 + i, f"the quokka number {i}",
                      (("the ", False), ("quokka", True)), -10.0 + i) for i in range(n)]


def _serve_history(qloop: asyncio.AbstractEventLoop, pipes: Pipes, history: ServeHistory,
                   scenario: Any) -> None:
    registry = SessionRegistry(announce_hold=0)
    registry.apply([session("s1")])

    async def deliver(sid: str, reply: Reply) -> DeliveryReport:
        raise AssertionError("no answer in this test")

    async def first_scan() -> None:
        pass

    server = RemoteServer(registry, deliver, first_scan, inp=pipes.inp, out=pipes.out, history=history)

    async def run() -> None:
        serving = asyncio.ensure_future(server.serve())
        await until(pipes, lambda g: any(m["op"] == "snapshot" for m in g))
        await scenario(registry)
        pipes.close_input()
        await asyncio.wait_for(serving, 10)
        history.close()

    qloop.run_until_complete(run())


def _result(pipes: Pipes, rid: int) -> dict[str, Any]:
    return next(m for m in pipes.got if m["op"] == "result" and m.get("rid") == rid)


def test_a_search_is_answered_from_the_index_brought_up_to_date_first(qloop: asyncio.AbstractEventLoop,
                                                                       pipes: Pipes) -> None:
    index = FakeIndex(_hits(150))
    history = ServeHistory(lambda: [(AgentKind.CLAUDE_CODE, "/a.jsonl"), (AgentKind.CODEX, "/b.jsonl")],
                           open_index=lambda: index)

    async def scenario(registry: SessionRegistry) -> None:
        q = SearchQuery("quokka", agents=frozenset({AgentKind.CLAUDE_CODE}), project="proj", limit=500)
        pipes.send(orjson.dumps({"op": "search", "rid": 5, **wire.search_to_wire(q)}))
        await until(pipes, lambda g: any(m.get("rid") == 5 for m in g))
        got = _result(pipes, 5)
        assert "error" not in got and got["indexing"] is None
        hits, bad = wire.hits_from_wire(got["hits"], "lab")
        assert not bad and len(hits) == wire.MAX_SEARCH_HITS, "at most MAX_SEARCH_HITS cross"
        assert hits[0].session_id == "sid-0" and hits[0].title == "Title 0" and wire.hit_host(hits[0]) == "lab"
        assert index.events == ["update 2 files", "search"], "the index is brought up to date first"
        assert index.queries[0].agents == q.agents and index.queries[0].project == "proj"
        # A second search within SEARCH_FRESH_S does not read the files again.
        pipes.send(orjson.dumps({"op": "search", "rid": 6, **wire.search_to_wire(SearchQuery("number 149"))}))
        await until(pipes, lambda g: any(m.get("rid") == 6 for m in g))
        assert [h["session_id"] for h in _result(pipes, 6)["hits"]] == ["sid-149"]
        assert index.events == ["update 2 files", "search", "search"]

    _serve_history(qloop, pipes, history, scenario)


def test_a_long_update_holds_up_neither_the_sessions_nor_the_answer(qloop: asyncio.AbstractEventLoop,
                                                                     pipes: Pipes) -> None:
    """The first indexing there takes minutes: a session change still goes out at once, and the
    search answers after update_wait_s with what is indexed, saying it is still indexing."""
    gate = threading.Event()
    index = FakeIndex(_hits(3), gate=gate)
    history = ServeHistory(lambda: [(AgentKind.CLAUDE_CODE, "/a.jsonl")], open_index=lambda: index,
                           update_wait_s=0.5)

    async def scenario(registry: SessionRegistry) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pipes.send(orjson.dumps({"op": "search", "rid": 9, **wire.search_to_wire(SearchQuery("quokka"))}))
        await until(pipes, lambda g: "update 1 files" in index.events)
        registry.apply([session("s1", SessionStatus.WAITING_PERMISSION)])
        await until(pipes, lambda g: any(m["op"] == "session" for m in g))
        assert not any(m.get("rid") == 9 for m in pipes.got), "the session change went out while the search waits"
        await until(pipes, lambda g: any(m.get("rid") == 9 for m in g))
        got = _result(pipes, 9)
        assert len(got["hits"]) == 3 and got["indexing"] == [0, 240]
        assert loop.time() - t0 < 5.0
        gate.set()

    try:
        _serve_history(qloop, pipes, history, scenario)
    finally:
        gate.set()


def test_search_errors_come_back_in_words(qloop: asyncio.AbstractEventLoop, pipes: Pipes) -> None:
    history = ServeHistory(lambda: [], open_index=lambda: FakeIndex([], fail_open="database is locked"))

    async def scenario(registry: SessionRegistry) -> None:
        pipes.send(orjson.dumps({"op": "search", "rid": 1, **wire.search_to_wire(SearchQuery("quokka"))}))
        pipes.send(b'{"op": "search", "rid": 2, "query": ""}')
        await until(pipes, lambda g: {m.get("rid") for m in g if m["op"] == "result"} >= {1, 2})
        assert "history index on this host cannot be opened (database is locked)" in _result(pipes, 1)["error"]
        assert "deck-tray search" in _result(pipes, 1)["error"], "says what to run there"
        assert _result(pipes, 2)["error"] == "a search needs a query string"

    _serve_history(qloop, pipes, history, scenario)


def test_a_serve_without_history_says_so(qloop: asyncio.AbstractEventLoop, pipes: Pipes) -> None:
    registry = SessionRegistry(announce_hold=0)

    async def deliver(sid: str, reply: Reply) -> DeliveryReport:
        raise AssertionError("no answer in this test")

    async def first_scan() -> None:
        pass

    server = RemoteServer(registry, deliver, first_scan, inp=pipes.inp, out=pipes.out)

    async def run() -> None:
        serving = asyncio.ensure_future(server.serve())
        pipes.send(orjson.dumps({"op": "search", "rid": 4, **wire.search_to_wire(SearchQuery("x"))}))
        await until(pipes, lambda g: any(m.get("rid") == 4 for m in g))
        assert "not available" in _result(pipes, 4)["error"]
        pipes.close_input()
        await asyncio.wait_for(serving, 10)

    qloop.run_until_complete(run())
