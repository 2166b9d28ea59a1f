"""Issue #19: deck-tray's hooks in the real Gemini CLI 0.61.0, Qwen Code 0.24.4 and Copilot CLI 1.0.102.

Each test installs the hooks with the real ``python -m deck_tray hooks install --agent X --yes`` into
the agent's isolated home, starts the agent in a private tmux server against its loopback fake
model, runs the app in this process (its socket in a private runtime folder, the agent's hooks
pointed there) and asks for a shell command:

* Gemini: the permission shows up through its ``Notification`` hook (the session's reason names
  the hook); its hooks never wait, so the box is drawn as usual.
* Qwen / Copilot: while deck-tray's permission hook waits (the setting is 10 s here) the agent
  shows no prompt at all; ``deck-tray reply ID --allow`` given meanwhile approves the command
  through the hook — the command runs with no key typed into the pane.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from deck_tray.app import DeckTrayApp
from deck_tray.core import settings as cfg
from deck_tray.core.model import AgentKind, Session, SessionStatus
from deck_tray.core.scan import Scanner
from deck_tray.services.panes import Tmux

from .copilot_harness import CopilotAgent, CopilotFakeModel
from .gemini_harness import GeminiAgent, QwenAgent
from .harness import REPO_ROOT, FakeModel, TmuxServer, find_agent_bin, until
from .hook_helpers import run_with_app

pytestmark = [pytest.mark.e2e, pytest.mark.gui, pytest.mark.usefixtures("qt_slate")]
HOMES = ("HOME", "GEMINI_CLI_HOME", "QWEN_HOME", "COPILOT_HOME")


def install_hooks(agent: Any, name: str) -> str:
    """``python -m deck_tray hooks install --agent NAME --yes`` with the agent's own home."""
    env = {k: v for k, v in os.environ.items() if k not in HOMES and not k.startswith(("CLAUDE_", "CODEX_"))}
    env.update({k: v for k, v in agent.env().items() if k in HOMES}, PYTHONPATH=str(REPO_ROOT))
    res = subprocess.run([sys.executable, "-m", "deck_tray", "hooks", "install", "--agent", name, "--yes"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


class HookedGemini(GeminiAgent):
    def prepare(self) -> None:
        super().prepare()
        self.install_output = install_hooks(self, "gemini")


class HookedQwen(QwenAgent):
    def prepare(self) -> None:
        super().prepare()
        self.install_output = install_hooks(self, "qwen")


class HookedCopilot(CopilotAgent):
    def prepare(self) -> None:
        super().prepare()
        self.install_output = install_hooks(self, "copilot")


def make_app(tmp_path: Path, tmux: TmuxServer, runtime: Path, qtbot: Any, homes: dict[AgentKind, Path]) -> DeckTrayApp:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(cfg.HOOK_WAIT_S.key, 10)
    app = DeckTrayApp(scanner=Scanner(tmp_path / "no-claude", tmp_path / "no-codex", adapter_homes=homes),
                      mux=Tmux(env=dict(os.environ, TMUX_TMPDIR=str(tmux.tmpdir))), settings=settings,
                      notification_backends=[], discover_opencode=False, ipc_path=runtime / "deck-tray" / "ipc.sock")
    qtbot.addWidget(app.window)
    return app


def agent_env(runtime: Path) -> dict[str, str]:
    """What the agent's hooks need: the app's socket folder, and this checkout."""
    return {"XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(REPO_ROOT)}


async def the_session(app: DeckTrayApp, kind: AgentKind) -> Session:
    return await until(lambda: next((s for s in app.registry.sessions() if s.agent is kind), None), 60,
                       f"the {kind.label} session")


async def cli(runtime: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    full = {k: v for k, v in os.environ.items() if k not in HOMES}
    full.update(env, XDG_RUNTIME_DIR=str(runtime), PYTHONPATH=str(REPO_ROOT))
    # The app's Claude Code / Codex folders, so that the CLI uses the app's view (and its held hook).
    full.update(CLAUDE_CONFIG_DIR=env["NO_CLAUDE"], CODEX_HOME=env["NO_CODEX"])
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "deck_tray", *args, env=full,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.skipif(find_agent_bin("gemini") is None, reason="gemini not found (npm install --prefix .agents …)")
def test_gemini_permission_arrives_through_its_hook(tmp_path: Path, runtime: Path, qtbot: Any,
                                                    qloop: asyncio.AbstractEventLoop) -> None:
    with (FakeModel("gemini", tmp_path / "fake") as model, TmuxServer() as tmux,
          HookedGemini(tmux, model, tmp_path / "gemini", extra_env=agent_env(runtime)) as agent):
        assert "hook gemini-cli" in (agent.config_dir / "settings.json").read_text()
        app = make_app(tmp_path, tmux, runtime, qtbot, {AgentKind.GEMINI_CLI: agent.config_dir})

        async def steps() -> None:
            await the_session(app, AgentKind.GEMINI_CLI)
            t0 = time.monotonic()
            await asyncio.to_thread(agent.type_line, "please FAKE_SHELL now")
            # (the id is the chats file's sessionId, the one the hook names)
            s = await until(lambda: next((x for x in app.registry.sessions() if x.agent is AgentKind.GEMINI_CLI
                                          and x.status is SessionStatus.WAITING_PERMISSION and "— hook" in x.reason),
                                         None), 30, "waiting for permission, from the hook")
            sid = s.id
            assert app.hooks.evidence(sid), "the hook's evidence is kept under the session's id"
            print(f"\ngemini: {s.reason!r} {time.monotonic() - t0:.2f} s after the prompt was typed")
            assert "touch gemini-ran.txt" in s.reason
            assert app.ipc is not None and app.ipc.last_hooks["gemini-cli"]["event"] == "Notification"
            assert app.decisions.held(sid) is None, "Gemini's hooks never wait"
            await asyncio.to_thread(agent.wait_for, GeminiAgent.PERMISSION_RE, 30)  # its box as usual

        run_with_app(qloop, app, steps)


def approve_through_the_hook(qloop: asyncio.AbstractEventLoop, app: DeckTrayApp, runtime: Path, agent: Any,
                             kind: AgentKind, marker: Path, prompt_re: str, cli_env: dict[str, str]) -> None:
    async def steps() -> None:
        await asyncio.to_thread(agent.type_line, "please FAKE_SHELL now")
        held = await until(lambda: next((app.decisions.held(s.id) and s for s in app.registry.sessions()
                                         if s.agent is kind and app.decisions.held(s.id)), None), 60,
                           "the permission hook to be held")
        sid = held.id
        s = await until(lambda: (x := app.registry.get(sid)) is not None and x.status.is_waiting and x, 10, "waiting")
        print(f"\n{kind.value}: held; listed as {s.status.value}: {s.reason!r}")
        assert "— hook" in s.reason
        screen = await asyncio.to_thread(agent.capture)
        assert not re.search(prompt_re, screen), "no prompt while the hook runs"
        t0 = time.monotonic()
        rc, out, err = await cli(runtime, cli_env, "reply", sid[:8], "--allow")
        assert rc == 0 and out.strip() == "accepted", (rc, out, err)
        await until(marker.exists, 30, "the allowed command to run")
        print(f"{kind.value}: reply --allow → the command ran in {time.monotonic() - t0:.2f} s, through the hook")
        assert not re.search(prompt_re, await asyncio.to_thread(agent.capture)), "the prompt was never shown"

    run_with_app(qloop, app, steps)


@pytest.mark.skipif(find_agent_bin("qwen") is None, reason="qwen not found (npm install --prefix .agents …)")
def test_qwen_allowed_from_deck_tray_while_its_hook_waits(tmp_path: Path, runtime: Path, qtbot: Any,
                                                          qloop: asyncio.AbstractEventLoop) -> None:
    with (FakeModel("gemini", tmp_path / "fake") as model, TmuxServer() as tmux,
          HookedQwen(tmux, model, tmp_path / "qwen", extra_env=agent_env(runtime)) as agent):
        assert "hook qwen-code" in (agent.config_dir / "settings.json").read_text()
        app = make_app(tmp_path, tmux, runtime, qtbot, {AgentKind.QWEN_CODE: agent.config_dir})
        approve_through_the_hook(qloop, app, runtime, agent, AgentKind.QWEN_CODE, agent.project / "gemini-ran.txt",
                                 QwenAgent.PERMISSION_RE, {"HOME": str(agent.home), "QWEN_HOME": str(agent.config_dir),
                                  "NO_CLAUDE": str(tmp_path / "no-claude"), "NO_CODEX": str(tmp_path / "no-codex")})


@pytest.mark.skipif(find_agent_bin("copilot") is None, reason="copilot not found (npm install --prefix .agents …)")
def test_copilot_allowed_from_deck_tray_while_its_hook_waits(tmp_path: Path, runtime: Path, qtbot: Any,
                                                             qloop: asyncio.AbstractEventLoop) -> None:
    with (CopilotFakeModel(tmp_path / "fake") as model, TmuxServer() as tmux,
          HookedCopilot(tmux, model, tmp_path / "copilot", extra_env=agent_env(runtime)) as agent):
        assert (agent.copilot_home / "hooks" / "deck-tray.json").exists()
        app = make_app(tmp_path, tmux, runtime, qtbot, {AgentKind.COPILOT_CLI: agent.copilot_home})
        approve_through_the_hook(qloop, app, runtime, agent, AgentKind.COPILOT_CLI,
                                 agent.project / "copilot-ran.txt", r"Do you want to run this command\?",
                                 {"HOME": str(agent.home), "COPILOT_HOME": str(agent.copilot_home),
                                  "NO_CLAUDE": str(tmp_path / "no-claude"), "NO_CODEX": str(tmp_path / "no-codex")})
