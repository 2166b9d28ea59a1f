"""The blocking opencode reads (services/opencode_blocking.py) answer exactly as the async
client (services/opencode_client.py) does: the same items, the same exception types and
messages, for every answer shape the async client's tests cover (``httpx.MockTransport``
serves both). The history indexer against real loopback servers is in
``test_history_index_opencode.py``."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from deck_tray.services.opencode_blocking import BlockingOpencodeClient, basic_auth
from deck_tray.services.opencode_client import OpencodeClient
from deck_tray.services.secrets import Credentials

URL = "http://127.0.0.1:4096"
SID = "ses_dff1ffd43ffewv5hdjq3NYiVhX"
REST: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "opencode" / "rest-1.18.33.json").read_text())
SPA = "<!doctype html><html><head><title>opencode</title></head><body><div id=root></div></body></html>"

Handler = Callable[[httpx.Request], httpx.Response]


def json_answer(body: Any, status: int = 200) -> Handler:
    return lambda _r: httpx.Response(status, headers={"content-type": "application/json"},
                                     content=json.dumps(body).encode())


def raising(exc: type[httpx.HTTPError], text: str = "") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(text, request=request)  # type: ignore[call-arg]
    return handler


ANSWERS: dict[str, Handler] = {
    "sessions": json_answer(REST["sessions"]),
    "messages": json_answer(REST["messages"]),
    "not a list": json_answer({"sessions": []}),
    "items not objects": json_answer([1, "x", {"id": "ses_a"}]),
    "401": lambda _r: httpx.Response(401, headers={"www-authenticate": 'Basic realm="Secure Area"'}),
    "404 with a message": json_answer({"name": "NotFoundError", "data": {"message": f"Session not found: {SID}"}}, 404),
    "404 html": lambda _r: httpx.Response(404, headers={"content-type": "text/html"}, text=SPA),
    "400 with a message": json_answer({"message": "bad limit"}, 400),
    "500 empty": lambda _r: httpx.Response(500),
    "the web UI": lambda _r: httpx.Response(200, headers={"content-type": "text/html;charset=UTF-8"}, text=SPA),
    "malformed JSON": lambda _r: httpx.Response(200, headers={"content-type": "application/json"}, content=b"[{"),
    "204": lambda _r: httpx.Response(204),
    "refused": raising(httpx.ConnectError, "[Errno 111] Connection refused"),
    "connect timeout": raising(httpx.ConnectTimeout),
    "read timeout": raising(httpx.ReadTimeout, "timed out"),
    "dropped": raising(httpx.RemoteProtocolError, "Server disconnected without sending a response."),
    "reset": raising(httpx.ReadError, "[Errno 104] Connection reset by peer"),
    "other transport error": raising(httpx.UnsupportedProtocol, "no"),
}

CALLS: dict[str, Callable[[Any], Any]] = {
    "sessions": lambda c: c.sessions(limit=5000),
    "messages": lambda c: c.messages(SID, limit=100_000),
}


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as exc:
        return type(exc).__name__, str(exc)


def via_async(handler: Handler, call: Callable[[Any], Any]) -> tuple[tuple[str, Any], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return handler(r)

    async def go() -> Any:
        client = OpencodeClient(URL + "/", ("opencode", "pw"), transport=httpx.MockTransport(record))
        try:
            return await call(client)
        finally:
            await client.aclose()

    return outcome(lambda: asyncio.run(go())), seen


def via_blocking(handler: Handler, call: Callable[[Any], Any]) -> tuple[tuple[str, Any], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return handler(r)

    def go() -> Any:
        with BlockingOpencodeClient(URL + "/", ("opencode", "pw"), transport=httpx.MockTransport(record)) as client:
            return call(client)

    return outcome(go), seen


@pytest.mark.parametrize("call", CALLS, ids=str)
@pytest.mark.parametrize("answer", ANSWERS, ids=str)
def test_the_blocking_reads_answer_as_the_async_client(answer: str, call: str) -> None:
    got_async, sent_async = via_async(ANSWERS[answer], CALLS[call])
    got_blocking, sent_blocking = via_blocking(ANSWERS[answer], CALLS[call])
    assert got_blocking == got_async
    assert [(r.method, str(r.url), r.headers.get("authorization")) for r in sent_blocking] == [
        (r.method, str(r.url), r.headers.get("authorization")) for r in sent_async]
    assert sent_blocking[0].headers["authorization"] == "Basic " + base64.b64encode(b"opencode:pw").decode()


def test_basic_auth_comes_from_the_credentials() -> None:
    assert basic_auth(URL, None) is None
    assert basic_auth(URL, Credentials(env={"OPENCODE_SERVER_PASSWORD": "pw"})) == ("opencode", "pw")
    assert basic_auth(URL, Credentials(env={"OPENCODE_SERVER_PASSWORD": "pw", "OPENCODE_SERVER_USERNAME": "me"})) == (
        "me", "pw")
