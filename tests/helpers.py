"""Helpers shared by the test directories: condition waiters and :class:`Session` factories.

Plain Python (no pytest import), so the e2e harness and ``bench/`` can use it too; import it as
``tests.helpers`` (the suite runs from the repository root, ``python3 -m pytest``).

Waiting: every wait polls a condition against a deadline (generous: the deadline only matters
when the test fails) and never sleeps a fixed time.

* :func:`wait_until` — blocking, for code outside an event loop (subprocesses, tmux, X11).
* :func:`until` — a coroutine, on the running event loop (the loop keeps running between polls).
* :func:`run_until` — drives a loop that is not running (a test body with the ``qloop`` fixture).

Sessions: :func:`waiting_session`, :func:`asking_session`, :func:`busy_session` and
:func:`went_busy` / :func:`went_idle` build the :class:`deck_tray.core.model.Session` snapshots the
notifier, registry and window tests feed their registries.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from deck_tray.core.model import (
    AgentKind,
    Message,
    MessageRole,
    PaneRef,
    PendingRequest,
    RequestKind,
    Session,
    SessionStatus,
)

# -- waiting for a condition --------------------------------------------------------------------

DEFAULT_TIMEOUT_S = 20.0
"""Seconds a wait gives its condition when the caller names no timeout."""

DEFAULT_INTERVAL_S = 0.05
"""Seconds between two polls when the caller names no interval."""


def _timed_out(timeout: float, what: str) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def wait_until(predicate: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT_S, what: str = "the condition",
               interval: float = DEFAULT_INTERVAL_S) -> Any:
    """Poll ``predicate()`` (blocking, ``time.sleep`` between polls) until it returns something truthy.

    Args:
        predicate: called once per poll; its first truthy result is returned.
        timeout: seconds before giving up.
        what: what is waited for, named in the error.
        interval: seconds between polls.

    Returns:
        The first truthy value of ``predicate()``.

    Raises:
        AssertionError: ``timeout`` seconds passed ("timed out after N s waiting for WHAT").
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        time.sleep(interval)


async def until(predicate: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT_S, what: str = "the condition",
                interval: float = DEFAULT_INTERVAL_S) -> Any:
    """:func:`wait_until` on the running event loop: ``await asyncio.sleep`` between polls, so the
    loop (and Qt, under qasync) runs meanwhile.

    Args:
        predicate: called once per poll; a result that is awaitable (``predicate`` is an ``async
            def``, or returns a coroutine) is awaited first. Its first truthy value is returned.
        timeout: seconds before giving up (loop time).
        what: what is waited for, named in the error.
        interval: seconds between polls.

    Returns:
        The first truthy value of ``predicate()``.

    Raises:
        AssertionError: ``timeout`` seconds passed ("timed out after N s waiting for WHAT").
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(interval)


def run_until(loop: asyncio.AbstractEventLoop, predicate: Callable[[], Any], what: str = "the condition",
              timeout: float = DEFAULT_TIMEOUT_S, interval: float = DEFAULT_INTERVAL_S) -> Any:
    """Run ``loop`` (not running yet: a test body holding ``qloop``) until ``predicate()`` is truthy.

    Args:
        loop: the event loop to run (``loop.run_until_complete`` of :func:`until`).
        predicate: as for :func:`until`.
        what: what is waited for, named in the error (second, as the test bodies read best:
            ``run_until(qloop, lambda: fake.calls, "Notify")``).
        timeout: seconds before giving up.
        interval: seconds between polls.

    Returns:
        The first truthy value of ``predicate()``.

    Raises:
        AssertionError: ``timeout`` seconds passed.
    """
    return loop.run_until_complete(until(predicate, timeout, what, interval))


# -- sessions -----------------------------------------------------------------------------------

PANE = PaneRef("tmux", "%3", "/tmp/tmux-0/default", "work:1.0")
"""The tmux pane the factories' sessions run in."""

MENU = ("Yes", "Yes, and always allow access to proj/", "No")
"""Claude Code's permission menu for a Bash command, as its options."""


def waiting_session(sid: str = "aaaa1111", request: str = "toolu_1", summary: str = "rm -f x") -> Session:
    """A Claude Code session waiting on a Bash permission (``WAITING_PERMISSION``), updated now.

    Its options are :data:`MENU`, its conversation "please clean up" and the pending ``Bash`` call.

    Args:
        sid: session id.
        request: the pending request's id (a new id is a new request).
        summary: the command asked about.
    """
    return Session(
        id=sid, agent=AgentKind.CLAUDE_CODE, cwd="/home/dev/proj", title="Fix the login bug",
        pid=4242, pane=PANE, status=SessionStatus.WAITING_PERMISSION,
        reason=f"permission prompt for Bash `{summary}` — live status file, 2 s ago",
        pending=PendingRequest(RequestKind.PERMISSION, "Bash", summary, MENU, request),
        updated_at=time.time(),
        messages=(Message(MessageRole.USER, "please clean up"),
                  Message(MessageRole.TOOL, f"Bash({summary})", state="pending")),
    )


def asking_session(sid: str = "cccc3333") -> Session:
    """A Codex session asking "Which page size should the API use?" (``WAITING_QUESTION``, options
    "20" and "50"), updated now."""
    return Session(
        id=sid, agent=AgentKind.CODEX, cwd="/home/dev/api", title="Add pagination", pid=777, pane=PANE,
        status=SessionStatus.WAITING_QUESTION, reason="question — rollout, just now",
        pending=PendingRequest(RequestKind.QUESTION, "AskUserQuestion", "page size?", ("20", "50"), "call_9",
                               question="Which page size should the API use?"),
        updated_at=time.time(),
    )


def busy_session(sid: str = "bbbb2222") -> Session:
    """A busy Codex session (the one :func:`asking_session` builds, at work), updated now."""
    return Session(id=sid, agent=AgentKind.CODEX, cwd="/home/dev/api", title="Add pagination",
                   pid=777, pane=PANE, status=SessionStatus.BUSY, reason="working — transcript, just now",
                   updated_at=time.time())


def went_busy(s: Session) -> Session:
    """``s`` answered and working again: ``BUSY``, nothing pending."""
    return replace(s, status=SessionStatus.BUSY, pending=None, reason="working — live status file, just now")


def went_idle(s: Session) -> Session:
    """``s`` with its turn finished: ``IDLE``, nothing pending, a two-message conversation."""
    return replace(s, status=SessionStatus.IDLE, pending=None, reason="turn finished — transcript, just now",
                   messages=(Message(MessageRole.USER, "please"),
                             Message(MessageRole.ASSISTANT, "All tests pass now.\n\nDetails…")))


def end_process(proc: subprocess.Popen[Any] | None, timeout: float = 10.0) -> None:
    """SIGTERM ``proc`` if it still runs, SIGKILL it after ``timeout`` seconds, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)

