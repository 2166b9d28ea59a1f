"""The running app with a real Claude Code: it notices the permission prompt, the user
presses Allow in the session tab, and the approved command runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QPushButton

from deck_tray.app import DeckTrayApp
from deck_tray.core.model import Session, SessionStatus
from deck_tray.core.scan import Scanner
from deck_tray.services.panes import Tmux

from .harness import ClaudeAgent, FakeModel, TmuxServer, find_agent_bin, until
from .hook_helpers import run_with_app

pytestmark = [pytest.mark.e2e, pytest.mark.gui]


@pytest.mark.skipif(find_agent_bin("claude") is None, reason="claude not found (run ./scripts/test.sh)")
def test_window_allow_runs_the_command(tmp_path: Path, qtbot: Any, qloop: asyncio.AbstractEventLoop,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        FakeModel("anthropic", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        ClaudeAgent(tmux, model, tmp_path / "claude") as claude,
    ):
        monkeypatch.setenv("TMUX_TMPDIR", str(tmux.tmpdir))
        app = DeckTrayApp(
            scanner=Scanner(claude.config_dir, tmp_path / "no-codex"),
            mux=Tmux(),
            settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
            discover_opencode=False,
        )
        qtbot.addWidget(app.window)
        announced: list[Session] = []
        app.registry.attention_needed.connect(announced.append)

        async def steps() -> None:
            await until(lambda: app.registry.sessions(), 30, "the session to be listed")
            assert not announced, "an idle session must not be announced"
            claude.type_line("please FAKE_BASH now")
            s = await until(lambda: announced and announced[-1], 30, "attention for the permission prompt")
            assert s.status is SessionStatus.WAITING_PERMISSION
            assert s.pending is not None and s.pending.tool == "Bash"
            tab = app.window.open_session(s.id)
            assert tab is not None and tab.request_box.isVisibleTo(app.window)
            allow = next(b for b in tab.request_box.findChildren(QPushButton) if b.text() == "Allow")
            allow.click()
            await until((claude.project / "fake-bash-ran.txt").exists, 60, "the approved command to run")
            await until(lambda: "Delivered" in tab.delivery.text() or "Submitted" in tab.delivery.text(),
                        30, "the tab to show the delivery state")
            await until(lambda: (x := app.registry.get(s.id)) and x.status is SessionStatus.IDLE, 60,
                        "the session to become idle")
            assert len(announced) == 1, "one notification per request"

        run_with_app(qloop, app, steps)
