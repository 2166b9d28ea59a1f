"""Issue #13: a real Claude Code in a plain terminal (no tmux, no zellij) answered from deck-tray
through its own ``PermissionRequest`` hook — no key typed — and the terminal-first race; its
``AskUserQuestion`` answered the same way; Codex held only when the user lets it wait. Each agent
runs as the pinned build and, where ``scripts/test.sh`` installed it, the newest release.

The agent runs on a plain pty (:mod:`tests.e2e.pty_terminal`) with deck-tray's hooks in its
settings (``python -m deck_tray hook claude-code``, the PermissionRequest one with the timeout
``deck-tray hooks install`` writes); the app runs in this process (its socket in a private
runtime folder); answers are given with the real ``deck-tray reply`` command.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QPushButton

from deck_tray.app import DeckTrayApp
from deck_tray.core import settings as cfg
from deck_tray.core.hooks_config import hook_timeout
from deck_tray.core.model import SessionStatus
from deck_tray.core.scan import Scanner
from deck_tray.services.panes import Tmux

from .harness import REPO_ROOT, ClaudeAgent, CodexAgent, FakeModel, agent_builds, find_agent_bin, until, wait_shown
from .hook_helpers import PROCEED, claude_hook_settings, cli, run_with_app
from .pty_terminal import PtyTerminal

pytestmark = [pytest.mark.e2e, pytest.mark.gui, pytest.mark.usefixtures("qt_slate"),
              pytest.mark.skipif(find_agent_bin("claude") is None, reason="claude not found (run ./scripts/test.sh)")]

CLAUDE_BUILDS = [pytest.param(b, id=f"claude-{label}") for label, b in agent_builds("claude")]
CODEX_BUILDS = [pytest.param(b, id=f"codex-{label}") for label, b in agent_builds("codex")]
#: Claude Code 2.1.332 starts in "auto" mode and offers to keep it; people who answer permissions
#: choose "No, keep manual mode" (2.1.197 has no such offer). Its footer then says "manual mode on".
CLAUDE_READY = r"\? for shortcuts|manual mode on"





def claude_in_a_pty(model: FakeModel, scratch: Path, runtime: Path,
                    binary: str | None = None) -> tuple[ClaudeAgent, PtyTerminal]:
    agent = ClaudeAgent(None, model, scratch, settings=claude_hook_settings(), binary=binary,  # type: ignore[arg-type]
                        extra_env={"XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(REPO_ROOT)})
    agent.home.mkdir(parents=True, exist_ok=True)
    agent.project.mkdir(parents=True, exist_ok=True)
    agent.prepare()
    env = {k: v for k, v in agent.env().items() if not k.startswith("TMUX")}
    return agent, PtyTerminal(agent.argv(), env, agent.project)


def claude_ready(term: PtyTerminal) -> None:
    """Wait until Claude takes a prompt, keeping manual permission mode where it offers auto mode."""
    term.wait_for(CLAUDE_READY + "|keep manual mode", 120)
    if "keep manual mode" in term.text() and not re.search(CLAUDE_READY, term.text()):
        # Down, then Enter on "No, keep manual mode". (Its digit "2" also lands in the prompt box of
        # 2.1.332: the first prompt then read "2please …".)
        mark = term.mark()
        term.write(b"\x1b[B")
        term.wait_for(r"❯\s*No, keep manual mode", 30, mark)
        term.write(b"\r")
        term.wait_for(CLAUDE_READY, 60)




async def cli_reply(runtime: Path, agent: ClaudeAgent | CodexAgent, *args: str) -> tuple[int, str, str]:
    """``deck-tray reply ARGS``."""
    return await cli(runtime, agent, "reply", *args)


def make_app(tmp_path: Path, agent: ClaudeAgent, runtime: Path, qtbot: Any) -> DeckTrayApp:
    app = DeckTrayApp(scanner=Scanner(agent.config_dir, agent.home / ".codex"), mux=Tmux(),  # as the CLI looks
                      settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                      notification_backends=[], discover_opencode=False, ipc_path=runtime / "deck-tray" / "ipc.sock")
    qtbot.addWidget(app.window)
    return app


@pytest.mark.parametrize("binary", CLAUDE_BUILDS)
def test_allow_and_deny_through_the_hook_in_a_plain_terminal(binary: str, tmp_path: Path, runtime: Path, qtbot: Any,
                                                               qloop: asyncio.AbstractEventLoop) -> None:
    """``reply --allow``: the command runs, nothing is typed; ``reply --deny "not now"``: the model
    receives the message. Prints the decision → tool start time."""
    with FakeModel("anthropic", tmp_path / "fake") as model:
        agent, term = claude_in_a_pty(model, tmp_path / "claude", runtime, binary)
        with term:
            claude_ready(term)
            app = make_app(tmp_path, agent, runtime, qtbot)

            async def steps() -> None:
                sid = (await until(lambda: app.registry.sessions(), 30, "the session"))[0].id
                assert app.registry.get(sid).pane is None, "no multiplexer: no pane"  # type: ignore[union-attr]
                typed_before = len(term.typed)
                term.type_line("please FAKE_BASH:touch allowed-1.txt")
                await until(lambda: app.decisions.held(sid), 60, "the PermissionRequest hook to be held")
                term.wait_for(PROCEED, 30)  # Claude shows its own dialog meanwhile
                rc, out, err = await cli(runtime, agent, "sessions", "--json")
                listed = next(x for x in json.loads(out) if x["id"] == sid)
                assert listed["status"] == "waiting_permission" and listed["answer_via"] == "hook", listed
                typed_after_prompt = len(term.typed)
                t0 = time.monotonic()
                rc, out, err = await cli_reply(runtime, agent, sid[:8], "--allow")
                assert rc == 0 and out.strip() == "accepted", (rc, out, err)
                await until((agent.project / "allowed-1.txt").exists, 30, "the allowed command to run")
                print(f"\nreply --allow → the command ran: {time.monotonic() - t0:.2f} s (through the hook)")
                assert len(term.typed) == typed_after_prompt > typed_before, "no key typed for the permission"
                await until(lambda: (s := app.registry.get(sid)) and s.status is SessionStatus.IDLE, 30, "idle")

                term.type_line("please FAKE_BASH:touch denied-2.txt")
                await until(lambda: app.decisions.held(sid), 60, "the second request to be held")
                # In the window this time: no pane is known, yet the tab's Deny works through the hook.
                tab = app.window.open_session(sid)
                assert tab is not None
                deny = await until(lambda: next((b for b in tab.findChildren(QPushButton)
                                                 if b.text() == "Deny" and b.isEnabled()), None), 10,
                                   "an enabled Deny button")
                assert "answered through its hook" in tab.where.text()
                tab.answer.setPlainText("not now")
                deny.click()
                await until(lambda: "not now" in model.log_path.read_text(), 30, "the model to receive the message")
                assert not (agent.project / "denied-2.txt").exists()

            run_with_app(qloop, app, steps)


@pytest.mark.parametrize("binary", CLAUDE_BUILDS)
def test_a_question_through_the_hook(binary: str, tmp_path: Path, runtime: Path, qtbot: Any,
                                     qloop: asyncio.AbstractEventLoop) -> None:
    """Claude's ``AskUserQuestion`` in a plain terminal is held like a permission: ``reply
    --option Blue`` and, in the window, a typed answer reach the model as the question's answer
    (``updatedInput.answers``); nothing is typed into the terminal."""
    answered = 'answered: \\"Which colour should the fake widget be?\\"=\\"{}\\"'  # as the model log has it
    with FakeModel("anthropic", tmp_path / "fake") as model:
        agent, term = claude_in_a_pty(model, tmp_path / "claude", runtime, binary)
        with term:
            claude_ready(term)
            app = make_app(tmp_path, agent, runtime, qtbot)

            async def steps() -> None:
                sid = (await until(lambda: app.registry.sessions(), 30, "the session"))[0].id
                term.type_line("please FAKE_ASK now")
                typed = len(term.typed)
                await until(lambda: app.decisions.held(sid), 60, "the question's hook to be held")
                term.wait_for(r"Which colour should the fake widget be\?", 30)  # Claude's own dialog meanwhile
                rc, out, err = await cli(runtime, agent, "sessions", "--json")
                listed = next(x for x in json.loads(out) if x["id"] == sid)
                assert listed["status"] == "waiting_question" and listed["answer_via"] == "hook", listed
                rc, out, err = await cli_reply(runtime, agent, sid[:8], "--option", "Blue")
                assert rc == 0 and out.strip() == "accepted", (rc, out, err)
                await until(lambda: answered.format("Blue") in model.log_path.read_text(), 30,
                            "the model to receive the answer")
                assert '"please FAKE_ASK now"' in model.log_path.read_text(), "the prompt arrived as typed"
                await until(lambda: (s := app.registry.get(sid)) and s.status is SessionStatus.IDLE, 30, "idle")

                term.type_line("please FAKE_ASK again")
                typed = len(term.typed)
                await until(lambda: app.decisions.held(sid), 60, "the second question to be held")
                tab = app.window.open_session(sid)
                assert tab is not None
                await until(lambda: tab.send_button.isEnabled(), 10, "Send to be enabled by the held hook")
                assert "question is answered through its hook" in tab.where.text()
                tab.answer.setPlainText("teal, please")
                tab.send_button.click()
                await until(lambda: answered.format("teal, please") in model.log_path.read_text(), 30,
                            "the model to receive the typed answer")
                assert len(term.typed) == typed, "no key typed for the questions"

            run_with_app(qloop, app, steps)


def test_the_terminal_answers_first(tmp_path: Path, runtime: Path, qtbot: Any,
                                     qloop: asyncio.AbstractEventLoop) -> None:
    """The user answers in the terminal while the hook is held: deck-tray lets the hook go, a late
    ``reply --allow`` is refused as superseded (exit 3), and the command ran once."""
    with FakeModel("anthropic", tmp_path / "fake") as model:
        agent, term = claude_in_a_pty(model, tmp_path / "claude", runtime)
        with term:
            claude_ready(term)
            app = make_app(tmp_path, agent, runtime, qtbot)

            async def steps() -> None:
                sid = (await until(lambda: app.registry.sessions(), 30, "the session"))[0].id
                term.type_line("please FAKE_BASH:echo once >> ran.txt")
                await until(lambda: app.decisions.held(sid), 60, "the hook to be held")
                term.wait_for(PROCEED, 30)
                wait_shown(term.text, PROCEED)  # the user reads it first (harness.READ_DIALOG_S)
                term.write(b"1")  # "Yes", in the terminal
                await until((agent.project / "ran.txt").exists, 30, "the command to run")
                await until(lambda: app.decisions.held(sid) is None, 30, "deck-tray to let the hook go")
                rc, out, err = await cli_reply(runtime, agent, sid[:8], "--allow")
                assert rc == 3 and "superseded" in err, (rc, out, err)
                await until(lambda: (s := app.registry.get(sid)) and s.status is SessionStatus.IDLE, 30, "idle")
                assert (agent.project / "ran.txt").read_text() == "once\n"
                results = sum(line.count('"tool_result"') for line in model.log_path.read_text().splitlines()
                              if "once" in line)
                assert results >= 1

            run_with_app(qloop, app, steps)


def test_the_app_killed_while_a_hook_waits(tmp_path: Path, runtime: Path) -> None:
    """kill -9 of the app while the hook is held: the hook returns with no decision at once and
    Claude's own dialog still works."""
    with FakeModel("anthropic", tmp_path / "fake") as model:
        agent, term = claude_in_a_pty(model, tmp_path / "claude", runtime)
        env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME")}
        env.update(XDG_RUNTIME_DIR=str(runtime), HOME=str(agent.home), PYTHONPATH=str(REPO_ROOT),
                   QT_QPA_PLATFORM="offscreen", XDG_STATE_HOME=str(tmp_path / "state"),
                   XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
        with term:
            claude_ready(term)
            app = subprocess.Popen([sys.executable, "-m", "deck_tray"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            try:
                log = tmp_path / "state" / "deck-tray" / "log" / "deck-tray.log"
                deadline = time.monotonic() + 60
                while not (log.exists() and "listening for hooks" in log.read_text()):
                    assert time.monotonic() < deadline and app.poll() is None, "the app did not start"
                    time.sleep(0.1)
                term.type_line("please FAKE_BASH:touch after-kill.txt")
                while "holding Claude Code's permission hook" not in log.read_text():
                    assert time.monotonic() < deadline + 60, "the hook was not held"
                    time.sleep(0.1)
                term.wait_for(PROCEED, 30)
                wait_shown(term.text, PROCEED)
                app.send_signal(signal.SIGKILL)
                app.wait(10)
                term.write(b"1")
                deadline = time.monotonic() + 30
                while not (agent.project / "after-kill.txt").exists():
                    assert time.monotonic() < deadline, "Claude's own dialog did not work after the kill:\n" + \
                        term.text()[-2000:]
                    time.sleep(0.1)
                hooks = [json.loads(x) for x in model.log_path.read_text().splitlines() if x.strip()]
                assert hooks, "the model was asked"
            finally:
                if app.poll() is None:
                    app.kill()
                    app.wait(10)


@pytest.mark.skipif(find_agent_bin("codex") is None, reason="codex not found (run ./scripts/test.sh)")
@pytest.mark.parametrize("binary", CODEX_BUILDS)
def test_codex_waits_for_deck_tray_only_when_the_user_lets_it(binary: str, tmp_path: Path, runtime: Path,
                                                              qtbot: Any, qloop: asyncio.AbstractEventLoop) -> None:
    """Codex (0.169.0 pinned, 0.171.0 newest) shows its approval only after the PermissionRequest
    hook returns ("Running hook" until then). With "Let Codex wait for deck-tray" off (the
    default) its hook is not held: the approval appears at once and is answered in the terminal.
    Turned on in the settings, a permission of this session (no pane) is held: ``reply --allow``
    runs the command and ``reply --deny "not now"`` reaches the model, nothing typed."""
    command = f"{shlex.quote(sys.executable)} -m deck_tray hook codex"
    hooks = {"hooks": {ev: [{**({"matcher": "*"} if ev == "PermissionRequest" else {}),
                             "hooks": [{"type": "command", "command": command, "timeout": hook_timeout(ev)}]}]
                       for ev in ("PermissionRequest", "Stop", "UserPromptSubmit", "SessionStart")}}
    with FakeModel("openai", tmp_path / "fake") as model:
        agent = CodexAgent(None, model, tmp_path / "codex", hooks=hooks, binary=binary,  # type: ignore[arg-type]
                           extra_env={"XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(REPO_ROOT)})
        agent.home.mkdir(parents=True, exist_ok=True)
        agent.project.mkdir(parents=True, exist_ok=True)
        agent.prepare()
        env = {k: v for k, v in agent.env().items() if not k.startswith("TMUX")}
        with PtyTerminal(agent.argv(), env, agent.project) as term:
            term.wait_for(r"for shortcuts", 120)
            app = DeckTrayApp(scanner=Scanner(agent.home / ".claude", agent.codex_home), mux=Tmux(),
                              settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                              notification_backends=[], discover_opencode=False,
                              ipc_path=runtime / "deck-tray" / "ipc.sock")
            qtbot.addWidget(app.window)
            hooks_seen: list[str] = []
            assert app.ipc is not None
            app.ipc.hook_received.connect(lambda ev: hooks_seen.append(ev.name))

            async def steps() -> None:
                await asyncio.sleep(1.0)  # Codex drops keys typed while it still loads
                term.type_line("please FAKE_SHELL:touch asked-in-terminal.txt")
                await until(lambda: "PermissionRequest" in hooks_seen, 60, "Codex's PermissionRequest hook")
                t0 = time.monotonic()
                while "Would you like to run the following command?" not in term.text():
                    assert time.monotonic() - t0 < 10, "Codex's approval did not appear: " + term.text()[-1500:]
                    await asyncio.sleep(0.1)
                print(f"\nCodex hook → its approval on screen: {time.monotonic() - t0:.2f} s (not held)")
                assert not any(app.decisions.held(s.id) for s in app.registry.sessions())
                term.write(b"y")
                await until((agent.project / "asked-in-terminal.txt").exists, 60, "the approved command to run")
                sid = (await until(lambda: app.registry.sessions(), 30, "the session"))[0].id
                await until(lambda: (s := app.registry.get(sid)) and not s.status.is_waiting, 30, "the turn to go on")

                assert app.store.set(cfg.CODEX_HOLD_S, 120)  # as the settings dialog does
                mark = term.mark()
                term.type_line("please FAKE_SHELL:touch allowed-from-deck-tray.txt")
                typed = len(term.typed)
                await until(lambda: app.decisions.held(sid), 60, "Codex's hook to be held")
                seen = await asyncio.to_thread(term.wait_for, "Running hook", 30, mark)  # Codex waits for us
                assert "Would you like to run" not in term.wait_for("Running hook", 1, mark), seen[-1500:]
                rc, out, err = await cli(runtime, agent, "sessions", "--json")
                assert [x["answer_via"] for x in json.loads(out) if x["id"] == sid] == ["hook"], (sid, rc, out, err)
                t0 = time.monotonic()
                rc, out, err = await cli_reply(runtime, agent, sid[:8], "--allow")
                assert rc == 0 and out.strip() == "accepted", (rc, out, err)
                await until((agent.project / "allowed-from-deck-tray.txt").exists, 30, "the allowed command to run")
                print(f"Codex held: reply --allow → the command ran: {time.monotonic() - t0:.2f} s")
                await until(lambda: (s := app.registry.get(sid)) and not s.status.is_waiting, 30, "the turn to go on")

                term.type_line("please FAKE_SHELL:touch denied-from-deck-tray.txt")
                typed = len(term.typed)
                await until(lambda: app.decisions.held(sid), 60, "the second request to be held")
                rc, out, err = await cli_reply(runtime, agent, sid[:8], "--deny", "not now")
                assert rc == 0, (rc, out, err)
                await until(lambda: "not now" in model.log_path.read_text(), 30, "the model to receive the message")
                assert not (agent.project / "denied-from-deck-tray.txt").exists()
                assert len(term.typed) == typed, "no key typed for the held permissions"

            run_with_app(qloop, app, steps)
