"""SubagentPanes' queue and retry loop without opencode: a failed task does not poison the queue,
and the deferred retries stop after 3 consecutive failures to read tmux (no tmux server here)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Signal

from deck_tray.core.opencode import OpencodeState, ServerPhase, ServerState
from deck_tray.services.panes import Tmux
from deck_tray.services.subagent_panes import SubagentPanes
from tests.helpers import until

URL = "http://127.0.0.1:4096"


class FakeWatcher(QObject):
    sessions_updated = Signal(object)
    sessions_removed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.url = URL
        self.state = OpencodeState(URL)
        self.client = None
        self.server_state = ServerState(URL, ServerPhase.CONNECTED)


class FakeSource(QObject):
    servers_changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.watchers: dict[str, Any] = {URL: FakeWatcher()}

    def binary_for(self, url: str) -> str:
        return ""


def make(tmp_path: Path, **kw: Any) -> tuple[SubagentPanes, FakeSource]:
    source = FakeSource()
    tmux = Tmux(env={"TMUX_TMPDIR": str(tmp_path / "none")})  # no tmux server at all
    return SubagentPanes(source, tmux, retry_every_s=0.02, **kw), source  # type: ignore[arg-type]


def test_a_failed_task_is_logged_and_the_next_one_runs(tmp_path: Path, qloop: asyncio.AbstractEventLoop,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    panes, _ = make(tmp_path)
    ran: list[str] = []

    async def bad() -> None:
        raise RuntimeError("boom")

    async def good() -> None:
        ran.append("good")

    async def scenario() -> None:
        panes.start()
        try:
            panes._enqueue(bad)
            panes._enqueue(good)
            await until(lambda: ran, 5, "the next task")
        finally:
            await panes.stop()

    with caplog.at_level(logging.ERROR):
        qloop.run_until_complete(scenario())
    assert ran == ["good"]
    assert any("sub-agent pane task failed" in r.message and r.exc_info for r in caplog.records)


def test_retries_stop_after_three_failures_to_read_tmux(tmp_path: Path, qloop: asyncio.AbstractEventLoop) -> None:
    panes, source = make(tmp_path)
    key = (URL, "ses_child")
    source.watchers[URL].state.set_sessions([{"id": "ses_child", "parentID": "ses_parent"}])

    async def scenario() -> None:
        panes.start()
        try:
            panes._busy.add(key)
            panes._deferred.add(key, "no room")
            panes._timer.start()
            await until(lambda: not panes.retrying, 5, "the retry loop to stop")
            assert panes._deferred.failures == 3 and panes._deferred.stopped
            assert panes.deferred() == ["ses_child"]  # kept (until it expires) for when work resumes
        finally:
            await panes.stop()

    qloop.run_until_complete(scenario())


def test_turning_it_off_forgets_deferred_work(tmp_path: Path, qloop: asyncio.AbstractEventLoop) -> None:
    panes, _ = make(tmp_path)

    async def scenario() -> None:
        panes.start()
        try:
            panes._deferred.add((URL, "ses_a"), "no room")
            panes._timer.start()
            panes.enabled = False
            assert not panes.enabled and panes.deferred() == [] and not panes.retrying
        finally:
            await panes.stop()

    qloop.run_until_complete(scenario())
