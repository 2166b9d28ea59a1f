"""The history indexer and opencode servers (services/history_indexer.py): sessions fetched
with blocking requests from the worker thread, against real HTTP servers on loopback that
answer in the shapes captured from opencode 1.18.33 (``tests/fixtures/opencode/rest-1.18.33.json``)
— one with a password, one that answers 401, one that drops the connection mid-scan, and a
port nobody listens on. A server that fails is logged and skipped; the others, the transcripts
and what was written before the failure stay indexed."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from deck_tray.core.history import SearchQuery
from deck_tray.core.model import AgentKind
from deck_tray.services.history_indexer import OPENCODE_MESSAGES, OPENCODE_SESSIONS, HistoryIndexer
from deck_tray.services.history_store import HistoryIndex
from deck_tray.services.secrets import Credentials

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REST: dict[str, Any] = json.loads((FIXTURES / "opencode" / "rest-1.18.33.json").read_text())
#: The captured sessions, newest first as the server lists them; the first has the messages.
SESSIONS: list[dict[str, Any]] = REST["sessions"]
FIRST = SESSIONS[0]["id"]
SECOND = SESSIONS[1]["id"]
CLAUDE_SAMPLE = FIXTURES / "claude-code-2.1.197-interactive.jsonl"
CLAUDE_ID = "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"

#: What a route answers: ``(status, JSON body)``, or None to close the connection unanswered.
Answer = tuple[int, Any] | None


class Opencode:
    """A loopback HTTP server answering ``GET /experimental/session`` and
    ``GET /session/{id}/message`` like opencode; ``routes`` may be changed between scans."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.sessions = copy.deepcopy(SESSIONS)
        self.routes: dict[str, Callable[[], Answer]] = {}
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []  # (path, query, authorization)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                server.requests.append((url.path, parse_qs(url.query), self.headers.get("authorization", "")))
                answer = server.answer(url.path, self.headers.get("authorization", ""))
                if answer is None:  # the connection drops: no status line, nothing
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, body = answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, path: str, authorization: str) -> Answer:
        if self.password is not None:
            want = "Basic " + base64.b64encode(f"opencode:{self.password}".encode()).decode()
            if authorization != want:
                return 401, {}
        if path in self.routes:
            return self.routes[path]()
        if path == "/experimental/session":
            return 200, self.sessions
        if path == f"/session/{FIRST}/message":
            return 200, REST["messages"]
        if path.startswith("/session/") and path.endswith("/message"):
            return 200, []
        return 404, {"name": "NotFoundError", "data": {"message": f"{path} not found"}}

    def message_reads(self) -> list[str]:
        return [p.split("/")[2] for p, _q, _a in self.requests if p.endswith("/message")]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[..., Opencode]]:
    made: list[Opencode] = []

    def make(password: str | None = None) -> Opencode:
        made.append(Opencode(password))
        return made[-1]

    yield make
    for s in made:
        s.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def lay_out(home: Path) -> Path:
    """One Claude transcript where Claude Code keeps it; the Claude folder."""
    claude_dir = home / ".claude"
    dst = claude_dir / "projects" / "-home-dev-work-proj" / f"{CLAUDE_ID}.jsonl"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(CLAUDE_SAMPLE.read_bytes())
    return claude_dir


def scan(qloop: asyncio.AbstractEventLoop, indexer: HistoryIndexer, rounds: int = 1,
         between: Callable[[int], None] | None = None) -> list[int]:
    """Start the indexer, let it finish ``rounds`` full scans (``between(n)`` runs after scan n),
    stop it; the threads ``updated`` arrived on, one per emission."""
    got: list[int] = []
    indexer.updated.connect(lambda: got.append(threading.get_ident()))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        indexer.start()
        try:
            for n in range(rounds):
                if n:
                    indexer.rescan()
                assert await loop.run_in_executor(None, indexer.wait_idle, 60.0), "the scan did not end"
                await asyncio.sleep(0.05)  # the handed-over signals
                if between is not None:
                    between(n + 1)
        finally:
            await indexer.stop()

    qloop.run_until_complete(run())
    return got


def test_sessions_are_fetched_with_the_password_and_refetched_only_when_updated(
        qloop: asyncio.AbstractEventLoop, tmp_path: Path, servers: Callable[..., Opencode]) -> None:
    oc = servers("s3cret")
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    creds = Credentials(env={"OPENCODE_SERVER_PASSWORD": "s3cret"})
    indexer = HistoryIndexer(idx, lambda: (tmp_path / "none", tmp_path / "none"), lambda: [oc.url], creds)
    gui = threading.get_ident()

    def between(n: int) -> None:
        if n == 1:
            (hit,) = idx.search(SearchQuery("hello fake"))
            assert (hit.agent, hit.session_id, hit.server_url) == (AgentKind.OPENCODE, FIRST, oc.url)
            assert sorted(oc.message_reads()) == sorted(s["id"] for s in SESSIONS), "every session read once"
            oc.requests.clear()
        elif n == 2:
            assert oc.message_reads() == [], "nothing changed: nothing read again"
            oc.sessions[0]["time"]["updated"] += 1000  # FIRST changed; SECOND deleted on the server
            del oc.sessions[1]

    got = scan(qloop, indexer, rounds=3, between=between)
    assert oc.message_reads() == [FIRST]
    assert set(idx.opencode_updated(oc.url)) == {s["id"] for s in oc.sessions}, "the deleted one dropped"
    assert idx.search(SearchQuery("hello fake"))
    assert got and set(got) == {gui}, "updated arrives on the GUI thread"
    path, query, auth = oc.requests[0]
    assert path == "/experimental/session"
    assert query == {"roots": ["false"], "limit": [str(OPENCODE_SESSIONS)]}
    assert auth == "Basic " + base64.b64encode(b"opencode:s3cret").decode()
    reads = [(p, q) for p, q, _a in oc.requests if p.endswith("/message")]
    assert reads == [(f"/session/{FIRST}/message", {"limit": [str(OPENCODE_MESSAGES)]})]


def test_a_server_that_answers_401_or_is_not_there_is_skipped(
        qloop: asyncio.AbstractEventLoop, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        servers: Callable[..., Opencode]) -> None:
    """No password (401) and nobody listening: one log line each; the next server and the
    transcripts are indexed."""
    locked, good = servers("s3cret"), servers()
    nobody = closed_port_url()
    claude_dir = lay_out(tmp_path / "home")
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    indexer = HistoryIndexer(idx, lambda: (claude_dir, tmp_path / "none"), lambda: [locked.url, nobody, good.url],
                             Credentials(env={}))
    caplog.set_level(logging.INFO, logger="deck_tray.services.history_indexer")
    got = scan(qloop, indexer)
    said = [r.getMessage() for r in caplog.records if "not indexed now" in r.getMessage()]
    assert len(said) == 2, said
    assert said[0] == f"history: opencode server {locked.url} not indexed now: {locked.url} needs a password (HTTP 401)"
    # httpx's words for a refused connection: "[Errno 111] Connection refused" (blocking),
    # "All connection attempts failed" (async, before the worker thread stopped running a loop).
    assert said[1].startswith(f"history: opencode server {nobody} not indexed now: cannot reach {nobody}: "), said
    assert set(idx.opencode_updated(good.url)) == {s["id"] for s in SESSIONS}
    assert idx.opencode_updated(locked.url) == {} and locked.message_reads() == []
    assert idx.session_entries(AgentKind.CLAUDE_CODE, CLAUDE_ID), "the transcript is indexed"
    assert got
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


def test_a_connection_dropped_mid_scan_keeps_what_was_fetched(
        qloop: asyncio.AbstractEventLoop, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        servers: Callable[..., Opencode]) -> None:
    """The server closes the connection instead of answering for the second session: the
    first stays indexed, the failure is one log line, the next scan fetches the rest."""
    oc = servers()
    oc.routes[f"/session/{SECOND}/message"] = lambda: None
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    indexer = HistoryIndexer(idx, lambda: (tmp_path / "none", tmp_path / "none"), lambda: [oc.url])
    caplog.set_level(logging.INFO, logger="deck_tray.services.history_indexer")

    def between(n: int) -> None:
        if n == 1:
            assert set(idx.opencode_updated(oc.url)) == {FIRST}
            assert idx.search(SearchQuery("hello fake"))
            del oc.routes[f"/session/{SECOND}/message"]

    got = scan(qloop, indexer, rounds=2, between=between)
    said = [r.getMessage() for r in caplog.records if "not indexed now" in r.getMessage()]
    assert said == [f"history: opencode server {oc.url} not indexed now: {oc.url} did not answer "
                    f"GET /session/{SECOND}/message: the connection broke "
                    "(Server disconnected without sending a response.)"], said
    assert len(got) == 2, "what was fetched before the drop counts as an update"
    assert set(idx.opencode_updated(oc.url)) == {s["id"] for s in SESSIONS}
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
