"""The opencode HTTP client, REST resync and answers, against a fake server on httpx.MockTransport.

The fake answers in the shapes captured from opencode 1.18.33 (``reference/opencode-server.md``
§1–3): JSON error bodies, the web UI's HTML fallback for unknown paths, 401 with an empty
body, SSE frames that are single ``data:`` lines. The heartbeat watchdog and a dropped
stream are checked against a real loopback socket, because MockTransport has no timeouts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deck_tray.core.model import DeliveryState, RequestKind, Session, SessionStatus
from deck_tray.core.opencode import OpencodeState, ServerPhase, ServerState
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.opencode_client import AuthRequired, NoAnswer, NotFound, OpencodeClient, OpencodeError
from deck_tray.services.opencode_source import ServerWatcher, answer, sync_state
from deck_tray.services.secrets import Credentials
from tests.helpers import run_until

URL = "http://127.0.0.1:4096"
DIR = "/home/dev/ocproj"
DIR2 = "/home/dev/ocproj2"
SID = "ses_dff1ffd43ffewv5hdjq3NYiVhX"  # DIR, asks a bash permission
PARENT = "ses_dff1436e5ffeX9sbj3Ng2ng3hj"  # DIR2
CHILD = "ses_dff1435beffeQwnNA0ZwpPG66a"  # DIR2, sub-agent of PARENT, asks a question
PER = "per_200e003f20016PyCuOuO11zlG2"
QUE = "que_200e0e932001kYrnX5eKEeglHG"
COMMAND = "echo hi-from-bash > out.txt"
NOW = 1_795_311_100.0
SPA = "<!doctype html><html><head><title>opencode</title></head><body><div id=root></div></body></html>"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "opencode"


def rest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "rest-1.18.33.json").read_text())
    return data


Handler = Callable[[httpx.Request], httpx.Response]


class FakeServer:
    """Routes ``(method, path)`` to answers; unknown GETs get the web UI (200 text/html), like opencode."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def json(self, method: str, path: str, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.routes[(method, path)] = lambda _r: httpx.Response(status, headers={"content-type": "application/json"},
                                                                content=data)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.password is not None:
            want = "Basic " + base64.b64encode(f"opencode:{self.password}".encode()).decode()
            if request.headers.get("authorization") != want:
                return httpx.Response(401, headers={"www-authenticate": 'Basic realm="Secure Area"'})
        handler = self.routes.get((request.method, request.url.path))
        if handler is not None:
            return handler(request)
        if request.method == "GET" and request.url.path.startswith("/session/ses"):
            sid = request.url.path.split("/")[2]
            return httpx.Response(404, json={"name": "NotFoundError", "data": {"message": f"Session not found: {sid}"}})
        if request.method == "GET":
            return httpx.Response(200, headers={"content-type": "text/html;charset=UTF-8"}, text=SPA)
        return httpx.Response(404, json={"name": "NotFoundError", "data": {"message": f"{request.url.path} not found"}})

    def client(self, auth: tuple[str, str] | None = None) -> OpencodeClient:
        return OpencodeClient(URL, auth, transport=httpx.MockTransport(self))

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def posts(self) -> list[tuple[str, dict[str, str], Any]]:
        """Every POST as ``(path, query, json body or None)``."""
        return [(r.url.path, dict(r.url.params), json.loads(r.content) if r.content else None)
                for r in self.requests if r.method == "POST"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _using(client: OpencodeClient, coro: Any) -> Any:
    try:
        return await coro
    finally:
        await client.aclose()


def call(server: FakeServer, fn: Callable[[OpencodeClient], Any], auth: tuple[str, str] | None = None) -> Any:
    """Run ``fn(client)`` against ``server`` in a fresh event loop."""
    async def go() -> Any:
        client = server.client(auth)
        return await _using(client, fn(client))
    return run(go())


def raising(exc: type[httpx.HTTPError], text: str = "") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(text, request=request)  # type: ignore[call-arg]
    return handler


def sse(*frames: Any, raw: bytes = b"") -> Handler:
    body = b"".join(b"data: " + (f if isinstance(f, bytes) else json.dumps(f).encode()) + b"\n\n" for f in frames)
    return lambda _r: httpx.Response(200, headers={"content-type": "text/event-stream", "cache-control": "no-cache"},
                                     content=body + raw)


# -- plain requests -------------------------------------------------------------------------

def test_health_uses_basic_auth_and_returns_the_version() -> None:
    server = FakeServer(password="secret")
    server.json("GET", "/global/health", {"healthy": True, "version": "1.18.33"})
    assert call(server, lambda c: c.health(), ("opencode", "secret")) == {"healthy": True, "version": "1.18.33"}


def test_401_is_auth_required() -> None:
    server = FakeServer(password="secret")
    server.json("GET", "/global/health", {"healthy": True})
    with pytest.raises(AuthRequired, match=r"needs a password \(HTTP 401\)"):
        call(server, lambda c: c.health())
    with pytest.raises(AuthRequired):
        call(server, lambda c: c.statuses(DIR), ("opencode", "wrong"))


def test_404_is_not_found_with_the_servers_message() -> None:
    server = FakeServer()
    server.json("POST", f"/permission/{PER}/reply", {"_tag": "PermissionNotFoundError", "requestID": PER,
                                                    "message": f"Permission request not found: {PER}"}, 404)
    server.json("GET", "/session/ses_doesnotexist",
                {"name": "NotFoundError", "data": {"message": "Session not found: ses_doesnotexist"}}, 404)
    with pytest.raises(NotFound, match=f"^Permission request not found: {PER}$"):
        call(server, lambda c: c.reply_permission(PER, DIR, "once"))
    with pytest.raises(NotFound, match="^Session not found: ses_doesnotexist$"):
        call(server, lambda c: c.session("ses_doesnotexist"))


def test_html_answer_means_this_is_not_an_opencode_server() -> None:
    server = FakeServer()  # every GET answers the web UI
    with pytest.raises(OpencodeError, match="is this an opencode server"):
        call(server, lambda c: c.statuses(DIR))
    with pytest.raises(OpencodeError, match="is this an opencode server"):
        call(server, lambda c: c.health())


def test_health_of_something_else_that_speaks_json_is_refused() -> None:
    server = FakeServer()
    server.json("GET", "/global/health", {"status": "ok"})
    with pytest.raises(OpencodeError, match="not an opencode server"):
        call(server, lambda c: c.health())


def test_400_names_the_servers_complaint() -> None:
    server = FakeServer()
    complaint = 'Expected "once" | "always" | "reject", got "yes"\n  at ["reply"]'
    server.json("POST", f"/permission/{PER}/reply",
                {"name": "BadRequest", "data": {"message": complaint, "kind": "Payload"}}, 400)
    with pytest.raises(OpencodeError, match=r"HTTP 400: Expected \"once\"") as err:
        call(server, lambda c: c.reply_permission(PER, DIR, "yes"))
    assert not isinstance(err.value, (NotFound, AuthRequired, NoAnswer))


def test_500_with_an_empty_body() -> None:
    server = FakeServer()
    server.on("GET", "/session/status", lambda _r: httpx.Response(500))
    with pytest.raises(OpencodeError, match=r"^GET /session/status failed with HTTP 500$"):
        call(server, lambda c: c.statuses(DIR))


def test_malformed_json_is_an_error() -> None:
    server = FakeServer()
    server.on("GET", "/permission", lambda _r: httpx.Response(200, headers={"content-type": "application/json"},
                                                              content=b"[{\"id\": "))
    with pytest.raises(OpencodeError, match="malformed JSON"):
        call(server, lambda c: c.permissions(DIR))


def test_a_refused_connection_is_not_delivered_but_a_timeout_may_have_been() -> None:
    server = FakeServer()
    server.on("POST", f"/permission/{PER}/reply", raising(httpx.ConnectError, "[Errno 111] Connection refused"))
    with pytest.raises(OpencodeError, match="cannot reach .*Connection refused") as err:
        call(server, lambda c: c.reply_permission(PER, DIR, "once"))
    assert not isinstance(err.value, NoAnswer)
    for exc in (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError):
        server.on("POST", f"/permission/{PER}/reply", raising(exc))
        with pytest.raises(NoAnswer, match=f"did not answer POST /permission/{PER}/reply"):
            call(server, lambda c: c.reply_permission(PER, DIR, "once"))
    server.on("POST", f"/permission/{PER}/reply", raising(httpx.ConnectTimeout))
    with pytest.raises(OpencodeError, match="cannot reach .*ConnectTimeout") as err:
        call(server, lambda c: c.reply_permission(PER, DIR, "once"))
    assert not isinstance(err.value, NoAnswer)


def test_instance_routes_carry_the_directory() -> None:
    server = FakeServer()
    server.json("GET", "/session/status", {SID: {"type": "busy"}})
    server.json("GET", "/permission", rest()["permission"] + ["junk", 3])
    server.json("GET", "/question", rest()["question"])

    async def go(c: OpencodeClient) -> tuple[Any, ...]:
        return await c.statuses(DIR), await c.permissions(DIR), await c.questions(DIR2)

    st, perms, qs = call(server, go)
    assert st == {SID: {"type": "busy"}}
    assert [p["id"] for p in perms] == [PER]
    assert [q["id"] for q in qs] == [QUE]
    assert [dict(r.url.params) for r in server.requests] == [{"directory": DIR}, {"directory": DIR},
                                                             {"directory": DIR2}]


def test_unexpected_shapes_give_empty_answers() -> None:
    server = FakeServer()
    server.json("GET", "/session/status", [])
    server.json("GET", "/permission", {"not": "a list"})
    server.json("GET", "/experimental/session", None)
    server.json("GET", f"/session/{SID}/todo", "nope")

    async def go(c: OpencodeClient) -> tuple[Any, ...]:
        return await c.statuses(DIR), await c.permissions(DIR), await c.sessions(), await c.todos(SID)

    assert call(server, go) == ({}, [], [], [])


def test_sessions_of_every_project_since_a_time() -> None:
    server = FakeServer()
    server.json("GET", "/experimental/session", rest()["sessions"])
    out = call(server, lambda c: c.sessions(since=NOW - 3600, limit=50))
    assert [s["id"] for s in out] == [SID, PARENT, CHILD]
    (req,) = server.requests
    assert dict(req.url.params) == {"roots": "false", "limit": "50", "start": str(int((NOW - 3600) * 1000))}


def test_reply_permission_sends_the_reply_and_the_directory() -> None:
    server = FakeServer()
    server.json("POST", f"/permission/{PER}/reply", True)

    async def go(c: OpencodeClient) -> list[bool]:
        return [await c.reply_permission(PER, DIR2, "once"),
                await c.reply_permission(PER, DIR2, "reject", "Do not write files, just say ok")]

    assert call(server, go) == [True, True]
    assert server.posts() == [
        (f"/permission/{PER}/reply", {"directory": DIR2}, {"reply": "once"}),
        (f"/permission/{PER}/reply", {"directory": DIR2},
         {"reply": "reject", "message": "Do not write files, just say ok"}),
    ]


def test_question_reply_reject_prompt_abort_and_create() -> None:
    server = FakeServer()
    server.json("POST", f"/question/{QUE}/reply", True)
    server.json("POST", f"/question/{QUE}/reject", True)
    server.on("POST", f"/session/{SID}/prompt_async", lambda _r: httpx.Response(204))
    server.json("POST", f"/session/{SID}/abort", True)
    server.json("POST", "/session", {"id": "ses_dff20fd7cffeI4BY0iF3wMJ9t6", "directory": DIR, "title": "Handoff"})

    async def go(c: OpencodeClient) -> list[Any]:
        out: list[Any] = [await c.reply_question(QUE, DIR2, [["Blue"]]), await c.reject_question(QUE, DIR2)]
        await c.prompt(SID, "Say hello")
        return [*out, await c.abort(SID), await c.create_session("Handoff", DIR)]

    out = call(server, go)
    assert out[:3] == [True, True, True]
    assert out[3]["id"] == "ses_dff20fd7cffeI4BY0iF3wMJ9t6"
    assert server.posts() == [
        (f"/question/{QUE}/reply", {"directory": DIR2}, {"answers": [["Blue"]]}),
        (f"/question/{QUE}/reject", {"directory": DIR2}, None),
        (f"/session/{SID}/prompt_async", {}, {"parts": [{"type": "text", "text": "Say hello"}]}),
        (f"/session/{SID}/abort", {}, None),
        ("/session", {"directory": DIR}, {"title": "Handoff"}),
    ]


def test_create_session_without_an_id_is_an_error() -> None:
    server = FakeServer()
    server.json("POST", "/session", {"title": "x"})
    with pytest.raises(OpencodeError, match="did not return the new session"):
        call(server, lambda c: c.create_session("x", DIR))


# -- the event stream -----------------------------------------------------------------------

def _collect(server: FakeServer, n: int | None = None) -> tuple[list[dict[str, Any]], BaseException | None]:
    async def go() -> tuple[list[dict[str, Any]], BaseException | None]:
        client = server.client()
        got: list[dict[str, Any]] = []
        try:
            async for frame in client.events(5.0):
                got.append(frame)
                if n is not None and len(got) >= n:
                    return got, None
        except OpencodeError as exc:
            return got, exc
        finally:
            await client.aclose()
        return got, None
    out: tuple[list[dict[str, Any]], BaseException | None] = run(go())
    return out


CONNECTED = {"payload": {"id": "evt_200dfd0df001ACa3h2tR3Y9ynC", "type": "server.connected", "properties": {}}}
STATUS = {"directory": DIR, "project": "16484c26de62b42f08a968fee4febb5aaaceb652",
          "payload": {"id": "evt_200dfd0df002", "type": "session.status",
                      "properties": {"sessionID": SID, "status": {"type": "busy"}}}}


def test_events_are_parsed_from_data_lines_and_a_malformed_frame_is_skipped() -> None:
    server = FakeServer()
    server.on("GET", "/global/event", sse(CONNECTED, b"{not json", b"5", b"", STATUS,
                                          raw=b": keep-alive comment\n\n"))
    frames, err = _collect(server)
    assert frames == [CONNECTED, STATUS]
    assert isinstance(err, OpencodeError) and "closed the event stream" in str(err)
    assert not isinstance(err, AuthRequired)


def test_events_need_the_password_too() -> None:
    server = FakeServer(password="secret")
    server.on("GET", "/global/event", sse(CONNECTED))
    frames, err = _collect(server)
    assert frames == [] and isinstance(err, AuthRequired)


def test_events_from_something_that_is_not_an_event_stream() -> None:
    server = FakeServer()  # /global/event answers the web UI
    frames, err = _collect(server)
    assert frames == []
    assert isinstance(err, OpencodeError) and "not an event stream" in str(err)
    server.on("GET", "/global/event", lambda _r: httpx.Response(503, text="busy"))
    frames, err = _collect(server)
    assert isinstance(err, OpencodeError) and "HTTP 503" in str(err)


class SilentServer:
    """A loopback socket that answers ``/global/event`` with the given bytes, then stays silent or closes."""

    def __init__(self, body: bytes, close: bool, mute: bool = False) -> None:
        self.body, self.close, self.mute = body, close, mute
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> SilentServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        finally:
            writer.close()  # the server's end of the socket is closed here, not by the garbage collector

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if self.mute:  # accepts and never answers, as opencode 1.18.33 does while it starts
            with contextlib.suppress(Exception):
                await reader.read()
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        writer.write(f"{len(self.body):x}\r\n".encode() + self.body + b"\r\n")
        await writer.drain()
        if self.close:
            return  # dies mid-stream, without the terminating chunk
        with contextlib.suppress(Exception):
            await reader.read()  # silent until the client gives up


def _events_from(body: bytes, close: bool, read_timeout: float, first_frame_timeout: float = 3.0,
                 mute: bool = False) -> tuple[list[dict[str, Any]], BaseException, float]:
    async def go() -> tuple[list[dict[str, Any]], BaseException, float]:
        async with SilentServer(body, close, mute) as srv:
            client = OpencodeClient(f"http://127.0.0.1:{srv.port}")
            got: list[dict[str, Any]] = []
            t0 = time.monotonic()
            try:
                async for frame in client.events(read_timeout, first_frame_timeout):
                    got.append(frame)
            except OpencodeError as exc:
                return got, exc, time.monotonic() - t0
            finally:
                await client.aclose()
        raise AssertionError("the stream ended without an error")
    out: tuple[list[dict[str, Any]], BaseException, float] = run(asyncio.wait_for(go(), 10))
    return out


def test_a_silent_stream_trips_the_heartbeat_watchdog() -> None:
    body = b"data: " + json.dumps(CONNECTED).encode() + b"\n\n"
    frames, err, took = _events_from(body, close=False, read_timeout=0.4)
    assert frames == [CONNECTED]
    assert "heartbeat missed" in str(err)
    assert 0.3 < took < 3


def test_a_server_that_accepts_but_never_answers_is_retried_soon() -> None:
    """opencode binds its port before it serves: without a first-frame deadline the reconnect
    after a restart waited for the 30 s heartbeat watchdog."""
    frames, err, took = _events_from(b"", close=False, read_timeout=30, first_frame_timeout=0.4, mute=True)
    assert frames == []
    assert "accepted the connection but sent no event" in str(err) and "still starting" in str(err)
    assert 0.3 < took < 3
    # Headers but no frame: the same.
    frames, err, took = _events_from(b": comment only\n\n", close=False, read_timeout=30, first_frame_timeout=0.4)
    assert frames == [] and "sent no event" in str(err) and took < 3


def test_after_the_first_frame_only_the_heartbeat_watchdog_counts() -> None:
    body = b"data: " + json.dumps(CONNECTED).encode() + b"\n\n"
    frames, err, took = _events_from(body, close=False, read_timeout=1.0, first_frame_timeout=0.2)
    assert frames == [CONNECTED]
    assert "heartbeat missed" in str(err), err
    assert took > 0.9


def test_a_stream_that_drops_is_an_error() -> None:
    body = b"data: " + json.dumps(CONNECTED).encode() + b"\n\n"
    frames, err, _ = _events_from(body, close=True, read_timeout=5)
    assert frames == [CONNECTED]
    assert isinstance(err, OpencodeError) and not isinstance(err, AuthRequired)


# -- sync_state -----------------------------------------------------------------------------

def fixture_server() -> FakeServer:
    """A server with SID (DIR) waiting on a bash permission and PARENT's sub-agent (DIR2) asking a question."""
    data = rest()
    server = FakeServer()
    server.json("GET", "/experimental/session", data["sessions"])
    server.json("GET", "/global/health", data["health"])
    server.json("GET", "/config/providers", data["providers"])

    def by_dir(answers: dict[str, Any]) -> Handler:
        return lambda r: httpx.Response(200, json=answers.get(r.url.params.get("directory", ""), [] if
                                                              r.url.path != "/session/status" else {}))

    server.on("GET", "/session/status", by_dir({DIR: {SID: {"type": "busy"}},
                                                DIR2: {PARENT: {"type": "busy"}, CHILD: {"type": "busy"}}}))
    server.on("GET", "/permission", by_dir({DIR: data["permission"]}))
    server.on("GET", "/question", by_dir({DIR2: data["question"]}))
    return server


def synced(server: FakeServer, state: OpencodeState | None = None) -> tuple[OpencodeState, set[str]]:
    st = state or OpencodeState(URL)
    changed = call(server, lambda c: sync_state(c, st, lambda: NOW))
    return st, changed


def test_sync_state_shows_what_waits_across_projects() -> None:
    state, changed = synced(fixture_server())
    assert changed == {SID, PARENT}
    snaps = {s.id: s for s in state.sessions(NOW)}
    assert set(snaps) == {SID, PARENT}  # the sub-agent is not a session of its own
    a, b = snaps[SID], snaps[PARENT]
    assert a.status is SessionStatus.WAITING_PERMISSION
    assert a.pending is not None and a.pending.summary == COMMAND and a.pending.request_id == PER
    assert (a.cwd, a.title) == (DIR, "Write the greeting file")
    assert b.status is SessionStatus.WAITING_QUESTION
    assert b.pending is not None and b.pending.options == ("Red", "Blue")
    assert b.pending.asker == "Sub task (@general subagent)"
    assert state.request_dirs == {PER: DIR, QUE: DIR2}


def test_sync_state_fetches_an_older_session_a_request_names() -> None:
    server = fixture_server()
    old = "ses_e0000000000000oldoldoldold"
    server.json("GET", "/experimental/session", [rest()["sessions"][0]])
    server.on("GET", "/session/status", lambda r: httpx.Response(200, json={
        DIR: {SID: {"type": "busy"}, old: {"type": "busy"}}}.get(r.url.params["directory"], {})))
    server.on("GET", "/permission", lambda r: httpx.Response(200, json={
        DIR: [{"id": "per_old", "sessionID": old, "permission": "edit", "patterns": ["src/a.py"], "metadata": {}}]
    }.get(r.url.params["directory"], [])))
    server.json("GET", f"/session/{old}", {"id": old, "directory": DIR, "title": "Last week's session",
                                           "time": {"created": 1, "updated": 2}})
    state, _ = synced(server)
    s = state.session(old, NOW)
    assert s.title == "Last week's session"
    assert s.status is SessionStatus.WAITING_PERMISSION
    assert s.pending is not None and s.pending.summary == "src/a.py"


def test_sync_state_survives_a_session_that_vanished_meanwhile() -> None:
    server = fixture_server()
    gone = "ses_e0000000000000gonegonegone"
    server.on("GET", "/session/status", lambda r: httpx.Response(200, json={
        DIR: {SID: {"type": "busy"}, gone: {"type": "busy"}}}.get(r.url.params["directory"], {})))
    state, _ = synced(server)  # GET /session/{gone} answers 404
    assert gone not in [s.id for s in state.sessions(NOW)]
    assert state.session(SID, NOW).status is SessionStatus.WAITING_PERMISSION


def test_sync_state_after_going_offline_restores_the_truth_and_drops_stale_requests() -> None:
    server = fixture_server()
    state, _ = synced(server)
    state.go_offline("stream closed", NOW)
    assert all(s.status is SessionStatus.UNKNOWN for s in state.sessions(NOW))
    # While away: SID was aborted (its permission is still listed, §0.4), PARENT finished.
    server.on("GET", "/session/status", lambda _r: httpx.Response(200, json={}))
    synced(server, state)
    snaps = {s.id: s for s in state.sessions(NOW)}
    assert snaps[SID].status is SessionStatus.IDLE and snaps[SID].pending is None
    assert snaps[PARENT].status is SessionStatus.IDLE and snaps[PARENT].pending is None
    assert state.offline == ""


def test_sync_state_needs_the_password() -> None:
    server = fixture_server()
    server.password = "secret"
    with pytest.raises(AuthRequired):
        synced(server)


# -- answer() -------------------------------------------------------------------------------

def answering(reply: Reply, *, sid: str = SID, server: FakeServer | None = None,
              status: dict[str, Any] | None = None, settle: Callable[[], Any] | None = None,
              ) -> tuple[Any, FakeServer, Session]:
    server = server or fixture_server()
    if status is not None:
        server.on("GET", "/session/status", lambda r: httpx.Response(200, json=status.get(r.url.params["directory"],
                                                                                          {})))
    state, _ = synced(server)
    session = state.session(sid, NOW)
    server.requests.clear()
    report = call(server, lambda c: answer(c, state, session, reply, settle=settle))
    return report, server, session


def _ok(server: FakeServer) -> FakeServer:
    for path in (f"/permission/{PER}/reply", f"/question/{QUE}/reply", f"/question/{QUE}/reject",
                 f"/session/{SID}/abort", f"/session/{PARENT}/abort"):
        server.json("POST", path, True)
    for sid in (SID, PARENT):
        server.on("POST", f"/session/{sid}/prompt_async", lambda _r: httpx.Response(204))
    return server


@pytest.mark.parametrize(("reply", "body", "done"), [
    (Reply(ReplyKind.ALLOW), {"reply": "once"}, "allowed once"),
    (Reply(ReplyKind.ALLOW_ALWAYS), {"reply": "always"}, "allowed from now on"),
    (Reply(ReplyKind.DENY), {"reply": "reject"}, "rejected"),
    (Reply(ReplyKind.DENY, "Do not write files, just say ok"),
     {"reply": "reject", "message": "Do not write files, just say ok"}, "rejected"),
    (Reply(ReplyKind.OPTION, "Allow once"), {"reply": "once"}, "allowed once"),
    (Reply(ReplyKind.OPTION, "Always allow"), {"reply": "always"}, "allowed from now on"),
    # The "Reject" option is a plain reject: its label is not sent as feedback.
    (Reply(ReplyKind.OPTION, "Reject"), {"reply": "reject"}, "rejected"),
])
def test_answering_a_permission(reply: Reply, body: dict[str, Any], done: str) -> None:
    settled: list[bool] = []
    report, server, session = answering(reply, server=_ok(fixture_server()), settle=lambda: settled.append(True))
    assert session.status is SessionStatus.WAITING_PERMISSION
    assert report.state is DeliveryState.ACCEPTED
    assert report.detail == f"opencode confirmed: {done}"
    assert server.posts() == [(f"/permission/{PER}/reply", {"directory": DIR}, body)]
    assert settled == [True]


def test_allow_goes_to_the_requests_own_directory() -> None:
    # A permission asked inside PARENT's sub-agent: the reply needs DIR2, not the server's cwd.
    server = _ok(fixture_server())
    server.on("GET", "/permission", lambda r: httpx.Response(200, json=[
        {**rest()["permission"][0], "sessionID": CHILD}] if r.url.params["directory"] == DIR2 else []))
    server.on("GET", "/question", lambda _r: httpx.Response(200, json=[]))
    report, server, session = answering(Reply(ReplyKind.ALLOW), sid=PARENT, server=server)
    assert session.pending is not None and session.pending.asker == "Sub task (@general subagent)"
    assert report.state is DeliveryState.ACCEPTED
    assert server.posts() == [(f"/permission/{PER}/reply", {"directory": DIR2}, {"reply": "once"})]


def test_a_question_is_answered_with_an_option_label() -> None:
    report, server, session = answering(Reply(ReplyKind.OPTION, "Blue"), sid=PARENT, server=_ok(fixture_server()))
    assert session.pending is not None and session.pending.kind is RequestKind.QUESTION
    assert report.state is DeliveryState.ACCEPTED
    assert server.posts() == [(f"/question/{QUE}/reply", {"directory": DIR2}, {"answers": [["Blue"]]})]


def test_a_question_is_answered_with_free_text() -> None:
    report, server, _ = answering(Reply(ReplyKind.PROMPT, "Green, my own typed answer\n"), sid=PARENT,
                                  server=_ok(fixture_server()))
    assert report.state is DeliveryState.ACCEPTED
    assert server.posts() == [(f"/question/{QUE}/reply", {"directory": DIR2},
                               {"answers": [["Green, my own typed answer"]]})]


def test_a_question_is_dismissed_with_deny() -> None:
    report, server, _ = answering(Reply(ReplyKind.DENY), sid=PARENT, server=_ok(fixture_server()))
    assert report.state is DeliveryState.ACCEPTED
    assert server.posts() == [(f"/question/{QUE}/reject", {"directory": DIR2}, None)]


def test_an_unknown_option_on_a_question_is_refused_without_sending() -> None:
    report, server, _ = answering(Reply(ReplyKind.OPTION, "Purple"), sid=PARENT, server=_ok(fixture_server()))
    assert report.state is DeliveryState.REFUSED
    assert "Red, Blue" in report.detail
    assert server.posts() == []


def test_a_prompt_while_a_permission_is_pending_is_refused_and_keeps_the_text() -> None:
    text = "also update the README please"
    report, server, _ = answering(Reply(ReplyKind.PROMPT, text), server=_ok(fixture_server()))
    assert report.state is DeliveryState.REFUSED
    assert "permission" in report.detail and "Allow" in report.detail
    assert report.text == text
    assert server.posts() == []


def test_an_answer_that_is_no_longer_pending_is_refused() -> None:
    report, _, _ = answering(Reply(ReplyKind.ALLOW))  # no reply route: the server answers 404
    assert report.state is DeliveryState.REFUSED
    assert "no longer pending" in report.detail


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_an_answer_without_a_response_is_unknown_and_not_resent(exc: type[httpx.HTTPError]) -> None:
    server = fixture_server()
    server.on("POST", f"/permission/{PER}/reply", raising(exc))
    report, server, _ = answering(Reply(ReplyKind.ALLOW), server=server)
    assert report.state is DeliveryState.UNKNOWN
    assert "does not send it again" in report.detail
    assert len(server.posts()) == 1


def test_an_answer_to_a_server_that_is_gone_is_refused() -> None:
    server = fixture_server()
    server.on("POST", f"/permission/{PER}/reply", raising(httpx.ConnectError, "[Errno 111] Connection refused"))
    report, _, _ = answering(Reply(ReplyKind.ALLOW), server=server)
    assert report.state is DeliveryState.REFUSED
    assert "cannot reach" in report.detail


def test_an_answer_that_needs_a_password_says_so() -> None:
    server = _ok(fixture_server())
    server.on("POST", f"/permission/{PER}/reply", lambda _r: httpx.Response(401))
    report, _, _ = answering(Reply(ReplyKind.ALLOW), server=server)
    assert report.state is DeliveryState.REFUSED
    assert "password" in report.detail


def test_stop_aborts_the_turn() -> None:
    report, server, _ = answering(Reply(ReplyKind.STOP), server=_ok(fixture_server()))
    assert report.state is DeliveryState.ACCEPTED
    assert server.posts() == [(f"/session/{SID}/abort", {}, None)]


def test_a_prompt_to_an_idle_session_is_sent_and_to_a_busy_one_queued() -> None:
    idle: dict[str, Any] = {}
    report, server, session = answering(Reply(ReplyKind.PROMPT, "Say hello"), server=_ok(fixture_server()),
                                        status=idle)
    assert session.status is SessionStatus.IDLE
    assert (report.state, report.detail) == (DeliveryState.ACCEPTED, "sent to opencode")
    assert server.posts() == [(f"/session/{SID}/prompt_async", {}, {"parts": [{"type": "text", "text": "Say hello"}]})]
    server = _ok(fixture_server())
    server.on("GET", "/permission", lambda _r: httpx.Response(200, json=[]))
    report, _, session = answering(Reply(ReplyKind.PROMPT, "and then this"), server=server)
    assert session.status is SessionStatus.BUSY
    assert report.state is DeliveryState.ACCEPTED and "queued" in report.detail


def test_an_allow_when_nothing_is_pending_is_refused() -> None:
    report, server, _ = answering(Reply(ReplyKind.ALLOW), server=_ok(fixture_server()), status={})
    assert report.state is DeliveryState.REFUSED
    assert "nothing is pending" in report.detail
    assert server.posts() == []


def test_allow_never_approves_a_request_the_user_did_not_see() -> None:
    server = _ok(fixture_server())
    server.json("POST", "/permission/per_200e00400001rmrfrmrfrmrf/reply", True)
    state, _ = synced(server)
    seen = state.session(SID, NOW)  # the window shows "echo hi-from-bash > out.txt"
    # Meanwhile the TUI answered it and the agent asked for something else.
    state.handle({"directory": DIR, "payload": {"id": "evt_1", "type": "permission.replied", "properties": {
        "sessionID": SID, "requestID": PER, "reply": "once"}}}, NOW + 1)
    state.handle({"directory": DIR, "payload": {"id": "evt_2", "type": "permission.asked", "properties": {
        **rest()["permission"][0], "id": "per_200e00400001rmrfrmrfrmrf", "patterns": ["rm -rf ~"],
        "metadata": {"command": "rm -rf ~"}}}}, NOW + 2)
    server.requests.clear()
    report = call(server, lambda c: answer(c, state, seen, Reply(ReplyKind.ALLOW)))
    assert report.state is DeliveryState.REFUSED
    assert server.posts() == []


# -- the watcher, with its client on the fake server ------------------------------------------

class StreamControl:
    """``/global/event`` answers that stay open until :meth:`close`, with frames pushed by the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.opened = 0

    def handler(self, _request: httpx.Request) -> httpx.Response:
        self.opened += 1

        async def body() -> AsyncIterator[bytes]:
            while True:
                item = await self.queue.get()
                if item is None:
                    return
                yield item

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    def push(self, frame: dict[str, Any]) -> None:
        self.queue.put_nowait(b"data: " + json.dumps(frame).encode() + b"\n\n")

    def close(self) -> None:
        self.queue.put_nowait(None)


Watched = tuple[ServerWatcher, FakeServer, StreamControl, dict[str, Session], list[ServerState]]


@contextlib.contextmanager
def watching(loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> Iterator[Watched]:
    """A started watcher whose client talks to :func:`fixture_server` (password ``secret``).

    Started and stopped inside the test body: pytest-qt processes Qt events between test
    phases, and a qasync task stepped there has no running loop.
    """
    server = fixture_server()
    server.password = "secret"
    _ok(server)
    for sid in (SID, PARENT, CHILD):
        server.json("GET", f"/session/{sid}/message", [])
    stream = StreamControl()
    server.on("GET", "/global/event", stream.handler)
    w = ServerWatcher(URL, Credentials(env={"OPENCODE_SERVER_PASSWORD": "secret"}), clock=time.time,
                      backoff=(0.05, 0.2), transport=httpx.MockTransport(server))
    seen: dict[str, Session] = {}
    states: list[ServerState] = []
    w.sessions_updated.connect(lambda snaps: seen.update({s.id: s for s in snaps}))
    w.state_changed.connect(states.append)
    w.start()
    try:
        yield w, server, stream, seen, states
    finally:
        stream.close()
        loop.run_until_complete(w.stop())


def test_watcher_resyncs_on_connect_follows_events_and_recovers_after_a_drop(
        qloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    with watching(qloop, monkeypatch) as (w, server, stream, seen, states):
        _watch_a_drop(qloop, w, server, stream, seen, states)


def _watch_a_drop(qloop: asyncio.AbstractEventLoop, w: ServerWatcher, server: FakeServer, stream: StreamControl,
                  seen: dict[str, Session], states: list[ServerState]) -> None:
    stream.push(CONNECTED)
    run_until(qloop, lambda: w.server_state.phase is ServerPhase.CONNECTED, "the watcher to connect")
    assert w.server_state.detail == "opencode 1.18.33"
    run_until(qloop, lambda: seen.get(SID) and seen[SID].status is SessionStatus.WAITING_PERMISSION,
              "the resync to show the pending permission")
    assert CHILD not in seen
    assert seen[PARENT].status is SessionStatus.WAITING_QUESTION
    # The permission is answered in the TUI: the event clears it.
    stream.push({"directory": DIR, "payload": {"id": "evt_3", "type": "permission.replied",
                                               "properties": {"sessionID": SID, "requestID": PER, "reply": "once"}}})
    run_until(qloop, lambda: seen[SID].status is SessionStatus.BUSY, "the reply event to clear the wait")
    # The stream drops: every session turns unknown, then the watcher reconnects and resyncs.
    server.on("GET", "/permission", lambda _r: httpx.Response(200, json=[]))
    server.on("GET", "/session/status", lambda _r: httpx.Response(200, json={}))
    stream.close()
    run_until(qloop, lambda: seen[SID].status is SessionStatus.UNKNOWN, "the drop to show")
    assert URL in seen[SID].reason
    assert any(s.phase is ServerPhase.UNREACHABLE for s in states)
    run_until(qloop, lambda: stream.opened >= 2, "a reconnect")
    stream.push(CONNECTED)
    run_until(qloop, lambda: seen[SID].status is SessionStatus.IDLE and seen[PARENT].status is SessionStatus.IDLE,
              "the resync after the reconnect")
    assert w.server_state.phase is ServerPhase.CONNECTED
    assert w.connects == 2


def test_watcher_reloads_the_conversation_of_a_session_that_was_busy_before_a_gap(
        qloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = "prt_200e0034d001toolbash00001"
    msg = {"id": "msg_200e0034c001ZjmsIihvLHgIIt", "sessionID": SID, "role": "assistant",
           "time": {"created": int(NOW * 1000)}}

    def history(status: str) -> list[dict[str, Any]]:
        return [{"info": msg, "parts": [{"id": tool, "sessionID": SID, "messageID": msg["id"], "type": "tool",
                                         "tool": "bash", "callID": "call_52b2a412",
                                         "state": {"status": status, "input": {"command": COMMAND}}}]}]

    with watching(qloop, monkeypatch) as (w, server, stream, seen, _):
        server.json("GET", f"/session/{SID}/message", history("running"))
        stream.push(CONNECTED)
        run_until(qloop, lambda: [m.state for m in w.state.conversation(SID)] == ["pending"], "the history")
        # The stream drops; meanwhile the tool finished and the turn ended.
        server.json("GET", f"/session/{SID}/message", history("completed"))
        server.on("GET", "/permission", lambda _r: httpx.Response(200, json=[]))
        server.on("GET", "/session/status", lambda _r: httpx.Response(200, json={}))
        stream.close()
        run_until(qloop, lambda: stream.opened >= 2, "a reconnect")
        stream.push(CONNECTED)
        run_until(qloop, lambda: seen[SID].status is SessionStatus.IDLE, "the resync")
        run_until(qloop, lambda: [m.state for m in w.state.conversation(SID)] == ["done"], "the reloaded history",
                  timeout=1.0)


def test_watcher_without_the_right_password_asks_and_retries(
        qloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    with watching(qloop, monkeypatch) as (w, server, stream, _, _):
        _watch_a_password_change(qloop, w, server, stream)


def _watch_a_password_change(qloop: asyncio.AbstractEventLoop, w: ServerWatcher, server: FakeServer,
                             stream: StreamControl) -> None:
    server.password = "changed"
    run_until(qloop, lambda: w.server_state.phase is ServerPhase.AUTH_REQUIRED, "the 401 to show")
    assert "OPENCODE_SERVER_PASSWORD" in w.server_state.detail
    w.credentials = Credentials(env={"OPENCODE_SERVER_PASSWORD": "changed"})
    w.retry_now()
    stream.push(CONNECTED)
    run_until(qloop, lambda: w.server_state.phase is ServerPhase.CONNECTED, "the watcher to connect")


def test_server_urls_have_one_spelling() -> None:
    from deck_tray.services.opencode_source import normalize_url

    assert normalize_url("http://localhost:4096/") == "http://127.0.0.1:4096"
    assert normalize_url("127.0.0.1:4096") == "http://127.0.0.1:4096"
    assert normalize_url(" https://oc.example:8443/ ") == "https://oc.example:8443"


def test_reconnect_delay_doubles_up_to_its_cap(qloop: asyncio.AbstractEventLoop,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A server that stays down is tried again after 0.1, 0.2, 0.4, 0.4 … s (first delay, doubled,
    capped), and the server's state says when the next try comes."""
    attempts: list[float] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(time.monotonic())
        raise httpx.ConnectError("connection refused", request=request)

    w = ServerWatcher(URL, Credentials(env={}), clock=time.time, backoff=(0.1, 0.4),
                      transport=httpx.MockTransport(refuse))
    states: list[ServerState] = []
    w.state_changed.connect(states.append)
    caplog.set_level("INFO", logger="deck_tray.services.opencode_source")
    w.start()
    try:
        run_until(qloop, lambda: len(attempts) >= 5, "five connection attempts")
    finally:
        qloop.run_until_complete(w.stop())
    delays = [r.args[2] for r in caplog.records if r.msg.endswith("reconnecting in %.1f s")][:5]
    assert delays == [0.1, 0.2, 0.4, 0.4, 0.4], delays
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert all(g >= 0.09 for g in gaps), gaps
    assert w.server_state.phase is ServerPhase.UNREACHABLE and "retrying in" in w.server_state.detail
