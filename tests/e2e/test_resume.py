"""Resume a past session from the history, with the real agents in a private tmux server.

A real Claude Code 2.1.197 / Codex 0.169.0 answers a prompt and exits. The running app
finds the phrase in the history window, opens the past session's read-only tab at the hit,
and "Resume in terminal" starts ``claude --resume ID`` / ``codex resume ID`` in a new pane
beside the user's. Both agents keep the session id and append to the same file, so the
registry lists the session live under its old id, the tab turns into its live tab, and an
answer typed there reaches the resumed agent (it lands in the same transcript).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from PySide6.QtCore import QSettings

from deck_tray.app import DeckTrayApp
from deck_tray.core.model import AgentKind, SessionStatus
from deck_tray.core.scan import Scanner
from deck_tray.services.history_store import HistoryIndex
from deck_tray.services.panes import Tmux

from .harness import ClaudeAgent, CodexAgent, FakeModel, TmuxServer, find_agent_bin, until, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.gui]


def _kill_codex_daemons(codex_home: Path) -> None:
    """Codex resumed in daemon mode leaves an app-server behind: stop the ones of this test."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if "codex" not in (proc.info["name"] or "") or "app-server" not in " ".join(proc.info["cmdline"] or []):
                continue
            if proc.environ().get("CODEX_HOME") == str(codex_home):
                proc.kill()
        except psutil.Error:
            continue


def run_resume(tmp_path: Path, qtbot: Any, qloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch,
               agent: ClaudeAgent | CodexAgent, tmux: TmuxServer, files: Callable[[], list[Path]],
               session_id: str) -> None:
    kind = AgentKind.CLAUDE_CODE if isinstance(agent, ClaudeAgent) else AgentKind.CODEX
    [transcript] = files()
    # The user's own tmux session, with the environment the agent had (its HOME, the fake model).
    tmux.new_session("user", ["sleep", "600"], agent.project, env=agent.env())
    index = HistoryIndex(tmp_path / "history.db")
    index.sync_files([(kind, str(transcript))])
    monkeypatch.setenv("TMUX_TMPDIR", str(tmux.tmpdir))
    monkeypatch.setenv("DECK_TRAY_AGENTS_DIR", str(Path(agent.binary).parents[2]))
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")  # the agents only through DECK_TRAY_AGENTS_DIR
    claude_dir = agent.config_dir if isinstance(agent, ClaudeAgent) else tmp_path / "no-claude"
    codex_dir = agent.codex_home if isinstance(agent, CodexAgent) else tmp_path / "no-codex"
    # A tiny history window: the ended session is not listed, so it opens as a past session.
    app = DeckTrayApp(scanner=Scanner(claude_dir, codex_dir, history_s=0.001), mux=Tmux(),
                      settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                      discover_opencode=False)
    qtbot.addWidget(app.window)

    async def steps() -> None:
        t0 = asyncio.get_running_loop().time()

        def mark(what: str) -> None:
            print(f"{asyncio.get_running_loop().time() - t0:6.1f} s  {what}")

        search = app.open_search()
        search.set_index(index)
        search.query.setText("ALPHA")
        await until(lambda: search.state == "results", 10, "the search result")
        hit = search.hits()[0]
        assert hit.session_id == session_id and hit.agent is kind
        assert app.registry.get(session_id) is None, "a past session, not listed"
        search.open_requested.emit(hit)
        tab = await until(lambda: app.window.tabs_by_id.get(session_id), 10, "the past session's tab")
        assert tab.past and tab.resume_button.isVisibleTo(tab)
        await until(lambda: tab._reveal is None, 10, "the tab to show the hit")
        assert "alpha" in tab.view.textCursor().selectedText().lower()
        tab.resume_button.click()
        await until(lambda: "Resumed" in tab.delivery.text() or "Could not" in tab.delivery.text(), 20,
                    "the resume report")
        assert "Resumed" in tab.delivery.text(), tab.delivery.text()
        mark("resumed")
        live = await until(lambda: (s := app.registry.get(session_id)) and s.pid and s.pane
                           and s.status is not SessionStatus.ENDED and s, 60,
                           "the resumed session to be listed live under the same id")
        assert live.transcript == str(transcript)
        mark("listed live")
        await until(lambda: not tab.past, 5, "the tab to follow the live session")
        assert tab.answer_row.isVisibleTo(tab) and not tab.resume_button.isVisibleTo(tab)
        await until(lambda: (s := app.registry.get(session_id)) and s.status is SessionStatus.IDLE, 60,
                    "the resumed agent to be ready")
        await until(lambda: tab.send_button.isEnabled(), 10, "the tab to accept an answer")
        mark("idle")
        tab.answer.setPlainText("second prompt BETA")
        tab.send_button.click()
        await until(lambda: "BETA" in transcript.read_text(errors="replace"), 60,
                    "the answer to reach the resumed agent")
        assert files() == [transcript], "resuming appends to the same file"
        mark("answer reached the agent")

    async def scenario() -> None:
        app.start()
        try:
            await steps()
        finally:
            await app.stop()
            index.close()

    qloop.run_until_complete(scenario())


@pytest.mark.skipif(find_agent_bin("claude") is None, reason="claude not found (run ./scripts/test.sh)")
def test_resume_a_past_claude_session(tmp_path: Path, qtbot: Any, qloop: asyncio.AbstractEventLoop,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeModel("anthropic", tmp_path / "fake") as model, TmuxServer() as tmux:
        agent = ClaudeAgent(tmux, model, tmp_path / "claude")
        with agent:
            agent.type_line("first prompt ALPHA")
            wait_until(lambda: agent.transcripts() and "Hello from the fake" in agent.transcripts()[0].read_text(),
                       60, "the first answer")
        sid = agent.transcripts()[0].stem
        run_resume(tmp_path, qtbot, qloop, monkeypatch, agent, tmux, agent.transcripts, sid)


@pytest.mark.skipif(find_agent_bin("codex") is None, reason="codex not found (run ./scripts/test.sh)")
def test_resume_a_past_codex_session(tmp_path: Path, qtbot: Any, qloop: asyncio.AbstractEventLoop,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeModel("openai", tmp_path / "fake") as model, TmuxServer() as tmux:
        agent = CodexAgent(tmux, model, tmp_path / "codex")
        try:
            with agent:
                agent.type_line("first prompt ALPHA")
                wait_until(lambda: agent.rollouts() and "task_complete" in agent.rollouts()[0].read_text(),
                           60, "the first answer")
            first = json.loads(agent.rollouts()[0].read_text().splitlines()[0])
            run_resume(tmp_path, qtbot, qloop, monkeypatch, agent, tmux, agent.rollouts, first["payload"]["id"])
        finally:
            _kill_codex_daemons(agent.codex_home)
