"""Resume in terminal: the command per agent, and clear refusals (no tmux server, no agent)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deck_tray.core.model import AgentKind, Session, SessionStatus
from deck_tray.services.panes import Tmux
from deck_tray.services.terminal_actions import agent_binary, resume_argv, resume_in_terminal


def past(agent: AgentKind, cwd: str = "/tmp") -> Session:
    return Session(id="0199-abc", agent=agent, cwd=cwd, title="fix the token refresh", status=SessionStatus.ENDED)


def test_resume_commands() -> None:
    assert resume_argv(past(AgentKind.CLAUDE_CODE), "/x/claude") == ["/x/claude", "--resume", "0199-abc"]
    assert resume_argv(past(AgentKind.CODEX), "codex") == ["codex", "resume", "0199-abc"]
    with pytest.raises(ValueError):
        resume_argv(past(AgentKind.OPENCODE), "opencode")


def test_agent_binary_from_the_agents_dir(tmp_path: Path) -> None:
    bin_dir = tmp_path / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    exe = bin_dir / "codex"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    env = {"PATH": str(tmp_path / "empty"), "DECK_TRAY_AGENTS_DIR": str(tmp_path)}
    assert agent_binary(AgentKind.CODEX, env) == str(exe)
    assert agent_binary(AgentKind.CLAUDE_CODE, env) is None


def test_no_tmux_server_is_said_with_the_command_to_run(tmp_path: Path) -> None:
    mux = Tmux(env={"TMUX_TMPDIR": str(tmp_path)})  # no server there
    report = asyncio.run(resume_in_terminal(mux, past(AgentKind.CLAUDE_CODE, str(tmp_path)), "/opt/claude"))
    assert not report.ok
    assert "No tmux server is running" in report.detail
    assert f"cd {tmp_path} && /opt/claude --resume 0199-abc" in report.detail


def test_a_missing_agent_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("DECK_TRAY_AGENTS_DIR", raising=False)
    report = asyncio.run(resume_in_terminal(Tmux(env={"TMUX_TMPDIR": str(tmp_path)}), past(AgentKind.CODEX)))
    assert not report.ok
    assert "codex was not found" in report.detail and "codex resume 0199-abc" in report.detail
    opencode = asyncio.run(resume_in_terminal(Tmux(), past(AgentKind.OPENCODE)))
    assert not opencode.ok and "opencode server" in opencode.detail
