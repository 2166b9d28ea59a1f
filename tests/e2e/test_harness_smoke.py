"""Smoke tests of the e2e harness: real agents reach and pass their permission prompts.

Run: ``DECK_TRAY_AGENTS_DIR=/path/to/prefix python3 -m pytest -m e2e tests/e2e`` (the
agents are looked up in ``$DECK_TRAY_AGENTS_DIR/node_modules/.bin``, default
``<repo>/.agents``, then ``PATH``).
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from .harness import (
    ClaudeAgent,
    CodexAgent,
    FakeModel,
    TmuxServer,
    find_agent_bin,
    wait_shown,
    wait_until,
)

pytestmark = pytest.mark.e2e

_HOW = "install with `npm install --prefix .agents` or set DECK_TRAY_AGENTS_DIR"
needs_claude = pytest.mark.skipif(find_agent_bin("claude") is None, reason=f"claude binary not found ({_HOW})")
needs_codex = pytest.mark.skipif(find_agent_bin("codex") is None, reason=f"codex binary not found ({_HOW})")


@needs_claude
def test_claude_bash_permission_prompt_then_approve(tmp_path: Path) -> None:
    """``FAKE_BASH`` -> "Do you want to proceed?"; ``1`` runs the command."""
    with (
        FakeModel("anthropic", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        ClaudeAgent(tmux, model, tmp_path / "claude") as claude,
    ):
        assert psutil.Process(claude.pid).name() == "claude"
        claude.type_line("please FAKE_BASH now")
        claude.wait_for(r"Do you want to proceed\?")
        status = wait_until(
            lambda: (s := claude.session_status()) and s.get("status") == "waiting" and s,
            30,
            "sessions/<pid>.json status waiting",
        )
        assert status["pid"] == claude.pid
        assert status["waitingFor"] == "permission prompt"
        wait_shown(claude.capture, r"Do you want to proceed\?")  # read first (READ_DIALOG_S)
        claude.send_keys("1")
        ran = claude.project / "fake-bash-ran.txt"
        wait_until(ran.exists, 60, f"{ran} to appear")
        claude.wait_for("FAKE_DONE", timeout=60)
        assert any(r["path"].startswith("/v1/messages") for r in model.requests())


@needs_codex
def test_codex_shell_approval_prompt_then_approve(tmp_path: Path) -> None:
    """``FAKE_SHELL`` -> "Would you like to run the following command?"; ``y`` runs it."""
    with (
        FakeModel("openai", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        CodexAgent(tmux, model, tmp_path / "codex") as codex,
    ):
        assert psutil.Process(codex.pid).name() == "codex"
        codex.type_line("please FAKE_SHELL now")
        codex.wait_for(r"Would you like to run the following command\?")
        codex.send_keys("y")
        ran = codex.project / "fake-shell-ran.txt"
        wait_until(ran.exists, 60, f"{ran} to appear")
        codex.wait_for("FAKE_DONE", timeout=60)
        assert codex.rollouts(), "no rollout file written"
        assert any(r["path"].endswith("/responses") for r in model.requests())
