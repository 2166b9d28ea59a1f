"""Real Claude Code 2.1.197 with deck-tray's hooks installed: every hooked event goes through
``python -m deck_tray hook claude-code`` to the running app's socket, without slowing Claude down
or changing what it does (its permission prompt still appears and is answered in the pane)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from deck_tray.app import DeckTrayApp
from deck_tray.core.hooks import HookEvent
from deck_tray.core.model import Session, SessionStatus
from deck_tray.core.scan import Scanner
from deck_tray.services.panes import Tmux

from .harness import REPO_ROOT, ClaudeAgent, FakeModel, TmuxServer, find_agent_bin, until, wait_shown
from .hook_helpers import claude_hook_settings, run_with_app

pytestmark = [pytest.mark.e2e, pytest.mark.gui, pytest.mark.usefixtures("qt_slate")]

@pytest.mark.skipif(find_agent_bin("claude") is None, reason="claude not found (run ./scripts/test.sh)")
def test_claude_hooks_reach_the_running_app(tmp_path: Path, runtime: Path, qtbot: Any,
                                            qloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = claude_hook_settings()
    sock = runtime / "deck-tray" / "ipc.sock"
    with (
        FakeModel("anthropic", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        # The agent starts before the app: its SessionStart hook finds no socket and must not bother it.
        ClaudeAgent(tmux, model, tmp_path / "claude", settings=settings,
                    extra_env={"XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(REPO_ROOT)}) as claude,
    ):
        monkeypatch.setenv("TMUX_TMPDIR", str(tmux.tmpdir))
        app = DeckTrayApp(scanner=Scanner(claude.config_dir, tmp_path / "no-codex"), mux=Tmux(),
                          settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                          notification_backends=[], discover_opencode=False, ipc_path=sock)
        qtbot.addWidget(app.window)
        assert app.ipc is not None
        hooks: list[tuple[float, HookEvent]] = []
        app.ipc.hook_received.connect(lambda ev: hooks.append((time.perf_counter(), ev)))
        announced: list[tuple[float, Session]] = []
        app.registry.attention_needed.connect(lambda s: announced.append((time.perf_counter(), s)))

        def names() -> list[str]:
            return [ev.name for _, ev in hooks]

        async def steps() -> None:
            await until(lambda: app.registry.sessions(), 30, "the session to be listed")
            claude.type_line("please FAKE_BASH now")
            await until(lambda: "PermissionRequest" in names(), 60, "the PermissionRequest hook")
            t_hook, ev = next((t, e) for t, e in hooks if e.name == "PermissionRequest")
            assert ev.payload["tool_name"] == "Bash"
            assert ev.session_id == app.registry.sessions()[0].id
            assert "UserPromptSubmit" in names()
            t_att, s = await until(lambda: announced and announced[-1], 30, "attention for the prompt")
            print(f"PermissionRequest hook → attention_needed: {t_att - t_hook:+.3f} s")
            assert s.status is SessionStatus.WAITING_PERMISSION
            assert s.pending is not None and s.pending.tool == "Bash"
            assert "touch fake-bash-ran.txt" in s.pending.summary
            # The hook decided nothing: Claude still shows its own prompt, and it is answered there.
            claude.wait_for(r"Do you want to proceed\?")
            wait_shown(claude.capture, r"Do you want to proceed\?")  # read first (harness.READ_DIALOG_S)
            claude.send_keys("1")
            await until((claude.project / "fake-bash-ran.txt").exists, 60, "the approved command to run")
            await until(lambda: "Stop" in names(), 60, "the Stop hook")
            await until(lambda: (x := app.registry.get(s.id)) and x.status is SessionStatus.IDLE, 30,
                        "the session to become idle")
            assert len(announced) == 1, "one announcement per request"

        run_with_app(qloop, app, steps)
