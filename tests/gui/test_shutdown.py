"""Issue #20 in process: a quit keeps what was typed, and a stuck step does not hold the exit up."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from deck_tray.core.model import AgentKind, PaneRef, Session, SessionStatus

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qt_slate")]

SID = "00000001-session"



def make_app(tmp_path: Path, qtbot: Any) -> Any:
    from deck_tray.app import DeckTrayApp
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux

    app = DeckTrayApp(scanner=Scanner(tmp_path / "c", tmp_path / "x"), mux=Tmux(),
                      settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                      notification_backends=[], discover_opencode=False)
    qtbot.addWidget(app.window)
    app.registry.apply([Session(id=SID, agent=AgentKind.CLAUDE_CODE, cwd="/home/dev/p", title="t", pid=4242,
                                pane=PaneRef("tmux", "%1", "/tmp/tmux-0/default", "w:1.0"),
                                status=SessionStatus.IDLE, reason="ready", updated_at=time.time())])
    return app


def saved_draft(tmp_path: Path) -> str:
    from deck_tray.ui.persist import WindowMemory

    return WindowMemory(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)).draft(SID)


@pytest.mark.parametrize("how", ["stop", "stop_now"])
def test_a_quit_keeps_the_draft_typed_a_moment_before(tmp_path: Path, qtbot: Any, qloop: Any, how: str) -> None:
    """Text typed less than the 300 ms draft delay before the quit is on disk afterwards, both on
    the orderly path and on the synchronous one (the display connection broke)."""
    app = make_app(tmp_path, qtbot)
    tab = app.window.open_session(SID)
    assert tab is not None

    async def scenario() -> None:
        app.start()
        tab.answer.setPlainText("half-written answer ✓\nsecond line")
        if how == "stop":
            await app.stop()
        else:
            app.stop_now()
            await app.stop()  # the test's loop must end clean; stop() after stop_now() is harmless

    qloop.run_until_complete(scenario())
    assert saved_draft(tmp_path) == "half-written answer ✓\nsecond line"


def test_a_stuck_stop_step_is_left_behind(tmp_path: Path, qtbot: Any, qloop: Any,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """A service whose stop never returns (a D-Bus call to a daemon that went away) costs at most
    STOP_STEP_S; the steps after it still run."""
    from deck_tray import app as app_module

    app = make_app(tmp_path, qtbot)
    stopped_after: list[str] = []

    async def never() -> None:
        await asyncio.Event().wait()

    async def opencode_stop() -> None:
        stopped_after.append("opencode")

    app.notifier.stop = never
    app.opencode.stop = opencode_stop

    async def scenario() -> float:
        app.start()
        t0 = time.monotonic()
        await asyncio.wait_for(app.stop(), 15)  # without the step limit it would never return
        return time.monotonic() - t0

    with caplog.at_level(logging.WARNING):
        took = qloop.run_until_complete(scenario())
    # The stuck step costs its limit; the others are quick, but on a loaded machine each may
    # use its own limit too (5 steps and the tasks: the bound of the whole stop).
    assert app_module.STOP_STEP_S * 0.9 <= took <= app_module.STOP_STEP_S * 6 + 1  # Qt timers run up to 5 % early
    assert stopped_after == ["opencode"]
    assert any("stopping the notifications took over" in r.getMessage() for r in caplog.records)


def test_after_stop_no_file_event_reaches_the_app(tmp_path: Path, qtbot: Any, qloop: Any) -> None:
    """Once stopped, the monitor delivers nothing, even events its watcher thread queued before."""
    app = make_app(tmp_path, qtbot)
    (tmp_path / "c" / "projects" / "-p").mkdir(parents=True)
    seen: list[str] = []
    app.monitor.files_changed.connect(seen.append)

    async def scenario() -> None:
        app.start()
        target = tmp_path / "c" / "projects" / "-p" / "a.jsonl"
        target.write_text("{}\n")
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert seen, "the watcher works before the stop"
        app.monitor.handover.call(seen.append, "queued before the stop")  # as the watcher thread would
        await app.stop()
        seen.clear()
        target.write_text("{}\n{}\n")
        await asyncio.sleep(0.3)  # nothing may come; there is no condition to wait for

    qloop.run_until_complete(scenario())
    assert seen == []


def test_the_history_index_is_closed_at_stop(tmp_path: Path, qtbot: Any, qloop: Any) -> None:
    """Its database connections (the indexer's and the search's on the GUI thread) are closed by
    the orderly stop, not left to the process exit (Python 3.13 warns of each one it finds)."""
    from deck_tray.core.history import SearchQuery

    app = make_app(tmp_path, qtbot)

    async def scenario() -> None:
        app.start()
        try:
            app.history.index.search(SearchQuery("anything"))  # a connection on this thread
            assert app.history.index._conns, "the search opened a connection"
        finally:
            await app.stop()

    qloop.run_until_complete(scenario())
    assert app.history.index._conns == [], "every connection closed"
