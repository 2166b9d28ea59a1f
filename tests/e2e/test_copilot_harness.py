"""e2e smoke tests of the Copilot CLI harness (issue #19): a real ``copilot`` 1.0.102 TUI in a
private tmux server, offline, against ``tests/fakes/fake_llm_copilot.py``.

Run: ``DECK_TRAY_AGENTS_DIR=$PWD/.agents QT_QPA_PLATFORM=offscreen python3 -m pytest -m e2e
tests/e2e/test_copilot_harness.py`` (``copilot`` is looked up in ``$DECK_TRAY_AGENTS_DIR/node_modules/.bin``,
default ``<repo>/.agents``, then ``PATH``). Each test starts one Copilot (~2.5 s to the idle prompt).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from .copilot_harness import COPILOT_VERSION, CopilotAgent, CopilotFakeModel, hook_config
from .harness import TmuxServer, find_agent_bin, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        find_agent_bin("copilot") is None,
        reason="copilot not found (install with "
        f"`npm install --prefix .agents @github/copilot@{COPILOT_VERSION}`, or set DECK_TRAY_AGENTS_DIR)",
    ),
]


@pytest.fixture
def model(tmp_path: Path) -> Iterator[CopilotFakeModel]:
    """The fake Copilot chat-completions model, logging to ``tmp_path/fake``."""
    with CopilotFakeModel(tmp_path / "fake") as fake:
        yield fake


@pytest.fixture
def tmux() -> Iterator[TmuxServer]:
    with TmuxServer() as server:
        yield server


def test_shell_permission_allowed_with_1(tmp_path: Path, model: CopilotFakeModel, tmux: TmuxServer) -> None:
    """FAKE_SHELL -> the shell permission dialog ("1. Yes" first); "1" alone allows it, the command
    runs, and the session file / status file follow."""
    with CopilotAgent(tmux, model, tmp_path / "copilot") as agent:
        assert agent.title() == "GitHub Copilot"
        agent.type_line("please FAKE_SHELL now")
        screen = agent.wait_for(CopilotAgent.PERMISSION_RE, timeout=20)
        assert "❯ 1. Yes" in screen
        assert "2. Yes, and don't ask again for `touch` in this directory" in screen
        assert "3. No, and tell Copilot what to do differently (Esc to stop)" in screen
        assert agent.title() == "please FAKE_SHELL now - GitHub Copilot"
        sid = agent.session_dir().name
        wait_until(lambda: agent.events() and agent.events()[-1]["type"] == "permission.requested", 10,
                   "permission.requested in events.jsonl")
        request = agent.events()[-1]["data"]
        assert request["permissionRequest"]["kind"] == "shell"
        assert request["permissionRequest"]["fullCommandText"].startswith("touch copilot-ran.txt")
        assert agent.open_sessions()[sid]["working"] is True
        assert not (agent.project / "copilot-ran.txt").exists()

        agent.send_keys("1")  # no Enter: the digit answers at once
        wait_until(lambda: (agent.project / "copilot-ran.txt").exists(), 15, "the allowed command to run")
        agent.wait_ready(15)
        completed = [e["data"] for e in agent.events() if e["type"] == "permission.completed"]
        assert completed and completed[0]["result"] == {"kind": "approved"}
        assert completed[0]["decisionSource"] == "human_response"
        wait_until(lambda: agent.open_sessions()[sid]["working"] is False, 10, "working: false")


def test_permission_request_hook_allow_skips_the_dialog(tmp_path: Path, model: CopilotFakeModel,
                                                       tmux: TmuxServer) -> None:
    """A user-level ``permissionRequest`` hook printing ``{"behavior": "allow"}`` approves the shell
    command without any dialog; its stdin names the tool and the command."""
    log = tmp_path / "permission-hook.json"
    allow = shlex.join(["printf", "%s", json.dumps({"behavior": "allow"})])
    hooks = hook_config({"permissionRequest": f"cat > {shlex.quote(str(log))}; {allow}"})
    with CopilotAgent(tmux, model, tmp_path / "copilot", hooks=hooks) as agent:
        agent.type_line("please FAKE_SHELL now")
        wait_until(lambda: (agent.project / "copilot-ran.txt").exists(), 20, "the hook-allowed command to run")
        agent.wait_ready(15)
        assert "Do you want to run this command?" not in agent.capture()
        payload = json.loads(log.read_text())
        assert payload["hookName"] == "permissionRequest"
        assert payload["toolName"] == "bash"
        assert payload["toolInput"]["command"].startswith("touch copilot-ran.txt")
        completed = [e["data"] for e in agent.events() if e["type"] == "permission.completed"]
        assert completed and completed[0]["result"] == {"kind": "approved"}
        assert "decisionSource" not in completed[0]


def test_trust_dialog_2_remembers_the_folder(tmp_path: Path, model: CopilotFakeModel, tmux: TmuxServer) -> None:
    """Without ``trustedFolders`` the first start asks "Do you trust the files in this folder?";
    "2" (remember) acts at once and writes the folder into ``config.json``."""
    with CopilotAgent(tmux, model, tmp_path / "copilot", trust_project=False) as agent:
        screen = agent.capture()
        assert "❯ 1. Yes" in screen and "2. Yes, and remember this folder for future sessions" in screen
        agent.send_keys("2")
        agent.wait_ready(15)
        text = (agent.copilot_home / "config.json").read_text()
        assert json.loads(text[text.index("{"):])["trustedFolders"] == [str(agent.project)]
