"""HTTP client for one opencode server (v1 API of opencode 1.18.33), on httpx + httpx-sse.

Routes and shapes are those of ``reference/opencode-server.md`` §2–3. Instance routes
(``/session/status``, ``/permission``, ``/question``, replies) are scoped by the
``directory`` query parameter; ``/session/{id}/…`` routes find the session's directory
themselves. An unknown GET path answers 200 ``text/html`` (the web UI), so every JSON
answer is checked for its content type.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import httpx_sse
import orjson

#: Seconds without a single byte on the event stream before it counts as dead. The server
#: sends ``server.heartbeat`` every 10 s.
HEARTBEAT_TIMEOUT_S = 30.0
#: Seconds from opening ``/global/event`` to its first frame. A healthy server answers with
#: ``server.connected`` at once (10 ms here); opencode 1.18.33 binds its port about a second
#: before it serves, and a connection made then is accepted and never answered, so without
#: this deadline a reconnect right after a restart waited for the 30 s heartbeat watchdog.
FIRST_FRAME_TIMEOUT_S = 3.0
#: Sessions older than this (by last update) are not followed.
HISTORY_S = 24 * 3600.0


class OpencodeError(Exception):
    """The server could not be reached or answered something unexpected; ``str()`` says what."""


class AuthRequired(OpencodeError):
    """The server answered 401: it needs a (different) password."""


class NotFound(OpencodeError):
    """The server answered 404 for the session or request (answered elsewhere, or gone)."""


class NoAnswer(OpencodeError):
    """The request went out but no answer came back (timeout, connection broken).

    The server may have acted on it, so an answer that fails this way must not be resent
    blindly. A connection that could not even be opened raises plain :class:`OpencodeError`.
    The message always contains "did not answer".
    """


def transport_error(url: str, method: str, path: str, exc: httpx.HTTPError) -> OpencodeError:
    """The error for a request that got no HTTP answer (shared by the async and the blocking client).

    Returns:
        :class:`OpencodeError` when nothing was sent (no connection: safe to say "not delivered"),
        :class:`NoAnswer` when the request went out and the connection broke or timed out.
    """
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return OpencodeError(f"cannot reach {url}: {_exc_text(exc)}")
    if isinstance(exc, httpx.TimeoutException):
        return NoAnswer(f"{url} did not answer {method} {path} in time")
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        return NoAnswer(f"{url} did not answer {method} {path}: the connection broke ({_exc_text(exc)})")
    return OpencodeError(f"cannot reach {url}: {_exc_text(exc)}")


def answer(url: str, method: str, path: str, r: httpx.Response, *, expect_json: bool = True) -> Any:
    """The decoded JSON of an opencode answer (None for 204 or when ``expect_json`` is False).

    Raises:
        AuthRequired: 401.
        NotFound: 404.
        OpencodeError: any other HTTP error, or an answer that is not JSON.
    """
    if r.status_code == 401:
        raise AuthRequired(f"{url} needs a password (HTTP 401)")
    if r.status_code == 404:
        raise NotFound(_error_message(r) or f"{path} not found")
    if r.status_code >= 400:
        why = _error_message(r)
        raise OpencodeError(f"{method} {path} failed with HTTP {r.status_code}" + (f": {why}" if why else ""))
    if not expect_json or r.status_code == 204:
        return None
    if "json" not in r.headers.get("content-type", ""):
        raise OpencodeError(f"{url}{path} did not answer JSON; is this an opencode server?")
    try:
        return orjson.loads(r.content)
    except orjson.JSONDecodeError as exc:
        raise OpencodeError(f"{url}{path} sent malformed JSON") from exc


class OpencodeClient:
    """Async client of one server.

    Args:
        url: base URL, e.g. ``http://127.0.0.1:4096``.
        auth: ``(username, password)`` for HTTP Basic, or None.
        timeout: seconds for ordinary requests.
        transport: an httpx transport (tests use ``httpx.MockTransport``).
    """

    def __init__(self, url: str, auth: tuple[str, str] | None = None, *, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, auth=auth, timeout=timeout, transport=transport,
                                       trust_env=False)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, directory: str | None = None, json: Any = None,
                    params: dict[str, Any] | None = None, expect_json: bool = True) -> Any:
        q = dict(params or {})
        if directory:
            q["directory"] = directory
        try:
            r = await self._http.request(method, path, params=q or None, json=json)
        except httpx.HTTPError as exc:
            raise transport_error(self.url, method, path, exc) from exc
        return answer(self.url, method, path, r, expect_json=expect_json)

    async def health(self) -> dict[str, Any]:
        """``GET /global/health`` → ``{"healthy": true, "version": "1.18.33"}``."""
        out = await self._call("GET", "/global/health")
        if not isinstance(out, dict) or "healthy" not in out:
            raise OpencodeError(f"{self.url} is not an opencode server")
        return out

    async def sessions(self, since: float | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Sessions of every project updated after ``since`` (POSIX s), children included.

        ``GET /experimental/session?roots=false&start=<ms>&limit=N`` (each item carries
        ``project: {id, worktree}``).
        """
        params: dict[str, Any] = {"roots": "false", "limit": limit}
        if since is not None:
            params["start"] = int(since * 1000)
        out = await self._call("GET", "/experimental/session", params=params)
        return [s for s in out if isinstance(s, dict)] if isinstance(out, list) else []

    async def session(self, sid: str) -> dict[str, Any]:
        """``GET /session/{id}`` → Session. Raises NotFound."""
        out = await self._call("GET", f"/session/{sid}")
        return out if isinstance(out, dict) else {}

    async def statuses(self, directory: str) -> dict[str, Any]:
        """``GET /session/status?directory=D`` → ``{ses_id: {"type": "busy"|"retry", …}}``."""
        out = await self._call("GET", "/session/status", directory=directory)
        return out if isinstance(out, dict) else {}

    async def permissions(self, directory: str) -> list[dict[str, Any]]:
        """``GET /permission?directory=D`` → pending permission requests."""
        out = await self._call("GET", "/permission", directory=directory)
        return [p for p in out if isinstance(p, dict)] if isinstance(out, list) else []

    async def questions(self, directory: str) -> list[dict[str, Any]]:
        """``GET /question?directory=D`` → pending question requests."""
        out = await self._call("GET", "/question", directory=directory)
        return [p for p in out if isinstance(p, dict)] if isinstance(out, list) else []

    async def messages(self, sid: str, limit: int = 200) -> list[dict[str, Any]]:
        """``GET /session/{id}/message?limit=N`` → ``[{"info", "parts"}]`` (the newest N)."""
        out = await self._call("GET", f"/session/{sid}/message", params={"limit": limit})
        return [m for m in out if isinstance(m, dict)] if isinstance(out, list) else []

    async def todos(self, sid: str) -> list[dict[str, Any]]:
        """``GET /session/{id}/todo`` → ``[{"content", "status", "priority"}]``."""
        out = await self._call("GET", f"/session/{sid}/todo")
        return [t for t in out if isinstance(t, dict)] if isinstance(out, list) else []

    async def providers(self) -> dict[str, Any]:
        """``GET /config/providers`` → ``{"providers": [...], "default": {...}}``."""
        out = await self._call("GET", "/config/providers")
        return out if isinstance(out, dict) else {}

    async def reply_permission(self, rid: str, directory: str, reply: str, message: str = "") -> bool:
        """``POST /permission/{id}/reply`` with ``{"reply": once|always|reject, "message"?}``.

        Raises:
            NotFound: the request is no longer pending (or the directory is wrong).
        """
        body: dict[str, Any] = {"reply": reply}
        if message:
            body["message"] = message
        return bool(await self._call("POST", f"/permission/{rid}/reply", directory=directory, json=body))

    async def reply_question(self, rid: str, directory: str, answers: list[list[str]]) -> bool:
        """``POST /question/{id}/reply`` with ``{"answers": [[label, …], …]}`` (one list per question)."""
        return bool(await self._call("POST", f"/question/{rid}/reply", directory=directory,
                                     json={"answers": answers}))

    async def reject_question(self, rid: str, directory: str) -> bool:
        """``POST /question/{id}/reject``: dismiss the question (the turn stops)."""
        return bool(await self._call("POST", f"/question/{rid}/reject", directory=directory))

    async def prompt(self, sid: str, text: str) -> None:
        """``POST /session/{id}/prompt_async`` with one text part; 204 at once, progress over SSE."""
        await self._call("POST", f"/session/{sid}/prompt_async", json={"parts": [{"type": "text", "text": text}]},
                         expect_json=False)

    async def abort(self, sid: str) -> bool:
        """``POST /session/{id}/abort`` → true (also for idle sessions)."""
        return bool(await self._call("POST", f"/session/{sid}/abort"))

    async def create_session(self, title: str, directory: str) -> dict[str, Any]:
        """``POST /session?directory=D`` with ``{"title"}`` (none when ``title`` is empty: the server
        names it from the first prompt) → the new Session."""
        out = await self._call("POST", "/session", directory=directory, json={"title": title} if title else {})
        if not isinstance(out, dict) or not isinstance(out.get("id"), str):
            raise OpencodeError("the server did not return the new session")
        return out

    async def events(self, read_timeout: float = HEARTBEAT_TIMEOUT_S,
                     first_frame_timeout: float = FIRST_FRAME_TIMEOUT_S) -> AsyncGenerator[dict[str, Any], None]:
        """Frames of ``GET /global/event`` as dicts ``{"directory"?, "payload": {...}}``.

        Each SSE frame is one ``data:`` line (opencode sends no ``event:``/``id:``). A frame
        that is not JSON is skipped. ``read_timeout`` is the heartbeat watchdog: no byte for
        that long raises :class:`OpencodeError`; the response and its first frame must come
        within ``first_frame_timeout`` seconds (see :data:`FIRST_FRAME_TIMEOUT_S`).

        Raises:
            AuthRequired: 401.
            OpencodeError: connection failed, dropped, went silent, or never started.
        """
        timeout = httpx.Timeout(10.0, read=read_timeout)
        first = True
        try:
            async with asyncio.timeout(first_frame_timeout) as deadline:
                async with httpx_sse.aconnect_sse(self._http, "GET", "/global/event", timeout=timeout) as source:
                    if source.response.status_code == 401:
                        raise AuthRequired(f"{self.url} needs a password (HTTP 401)")
                    if source.response.status_code >= 400:
                        raise OpencodeError(f"the event stream failed with HTTP {source.response.status_code}")
                    if "text/event-stream" not in source.response.headers.get("content-type", ""):
                        raise OpencodeError(f"{self.url}/global/event is not an event stream; is this opencode?")
                    async for sse in source.aiter_sse():
                        try:
                            frame = orjson.loads(sse.data)
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(frame, dict):
                            if first:
                                deadline.reschedule(None)
                                first = False
                            yield frame
        except TimeoutError as exc:
            if not first:
                raise
            raise OpencodeError(f"{self.url} accepted the connection but sent no event in "
                                f"{first_frame_timeout:.0f} s (is it still starting?)") from exc
        except httpx.ReadTimeout as exc:
            raise OpencodeError(f"no event from {self.url} for {read_timeout:.0f} s (heartbeat missed)") from exc
        except httpx.HTTPError as exc:
            raise OpencodeError(f"event stream of {self.url} failed: {exc}") from exc
        raise OpencodeError(f"{self.url} closed the event stream")


def _exc_text(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _error_message(r: httpx.Response) -> str:
    """The server's error text: ``data.message`` (NotFoundError, BadRequest) or ``message``
    (PermissionNotFoundError); an HTML page (the web UI's fallback) gives ``""``."""
    if "html" in r.headers.get("content-type", ""):
        return ""
    try:
        body = orjson.loads(r.content)
    except orjson.JSONDecodeError:
        return r.text[:200].strip()
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
        if body.get("message"):
            return str(body["message"])
    return r.text[:200]


def now() -> float:
    """POSIX seconds (indirection for tests)."""
    return time.time()
