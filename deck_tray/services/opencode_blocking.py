"""Blocking reads from one opencode server, for worker threads that have no asyncio loop.

The history indexer's worker thread (:mod:`deck_tray.services.history_indexer`) lists sessions
and reads their messages; it uses this synchronous ``httpx.Client`` rather than running an
event loop of its own for :class:`~deck_tray.services.opencode_client.OpencodeClient`.

Routes, answers and errors are those of :class:`~deck_tray.services.opencode_client.OpencodeClient`
(``reference/opencode-server.md`` §2–3): the same exceptions with the same messages
(:class:`~deck_tray.services.opencode_client.OpencodeError`, :class:`AuthRequired` for 401,
:class:`NotFound` for 404, :class:`NoAnswer` when the request went out and the connection broke
or timed out), the same HTTP Basic auth and ``trust_env=False``, and the same check that an
answer is JSON (an unknown GET path answers 200 ``text/html``, the web UI).
``tests/services/test_opencode_blocking.py`` holds the two clients to the same answers.
"""

from __future__ import annotations

from typing import Any

import httpx

from deck_tray.services.opencode_client import answer, transport_error
from deck_tray.services.secrets import Credentials


def basic_auth(url: str, credentials: Credentials | None) -> tuple[str, str] | None:
    """``(username, password)`` for ``url`` from ``credentials`` (the environment's
    ``OPENCODE_SERVER_USERNAME``/``OPENCODE_SERVER_PASSWORD``, then the keyring), or None when it
    has no password. Blocking (keyring): call it off the GUI thread."""
    if credentials is None:
        return None
    password = credentials.lookup(url)
    return (credentials.username(), password) if password else None


class BlockingOpencodeClient:
    """Synchronous reads from one server (blocking: worker threads only).

    Args:
        url: base URL, e.g. ``http://127.0.0.1:4096``.
        auth: ``(username, password)`` for HTTP Basic, or None.
        timeout: seconds for each request (connect, and each read).
        transport: an httpx transport (tests use ``httpx.MockTransport``).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, url: str, auth: tuple[str, str] | None = None, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, auth=auth, timeout=timeout, transport=transport,
                                  trust_env=False)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> BlockingOpencodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """``GET path`` → the decoded JSON answer.

        Raises:
            AuthRequired: 401.
            NotFound: 404.
            NoAnswer: the request went out; the connection broke or no answer came in time.
            OpencodeError: no connection, any other HTTP error, or an answer that is not JSON.
        """
        try:
            r = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise transport_error(self.url, "GET", path, exc) from exc
        return answer(self.url, "GET", path, r)

    def sessions(self, limit: int = 500) -> list[dict[str, Any]]:
        """Sessions of every project, children included, newest first, at most ``limit``:
        ``GET /experimental/session?roots=false&limit=N`` (as
        :meth:`OpencodeClient.sessions <deck_tray.services.opencode_client.OpencodeClient.sessions>`;
        each Session has ``id``, ``title``, ``directory``, ``time.created/updated`` in ms).
        Items that are not objects are left out; an answer that is not a list gives ``[]``."""
        out = self._get("/experimental/session", {"roots": "false", "limit": limit})
        return [s for s in out if isinstance(s, dict)] if isinstance(out, list) else []

    def messages(self, sid: str, limit: int = 200) -> list[dict[str, Any]]:
        """``GET /session/{id}/message?limit=N`` → ``[{"info", "parts"}]`` (the newest N), as
        :meth:`OpencodeClient.messages <deck_tray.services.opencode_client.OpencodeClient.messages>`."""
        out = self._get(f"/session/{sid}/message", {"limit": limit})
        return [m for m in out if isinstance(m, dict)] if isinstance(out, list) else []
